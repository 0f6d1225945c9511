//! StoreError.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt value in tree [{tree}] at key [{key}]: {reason}")]
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    #[error("unknown store format version {found}")]
    UnknownFormat { found: u32 },
    #[error("encoding error: {0}")]
    Encode(String),
}
