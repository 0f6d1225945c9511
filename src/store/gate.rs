//! The write gate: keeps sled's flushes and its exclusive writers (transactions, `apply_batch`,
//! `clear`) apart, because together they can deadlock in sled 0.34.7.
//!
//! sled guards every operation with one process-wide reader-writer lock (`concurrency_control`).
//! A flush takes it shared and then waits for the log buffer to be written; a transaction or a
//! batch takes it exclusively; sled's own log-flusher thread takes it shared to roll the buffer the
//! flush waits for. The lock is fair: once a writer waits, new readers queue behind it. So: flush
//! holds shared and waits for the log flusher, the writer waits for the flush, the log flusher
//! waits behind the writer. The concurrency tests hit exactly this with a hundred jobs.
//!
//! Taking this gate first breaks the cycle: flushes hold it shared, exclusive writers hold it
//! exclusively, so no sled writer can be queued while a flush waits, and the log flusher (which
//! never takes the gate) always gets through. The gate is process-wide because sled's lock is.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static GATE: RwLock<()> = RwLock::new(());

/// Held while a flush runs; any number at once.
pub(super) fn shared() -> RwLockReadGuard<'static, ()> {
    // The gate guards no data: a panic while holding it leaves nothing inconsistent.
    GATE.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held around every sled transaction, `apply_batch` and `clear`.
pub(super) fn exclusive() -> RwLockWriteGuard<'static, ()> {
    GATE.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
