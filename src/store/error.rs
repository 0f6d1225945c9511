//! StoreError: every way a store call fails. Owns no logic; the api layer maps each variant to an
//! ES error (all of them are 500s to a client: a caller bug or a damaged store, never user input).

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, or its own corruption detection).
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A value or key failed its frame, CRC, length or decode check (I5); `key` is printable
    /// (non-ASCII bytes as `\xNN`).
    #[error("corrupt value in tree [{tree}] at key [{key}]: {reason}")]
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    /// The data dir holds another store format version (0: data without any version).
    #[error(
        "the data path holds store format version {found}, but this auspex reads version {}; \
         it cannot open it (there is no migration from that version)",
        super::FORMAT_VERSION
    )]
    UnknownFormat { found: u32 },
    /// A value could not be encoded or a public `decode` failed, or the caller passed something the
    /// layout cannot hold: an empty id or one with a 0x00 byte, input sequence numbers that do not
    /// increase, a value over 4 GiB.
    #[error("encoding error: {0}")]
    Encode(String),
}
