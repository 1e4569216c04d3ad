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
//!
//! Numbering all rows in one pass needs them all in memory at once (DataFusion's
//! `WindowAggExec`, whose memory its pool does not see). Under a tight memory budget the
//! run registers [`IslandNumber::streaming`] instead: the same numbers, row by row as
//! the sorted rows stream through `BoundedWindowAggExec`, holding only the previous row.

use std::sync::Arc;

use std::cmp::Ordering;
use std::ops::Range;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBufferBuilder, Int64Array, make_comparator};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::kernels::partition::partition;
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, FieldRef, Int32Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, TypeSignature, Volatility, WindowUDFImpl};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IslandNumber {
    signature: Signature,
    /// Row by row as rows stream (bounded memory), rather than all rows at once.
    streaming: bool,
}

impl IslandNumber {
    /// Numbers all rows of the window at once.
    pub fn new() -> Self {
        IslandNumber { signature: Self::signature(), streaming: false }
    }

    /// Numbers rows one at a time as they stream, holding only the previous row.
    pub fn streaming() -> Self {
        IslandNumber { signature: Self::signature(), streaming: true }
    }

    fn signature() -> Signature {
        // Any key type; the value a date or an integer; the gap an integer.
        let values = [DataType::Date32, DataType::Int32];
        let keys = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8, DataType::Int64, DataType::Int32];
        let signatures = keys
            .iter()
            .flat_map(|key| {
                values.iter().map(|value| TypeSignature::Exact(vec![key.clone(), value.clone(), DataType::Int64]))
            })
            .collect();
        Signature::one_of(signatures, Volatility::Immutable)
    }
}

impl WindowUDFImpl for IslandNumber {
    fn name(&self) -> &str {
        "island_number"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(&self, _args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(match self.streaming {
            true => Box::new(StreamingIslands::default()),
            false => Box::new(Islands),
        })
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(field_args.name(), DataType::Int64, true)))
    }
}

const NOT_ORDERED: &str = "island_number: rows are not ordered by key, then value; write it as \
    island_number(key, value, gap) OVER (ORDER BY key, value)";

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
            None => exec_err!("{NOT_ORDERED}"),
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

/// The islands of rows as they stream by, sorted by key and value: the same numbers as
/// [`islands`] over all rows, computed from the previous row alone.
#[derive(Debug, Default)]
struct StreamingIslands {
    /// The key of the current run of keys.
    key: Option<OwnedKey>,
    /// The run's previous non-null value.
    previous: Option<i32>,
    island: i64,
}

/// A key kept from one batch to the next.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum OwnedKey {
    Integer(i64),
    Text(String),
}

/// A key read in place.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Integer(i64),
    Text(&'a str),
}

impl Key<'_> {
    fn compare(&self, owned: &OwnedKey) -> Ordering {
        match (self, owned) {
            (Key::Integer(a), OwnedKey::Integer(b)) => a.cmp(b),
            (Key::Text(a), OwnedKey::Text(b)) => (*a).cmp(b.as_str()),
            // One column has one type: keys of both kinds never meet.
            (Key::Integer(_), OwnedKey::Text(_)) => Ordering::Less,
            (Key::Text(_), OwnedKey::Integer(_)) => Ordering::Greater,
        }
    }

    fn to_owned_key(&self) -> OwnedKey {
        match self {
            Key::Integer(value) => OwnedKey::Integer(*value),
            Key::Text(text) => OwnedKey::Text(text.to_string()),
        }
    }
}

fn key_at(key: &ArrayRef, row: usize) -> Result<Key<'_>> {
    Ok(match key.data_type() {
        DataType::Utf8View => Key::Text(key.as_string_view().value(row)),
        DataType::Utf8 => Key::Text(key.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Key::Text(key.as_string::<i64>().value(row)),
        DataType::Int64 => Key::Integer(key.as_primitive::<Int64Type>().value(row)),
        DataType::Int32 => Key::Integer(i64::from(key.as_primitive::<Int32Type>().value(row))),
        other => return exec_err!("island_number: keys of type {other} are not supported"),
    })
}

fn value_at(value: &ArrayRef, row: usize) -> Result<i32> {
    Ok(match value.data_type() {
        DataType::Date32 => value.as_primitive::<Date32Type>().value(row),
        DataType::Int32 => value.as_primitive::<Int32Type>().value(row),
        other => return exec_err!("island_number: values of type {other} are not supported"),
    })
}

impl PartitionEvaluator for StreamingIslands {
    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn is_causal(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        let [key, value, gap] = values else {
            return exec_err!("island_number takes a key, a value and a gap");
        };
        let row = range.start;
        if key.is_null(row) {
            return Ok(ScalarValue::Int64(None));
        }
        let here = key_at(key, row)?;
        match self.key.as_ref().map(|current| here.compare(current)) {
            Some(Ordering::Equal) => {}
            Some(Ordering::Less) => return exec_err!("{NOT_ORDERED}"),
            Some(Ordering::Greater) | None => {
                self.key = Some(here.to_owned_key());
                self.previous = None;
                self.island = 0;
            }
        }
        if value.is_null(row) {
            return Ok(ScalarValue::Int64(None));
        }
        let (value, gap) = (value_at(value, row)?, gap.as_primitive::<Int64Type>().value(row));
        match self.previous {
            Some(p) if value < p => return exec_err!("{NOT_ORDERED}"),
            Some(p) if i64::from(value) - i64::from(p) < gap => {}
            _ => self.island += 1,
        }
        self.previous = Some(value);
        Ok(ScalarValue::Int64(Some(self.island)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};

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

    /// `island_number(k, v, 7)` over a table of keys and values in many small batches,
    /// numbered all at once or streaming; with the physical plan's text.
    async fn numbered_by_sql(streaming: bool) -> (Vec<RecordBatch>, String) {
        use datafusion::datasource::MemTable;
        use datafusion::logical_expr::WindowUDF;
        use datafusion::prelude::{SessionConfig, SessionContext};

        // Deterministic pseudo-random keys (some null) and values (some null, some equal).
        let mut state = 7u64;
        let mut next = move |modulus: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % modulus
        };
        let rows: Vec<(Option<String>, Option<i32>)> = (0..2000)
            .map(|_| {
                let key = (next(50) != 0).then(|| format!("customer {:03}", next(60)));
                let value = (next(20) != 0).then(|| next(400) as i32);
                (key, value)
            })
            .collect();
        let keys: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|(k, _)| k.clone())));
        let values: ArrayRef = Arc::new(Int32Array::from_iter(rows.iter().map(|(_, v)| *v)));
        let batch = RecordBatch::try_from_iter([("k", keys), ("v", values)]).unwrap();
        let batches: Vec<RecordBatch> = (0..20).map(|i| batch.slice(i * 100, 100)).collect();
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(64).with_target_partitions(1));
        let function = if streaming { IslandNumber::streaming() } else { IslandNumber::new() };
        ctx.register_udwf(WindowUDF::from(function));
        ctx.register_table("t", Arc::new(MemTable::try_new(batch.schema(), vec![batches]).unwrap())).unwrap();
        let query = "SELECT k, v, island_number(k, v, 7) OVER (ORDER BY k, v) AS n FROM t ORDER BY k, v, n";
        let frame = ctx.sql(query).await.unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
        (frame.collect().await.unwrap(), text)
    }

    #[tokio::test]
    async fn streaming_gives_the_numbers_of_all_at_once_in_bounded_memory() {
        let (all_at_once, whole_plan) = numbered_by_sql(false).await;
        let (streaming, streaming_plan) = numbered_by_sql(true).await;
        assert_eq!(streaming, all_at_once);
        assert!(whole_plan.contains("WindowAggExec") && !whole_plan.contains("BoundedWindowAggExec"), "{whole_plan}");
        assert!(streaming_plan.contains("BoundedWindowAggExec"), "{streaming_plan}");
        let numbered: usize = streaming.iter().map(|b| b.num_rows() - b.column(2).null_count()).sum();
        assert!(numbered > 1500, "most rows have a key and a value: {numbered}");
    }

    #[test]
    fn streaming_rejects_rows_out_of_order() {
        let mut evaluator = StreamingIslands::default();
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["b", "a"]));
        let values: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let gaps: ArrayRef = Arc::new(Int64Array::from(vec![1, 1]));
        let columns = [keys, values, gaps];
        assert_eq!(evaluator.evaluate(&columns, &(0..1)).unwrap(), ScalarValue::Int64(Some(1)));
        let error = evaluator.evaluate(&columns, &(1..2)).unwrap_err();
        assert!(error.to_string().contains("not ordered by key"), "{error}");
    }
}
