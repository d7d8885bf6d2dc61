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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_keep_their_contents() {
        let mut big = vec![0f32; 6 << 20];
        advise_huge_pages(&big);
        for (i, v) in big.iter_mut().enumerate() {
            *v = i as f32;
        }
        assert!(big.iter().enumerate().all(|(i, &v)| v == i as f32));
        // Where the kernel takes the advice, the buffer is now (partly) huge pages.
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        if setting.contains("[madvise]") || setting.contains("[always]") {
            let smaps = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
            let huge_kb: u64 = smaps
                .lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!(huge_kb >= 2048, "no huge page after the advice ({huge_kb} kB)");
        }
        let small = vec![1u8; 100];
        advise_huge_pages(&small);
        assert_eq!(small, vec![1u8; 100]);
    }
}
