//! Huge pages for the large buffers read at random.
//!
//! A half-iteration of ALS reads one factor row per stored entry, scattered
//! over the other side's matrix (at 42M events: 27M reads over 37 MB of
//! product factors, and as many over 670 MB of user factors). With 4 KB
//! pages almost every read also misses the TLB and walks the page tables;
//! 2 MB pages cover the whole matrix with a few hundred TLB entries. Linux
//! gives a mapping huge pages when asked with `madvise(MADV_HUGEPAGE)`
//! (the default `transparent_hugepage` setting is `madvise`); elsewhere, or
//! when the kernel refuses, this does nothing and the buffer works as before.
//!
//! And the heap given back after a large call: see [`release_free_heap`].

/// Below this a buffer gains too little to ask.
const MIN_BYTES: usize = 8 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// Asks for huge pages under the whole 2 MB pages `buffer` covers. Call it
/// before the buffer is first written (a freshly zero-allocated one), so the
/// first touch faults in huge pages. Advice only: the result is ignored.
pub(crate) fn advise_huge_pages<T>(buffer: &[T]) {
    let bytes = std::mem::size_of_val(buffer);
    if bytes < MIN_BYTES {
        return;
    }
    let start = (buffer.as_ptr() as usize).next_multiple_of(HUGE_PAGE);
    let end = (buffer.as_ptr() as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        advise(start, end - start);
    }
}

#[cfg(target_os = "linux")]
fn advise(start: usize, len: usize) {
    // SAFETY: the range lies inside a live allocation of the caller's, and
    // MADV_HUGEPAGE changes how it is backed, never its contents.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _len: usize) {}

/// Returns the heap's free pages to the operating system.
///
/// glibc keeps freed memory for reuse: allocations below its mmap
/// threshold (which rises up to 32 MB as large blocks are freed) come from
/// per-thread arenas, and an arena only shrinks from its top. Training and
/// serving free gigabytes of such blocks, many of them made on pool threads,
/// and the freed pages stayed in the process's resident size for the rest
/// of the session, outside DuckDB's `memory_limit`, under the next stage's
/// own memory. `malloc_trim` walks every arena and releases each whole free
/// page. Called at the end of the heavy calls; a few milliseconds.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; live blocks are untouched.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
            * 4096
    }

    /// Freed blocks kept apart by live ones cannot leave from the arena's
    /// top; after the release their pages are no longer resident.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_heap_leaves_the_resident_set() {
        // A thread of its own: its own arena, away from the other tests'.
        let (before, after) = std::thread::spawn(|| {
            let mut blocks: Vec<Vec<u8>> =
                (0..120_000).map(|i| vec![(i % 251) as u8; 2048]).collect();
            let mut kept = Vec::new();
            for (i, b) in blocks.drain(..).enumerate() {
                if i % 16 == 0 {
                    kept.push(b);
                }
            }
            let before = resident_bytes();
            release_free_heap();
            let after = resident_bytes();
            assert!(kept
                .iter()
                .enumerate()
                .all(|(i, b)| b[2047] == ((i * 16) % 251) as u8));
            (before, after)
        })
        .join()
        .unwrap();
        // About 230 MB were freed, in 30 KB gaps: most of it must go.
        assert!(
            before > after + (100 << 20),
            "resident {before} bytes before the release, {after} after"
        );
    }

    #[test]
    fn advised_buffers_keep_their_contents() {
        let mut big = vec![0f32; 6 << 20];
        advise_huge_pages(&big);
        for (i, v) in big.iter_mut().enumerate() {
            *v = i as f32;
        }
        assert!(big.iter().enumerate().all(|(i, &v)| v == i as f32));
        // Where the kernel takes the advice, the buffer is now (partly) huge pages.
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if setting.contains("[madvise]") || setting.contains("[always]") {
            let smaps = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
            let huge_kb: u64 = smaps
                .lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!(
                huge_kb >= 2048,
                "no huge page after the advice ({huge_kb} kB)"
            );
        }
        let small = vec![1u8; 100];
        advise_huge_pages(&small);
        assert_eq!(small, vec![1u8; 100]);
    }
}
