//! `km_median(duration, observed, weight)`: the Kaplan-Meier median of durations with
//! right-censoring, as an aggregate. `observed` is false for censored durations;
//! `weight` counts identical rows, so callers can aggregate histograms instead of
//! individual customers. The estimator itself is [`crate::models::kaplan_meier`].

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::models::kaplan_meier::{Observation, median};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KmMedian {
    signature: Signature,
}

impl KmMedian {
    pub fn new() -> Self {
        KmMedian {
            signature: Signature::exact(
                vec![DataType::Float64, DataType::Boolean, DataType::Int64],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for KmMedian {
    fn name(&self) -> &str {
        "km_median"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(KmAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, item: DataType| {
            Arc::new(Field::new(format!("{}[{name}]", args.name), DataType::new_list(item, true), true))
        };
        Ok(vec![
            list("durations", DataType::Float64),
            list("observed", DataType::Boolean),
            list("weights", DataType::Int64),
        ])
    }
}

/// The (duration, observed, weight) rows of one group.
#[derive(Debug, Default)]
struct KmAccumulator {
    rows: Vec<Observation>,
}

impl KmAccumulator {
    fn push(&mut self, durations: &ArrayRef, observed: &ArrayRef, weights: &ArrayRef) -> Result<()> {
        let (durations, observed, weights) =
            (durations.as_primitive::<Float64Type>(), observed.as_boolean(), weights.as_primitive::<Int64Type>());
        for i in 0..durations.len() {
            if durations.is_null(i) || observed.is_null(i) || weights.is_null(i) {
                continue;
            }
            let weight = weights.value(i);
            if weight < 0 || !durations.value(i).is_finite() {
                return exec_err!("km_median: weights must be >= 0 and durations finite");
            }
            self.rows.push(Observation {
                time: durations.value(i),
                observed: observed.value(i),
                weight: weight as f64,
            });
        }
        Ok(())
    }
}

impl Accumulator for KmAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [durations, observed, weights] = values else {
            return exec_err!("km_median takes (duration, observed, weight)");
        };
        self.push(durations, observed, weights)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(median(&self.rows)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.rows.capacity() * size_of::<Observation>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let durations: Vec<ScalarValue> = self.rows.iter().map(|r| ScalarValue::Float64(Some(r.time))).collect();
        let observed: Vec<ScalarValue> = self.rows.iter().map(|r| ScalarValue::Boolean(Some(r.observed))).collect();
        let weights: Vec<ScalarValue> = self.rows.iter().map(|r| ScalarValue::Int64(Some(r.weight as i64))).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&durations, &DataType::Float64)),
            ScalarValue::List(ScalarValue::new_list_nullable(&observed, &DataType::Boolean)),
            ScalarValue::List(ScalarValue::new_list_nullable(&weights, &DataType::Int64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [durations, observed, weights] = states else {
            return exec_err!("km_median: unexpected state");
        };
        let (durations, observed, weights) =
            (durations.as_list::<i32>(), observed.as_list::<i32>(), weights.as_list::<i32>());
        for i in 0..durations.len() {
            if durations.is_valid(i) {
                self.push(&durations.value(i), &observed.value(i), &weights.value(i))?;
            }
        }
        Ok(())
    }
}
