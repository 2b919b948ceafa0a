//! cishan-core
