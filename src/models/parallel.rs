//! Deterministic chunked parallelism for likelihood sums.
//!
//! Work is cut into fixed-size chunks whose results are combined in chunk
//! order, so floating-point sums are bit-identical whatever the thread count
//! (and the optimiser takes exactly the same path).

use std::ops::Range;

/// Items per chunk: large enough that per-chunk overhead is negligible, small
/// enough that two threads get balanced halves on a few hundred thousand items.
const CHUNK: usize = 8192;

/// Below this many items a second thread costs more to start than it saves.
const MIN_PARALLEL: usize = 4 * CHUNK;

/// Applies `f` to consecutive ranges covering `0..len` and returns the results
/// in range order, using up to `threads` scoped threads.
pub(crate) fn map_chunks<T, F>(len: usize, threads: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    let chunks: Vec<Range<usize>> = (0..len.div_ceil(CHUNK)).map(|i| i * CHUNK..((i + 1) * CHUNK).min(len)).collect();
    if threads <= 1 || len < MIN_PARALLEL {
        return chunks.into_iter().map(&f).collect();
    }
    let per_thread = chunks.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let mut groups = chunks.chunks(per_thread);
        let mine = groups.next().unwrap_or(&[]);
        let handles: Vec<_> =
            groups.map(|group| scope.spawn(move || group.iter().cloned().map(f).collect::<Vec<T>>())).collect();
        let mut results: Vec<T> = mine.iter().cloned().map(f).collect();
        for handle in handles {
            match handle.join() {
                Ok(part) => results.extend(part),
                // A panic in `f` is a bug in this module, not bad user data.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

/// Sums fixed-length partial results element-wise, in order.
pub(crate) fn sum_arrays<const N: usize>(parts: &[[f64; N]]) -> [f64; N] {
    let mut total = [0.0; N];
    for part in parts {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let values: Vec<f64> = (0..100_000).map(|i| (i as f64 * 0.37).sin() * 1e-3 + 1.0 / (1.0 + i as f64)).collect();
        let sum = |threads| {
            let parts = map_chunks(values.len(), threads, |r| [values[r].iter().sum::<f64>()]);
            sum_arrays(&parts)[0]
        };
        let one = sum(1);
        assert_eq!(one.to_bits(), sum(2).to_bits());
        assert_eq!(one.to_bits(), sum(3).to_bits());
        let covered: usize = map_chunks(values.len(), 2, |r| r.len()).iter().sum();
        assert_eq!(covered, values.len());
        assert!(map_chunks(0, 2, |r| r.len()).is_empty());
    }
}
