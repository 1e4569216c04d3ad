//! `island_number(key, value, gap) OVER (ORDER BY key, value)`: numbers the "islands"
//! of each key's rows — runs of rows whose `value` (a date or an integer) is less than
//! `gap` after the previous row's. A key's first row is island 1; a row at least `gap`
//! after the previous one starts the key's next island. A null value (or key) has no
//! island and does not break one. With a gap of 1 and distinct values, every row is an
//! island of its own, so the island number is the row's position in its key.
//!
//! The key is an argument rather than a `PARTITION BY` because DataFusion evaluates a
//! window function once per partition: at a million customers of a few purchase days
//! each, that per-partition overhead costs more than the work. One sort by (key,
//! value) and one pass over all rows is several times faster; and unlike `LAG` plus a
//! running `SUM`, it is one window, not two. The function checks the order it is given.

use std::sync::Arc;

use std::cmp::Ordering;
use std::ops::Range;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBufferBuilder, Int64Array, make_comparator};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::kernels::partition::partition;
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, FieldRef, Int32Type, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, TypeSignature, Volatility, WindowUDFImpl};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IslandNumber {
    signature: Signature,
}

impl IslandNumber {
    pub fn new() -> Self {
        // Any key type; the value a date or an integer; the gap an integer.
        let values = [DataType::Date32, DataType::Int32];
        let keys = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8, DataType::Int64, DataType::Int32];
        let signatures = keys
            .iter()
            .flat_map(|key| {
                values.iter().map(|value| TypeSignature::Exact(vec![key.clone(), value.clone(), DataType::Int64]))
            })
            .collect();
        IslandNumber { signature: Signature::one_of(signatures, Volatility::Immutable) }
    }
}

impl WindowUDFImpl for IslandNumber {
    fn name(&self) -> &str {
        "island_number"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    // Only `evaluate_all` (no bounded, row-at-a-time execution): the window's rows come
    // in whole, and are numbered in one pass.
    fn partition_evaluator(&self, _args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Islands))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(field_args.name(), DataType::Int64, true)))
    }
}

#[derive(Debug)]
struct Islands;

impl PartitionEvaluator for Islands {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let [key, value, gap] = values else {
            return exec_err!("island_number takes a key, a value and a gap");
        };
        // Dates and integers alike are 32-bit values, read in place.
        let (value, nulls) = match value.data_type() {
            DataType::Date32 => (value.as_primitive::<Date32Type>().values(), value.nulls()),
            DataType::Int32 => (value.as_primitive::<Int32Type>().values(), value.nulls()),
            other => return exec_err!("island_number: values of type {other} are not supported"),
        };
        let gap = gap.as_primitive::<Int64Type>();
        if gap.null_count() > 0 {
            return exec_err!("island_number: the gap must not be null");
        }
        let runs = key_runs(key, num_rows)?;
        match islands(&runs, value, nulls, gap.values()) {
            Some(numbers) => Ok(Arc::new(numbers)),
            None => exec_err!(
                "island_number: rows are not ordered by key, then value; write it as \
                 island_number(key, value, gap) OVER (ORDER BY key, value)"
            ),
        }
    }
}

/// The runs of equal keys, in order, without the runs of null keys; `None` when a
/// key comes after a greater one (the rows are not sorted by key).
fn key_runs(key: &ArrayRef, rows: usize) -> Result<Vec<Range<usize>>> {
    if rows == 0 {
        return Ok(Vec::new());
    }
    let runs: Vec<Range<usize>> =
        partition(std::slice::from_ref(key))?.ranges().into_iter().filter(|run| key.is_valid(run.start)).collect();
    let compare = make_comparator(key.as_ref(), key.as_ref(), SortOptions::default())?;
    if runs.windows(2).any(|pair| compare(pair[0].start, pair[1].start) != Ordering::Less) {
        return exec_err!(
            "island_number: rows are not ordered by key; write it as \
             island_number(key, value, gap) OVER (ORDER BY key, value)"
        );
    }
    Ok(runs)
}

/// The island of each row: within each run of one key, a new island starts where a
/// value is at least its `gap` after the previous non-null value. `None` when values
/// decrease within a run (the rows are not sorted by value).
fn islands(runs: &[Range<usize>], values: &[i32], nulls: Option<&NullBuffer>, gaps: &[i64]) -> Option<Int64Array> {
    // Numbers and their validity are built in place: at millions of rows, a vector of
    // `Option`s would double the memory the window holds.
    let mut numbers = vec![0i64; values.len()];
    let mut numbered = BooleanBufferBuilder::new(values.len());
    numbered.append_n(values.len(), false);
    for run in runs {
        let mut previous: Option<i32> = None;
        let mut island = 0;
        for row in run.clone() {
            if nulls.is_some_and(|nulls| nulls.is_null(row)) {
                continue;
            }
            let value = values[row];
            match previous {
                Some(p) if value < p => return None,
                Some(p) if i64::from(value) - i64::from(p) < gaps[row] => {}
                _ => island += 1,
            }
            previous = Some(value);
            numbers[row] = island;
            numbered.set_bit(row, true);
        }
    }
    Some(Int64Array::new(numbers.into(), Some(NullBuffer::new(numbered.finish()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};

    fn numbered(keys: &[Option<&str>], values: &[Option<i32>], gap: i64) -> Option<Vec<Option<i64>>> {
        let key: ArrayRef = Arc::new(StringArray::from(keys.to_vec()));
        let runs = key_runs(&key, keys.len()).ok()?;
        let values = Int32Array::from(values.to_vec());
        Some(islands(&runs, values.values(), values.nulls(), &vec![gap; values.len()])?.iter().collect())
    }

    #[test]
    fn a_gap_of_at_least_gap_starts_the_next_island_of_the_key() {
        let keys = [Some("a"), Some("a"), Some("a"), Some("a"), Some("b"), Some("b")];
        let values = [Some(1), Some(5), Some(15), Some(25), Some(30), Some(39)];
        assert_eq!(numbered(&keys, &values, 10), Some(vec![Some(1), Some(1), Some(2), Some(3), Some(1), Some(1)]));
    }

    #[test]
    fn a_gap_of_one_numbers_distinct_values() {
        let keys = [Some("a"), Some("a"), Some("a"), Some("b")];
        let values = [Some(3), Some(4), Some(9), Some(1)];
        assert_eq!(numbered(&keys, &values, 1), Some(vec![Some(1), Some(2), Some(3), Some(1)]));
    }

    #[test]
    fn nulls_have_no_island_and_do_not_break_one() {
        let keys = [Some("a"), Some("a"), Some("a"), Some("a"), None];
        let values = [None, Some(3), None, Some(4), Some(5)];
        assert_eq!(numbered(&keys, &values, 2), Some(vec![None, Some(1), None, Some(1), None]));
    }

    #[test]
    fn rows_out_of_order_are_an_error_not_wrong_numbers() {
        let unsorted_keys = [Some("b"), Some("a")];
        assert_eq!(numbered(&unsorted_keys, &[Some(1), Some(2)], 1), None);
        let unsorted_values = [Some("a"), Some("a")];
        assert_eq!(numbered(&unsorted_values, &[Some(2), Some(1)], 1), None);
    }
}
