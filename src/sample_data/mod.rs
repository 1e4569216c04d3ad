//! `fidelis sample-data`: deterministic synthetic inputs that follow the data
//! contract, written as CSV, Parquet or NDJSON under `{out}/{table}/`.
//! [`generate`] makes the rows; this module turns them into Arrow and files.

pub mod generate;

use std::sync::Arc;

use chrono::NaiveDateTime;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::{csv, json};
use object_store::{ObjectStoreExt, PutPayload};

pub use generate::{SampleData, SampleSpec};

use crate::config::Format;
use crate::error::{Error, Result};
use crate::sinks::{part_file_name, write_parquet};
use crate::storage::Location;

/// Writes every table of `data` under `out` in `format`; returns (table, rows) written.
pub async fn write(data: &SampleData, out: &Location, format: Format) -> Result<Vec<(&'static str, usize)>> {
    let tables = [
        ("transactions", transactions(data)),
        ("customers", customers(data)),
        ("loyalty_events", loyalty_events(data)),
        ("survey_responses", survey_responses(data)),
        ("wallet", wallet(data)),
    ];
    let mut written = Vec::new();
    for (name, batch) in tables {
        let batch = batch.map_err(|e| Error::runtime(format!("building sample table `{name}`"), e))?;
        let file = out.child(name).child(&part_file_name(&format.to_string()));
        match format {
            Format::Parquet => {
                write_parquet(&file, batch.schema(), std::iter::once(Ok(batch.clone()))).await?;
            }
            Format::Csv | Format::Ndjson => {
                let bytes = text(&batch, format).map_err(|e| Error::runtime(format!("writing {file}"), e))?;
                file.store
                    .put(&file.path, PutPayload::from(bytes))
                    .await
                    .map_err(|e| Error::runtime(format!("writing {file}"), e))?;
            }
        }
        written.push((name, batch.num_rows()));
    }
    Ok(written)
}

fn text(batch: &RecordBatch, format: Format) -> std::result::Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
    let mut bytes = Vec::new();
    if format == Format::Csv {
        let mut writer = csv::WriterBuilder::new().with_header(true).build(&mut bytes);
        writer.write(batch)?;
    } else {
        let mut writer = json::LineDelimitedWriter::new(&mut bytes);
        writer.write(batch)?;
        writer.finish()?;
    }
    Ok(bytes)
}

type Built = std::result::Result<RecordBatch, datafusion::arrow::error::ArrowError>;

fn batch(columns: Vec<(&str, ArrayRef)>) -> Built {
    let fields: Vec<Field> =
        columns.iter().map(|(name, array)| Field::new(*name, array.data_type().clone(), true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, array)| array).collect())
}

fn customer_id(id: u64) -> String {
    format!("C{id:08}")
}

fn utc(values: impl Iterator<Item = Option<NaiveDateTime>>) -> ArrayRef {
    let micros: TimestampMicrosecondArray = values.map(|t| t.map(|t| t.and_utc().timestamp_micros())).collect();
    Arc::new(micros.with_timezone("UTC"))
}

fn money(
    values: impl Iterator<Item = Option<i64>>,
) -> std::result::Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    let cents: Decimal128Array = values.map(|v| v.map(i128::from)).collect();
    Ok(Arc::new(cents.with_precision_and_scale(18, 2)?))
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn transactions(data: &SampleData) -> Built {
    let rows = &data.transactions;
    batch(vec![
        ("order_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|t| format!("O{:010}", t.order_id))))),
        ("customer_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|t| customer_id(t.customer_id))))),
        ("order_ts", utc(rows.iter().map(|t| Some(t.order_ts)))),
        ("amount", money(rows.iter().map(|t| Some(t.amount_cents)))?),
        ("kind", strings(rows.iter().map(|t| Some(t.kind.as_str())))),
        ("channel", strings(rows.iter().map(|t| Some(t.channel)))),
        ("category", strings(rows.iter().map(|t| Some(t.category)))),
        ("discount_amount", money(rows.iter().map(|t| Some(t.discount_cents)))?),
        ("cost", money(rows.iter().map(|t| Some(t.cost_cents)))?),
    ])
}

fn customers(data: &SampleData) -> Built {
    let rows = &data.customers;
    batch(vec![
        ("customer_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|c| customer_id(c.customer_id))))),
        ("signup_ts", utc(rows.iter().map(|c| c.signup_ts))),
        ("acquisition_channel", strings(rows.iter().map(|c| Some(c.acquisition_channel)))),
        ("loyalty_member", Arc::new(rows.iter().map(|c| Some(c.loyalty_member)).collect::<BooleanArray>())),
        ("loyalty_tier", strings(rows.iter().map(|c| c.loyalty_tier))),
    ])
}

fn loyalty_events(data: &SampleData) -> Built {
    let rows = &data.loyalty_events;
    batch(vec![
        ("customer_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|e| customer_id(e.customer_id))))),
        ("event_ts", utc(rows.iter().map(|e| Some(e.event_ts)))),
        ("event_type", strings(rows.iter().map(|e| Some(e.event_type)))),
        ("points", Arc::new(rows.iter().map(|e| e.points).collect::<Int64Array>())),
        ("reward_cost", money(rows.iter().map(|e| e.reward_cost_cents))?),
    ])
}

fn survey_responses(data: &SampleData) -> Built {
    let rows = &data.survey_responses;
    let score = |f: fn(&generate::SurveyResponse) -> Option<u8>| -> ArrayRef {
        Arc::new(rows.iter().map(|r| f(r).map(i64::from)).collect::<Int64Array>())
    };
    batch(vec![
        ("customer_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| customer_id(r.customer_id))))),
        ("response_ts", utc(rows.iter().map(|r| Some(r.response_ts)))),
        ("nps_score", score(|r| r.nps_score)),
        ("repurchase_intent", score(|r| r.repurchase_intent)),
        ("upsell_intent", score(|r| r.upsell_intent)),
        ("category_spend", money(rows.iter().map(|r| r.category_spend_cents))?),
        ("brand_rank", score(|r| r.brand_rank)),
        ("brands_used", score(|r| r.brands_used)),
    ])
}

fn wallet(data: &SampleData) -> Built {
    let rows = &data.wallet;
    let periods = rows.iter().map(|w| format!("{:04}-{:02}", w.period.0, w.period.1));
    batch(vec![
        ("customer_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|w| customer_id(w.customer_id))))),
        ("period", Arc::new(StringArray::from_iter_values(periods))),
        ("category_spend", money(rows.iter().map(|w| Some(w.category_spend_cents)))?),
    ])
}
