//! cishan-web
