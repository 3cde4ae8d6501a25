//! What a run costs the process: the CPU time of all its threads, and its peak resident
//! memory (read from Linux's `/proc`; elsewhere unknown).

use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

/// The CPU time this process has used so far, all threads together.
pub fn cpu_time() -> Duration {
    let time = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or_default(),
        u32::try_from(time.tv_nsec).unwrap_or_default(),
    )
}

/// Starts a new peak: [`peak_memory`] then reads the largest resident size since this call
/// (Linux resets the process's high-water mark when `5` is written to `clear_refs`).
/// Returns whether the system did.
pub fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// The largest resident set size of this process in bytes, since it started or since
/// [`reset_peak_memory`] (`VmHWM` of `/proc/self/status`).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_peak_follows_a_large_allocation_and_cpu_time_moves() {
        let before = cpu_time();
        reset_peak_memory();
        let start = peak_memory().expect("Linux tells the peak");
        let block = vec![1u8; 64 << 20];
        let sum: u64 = block.iter().map(|&byte| u64::from(byte)).sum();
        assert_eq!(sum, 64 << 20);
        let peak = peak_memory().expect("Linux tells the peak");
        assert!(peak >= start + (60 << 20), "{start} -> {peak}");
        assert!(cpu_time() > before);
    }
}
