//! The run's CPU budget: how many jobs (source loads, stages) and Parquet decoders its
//! work keeps busy at once, shared out among the stages running: a stage's share is its
//! partitions and the threads its CLV models fit and predict on. `--threads N` (or
//! `FIDELIS_THREADS`); by default the cores available to the process (which follows a
//! container's CPU quota).

/// The thread budget for `given` (`--threads`), or the cores available.
pub fn budget(given: Option<usize>) -> usize {
    given.filter(|&threads| threads > 0).unwrap_or_else(available)
}

/// The cores available to the process.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How many partitions a stage gets when `jobs` jobs share `threads` threads: the
/// threads left to each, at least one.
pub fn partitions(threads: usize, jobs: usize) -> usize {
    (threads / jobs.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threads_are_shared_out_among_the_jobs() {
        assert_eq!(partitions(2, 2), 1, "two jobs on two cores: one partition each, as before");
        assert_eq!(partitions(2, 1), 2);
        assert_eq!(partitions(16, 3), 5);
        assert_eq!(partitions(16, 1), 16);
        assert_eq!(partitions(1, 4), 1);
        assert_eq!(budget(Some(3)), 3);
        assert_eq!(budget(Some(0)), available(), "0 means the default");
    }
}
