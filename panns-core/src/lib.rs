//! panns-core
