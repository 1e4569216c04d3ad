//! The CLV models as SQL functions, so the CLV stages stay readable SQL:
//!
//! - `clv_fit_purchases(model, frequency, recency, T)` and
//!   `clv_fit_spend(frequency, monetary_value)` are aggregates that fit a model by
//!   maximum likelihood over all rows and return it as a struct (see [`model_type`]);
//!   a fit that fails returns the [`FitError`] itself, which the stage runner reports
//!   as bad data;
//! - `clv_try_fit_purchases(model, frequency, recency, T)` is `clv_fit_purchases` for
//!   comparisons such as the backtest: a model that cannot be fitted is a value (null
//!   parameters, the reason in `failure`), not an error;
//! - `clv_p_alive`, `clv_expected_purchases`, `clv_expected_spend` and
//!   `clv_predicted_value` apply a fitted model to each customer (null where the
//!   model was not fitted);
//! - `clv_value_draws(...)` is an aggregate: a group's predicted CLV under draws of
//!   the parameters, for intervals.
//!
//! The math is in [`crate::models`]; this is the Arrow plumbing around it.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int64Array, ListArray, StringArray,
    StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Fields, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use crate::models::{
    ClvSettings, ExactSum, FitError, FitOptions, GammaGammaFit, LogCovariance, Observation, PurchaseFit,
    PurchaseModelKind, ValueCell, ValueCells, ValuedCustomer, fit_gamma_gamma, fit_purchase_model, predicted_clv_draws,
    predicted_clv_many,
};

/// The struct a fit returns: `model`, `parameters` (names), `values` (null when the
/// model could not be fitted), `std_errors` (in the natural scale; null items when
/// the information matrix is singular or not positive definite), `covariance` (of
/// the log-parameters, row-major; null likewise), `log_likelihood`, `iterations`,
/// `converged`, `customers` (used by the fit), `customers_left_out`, and `failure`
/// (why the model could not be fitted, else null).
pub fn model_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("parameters", DataType::new_list(DataType::Utf8, false), false),
        Field::new("values", DataType::new_list(DataType::Float64, false), true),
        Field::new("std_errors", DataType::new_list(DataType::Float64, true), true),
        Field::new("covariance", DataType::new_list(DataType::Float64, false), true),
        Field::new("log_likelihood", DataType::Float64, true),
        Field::new("iterations", DataType::Int64, false),
        Field::new("converged", DataType::Boolean, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("customers_left_out", DataType::Int64, false),
        Field::new("failure", DataType::Utf8, true),
    ]))
}

/// What a fit reports, before it becomes a struct.
struct FittedModel {
    model: &'static str,
    parameters: Vec<&'static str>,
    /// Parameter values, standard errors and covariance; `None` when not fitted.
    values: Option<Vec<f64>>,
    std_errors: Option<Vec<f64>>,
    covariance: Option<Vec<f64>>,
    log_likelihood: f64,
    iterations: usize,
    converged: bool,
    customers: usize,
    customers_left_out: usize,
    failure: Option<String>,
}

impl FittedModel {
    /// A purchase model that could not be fitted to `customers` customers.
    fn failed(kind: PurchaseModelKind, customers: usize, error: &FitError) -> FittedModel {
        let (iterations, log_likelihood) = match error {
            FitError::NotConverged { iterations, log_likelihood, .. } => (*iterations, *log_likelihood),
            _ => (0, f64::NAN),
        };
        FittedModel {
            model: kind.name(),
            parameters: kind.parameter_names().to_vec(),
            values: None,
            std_errors: None,
            covariance: None,
            log_likelihood,
            iterations,
            converged: false,
            customers,
            customers_left_out: 0,
            failure: Some(error.to_string()),
        }
    }

    fn to_scalar(&self) -> Result<ScalarValue> {
        let DataType::Struct(fields) = model_type() else { unreachable!("model_type is a struct") };
        let n = self.parameters.len();
        let list = |values: ArrayRef, item_nullable: bool, valid: bool| -> Result<ArrayRef> {
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), item_nullable));
            let offsets = OffsetBuffer::from_lengths([values.len()]);
            let nulls = (!valid).then(|| vec![false].into());
            Ok(Arc::new(ListArray::try_new(field, offsets, values, nulls)?))
        };
        let floats = |values: &Option<Vec<f64>>| Float64Array::from_iter_values(values.iter().flatten().copied());
        // Standard errors are null one by one, so the list always lines up with `parameters`.
        let std_errors: Float64Array = match (&self.values, &self.std_errors) {
            (Some(_), Some(errors)) => errors.iter().map(|e| Some(*e).filter(|e| e.is_finite())).collect(),
            _ => (0..n).map(|_| None).collect(),
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![self.model])),
            list(Arc::new(StringArray::from(self.parameters.clone())), false, true)?,
            list(Arc::new(floats(&self.values)), false, self.values.is_some())?,
            list(Arc::new(std_errors), true, self.values.is_some())?,
            list(Arc::new(floats(&self.covariance)), false, self.covariance.is_some())?,
            Arc::new(Float64Array::from(vec![Some(self.log_likelihood).filter(|l| !l.is_nan())])),
            Arc::new(Int64Array::from(vec![self.iterations as i64])),
            Arc::new(BooleanArray::from(vec![self.converged])),
            Arc::new(Int64Array::from(vec![self.customers as i64])),
            Arc::new(Int64Array::from(vec![self.customers_left_out as i64])),
            Arc::new(StringArray::from(vec![self.failure.clone()])),
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
    /// A purchase model; `fail`: a model that cannot be fitted fails the query
    /// (`clv_fit_purchases`) rather than coming back with its reason
    /// (`clv_try_fit_purchases`).
    Purchases {
        fail: bool,
    },
    Spend,
}

/// `clv_fit_purchases` / `clv_try_fit_purchases` / `clv_fit_spend`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ClvFit {
    fit: Fit,
    signature: Signature,
    /// Threads for the likelihood's sums.
    threads: usize,
}

impl ClvFit {
    fn new_purchases(fail: bool, threads: usize) -> Self {
        let args = vec![DataType::Utf8, DataType::Float64, DataType::Float64, DataType::Float64];
        ClvFit { fit: Fit::Purchases { fail }, signature: Signature::exact(args, Volatility::Immutable), threads }
    }

    /// `clv_fit_purchases(model, frequency, recency, T)`.
    pub fn purchases(threads: usize) -> Self {
        Self::new_purchases(true, threads)
    }

    /// `clv_try_fit_purchases(model, frequency, recency, T)`.
    pub fn try_purchases(threads: usize) -> Self {
        Self::new_purchases(false, threads)
    }

    /// `clv_fit_spend(frequency, monetary_value)`.
    pub fn spend(threads: usize) -> Self {
        let args = vec![DataType::Float64, DataType::Float64];
        ClvFit { fit: Fit::Spend, signature: Signature::exact(args, Volatility::Immutable), threads }
    }

    /// How many leading arguments are constants (the model name, for purchases).
    fn constants(&self) -> usize {
        match self.fit {
            Fit::Purchases { .. } => 1,
            Fit::Spend => 0,
        }
    }

    /// The numeric columns the fit reads.
    fn columns(&self) -> &'static [&'static str] {
        match self.fit {
            Fit::Purchases { .. } => &["frequency", "recency", "T"],
            Fit::Spend => &["frequency", "monetary_value"],
        }
    }
}

impl AggregateUDFImpl for ClvFit {
    fn name(&self) -> &str {
        match self.fit {
            Fit::Purchases { fail: true } => "clv_fit_purchases",
            Fit::Purchases { fail: false } => "clv_try_fit_purchases",
            Fit::Spend => "clv_fit_spend",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(model_type())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let rows = Collected::new(&args, self.constants(), self.columns());
        Ok(Box::new(CollectingAccumulator { fit: self.fit, threads: self.threads, rows }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(Collected::state_fields(&args, self.constants(), self.columns()))
    }
}

/// The constant arguments of an aggregate: the first non-null value of each (known
/// before any row when it is a literal, so a fit over no rows still knows its model).
#[derive(Debug)]
struct Constants {
    values: Vec<Option<ScalarValue>>,
    types: Vec<DataType>,
}

impl Constants {
    fn new(args: &AccumulatorArgs, count: usize) -> Constants {
        let literal = |i: usize| {
            let expr: &dyn std::any::Any = args.exprs.get(i)?.as_ref();
            let value = expr.downcast_ref::<Literal>()?.value();
            (!value.is_null()).then(|| value.clone())
        };
        Constants {
            values: (0..count).map(literal).collect(),
            types: args.expr_fields[..count].iter().map(|f| f.data_type().clone()).collect(),
        }
    }

    fn state_fields(args: &StateFieldsArgs, count: usize) -> Vec<FieldRef> {
        args.input_fields[..count]
            .iter()
            .enumerate()
            .map(|(i, f)| Arc::new(Field::new(format!("{}[{i}]", args.name), f.data_type().clone(), true)))
            .collect()
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    /// Takes each constant from the first row that has it.
    fn update(&mut self, arrays: &[ArrayRef]) -> Result<()> {
        for (slot, array) in self.values.iter_mut().zip(arrays) {
            if slot.is_none()
                && let Some(row) = (0..array.len()).find(|&i| array.is_valid(i))
            {
                *slot = Some(ScalarValue::try_from_array(array, row)?);
            }
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.values.iter().flatten().map(ScalarValue::size).sum()
    }

    fn state(&self) -> Result<Vec<ScalarValue>> {
        self.values
            .iter()
            .zip(&self.types)
            .map(|(value, data_type)| match value {
                Some(value) => Ok(value.clone()),
                None => ScalarValue::try_from(data_type),
            })
            .collect()
    }

    /// Constant `i` as text (the model name of a purchase fit).
    fn text(&self, i: usize) -> Option<String> {
        match self.values.get(i)? {
            Some(
                ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)) | ScalarValue::LargeUtf8(Some(text)),
            ) => Some(text.clone()),
            _ => None,
        }
    }

    fn number(&self, i: usize) -> Option<f64> {
        match self.values.get(i)? {
            Some(ScalarValue::Float64(Some(v))) => Some(*v),
            Some(ScalarValue::Int64(Some(v))) => Some(*v as f64),
            _ => None,
        }
    }

    fn model(&self, i: usize) -> Option<Arc<StructArray>> {
        match self.values.get(i)? {
            Some(ScalarValue::Struct(models)) => Some(models.clone()),
            _ => None,
        }
    }
}

/// A list scalar of `values`, for an accumulator's state.
fn list_scalar(values: ArrayRef) -> ScalarValue {
    let item = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    ScalarValue::List(Arc::new(ListArray::new(item, OffsetBuffer::from_lengths([values.len()]), values, None)))
}

/// The rows a fit collects: its constants and the numeric columns, a row only when
/// none of them is null.
#[derive(Debug)]
struct Collected {
    constants: Constants,
    columns: Vec<Vec<f64>>,
}

impl Collected {
    fn new(args: &AccumulatorArgs, constants: usize, columns: &[&str]) -> Collected {
        Collected { constants: Constants::new(args, constants), columns: vec![Vec::new(); columns.len()] }
    }

    fn state_fields(args: &StateFieldsArgs, constants: usize, columns: &[&str]) -> Vec<FieldRef> {
        let mut fields = Constants::state_fields(args, constants);
        for column in columns {
            let list = DataType::new_list(DataType::Float64, true);
            fields.push(Arc::new(Field::new(format!("{}[{column}]", args.name), list, true)));
        }
        fields
    }

    /// Takes constants from the first rows that have them, and the numeric rows.
    fn update(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (constants, columns) = values.split_at(self.constants.len().min(values.len()));
        self.constants.update(constants)?;
        self.push_columns(columns);
        Ok(())
    }

    fn push_columns(&mut self, arrays: &[ArrayRef]) {
        let arrays: Vec<&Float64Array> = arrays.iter().map(|a| a.as_primitive::<Float64Type>()).collect();
        let rows = arrays.first().map_or(0, |a| a.len());
        for row in 0..rows {
            // A customer with a missing figure cannot be used; the stage's SQL decides who enters.
            if arrays.iter().any(|a| a.is_null(row)) {
                continue;
            }
            for (column, array) in self.columns.iter_mut().zip(&arrays) {
                column.push(array.value(row));
            }
        }
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.constants.size()
            + self.columns.iter().map(|c| c.capacity() * size_of::<f64>()).sum::<usize>()
    }

    fn state(&self) -> Result<Vec<ScalarValue>> {
        let mut state = self.constants.state()?;
        for column in &self.columns {
            state.push(list_scalar(Arc::new(Float64Array::from(column.clone()))));
        }
        Ok(state)
    }

    fn merge(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (constants, lists) = states.split_at(self.constants.len().min(states.len()));
        self.constants.update(constants)?;
        let lists: Vec<&ListArray> = lists.iter().map(|l| l.as_list::<i32>()).collect();
        for row in 0..lists.first().map_or(0, |l| l.len()) {
            let values: Vec<ArrayRef> = lists.iter().map(|l| l.value(row)).collect();
            self.push_columns(&values);
        }
        Ok(())
    }

    fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }
}

/// The accumulator of the fits: collect the rows, then fit.
#[derive(Debug)]
struct CollectingAccumulator {
    fit: Fit,
    threads: usize,
    rows: Collected,
}

impl Accumulator for CollectingAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.rows.update(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        fitted(self.fit, &self.rows, self.threads)?.to_scalar()
    }

    fn size(&self) -> usize {
        self.rows.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.rows.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.rows.merge(states)
    }
}

/// The model `fit` fits to the collected rows, on `threads` threads.
fn fitted(fit: Fit, rows: &Collected, threads: usize) -> Result<FittedModel> {
    // The comparisons `clv_try_fit_purchases` serves (the backtest) only predict: they
    // need no standard errors, which cost a Hessian.
    let standard_errors = !matches!(fit, Fit::Purchases { fail: false });
    let options = FitOptions { standard_errors, threads, ..FitOptions::default() };
    let columns = &rows.columns;
    match fit {
        Fit::Purchases { fail } => {
            let name = rows.constants.text(0).unwrap_or_else(|| "bg_nbd".to_string());
            let kind = purchase_kind(&name)?;
            let observations: Vec<Observation> = (0..rows.rows())
                .map(|i| Observation { frequency: columns[0][i], recency: columns[1][i], age: columns[2][i] })
                .collect();
            let fit = match fit_purchase_model(kind, &observations, &options) {
                Ok(fit) => fit,
                Err(error) if !fail => return Ok(FittedModel::failed(kind, observations.len(), &error)),
                Err(error) => return Err(fit_failed(error)),
            };
            Ok(FittedModel {
                model: kind.name(),
                parameters: kind.parameter_names().to_vec(),
                values: Some(fit.parameters().into_iter().map(|(_, v)| v).collect()),
                std_errors: fit.std_errors(),
                covariance: fit.log_covariance().map(|c| c.values().to_vec()),
                log_likelihood: fit.log_likelihood(),
                iterations: fit.iterations(),
                converged: fit.converged(),
                customers: fit.customers(),
                customers_left_out: 0,
                failure: None,
            })
        }
        Fit::Spend => {
            let pairs: Vec<(f64, f64)> = columns[0].iter().copied().zip(columns[1].iter().copied()).collect();
            let fit = fit_gamma_gamma(&pairs, &options).map_err(fit_failed)?;
            Ok(FittedModel {
                model: "gamma_gamma",
                parameters: fit.parameters().into_iter().map(|(n, _)| n).collect(),
                values: Some(fit.parameters().into_iter().map(|(_, v)| v).collect()),
                std_errors: fit.std_errors(),
                covariance: fit.log_covariance().map(|c| c.values().to_vec()),
                log_likelihood: fit.log_likelihood(),
                iterations: fit.iterations(),
                converged: fit.converged(),
                customers: fit.customers_used(),
                customers_left_out: fit.customers_left_out(),
                failure: None,
            })
        }
    }
}

/// One row of a column of fitted models: its name, and its parameter values and
/// log-parameter covariance when it was fitted.
#[derive(Debug, PartialEq)]
struct ModelRow<'a> {
    name: &'a str,
    values: Option<&'a [f64]>,
    covariance: Option<&'a [f64]>,
}

/// Row access to a column of fitted models without copying.
struct ModelColumn<'a> {
    models: &'a StructArray,
    names: &'a StringArray,
    values: &'a ListArray,
    covariance: &'a ListArray,
}

impl<'a> ModelColumn<'a> {
    fn new(models: &'a StructArray) -> Result<ModelColumn<'a>> {
        let column = |name: &str| {
            models
                .column_by_name(name)
                .ok_or_else(|| DataFusionError::Execution(format!("a fitted model without `{name}`")))
        };
        Ok(ModelColumn {
            models,
            names: column("model")?.as_string::<i32>(),
            values: column("values")?.as_list::<i32>(),
            covariance: column("covariance")?.as_list::<i32>(),
        })
    }

    fn row(&self, i: usize) -> Option<ModelRow<'a>> {
        if self.models.is_null(i) {
            return None;
        }
        let floats = |list: &'a ListArray| {
            list.is_valid(i).then(|| {
                let offsets = list.value_offsets();
                let values = list.values().as_primitive::<Float64Type>().values();
                &values[offsets[i] as usize..offsets[i + 1] as usize]
            })
        };
        Some(ModelRow { name: self.names.value(i), values: floats(self.values), covariance: floats(self.covariance) })
    }

    /// Consecutive rows carrying the same model, with that model. The CLV stages
    /// join one model to every customer, but the backtest predicts with several
    /// models in one query, and nothing promises a batch holds only one of them.
    fn runs(&self) -> Vec<(Range<usize>, Option<ModelRow<'a>>)> {
        let mut runs: Vec<(Range<usize>, Option<ModelRow<'a>>)> = Vec::new();
        for i in 0..self.models.len() {
            let row = self.row(i);
            match runs.last_mut() {
                Some((range, model)) if *model == row => range.end = i + 1,
                _ => runs.push((i..i + 1, row)),
            }
        }
        runs
    }
}

fn purchase_kind(name: &str) -> Result<PurchaseModelKind> {
    name.parse().map_err(DataFusionError::Execution)
}

/// The purchase model of a row; `None` when it was not fitted.
fn purchase_fit(row: &ModelRow) -> Result<Option<PurchaseFit>> {
    let Some(values) = row.values else { return Ok(None) };
    let kind = purchase_kind(row.name)?;
    let params: [f64; 4] =
        values.try_into().map_err(|_| DataFusionError::Execution("a purchase model has 4 parameters".into()))?;
    let fit = PurchaseFit::from_parameters(kind, params).map_err(fit_failed)?;
    match row.covariance.and_then(|c| LogCovariance::from_values(4, c.to_vec())) {
        Some(covariance) => fit.with_log_covariance(covariance).map(Some).map_err(fit_failed),
        None => Ok(Some(fit)),
    }
}

/// The spend model of a row; `None` when it was not fitted.
fn spend_fit(row: &ModelRow) -> Result<Option<GammaGammaFit>> {
    let Some(values) = row.values else { return Ok(None) };
    let [p, q, gamma] = values else { return exec_err!("a gamma_gamma model has 3 parameters") };
    let fit = GammaGammaFit::from_parameters(*p, *q, *gamma).map_err(fit_failed)?;
    match row.covariance.and_then(|c| LogCovariance::from_values(3, c.to_vec())) {
        Some(covariance) => fit.with_log_covariance(covariance).map(Some).map_err(fit_failed),
        None => Ok(Some(fit)),
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

/// `clv_p_alive`, `clv_expected_purchases`, `clv_expected_spend`, `clv_predicted_value`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ClvPredict {
    prediction: Prediction,
    signature: Signature,
    /// Threads for a batch's predictions.
    threads: usize,
}

impl ClvPredict {
    fn new(prediction: Prediction, numbers: usize, threads: usize) -> Self {
        let mut args = vec![model_type()];
        args.extend(std::iter::repeat_n(DataType::Float64, numbers));
        ClvPredict { prediction, signature: Signature::exact(args, Volatility::Immutable), threads }
    }

    pub fn p_alive(threads: usize) -> Self {
        Self::new(Prediction::PAlive, 3, threads)
    }

    pub fn expected_purchases(threads: usize) -> Self {
        Self::new(Prediction::ExpectedPurchases, 4, threads)
    }

    pub fn expected_spend(threads: usize) -> Self {
        Self::new(Prediction::ExpectedSpend, 2, threads)
    }

    pub fn predicted_value(threads: usize) -> Self {
        Self::new(Prediction::PredictedValue, 8, threads)
    }

    /// The predictions of rows `rows`, all with the fitted model `model`.
    fn predict(&self, model: &ModelRow, numbers: &[Float64Array], rows: Range<usize>) -> Result<Vec<Option<f64>>> {
        let numbers: Vec<Float64Array> = numbers.iter().map(|a| a.slice(rows.start, rows.len())).collect();
        Ok(match (self.prediction, numbers.as_slice()) {
            (Prediction::PAlive, [frequency, recency, age]) => {
                let Some(fit) = purchase_fit(model)? else { return Ok(vec![None; rows.len()]) };
                let (customers, valid) = observations(frequency, recency, age);
                fit.p_alive_many(&customers).into_iter().zip(valid).map(|(p, ok)| ok.then_some(p)).collect()
            }
            (Prediction::ExpectedPurchases, [t, frequency, recency, age]) => {
                let Some(fit) = purchase_fit(model)? else { return Ok(vec![None; rows.len()]) };
                let (customers, valid) = observations(frequency, recency, age);
                let expected = fit.conditional_expected_purchases_many(constant(t, "t")?, &customers, self.threads);
                expected.into_iter().zip(valid).map(|(e, ok)| ok.then_some(e)).collect()
            }
            (Prediction::ExpectedSpend, [frequency, monetary]) => {
                let Some(fit) = spend_fit(model)? else { return Ok(vec![None; rows.len()]) };
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
                let Some(fit) = purchase_fit(model)? else { return Ok(vec![None; rows.len()]) };
                let (customers, mut valid) = observations(frequency, recency, age);
                let values: Vec<f64> = (0..order_value.len())
                    .map(|i| {
                        valid[i] &= order_value.is_valid(i);
                        if valid[i] { order_value.value(i) } else { 0.0 }
                    })
                    .collect();
                let settings = settings(margin, rate, horizon, units)?;
                let clv = predicted_clv_many(&fit, &customers, &values, &settings, self.threads);
                clv.into_iter().zip(valid).map(|(v, ok)| ok.then_some(v)).collect()
            }
            _ => return exec_err!("{}: wrong number of arguments", self.name()),
        })
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

/// The CLV settings of `clv_predicted_value` and `clv_value_draws`.
fn settings(
    margin: &Float64Array,
    rate: &Float64Array,
    horizon: &Float64Array,
    units: &Float64Array,
) -> Result<ClvSettings> {
    Ok(ClvSettings {
        margin: constant(margin, "margin")?,
        monthly_discount_rate: constant(rate, "monthly_discount_rate")?,
        horizon_months: horizon_months(constant(horizon, "horizon_months")?)?,
        units_per_month: constant(units, "units_per_month")?,
    })
}

fn horizon_months(horizon: f64) -> Result<u32> {
    if !(horizon >= 0.0 && horizon.fract() == 0.0 && horizon <= f64::from(u32::MAX)) {
        return exec_err!("horizon_months must be a whole number of months, got {horizon}");
    }
    Ok(horizon as u32)
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
        let numbers: Vec<Float64Array> = numbers.iter().map(|a| a.as_primitive::<Float64Type>().clone()).collect();
        let models = ModelColumn::new(models.as_struct())?;
        let mut results: Vec<Option<f64>> = Vec::with_capacity(models.models.len());
        for (rows, model) in models.runs() {
            match model {
                Some(model) => results.extend(self.predict(&model, &numbers, rows)?),
                None => results.extend(std::iter::repeat_n(None, rows.len())),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(Float64Array::from(results))))
    }
}

/// `clv_value_draws(purchase_model, spend_model, margin, monthly_discount_rate,
/// horizon_months, units_per_month, draws, seed, frequency, recency, T,
/// monetary_value, predicted_clv)`: the group's total predicted CLV under each of
/// `draws` parameter draws ([`predicted_clv_draws`]), a list; null when a model
/// has no covariance or the group no customers.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ClvValueDraws {
    signature: Signature,
    /// Threads over which the draws are shared.
    threads: usize,
}

/// The constant arguments of `clv_value_draws`, then its per-customer columns.
const DRAW_CONSTANTS: usize = 8;
const DRAW_COLUMNS: usize = 5;
/// The index of `units_per_month` among the constants.
const UNITS_PER_MONTH: usize = 5;

impl ClvValueDraws {
    pub fn new(threads: usize) -> Self {
        let mut args = vec![model_type(), model_type()];
        args.extend(std::iter::repeat_n(DataType::Float64, 4));
        args.extend(std::iter::repeat_n(DataType::Int64, 2));
        args.extend(std::iter::repeat_n(DataType::Float64, DRAW_COLUMNS));
        ClvValueDraws { signature: Signature::exact(args, Volatility::Immutable), threads }
    }
}

impl AggregateUDFImpl for ClvValueDraws {
    fn name(&self) -> &str {
        "clv_value_draws"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::new_list(DataType::Float64, true))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ValueDrawsAccumulator {
            constants: Constants::new(&args, DRAW_CONSTANTS),
            cells: ValueCells::default(),
            threads: self.threads,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let mut fields = Constants::state_fields(&args, DRAW_CONSTANTS);
        let list = |name: &str, item: DataType| {
            Arc::new(Field::new(format!("{}[{name}]", args.name), DataType::new_list(item, true), true))
        };
        let scalar =
            |name: &str, data_type: DataType| Arc::new(Field::new(format!("{}[{name}]", args.name), data_type, true));
        fields.extend([
            list("frequency", DataType::Float64),
            list("recency", DataType::Float64),
            list("T", DataType::Float64),
            list("population_spenders", DataType::Int64),
            list("own_spenders", DataType::Int64),
            list("own_spend", EXACT_SUM),
            list("own_spend_non_finite", DataType::Float64),
            scalar("predicted_clv", EXACT_SUM),
            scalar("predicted_clv_non_finite", DataType::Float64),
        ]);
        Ok(fields)
    }
}

/// How an [`ExactSum`]'s finite part travels in an accumulator's state: units of
/// 10⁻¹⁰ are a decimal with 10 decimals.
const EXACT_SUM: DataType = DataType::Decimal128(38, 10);

/// The accumulator of `clv_value_draws`: the group's customers merged into the
/// model's cells as they arrive, so its memory grows with the cells, not with the
/// customers (millions of customers make thousands of cells).
#[derive(Debug)]
struct ValueDrawsAccumulator {
    constants: Constants,
    cells: ValueCells,
    threads: usize,
}

impl Accumulator for ValueDrawsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (constants, columns) = values.split_at(DRAW_CONSTANTS.min(values.len()));
        self.constants.update(constants)?;
        let columns: Vec<&Float64Array> = columns.iter().map(|a| a.as_primitive::<Float64Type>()).collect();
        let [frequency, recency, age, mean_spend, predicted_clv] = columns[..] else {
            return exec_err!("clv_value_draws: expected {DRAW_COLUMNS} customer columns, got {}", columns.len());
        };
        let mut units_per_month = None;
        for row in 0..frequency.len() {
            // A customer with a missing figure cannot be valued; the stage's SQL decides who enters.
            if columns.iter().any(|a| a.is_null(row)) {
                continue;
            }
            let units = match units_per_month {
                Some(units) => units,
                None => *units_per_month.insert(self.setting(UNITS_PER_MONTH, "units_per_month")?),
            };
            let customer = ValuedCustomer {
                history: Observation {
                    frequency: frequency.value(row),
                    recency: recency.value(row),
                    age: age.value(row),
                },
                mean_spend: mean_spend.value(row),
                predicted_clv: predicted_clv.value(row),
            };
            self.cells.add(&customer, units);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let item = Arc::new(Field::new_list_field(DataType::Float64, true));
        Ok(match self.value_draws()? {
            Some(totals) => list_scalar(Arc::new(Float64Array::from(totals))),
            None => ScalarValue::List(Arc::new(ListArray::new_null(item, 1))),
        })
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.constants.size() + self.cells.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let cells = self.cells.cells();
        let numbers = |f: fn(&ValueCell) -> f64| list_scalar(Arc::new(cells.iter().map(f).collect::<Float64Array>()));
        let counts =
            |f: fn(&ValueCell) -> u64| list_scalar(Arc::new(cells.iter().map(|c| f(c) as i64).collect::<Int64Array>()));
        let own_spend = cells.iter().map(|c| c.own_spend.units).collect::<Decimal128Array>().with_data_type(EXACT_SUM);
        let total = self.cells.exact_total();
        let mut state = self.constants.state()?;
        state.extend([
            numbers(|c| c.history.frequency),
            numbers(|c| c.history.recency),
            numbers(|c| c.history.age),
            counts(|c| c.population_spenders),
            counts(|c| c.own_spenders),
            list_scalar(Arc::new(own_spend)),
            numbers(|c| c.own_spend.non_finite),
            ScalarValue::Decimal128(Some(total.units), 38, 10),
            ScalarValue::Float64(Some(total.non_finite)),
        ]);
        Ok(state)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (constants, cells) = states.split_at(DRAW_CONSTANTS.min(states.len()));
        self.constants.update(constants)?;
        let [frequency, recency, age, population, own, own_spend, own_spend_non_finite, total, total_non_finite] =
            cells
        else {
            return exec_err!("clv_value_draws: unexpected state of {} columns", states.len());
        };
        let lists =
            [frequency, recency, age, population, own, own_spend, own_spend_non_finite].map(|a| a.as_list::<i32>());
        let (total, total_non_finite) =
            (total.as_primitive::<Decimal128Type>(), total_non_finite.as_primitive::<Float64Type>());
        for row in 0..total.len() {
            if total.is_null(row) {
                continue;
            }
            let [frequency, recency, age, population, own, own_spend, own_spend_non_finite] =
                lists.map(|l| l.value(row));
            let floats =
                [&frequency, &recency, &age, &own_spend_non_finite].map(|a| a.as_primitive::<Float64Type>().clone());
            let [frequency, recency, age, own_spend_non_finite] = &floats;
            let (population, own) = (population.as_primitive::<Int64Type>(), own.as_primitive::<Int64Type>());
            let own_spend = own_spend.as_primitive::<Decimal128Type>();
            for i in 0..frequency.len() {
                self.cells.merge_cell(ValueCell {
                    history: Observation {
                        frequency: frequency.value(i),
                        recency: recency.value(i),
                        age: age.value(i),
                    },
                    population_spenders: population.value(i) as u64,
                    own_spenders: own.value(i) as u64,
                    own_spend: ExactSum { units: own_spend.value(i), non_finite: own_spend_non_finite.value(i) },
                });
            }
            self.cells.merge_total(ExactSum { units: total.value(row), non_finite: total_non_finite.value(row) });
        }
        Ok(())
    }
}

impl ValueDrawsAccumulator {
    fn setting(&self, i: usize, name: &str) -> Result<f64> {
        self.constants
            .number(i)
            .ok_or_else(|| DataFusionError::Execution(format!("clv_value_draws: `{name}` must not be null")))
    }

    /// The group's totals under the parameter draws (see `clv_value_draws`).
    fn value_draws(&self) -> Result<Option<Vec<f64>>> {
        let constants = &self.constants;
        let (Some(purchase_models), Some(spend_models)) = (constants.model(0), constants.model(1)) else {
            return Ok(None);
        };
        let (Some(purchase_row), Some(spend_row)) =
            (ModelColumn::new(&purchase_models)?.row(0), ModelColumn::new(&spend_models)?.row(0))
        else {
            return Ok(None);
        };
        let (Some(purchases), Some(spend)) = (purchase_fit(&purchase_row)?, spend_fit(&spend_row)?) else {
            return Ok(None);
        };
        let settings = ClvSettings {
            margin: self.setting(2, "margin")?,
            monthly_discount_rate: self.setting(3, "monthly_discount_rate")?,
            horizon_months: horizon_months(self.setting(4, "horizon_months")?)?,
            units_per_month: self.setting(UNITS_PER_MONTH, "units_per_month")?,
        };
        let (draws, seed) = (self.setting(6, "draws")?, self.setting(7, "seed")?);
        if !(draws >= 1.0 && draws.fract() == 0.0 && draws <= 1e6) {
            return exec_err!("clv_value_draws: draws must be a whole number from 1 to 1,000,000, got {draws}");
        }
        if self.cells.is_empty() {
            return Ok(None);
        }
        Ok(predicted_clv_draws(&purchases, &spend, &self.cells, &settings, draws as usize, seed as u64, self.threads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(model: &'static str, values: Option<Vec<f64>>) -> ScalarValue {
        let kind: PurchaseModelKind = model.parse().unwrap();
        let mut m = FittedModel::failed(kind, 10, &FitError::InvalidInput { model, reason: "test".into() });
        if values.is_some() {
            m.values = values;
            m.failure = None;
        }
        m.to_scalar().unwrap()
    }

    #[test]
    fn batches_mixing_models_are_predicted_with_each_rows_model() {
        let bg = fitted("bg_nbd", Some(vec![0.243, 4.414, 0.793, 2.426]));
        let pareto = fitted("pareto_nbd", Some(vec![0.55, 10.58, 0.61, 11.67]));
        let failed = fitted("mbg_nbd", None);
        let rows = [&bg, &bg, &pareto, &failed, &bg];
        let models = ScalarValue::iter_to_array(rows.iter().map(|s| (*s).clone())).unwrap();
        let models = ModelColumn::new(models.as_struct()).unwrap();
        let runs: Vec<(Range<usize>, Option<&str>, bool)> = models
            .runs()
            .into_iter()
            .map(|(r, m)| (r, m.as_ref().map(|m| m.name), m.and_then(|m| m.values).is_some()))
            .collect();
        assert_eq!(
            runs,
            [
                (0..2, Some("bg_nbd"), true),
                (2..3, Some("pareto_nbd"), true),
                (3..4, Some("mbg_nbd"), false),
                (4..5, Some("bg_nbd"), true)
            ]
        );
        let predict = ClvPredict::expected_purchases(2);
        let numbers = [
            Float64Array::from(vec![39.0; 5]),
            Float64Array::from(vec![2.0; 5]),
            Float64Array::from(vec![30.43; 5]),
            Float64Array::from(vec![38.86; 5]),
        ];
        let mut got = Vec::new();
        for (rows, model) in models.runs() {
            got.extend(predict.predict(&model.unwrap(), &numbers, rows).unwrap());
        }
        let bg_fit = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, [0.243, 4.414, 0.793, 2.426]).unwrap();
        let pareto_fit =
            PurchaseFit::from_parameters(PurchaseModelKind::ParetoNbd, [0.55, 10.58, 0.61, 11.67]).unwrap();
        let (b, p) = (
            bg_fit.conditional_expected_purchases(39.0, 2.0, 30.43, 38.86),
            pareto_fit.conditional_expected_purchases(39.0, 2.0, 30.43, 38.86),
        );
        assert_eq!(got, [Some(b), Some(b), Some(p), None, Some(b)]);
    }

    /// `clv_value_draws` per group of 3,000 made-up customers, the rows in
    /// `partitions` partitions of batches of 100: several partitions aggregate in
    /// two phases, through the accumulator's state.
    async fn value_draws_by_sql(partitions: usize) -> Vec<datafusion::arrow::array::RecordBatch> {
        use datafusion::datasource::MemTable;
        use datafusion::prelude::{SessionConfig, SessionContext};

        // Customers who buy in a week with their own probability and, after each
        // purchase, leave with their own probability (a discrete BG/NBD), from an LCG.
        let customers = 3000;
        let mut state = 7_u64;
        let mut uniform = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1_u64 << 53) as f64
        };
        let (mut frequency, mut recency, mut age) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..customers {
            let (buys, leaves, weeks) =
                (0.02 + 0.4 * uniform(), 0.05 + 0.4 * uniform(), 20 + (30.0 * uniform()) as usize);
            let (mut x, mut last) = (0.0, 0.0);
            for week in 1..weeks {
                if uniform() < buys {
                    (x, last) = (x + 1.0, week as f64);
                    if uniform() < leaves {
                        break;
                    }
                }
            }
            frequency.push(x);
            recency.push(last);
            age.push(weeks as f64);
        }
        let number = |values: Vec<f64>| Arc::new(Float64Array::from(values)) as ArrayRef;
        let spend: Vec<f64> = (0..customers).map(|i| 5.0 + ((i * 37) % 50) as f64 / 3.0).collect();
        let columns = vec![
            Arc::new((0..customers).map(|i| Some((i % 4) as i64)).collect::<Int64Array>()) as ArrayRef,
            number(frequency),
            number(recency),
            number(age),
            number(spend),
        ];
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
            ["grp", "frequency", "recency", "t", "spend"]
                .iter()
                .zip(columns.iter())
                .map(|(name, c)| Field::new(*name, c.data_type().clone(), false))
                .collect::<Vec<_>>(),
        ));
        let batch = datafusion::arrow::array::RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mut parts = vec![Vec::new(); partitions];
        for (i, start) in (0..customers).step_by(100).enumerate() {
            parts[i % partitions].push(batch.slice(start, 100));
        }
        let config = SessionConfig::new().with_target_partitions(partitions).with_batch_size(100);
        let ctx = SessionContext::new_with_config(config);
        crate::functions::register(&ctx);
        ctx.register_table("customers", Arc::new(MemTable::try_new(schema, parts).unwrap())).unwrap();
        let sql = "WITH fit AS (SELECT clv_fit_purchases('bg_nbd', frequency, recency, t) AS p, \
                       clv_fit_spend(frequency, spend) AS s FROM customers) \
                   SELECT c.grp, clv_value_draws(f.p, f.s, 0.3, 0.01, 12.0, 4.348, 5, 7, \
                       c.frequency, c.recency, c.t, c.spend, c.spend) AS totals \
                   FROM customers AS c CROSS JOIN fit AS f GROUP BY c.grp ORDER BY c.grp";
        ctx.sql(sql).await.unwrap().collect().await.unwrap()
    }

    #[tokio::test]
    async fn value_draws_do_not_depend_on_how_the_rows_were_split() {
        let whole = value_draws_by_sql(1).await;
        let split = value_draws_by_sql(3).await;
        assert_eq!(whole, split);
        let totals = whole[0].column(1).as_list::<i32>();
        assert_eq!(totals.len(), 4, "a row per group");
        assert!((0..4).all(|group| totals.value(group).len() == 5 && totals.value(group).null_count() == 0));
    }
}
