//! Demo data (to be written).
