//! `quantiles_cont(value, [q, …])`: exact quantiles of a group's values, as an aggregate
//! returning one per `q` (a list, in the order given). The q-quantile of n values sorted
//! ascending is the value at position h = q·(n − 1) (from 0), interpolated linearly
//! between the values at ⌊h⌋ and ⌊h⌋ + 1 — DataFusion's `percentile_cont` without its
//! rounding of the fraction. Nulls are left out; a group without values gives nulls.
//!
//! One sort of the group's values gives every quantile, where the same in SQL takes a
//! window over the whole group (to number its rows and count them) and a sort of every
//! row with its group's key: at 10 M customers, `clv_distribution` spent 8–15 s there.
//! The values are held as 8 bytes each, counted in the memory pool.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QuantilesCont {
    signature: Signature,
}

impl QuantilesCont {
    pub fn new() -> Self {
        QuantilesCont {
            signature: Signature::exact(
                vec![DataType::Float64, DataType::new_list(DataType::Float64, true)],
                Volatility::Immutable,
            ),
        }
    }
}

/// The list of quantiles' type: the result's, and (of values) the state's.
fn list_of_doubles() -> DataType {
    DataType::new_list(DataType::Float64, true)
}

impl AggregateUDFImpl for QuantilesCont {
    fn name(&self) -> &str {
        "quantiles_cont"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of_doubles())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let quantiles = args.exprs.get(1).and_then(|expr| expr.downcast_ref::<Literal>());
        let Some(ScalarValue::List(quantiles)) = quantiles.map(Literal::value) else {
            return plan_err!("quantiles_cont: the quantiles must be a list of numbers, e.g. [0.1, 0.5, 0.9]");
        };
        let quantiles: Vec<f64> = match quantiles.values().as_primitive_opt::<Float64Type>() {
            Some(values) if values.null_count() == 0 => values.values().to_vec(),
            _ => return plan_err!("quantiles_cont: the quantiles must be numbers, without nulls"),
        };
        if let Some(q) = quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return plan_err!("quantiles_cont: quantile {q} is not between 0 and 1");
        }
        Ok(Box::new(Values { quantiles, values: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[values]", args.name), list_of_doubles(), true))])
    }
}

/// The values of one group, and the quantiles asked of them.
#[derive(Debug)]
struct Values {
    quantiles: Vec<f64>,
    values: Vec<f64>,
}

impl Values {
    fn push(&mut self, values: &ArrayRef) {
        let values = values.as_primitive::<Float64Type>();
        match values.null_count() {
            0 => self.values.extend_from_slice(values.values()),
            _ => self.values.extend(values.iter().flatten()),
        }
    }
}

/// The q-quantile of `sorted` (ascending, not empty).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor();
    let (low, high) = (sorted[below as usize], sorted[(below as usize + 1).min(sorted.len() - 1)]);
    low + (high - low) * (position - below)
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(values) = values.first() else { return exec_err!("quantiles_cont takes (value, quantiles)") };
        self.push(values);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let quantiles: Float64Array = match self.values.is_empty() {
            true => self.quantiles.iter().map(|_| None).collect(),
            false => {
                // Ascending as `ORDER BY` sorts doubles (-0 before 0).
                self.values.sort_unstable_by(f64::total_cmp);
                self.quantiles.iter().map(|&q| Some(quantile(&self.values, q))).collect()
            }
        };
        Ok(ScalarValue::List(Arc::new(single_list(quantiles))))
    }

    fn size(&self) -> usize {
        size_of_val(self) + (self.values.capacity() + self.quantiles.capacity()) * size_of::<f64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = Float64Array::from(std::mem::take(&mut self.values));
        Ok(vec![ScalarValue::List(Arc::new(single_list(values)))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first() else { return exec_err!("quantiles_cont: unexpected state") };
        let lists = lists.as_list::<i32>();
        for index in (0..lists.len()).filter(|&index| lists.is_valid(index)) {
            self.push(&lists.value(index));
        }
        Ok(())
    }
}

/// A list array of one row: `values`.
fn single_list(values: Float64Array) -> ListArray {
    let field = Arc::new(Field::new_list_field(DataType::Float64, true));
    ListArray::new(field, OffsetBuffer::from_lengths([values.len()]), Arc::new(values), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// `sql` over a table `t(g BIGINT, v DOUBLE)` of `rows`, in batches of three rows,
    /// on `partitions` partitions.
    async fn query(rows: &[(i64, Option<f64>)], sql: &str, partitions: usize) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int64, false),
            Field::new("v", DataType::Float64, true),
        ]));
        let batches: Vec<RecordBatch> = rows
            .chunks(3)
            .map(|chunk| {
                let groups: ArrayRef = Arc::new(chunk.iter().map(|(g, _)| *g).collect::<Int64Array>());
                let values: ArrayRef = Arc::new(chunk.iter().map(|(_, v)| *v).collect::<Float64Array>());
                RecordBatch::try_new(Arc::clone(&schema), vec![groups, values]).unwrap()
            })
            .collect();
        let split: Vec<Vec<RecordBatch>> =
            (0..partitions).map(|p| batches.iter().skip(p).step_by(partitions).cloned().collect()).collect();
        let config = SessionConfig::new().with_target_partitions(partitions);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udaf(AggregateUDF::from(QuantilesCont::new()));
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, split).unwrap())).unwrap();
        ctx.sql(sql).await.unwrap().collect().await.unwrap()
    }

    fn doubles(batches: &[RecordBatch], column: usize) -> Vec<Option<f64>> {
        batches.iter().flat_map(|b| b.column(column).as_primitive::<Float64Type>().iter().collect::<Vec<_>>()).collect()
    }

    /// The same quantiles as SQL numbering and counting each group's rows in a window.
    const BY_WINDOW: &str = "
        WITH ranked AS (
            SELECT g, v, ROW_NUMBER() OVER (PARTITION BY g ORDER BY v) - 1 AS position,
                COUNT(*) OVER (PARTITION BY g) AS n
            FROM t WHERE v IS NOT NULL
        ),
        picked AS (
            SELECT g, MAX(n) AS n,
                MAX(CASE WHEN position = floor(0.1 * (n - 1)) THEN v END) AS below,
                MAX(CASE WHEN position = LEAST(floor(0.1 * (n - 1)) + 1, n - 1) THEN v END) AS above,
                MAX(CASE WHEN position = floor(0.5 * (n - 1)) THEN v END) AS m_below,
                MAX(CASE WHEN position = LEAST(floor(0.5 * (n - 1)) + 1, n - 1) THEN v END) AS m_above
            FROM ranked GROUP BY g
        )
        SELECT below + (above - below) * (0.1 * (n - 1) - floor(0.1 * (n - 1))),
            m_below + (m_above - m_below) * (0.5 * (n - 1) - floor(0.5 * (n - 1)))
        FROM picked ORDER BY g";

    const BY_FUNCTION: &str = "
        SELECT q[1], q[2] FROM (SELECT g, quantiles_cont(v, [0.1, 0.5]) AS q FROM t GROUP BY g) ORDER BY g";

    #[tokio::test]
    async fn quantiles_are_the_values_a_window_over_the_group_gives_bit_for_bit() {
        // Awkward doubles in no order, three groups of different sizes, nulls left out.
        let rows: Vec<(i64, Option<f64>)> = (0..1000)
            .map(|i: i64| {
                let value = ((i * 7919) % 1009) as f64 / 3.0 - 100.0 + 1e-9 * i as f64;
                (i % 3 + (i % 7 == 0) as i64 * 3, (i % 11 != 0).then_some(value))
            })
            .collect();
        let expected = query(&rows, BY_WINDOW, 1).await;
        for partitions in [1, 3] {
            let found = query(&rows, BY_FUNCTION, partitions).await;
            for column in 0..2 {
                let (found, expected) = (doubles(&found, column), doubles(&expected, column));
                assert_eq!(found.len(), 6);
                let bits = |values: &[Option<f64>]| values.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>();
                assert_eq!(bits(&found), bits(&expected), "{partitions} partitions, column {column}");
            }
        }
    }

    #[tokio::test]
    async fn one_value_is_every_quantile_and_a_group_of_nulls_has_none() {
        let rows = [(1, Some(4.5)), (2, None), (2, None)];
        let found = query(&rows, BY_FUNCTION, 1).await;
        assert_eq!(doubles(&found, 0), [Some(4.5), None]);
        assert_eq!(doubles(&found, 1), [Some(4.5), None]);
    }

    #[test]
    fn interpolation_between_closest_ranks() {
        let sorted = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&sorted, 0.0), 1.0);
        assert_eq!(quantile(&sorted, 1.0), 8.0);
        assert_eq!(quantile(&sorted, 0.5), 3.0, "h = 1.5: halfway between 2 and 4");
        assert_eq!(quantile(&sorted, 0.9), 4.0 + 4.0 * (0.9f64 * 3.0 - 2.0));
    }

    #[tokio::test]
    async fn quantiles_outside_zero_to_one_are_refused() {
        let ctx = SessionContext::new();
        ctx.register_udaf(AggregateUDF::from(QuantilesCont::new()));
        let frame = ctx.sql("SELECT quantiles_cont(v, [0.5, 1.5]) FROM (VALUES (1.0)) AS t(v)").await.unwrap();
        let error = frame.collect().await.expect_err("1.5 is no quantile").to_string();
        assert!(error.contains("quantile 1.5 is not between 0 and 1"), "{error}");
    }
}
