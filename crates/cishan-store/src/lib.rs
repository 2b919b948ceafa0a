//! cishan-store
