//! The process allocator (jemalloc) and handing freed memory back to the operating system.
//!
//! A job's model can grow to hundreds of megabytes and is freed at once when the job closes. The
//! system allocator and jemalloc alike keep freed pages mapped for reuse, so RSS stayed near its
//! peak long after the memory was free. jemalloc can be told to return them on demand
//! (`arena.<all>.purge`), which [`release_free_memory`] does where memory drops in bulk: when a
//! job's actor ends. Between those points jemalloc's own decay (10 s by default) returns pages as
//! the allocator is used.

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Returns the pages that freed memory left mapped to the OS: this thread's cache first, then the
/// unused pages of every arena. Costs a few milliseconds after a large free and nothing when there
/// is nothing to return; a failure only means the pages stay mapped, so it is logged, not raised.
pub fn release_free_memory() {
    #[cfg(not(target_env = "msvc"))]
    for control in [c"thread.tcache.flush", c"arena.4096.purge"] {
        // SAFETY: both controls are jemalloc "void" calls that read and write no value, which is
        // what the null pointers and zero length say; the names are NUL-terminated C strings.
        let code = unsafe {
            tikv_jemalloc_sys::mallctl(
                control.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        if code != 0 {
            tracing::warn!(control = ?control, code, "jemalloc could not return free memory");
        }
    }
}

/// Bytes of physical memory the allocator holds mapped (jemalloc's `stats.resident`), or `None`
/// where that is not known.
pub fn resident_bytes() -> Option<u64> {
    #[cfg(not(target_env = "msvc"))]
    {
        tikv_jemalloc_ctl::epoch::advance().ok()?;
        tikv_jemalloc_ctl::stats::resident::read()
            .ok()
            .map(|bytes| bytes as u64)
    }
    #[cfg(target_env = "msvc")]
    None
}

#[cfg(all(test, not(target_env = "msvc")))]
mod tests {
    use super::*;

    #[test]
    fn freed_model_sized_memory_goes_back_to_the_os() {
        // Chunks below jemalloc's oversize threshold (8 MB), which it keeps mapped after a free
        // until decay or a purge; a model's series and buckets are far smaller still.
        const CHUNK: usize = 2 << 20;
        const CHUNKS: usize = 128;
        let before = resident_bytes().expect("jemalloc reports resident bytes");
        let chunks: Vec<Vec<u8>> = (0..CHUNKS).map(|i| vec![i as u8 | 1; CHUNK]).collect();
        let peak = resident_bytes().unwrap();
        assert!(
            peak >= before + (CHUNK * CHUNKS) as u64 / 2,
            "the allocation shows in resident memory: {before} -> {peak}"
        );
        drop(chunks);
        release_free_memory();
        let after = resident_bytes().unwrap();
        // Other tests allocate at the same time, so allow them a margin; without the purge, the
        // 256 MB stay resident for jemalloc's decay time.
        assert!(
            after + (CHUNK * CHUNKS) as u64 * 3 / 4 <= peak,
            "256 MB freed and purged: resident went {before} -> {peak} -> {after}"
        );
    }
}
