//! The CLV models as SQL functions, so the `clv` stage stays readable SQL:
//!
//! - `clv_fit_purchases(model, frequency, recency, T)` and
//!   `clv_fit_spend(frequency, monetary_value)` are aggregates that fit a model by
//!   maximum likelihood over all rows and return it as a struct (see [`model_type`]);
//! - `clv_p_alive`, `clv_expected_purchases`, `clv_expected_spend` and
//!   `clv_predicted_value` apply a fitted model to each customer.
//!
//! The math is in [`crate::models`]; this is the Arrow plumbing around it. A fit that
//! fails returns the [`FitError`] itself, which the stage runner reports as bad data.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::models::{
    FitError, FitOptions, GammaGammaFit, Observation, PurchaseFit, PurchaseModelKind, fit_gamma_gamma,
    fit_purchase_model, predicted_clv_many,
};

/// The struct a fit returns: `model`, `parameters` (names), `values`, `log_likelihood`,
/// `iterations`, `converged`, `customers` (used by the fit), `customers_left_out`.
pub fn model_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("parameters", DataType::new_list(DataType::Utf8, false), false),
        Field::new("values", DataType::new_list(DataType::Float64, false), false),
        Field::new("log_likelihood", DataType::Float64, true),
        Field::new("iterations", DataType::Int64, false),
        Field::new("converged", DataType::Boolean, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("customers_left_out", DataType::Int64, false),
    ]))
}

/// What a fit reports, before it becomes a struct.
struct FittedModel {
    model: &'static str,
    parameters: Vec<(&'static str, f64)>,
    log_likelihood: f64,
    iterations: usize,
    converged: bool,
    customers: usize,
    customers_left_out: usize,
}

impl FittedModel {
    fn to_scalar(&self) -> Result<ScalarValue> {
        let DataType::Struct(fields) = model_type() else { unreachable!("model_type is a struct") };
        let names = StringArray::from_iter_values(self.parameters.iter().map(|(n, _)| *n));
        let values = Float64Array::from_iter_values(self.parameters.iter().map(|(_, v)| *v));
        let list = |values: ArrayRef, item: DataType| -> Result<ArrayRef> {
            let field = Arc::new(Field::new_list_field(item, false));
            let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]);
            Ok(Arc::new(ListArray::try_new(field, offsets, values, None)?))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.model])),
            list(Arc::new(names), DataType::Utf8)?,
            list(Arc::new(values), DataType::Float64)?,
            Arc::new(Float64Array::from(vec![self.log_likelihood])),
            Arc::new(Int64Array::from(vec![self.iterations as i64])),
            Arc::new(BooleanArray::from(vec![self.converged])),
            Arc::new(Int64Array::from(vec![self.customers as i64])),
            Arc::new(Int64Array::from(vec![self.customers_left_out as i64])),
        ];
        Ok(ScalarValue::Struct(Arc::new(StructArray::try_new(fields, columns, None)?)))
    }
}

fn fit_failed(error: FitError) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

/// Which fit an aggregate performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fit {
    Purchases,
    Spend,
}

/// `clv_fit_purchases` / `clv_fit_spend`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ClvFit {
    fit: Fit,
    signature: Signature,
}

impl ClvFit {
    pub fn purchases() -> Self {
        let args = vec![DataType::Utf8, DataType::Float64, DataType::Float64, DataType::Float64];
        ClvFit { fit: Fit::Purchases, signature: Signature::exact(args, Volatility::Immutable) }
    }

    pub fn spend() -> Self {
        let args = vec![DataType::Float64, DataType::Float64];
        ClvFit { fit: Fit::Spend, signature: Signature::exact(args, Volatility::Immutable) }
    }

    /// The numeric columns the fit reads (after the model name, for purchases).
    fn columns(&self) -> &'static [&'static str] {
        match self.fit {
            Fit::Purchases => &["frequency", "recency", "T"],
            Fit::Spend => &["frequency", "monetary_value"],
        }
    }
}

impl AggregateUDFImpl for ClvFit {
    fn name(&self) -> &str {
        match self.fit {
            Fit::Purchases => "clv_fit_purchases",
            Fit::Spend => "clv_fit_spend",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(model_type())
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FitAccumulator { fit: self.fit, model: None, columns: vec![Vec::new(); self.columns().len()] }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let mut fields = vec![Arc::new(Field::new(format!("{}[model]", args.name), DataType::Utf8, true))];
        for column in self.columns() {
            let list = DataType::new_list(DataType::Float64, true);
            fields.push(Arc::new(Field::new(format!("{}[{column}]", args.name), list, true)));
        }
        Ok(fields)
    }
}

/// Collects the rows of one fit; the model (for purchases) comes from the first row.
#[derive(Debug)]
struct FitAccumulator {
    fit: Fit,
    model: Option<String>,
    columns: Vec<Vec<f64>>,
}

impl FitAccumulator {
    fn push_columns(&mut self, arrays: &[ArrayRef]) -> Result<()> {
        let arrays: Vec<&Float64Array> = arrays.iter().map(|a| a.as_primitive::<Float64Type>()).collect();
        let rows = arrays.first().map_or(0, |a| a.len());
        for row in 0..rows {
            // A customer with a missing figure cannot be fitted; the stage's SQL decides who enters.
            if arrays.iter().any(|a| a.is_null(row)) {
                continue;
            }
            for (column, array) in self.columns.iter_mut().zip(&arrays) {
                column.push(array.value(row));
            }
        }
        Ok(())
    }

    fn take_model(&mut self, names: &ArrayRef) {
        if self.model.is_none() {
            let names = names.as_string::<i32>();
            self.model = (0..names.len()).find(|&i| names.is_valid(i)).map(|i| names.value(i).to_string());
        }
    }

    fn fitted(&self) -> Result<FittedModel> {
        let options = FitOptions::default();
        match self.fit {
            Fit::Purchases => {
                let name = self.model.as_deref().unwrap_or("bg_nbd");
                let kind = purchase_kind(name)?;
                let observations: Vec<Observation> = (0..self.columns[0].len())
                    .map(|i| Observation {
                        frequency: self.columns[0][i],
                        recency: self.columns[1][i],
                        age: self.columns[2][i],
                    })
                    .collect();
                let fit = fit_purchase_model(kind, &observations, &options).map_err(fit_failed)?;
                Ok(FittedModel {
                    model: kind.name(),
                    parameters: fit.parameters(),
                    log_likelihood: fit.log_likelihood(),
                    iterations: fit.iterations(),
                    converged: fit.converged(),
                    customers: fit.customers(),
                    customers_left_out: 0,
                })
            }
            Fit::Spend => {
                let pairs: Vec<(f64, f64)> =
                    self.columns[0].iter().copied().zip(self.columns[1].iter().copied()).collect();
                let fit = fit_gamma_gamma(&pairs, &options).map_err(fit_failed)?;
                Ok(FittedModel {
                    model: "gamma_gamma",
                    parameters: fit.parameters(),
                    log_likelihood: fit.log_likelihood(),
                    iterations: fit.iterations(),
                    converged: fit.converged(),
                    customers: fit.customers_used(),
                    customers_left_out: fit.customers_left_out(),
                })
            }
        }
    }
}

impl Accumulator for FitAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match self.fit {
            Fit::Purchases => {
                let [model, rest @ ..] = values else { return exec_err!("clv_fit_purchases: missing arguments") };
                self.take_model(model);
                self.push_columns(rest)
            }
            Fit::Spend => self.push_columns(values),
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.fitted()?.to_scalar()
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.columns.iter().map(|c| c.capacity() * size_of::<f64>()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut state = vec![ScalarValue::Utf8(self.model.clone())];
        for column in &self.columns {
            let values: ArrayRef = Arc::new(Float64Array::from(column.clone()));
            state.push(ScalarValue::List(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(DataType::Float64, true)),
                datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
                values,
                None,
            ))));
        }
        Ok(state)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [model, lists @ ..] = states else { return exec_err!("clv fit: unexpected state") };
        self.take_model(model);
        let lists: Vec<&ListArray> = lists.iter().map(|l| l.as_list::<i32>()).collect();
        for row in 0..lists.first().map_or(0, |l| l.len()) {
            let values: Vec<ArrayRef> = lists.iter().map(|l| l.value(row)).collect();
            self.push_columns(&values)?;
        }
        Ok(())
    }
}

/// A fitted model read back from its struct.
fn model_at(models: &StructArray, row: usize) -> Result<(String, Vec<f64>)> {
    let name = models.column(0).as_string::<i32>().value(row).to_string();
    let values = models.column(2).as_list::<i32>().value(row);
    Ok((name, values.as_primitive::<Float64Type>().values().to_vec()))
}

fn purchase_kind(name: &str) -> Result<PurchaseModelKind> {
    name.parse().map_err(DataFusionError::Execution)
}

fn purchase_fit(models: &StructArray) -> Result<PurchaseFit> {
    if models.is_empty() || models.is_null(0) {
        return exec_err!("no fitted purchase model");
    }
    // Every row carries the same model (the fit is joined to each customer).
    let (name, values) = model_at(models, 0)?;
    let kind = purchase_kind(&name)?;
    let params: [f64; 4] =
        values.try_into().map_err(|_| DataFusionError::Execution("a purchase model has 4 parameters".into()))?;
    PurchaseFit::from_parameters(kind, params).map_err(fit_failed)
}

fn spend_fit(models: &StructArray) -> Result<GammaGammaFit> {
    if models.is_empty() || models.is_null(0) {
        return exec_err!("no fitted spend model");
    }
    match model_at(models, 0)?.1.as_slice() {
        [p, q, gamma] => GammaGammaFit::from_parameters(*p, *q, *gamma).map_err(fit_failed),
        _ => exec_err!("a gamma_gamma model has 3 parameters"),
    }
}

/// The scalar functions applying a fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Prediction {
    /// `clv_p_alive(model, frequency, recency, T)`
    PAlive,
    /// `clv_expected_purchases(model, t, frequency, recency, T)`: conditional, over t time units.
    ExpectedPurchases,
    /// `clv_expected_spend(spend_model, frequency, monetary_value)`
    ExpectedSpend,
    /// `clv_predicted_value(model, frequency, recency, T, expected_order_value, margin,
    /// monthly_discount_rate, horizon_months, units_per_month)`
    PredictedValue,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ClvPredict {
    prediction: Prediction,
    signature: Signature,
}

impl ClvPredict {
    fn new(prediction: Prediction, numbers: usize) -> Self {
        let mut args = vec![model_type()];
        args.extend(std::iter::repeat_n(DataType::Float64, numbers));
        ClvPredict { prediction, signature: Signature::exact(args, Volatility::Immutable) }
    }

    pub fn p_alive() -> Self {
        Self::new(Prediction::PAlive, 3)
    }

    pub fn expected_purchases() -> Self {
        Self::new(Prediction::ExpectedPurchases, 4)
    }

    pub fn expected_spend() -> Self {
        Self::new(Prediction::ExpectedSpend, 2)
    }

    pub fn predicted_value() -> Self {
        Self::new(Prediction::PredictedValue, 8)
    }
}

/// The customers of a batch; a row with a null figure is predicted as null.
fn observations(frequency: &Float64Array, recency: &Float64Array, age: &Float64Array) -> (Vec<Observation>, Vec<bool>) {
    let valid: Vec<bool> =
        (0..frequency.len()).map(|i| frequency.is_valid(i) && recency.is_valid(i) && age.is_valid(i)).collect();
    let observations = (0..frequency.len())
        .map(|i| match valid[i] {
            true => Observation { frequency: frequency.value(i), recency: recency.value(i), age: age.value(i) },
            // Stands in for the null row so positions line up; its prediction is discarded.
            false => Observation { frequency: 0.0, recency: 0.0, age: 1.0 },
        })
        .collect();
    (observations, valid)
}

fn constant(array: &Float64Array, name: &str) -> Result<f64> {
    match (0..array.len()).find(|&i| array.is_valid(i)) {
        Some(i) => Ok(array.value(i)),
        None => exec_err!("`{name}` must not be null"),
    }
}

impl ScalarUDFImpl for ClvPredict {
    fn name(&self) -> &str {
        match self.prediction {
            Prediction::PAlive => "clv_p_alive",
            Prediction::ExpectedPurchases => "clv_expected_purchases",
            Prediction::ExpectedSpend => "clv_expected_spend",
            Prediction::PredictedValue => "clv_predicted_value",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some((models, numbers)) = arrays.split_first() else { return exec_err!("{}: no arguments", self.name()) };
        let models = models.as_struct();
        let numbers: Vec<&Float64Array> = numbers.iter().map(|a| a.as_primitive::<Float64Type>()).collect();
        let results: Vec<Option<f64>> = match (self.prediction, numbers.as_slice()) {
            (Prediction::PAlive, [frequency, recency, age]) => {
                let fit = purchase_fit(models)?;
                let (customers, valid) = observations(frequency, recency, age);
                customers
                    .iter()
                    .zip(valid)
                    .map(|(c, ok)| ok.then(|| fit.p_alive(c.frequency, c.recency, c.age)))
                    .collect()
            }
            (Prediction::ExpectedPurchases, [t, frequency, recency, age]) => {
                let fit = purchase_fit(models)?;
                let (customers, valid) = observations(frequency, recency, age);
                let expected = fit.conditional_expected_purchases_many(constant(t, "t")?, &customers);
                expected.into_iter().zip(valid).map(|(e, ok)| ok.then_some(e)).collect()
            }
            (Prediction::ExpectedSpend, [frequency, monetary]) => {
                let fit = spend_fit(models)?;
                (0..frequency.len())
                    .map(|i| {
                        (frequency.is_valid(i) && monetary.is_valid(i)).then(|| match frequency.value(i) > 0.0 {
                            true => fit.conditional_expected_spend(frequency.value(i), monetary.value(i)),
                            // Without repeat purchases the best estimate is the population mean.
                            false => fit.population_mean_spend(),
                        })
                    })
                    .collect()
            }
            (Prediction::PredictedValue, [frequency, recency, age, order_value, margin, rate, horizon, units]) => {
                let fit = purchase_fit(models)?;
                let (customers, mut valid) = observations(frequency, recency, age);
                let values: Vec<f64> = (0..order_value.len())
                    .map(|i| {
                        valid[i] &= order_value.is_valid(i);
                        if valid[i] { order_value.value(i) } else { 0.0 }
                    })
                    .collect();
                let horizon = constant(horizon, "horizon_months")?;
                if !(horizon >= 0.0 && horizon.fract() == 0.0) {
                    return exec_err!(
                        "clv_predicted_value: horizon_months must be a whole number of months, got {horizon}"
                    );
                }
                let (margin, rate, units) = (
                    constant(margin, "margin")?,
                    constant(rate, "monthly_discount_rate")?,
                    constant(units, "units_per_month")?,
                );
                let clv = predicted_clv_many(&fit, &customers, &values, margin, rate, horizon as u32, units);
                clv.into_iter().zip(valid).map(|(v, ok)| ok.then_some(v)).collect()
            }
            _ => return exec_err!("{}: wrong number of arguments", self.name()),
        };
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(results))))
    }
}
