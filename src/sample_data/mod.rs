//! `fidelis sample-data`: deterministic synthetic inputs that follow the data
//! contract, written as CSV, Parquet or NDJSON under `{out}/{table}/`.
//! [`generate`] makes the rows; this module turns them into Arrow and files.

pub mod generate;
mod order_ids;

use std::sync::Arc;

use chrono::NaiveDateTime;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::{csv, json};
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

pub use generate::{SampleData, SampleSpec};

use generate::Chunks;
use order_ids::OrderIds;

use crate::config::Format;
use crate::error::{Error, Result};
use crate::publish::layout::part_file_name;
use crate::sinks::ParquetFile;
use crate::storage::Location;

/// The tables of a sample, in the order they are written.
const TABLES: [&str; 5] = ["transactions", "customers", "loyalty_events", "survey_responses", "wallet"];

/// Writes the sample of `spec` under `out` in `format`, one file per table, chunk of
/// customers by chunk, in memory that does not grow with the sample (order numbers are
/// worked out on local disk first, see `order_ids`). Returns (table, rows) written.
pub async fn write(spec: &SampleSpec, out: &Location, format: Format) -> Result<Vec<(&'static str, usize)>> {
    let threads = crate::threads::available();
    let scratch = tempfile::tempdir().map_err(|e| Error::runtime("creating a scratch folder", e))?;
    let (numbering, dir) = (spec.clone(), scratch.path().to_path_buf());
    let ids = tokio::task::spawn_blocking(move || OrderIds::number(&Chunks::new(&numbering), threads, &dir))
        .await
        .map_err(|e| Error::runtime("numbering sample orders", e))?
        .map_err(|e| Error::runtime("numbering sample orders", e))?;
    let mut writers = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        writers.push(TableFile::create(out.child(table).child(&part_file_name(&format.to_string())), format)?);
    }
    let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
    let generating = spec.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let chunks = Chunks::new(&generating);
        chunks.each(0..chunks.count(), threads, |chunk, data| sender.blocking_send((chunk, data)).is_ok());
    });
    let mut ids = ids;
    while let Some((chunk, mut data)) = receiver.recv().await {
        ids.assign(chunk, &mut data.transactions).map_err(|e| Error::runtime("numbering sample orders", e))?;
        let batches =
            [transactions(&data), customers(&data), loyalty_events(&data), survey_responses(&data), wallet(&data)];
        for ((writer, batch), table) in writers.iter_mut().zip(batches).zip(TABLES) {
            let batch = batch.map_err(|e| Error::runtime(format!("building sample table `{table}`"), e))?;
            writer.write(&batch).await?;
        }
    }
    producer.await.map_err(|e| Error::runtime("generating the sample", e))?;
    let mut written = Vec::with_capacity(TABLES.len());
    for (writer, table) in writers.into_iter().zip(TABLES) {
        written.push((table, writer.finish().await?));
    }
    Ok(written)
}

/// One table's file, written batch by batch.
enum TableFile {
    Parquet(Box<ParquetFile>),
    Text(Box<TextFile>),
}

/// A CSV or NDJSON file being written.
struct TextFile {
    location: Location,
    format: Format,
    writer: BufWriter,
    rows: usize,
}

impl TableFile {
    fn create(location: Location, format: Format) -> Result<Self> {
        Ok(match format {
            Format::Parquet => TableFile::Parquet(Box::new(ParquetFile::create(&location, &table_schema(&location)?)?)),
            Format::Csv | Format::Ndjson => {
                let writer = BufWriter::new(Arc::clone(&location.store), location.path.clone());
                TableFile::Text(Box::new(TextFile { location, format, writer, rows: 0 }))
            }
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            TableFile::Parquet(file) => file.write(batch).await,
            TableFile::Text(file) => {
                let failed = |e: &dyn std::fmt::Display| Error::runtime(format!("writing {}", file.location), e);
                let bytes = text(batch, file.format, file.rows == 0).map_err(|e| failed(&e))?;
                file.rows += batch.num_rows();
                file.writer.write_all(&bytes).await.map_err(|e| failed(&e))
            }
        }
    }

    /// Completes the file; returns its rows.
    async fn finish(self) -> Result<usize> {
        match self {
            TableFile::Parquet(file) => Ok(file.finish().await?.0 as usize),
            TableFile::Text(mut file) => {
                file.writer.shutdown().await.map_err(|e| Error::runtime(format!("writing {}", file.location), e))?;
                Ok(file.rows)
            }
        }
    }
}

/// The schema of the table `location` is a file of (its folder's name).
fn table_schema(location: &Location) -> Result<SchemaRef> {
    let empty = SampleData::default();
    let table = location.path.parts().rev().nth(1).map(|part| part.as_ref().to_string()).unwrap_or_default();
    let batch = match table.as_str() {
        "transactions" => transactions(&empty),
        "customers" => customers(&empty),
        "loyalty_events" => loyalty_events(&empty),
        "survey_responses" => survey_responses(&empty),
        _ => wallet(&empty),
    };
    Ok(batch.map_err(|e| Error::runtime("building a sample schema", e))?.schema())
}

/// `batch` as CSV (with its header when `first`) or NDJSON lines.
fn text(
    batch: &RecordBatch,
    format: Format,
    first: bool,
) -> std::result::Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
    let mut bytes = Vec::new();
    if format == Format::Csv {
        let mut writer = csv::WriterBuilder::new().with_header(first).build(&mut bytes);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamed_files_hold_the_rows_generated_in_memory() {
        let spec = SampleSpec {
            customers: 9_000,
            seed: 5,
            end_date: chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            years: 2,
        };
        let folder = tempfile::tempdir().unwrap();
        let out = Storage::new().resolve(&folder.path().display().to_string()).unwrap();
        let written = write(&spec, &out, Format::Parquet).await.unwrap();
        let whole = generate::generate(&spec);
        let expected =
            [transactions(&whole), customers(&whole), loyalty_events(&whole), survey_responses(&whole), wallet(&whole)];
        for ((table, rows), expected) in written.into_iter().zip(expected) {
            let expected = expected.unwrap();
            assert_eq!(rows, expected.num_rows(), "{table}");
            let file = std::fs::File::open(folder.path().join(table).join("part-00000.parquet")).unwrap();
            let read: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(Result::unwrap).collect();
            let read = datafusion::arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
            assert_eq!(read, expected, "{table}");
        }
    }
}
