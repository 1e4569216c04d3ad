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

/// What a job sharing the threads reads.
#[derive(Debug, Clone, Copy)]
pub struct Reads {
    /// Its bytes; `None` when not known yet (a source being loaded).
    pub bytes: Option<u64>,
    /// It takes a share by its bytes, not an equal one.
    pub by_bytes: bool,
}

/// How many partitions each of the jobs sharing `threads` threads gets. A job taking a
/// share by its bytes gets the threads in proportion to what it reads among what all of
/// them read (a load, not known yet, counts as much as the most any other job reads),
/// rounded, at least one: a job reading most of the data gets the threads the others
/// leave idle once they are done — a stage's partitions are fixed when it starts, and at
/// 10 M customers `stg_transactions` sorted on one partition for 20 s after the small
/// stages started beside it had finished. Light jobs beside it still get one partition
/// each, so the threads busy may exceed the budget while they run. The other jobs get an
/// equal share: the threads over the jobs, at least one.
pub fn shares(threads: usize, jobs: &[Reads]) -> Vec<usize> {
    let equal = (threads / jobs.len().max(1)).max(1);
    let most = jobs.iter().filter_map(|job| job.bytes).max().unwrap_or(0);
    // One byte more each, so that jobs reading nothing share alike.
    let weight = |job: &Reads| u128::from(job.bytes.unwrap_or(most)) + 1;
    let total: u128 = jobs.iter().map(weight).sum();
    jobs.iter()
        .map(|job| match job.by_bytes {
            true => ((threads as u128 * weight(job) * 2 + total) / (total * 2)).max(1) as usize,
            false => equal,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_bytes(gib: u64) -> Reads {
        Reads { bytes: Some(gib << 30), by_bytes: true }
    }

    #[test]
    fn the_threads_are_shared_out_in_proportion_to_what_the_jobs_read() {
        let half = Reads { bytes: Some(1 << 29), by_bytes: true };
        assert_eq!(shares(2, &[by_bytes(3), by_bytes(3)]), [1, 1], "two jobs alike on two cores: one each");
        assert_eq!(shares(2, &[by_bytes(5)]), [2], "a job alone gets every thread");
        assert_eq!(shares(2, &[by_bytes(5), half]), [2, 1], "the heavy job gets the thread soon idle");
        assert_eq!(shares(2, &[by_bytes(5), by_bytes(2)]), [1, 1], "under three quarters, it shares");
        assert_eq!(shares(16, &[by_bytes(1), by_bytes(1), by_bytes(1)]), [5, 5, 5]);
        assert_eq!(shares(16, &[by_bytes(12), by_bytes(2), by_bytes(2)]), [12, 2, 2]);
        assert_eq!(shares(16, &[by_bytes(0), by_bytes(0)]), [8, 8], "jobs reading nothing share alike");
        assert_eq!(shares(1, &[by_bytes(1), by_bytes(9)]), [1, 1], "everyone gets at least one");
    }

    #[test]
    fn a_load_counts_as_much_as_the_heaviest_job_beside_it() {
        let load = Reads { bytes: None, by_bytes: false };
        assert_eq!(shares(2, &[load, by_bytes(5)]), [1, 1], "a stage beside a load shares, as before");
        assert_eq!(shares(2, &[load, load]), [1, 1]);
        // The load's own share is an equal one (a load's threads are its decoders).
        assert_eq!(shares(4, &[load, by_bytes(6), by_bytes(2)]), [1, 2, 1]);
    }

    #[test]
    fn a_job_not_taking_a_share_by_bytes_gets_an_equal_share_whatever_it_reads() {
        let equal = Reads { bytes: Some(5 << 30), by_bytes: false };
        let light = Reads { bytes: Some(1 << 20), by_bytes: false };
        assert_eq!(shares(2, &[equal, light]), [1, 1]);
        assert_eq!(shares(2, &[equal]), [2], "alone, it gets every thread");
        assert_eq!(shares(16, &[equal, light, light]), [5, 5, 5]);
        assert_eq!(shares(2, &[by_bytes(5), light]), [2, 1], "beside a light one, the heavy one widens");
    }

    #[test]
    fn the_budget_is_the_given_threads_or_the_cores() {
        assert_eq!(budget(Some(3)), 3);
        assert_eq!(budget(Some(0)), available(), "0 means the default");
    }
}
