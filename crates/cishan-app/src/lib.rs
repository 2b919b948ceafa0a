//! cishan-app
