//! Reading one input file into Arrow batches while remembering, for every row, where
//! it came from (the row number reported in errors and in the quarantine table).
//!
//! Row numbers are line numbers for CSV (the header is line 1) and NDJSON, and 1-based
//! row indices for Parquet. CSV and NDJSON values are read as text and typed later, so
//! that a bad value is reported with its row and column instead of failing the file.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::ObjectStoreExt;

use super::files::InputFile;
use crate::config::Format;
use crate::error::{Error, Result};
use crate::storage::Location;

/// Rows per batch built from text formats.
const BATCH_ROWS: usize = 64 * 1024;

/// A batch and the row number of each of its rows.
pub struct RawChunk {
    pub batch: RecordBatch,
    pub rows: Vec<u64>,
}

/// A row (or a whole file) that could not be read into fields at all.
pub struct Malformed {
    /// `None` when the whole file is unreadable.
    pub row: Option<u64>,
    pub reason: String,
    /// The raw text of the row (or the file's first bytes), for the quarantine table.
    pub record: String,
}

/// What reading a file produced.
#[derive(Default)]
pub struct RawFile {
    pub chunks: Vec<RawChunk>,
    pub malformed: Vec<Malformed>,
    /// Data rows seen, readable or not.
    pub rows_read: u64,
    /// For Parquet: the first row number of each row group, to name the group in errors.
    pub row_group_starts: Vec<u64>,
}

/// Reads `file`. For NDJSON, `columns` are the keys to read (all keys seen when `None`).
pub async fn read(location: &Location, file: &InputFile, columns: Option<&[String]>) -> Result<RawFile> {
    let fetch_error = |error: object_store::Error| Error::runtime(format!("cannot read {}", file.url), error);
    // Whole files are read at once: input files are at most a few hundred MB, and
    // one request per file is the fastest way to read object storage.
    let bytes = location.store.get(&file.path).await.map_err(fetch_error)?.bytes().await.map_err(fetch_error)?;
    if file.kind == Format::Parquet {
        return read_parquet(file, bytes);
    }
    if let Some(reason) = binary_content(&bytes) {
        return Ok(unreadable(file, reason, &bytes));
    }
    Ok(match file.kind {
        Format::Csv => read_csv(&bytes),
        _ => read_ndjson(&bytes, columns),
    })
}

/// Text formats never contain NUL bytes; Parquet files start with `PAR1`.
fn binary_content(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(b"PAR1") {
        return Some("the file is Parquet, not text; set `format: parquet` or fix its extension".into());
    }
    let head = &bytes[..bytes.len().min(8192)];
    head.contains(&0).then(|| "the file is binary, not text (it contains NUL bytes)".into())
}

fn unreadable(file: &InputFile, reason: String, bytes: &[u8]) -> RawFile {
    let preview: String = String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    RawFile {
        malformed: vec![Malformed {
            row: None,
            reason: format!("not a valid {} file: {reason}", file.kind),
            record: preview,
        }],
        ..RawFile::default()
    }
}

fn read_parquet(file: &InputFile, bytes: bytes::Bytes) -> Result<RawFile> {
    let builder = match ParquetRecordBatchReaderBuilder::try_new(bytes.clone()) {
        Ok(builder) => builder,
        Err(error) => return Ok(unreadable(file, error.to_string(), &bytes)),
    };
    let mut row_group_starts = Vec::new();
    let mut start = 1;
    for group in builder.metadata().row_groups() {
        row_group_starts.push(start);
        start += group.num_rows() as u64;
    }
    // Decompressing and decoding dominate reading a large file: its row groups are
    // decoded on every core, in contiguous runs, and put back in file order.
    let groups = row_group_starts.len();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, groups.max(1));
    let per_thread = groups.div_ceil(threads).max(1);
    let decoded: Vec<Result<Vec<RecordBatch>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let run: Vec<usize> = (t * per_thread..((t + 1) * per_thread).min(groups)).collect();
                let bytes = bytes.clone();
                scope.spawn(move || decode_row_groups(file, bytes, run))
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a Parquet decoding thread panicked")).collect()
    });
    let mut batches = Vec::new();
    for run in decoded {
        batches.extend(run?);
    }
    let mut next = 1;
    let mut chunks = Vec::with_capacity(batches.len());
    for batch in batches {
        let rows = (next..next + batch.num_rows() as u64).collect();
        next += batch.num_rows() as u64;
        chunks.push(RawChunk { batch, rows });
    }
    Ok(RawFile { chunks, malformed: Vec::new(), rows_read: next - 1, row_group_starts })
}

/// The batches of row groups `run` of a Parquet file, in order.
fn decode_row_groups(file: &InputFile, bytes: bytes::Bytes, run: Vec<usize>) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|builder| builder.with_batch_size(BATCH_ROWS).with_row_groups(run).build())
        .map_err(|error| Error::Data(format!("{}: cannot read Parquet: {error}", file.url)))?;
    reader
        .collect::<std::result::Result<Vec<RecordBatch>, _>>()
        .map_err(|error| Error::Data(format!("{}: corrupt Parquet data: {error}", file.url)))
}

/// Builds text columns batch by batch.
struct TextBatches {
    names: Vec<String>,
    builders: Vec<StringBuilder>,
    rows: Vec<u64>,
    chunks: Vec<RawChunk>,
}

impl TextBatches {
    fn new(names: Vec<String>) -> Self {
        let builders = names.iter().map(|_| StringBuilder::new()).collect();
        TextBatches { names, builders, rows: Vec::new(), chunks: Vec::new() }
    }

    fn push_row<'a>(&mut self, row: u64, values: impl Iterator<Item = Option<&'a str>>) {
        for (builder, value) in self.builders.iter_mut().zip(values) {
            builder.append_option(value);
        }
        self.rows.push(row);
        if self.rows.len() == BATCH_ROWS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let fields: Vec<Field> = self.names.iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .expect("text columns have equal lengths by construction");
        self.chunks.push(RawChunk { batch, rows: std::mem::take(&mut self.rows) });
    }

    fn finish(mut self) -> Vec<RawChunk> {
        self.flush();
        self.chunks
    }
}

/// Reads every column of a CSV file; which ones are wanted is the typing step's concern.
fn read_csv(bytes: &[u8]) -> RawFile {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(|name| name.trim().to_string()).collect(),
        Err(error) => {
            return RawFile {
                malformed: vec![Malformed {
                    row: Some(1),
                    reason: format!("unreadable CSV header: {error}"),
                    record: String::new(),
                }],
                ..RawFile::default()
            };
        }
    };
    let mut out = TextBatches::new(header.clone());
    let mut malformed = Vec::new();
    let mut rows_read = 0;
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                rows_read += 1;
                let line = record.position().map_or(line, |p| p.line());
                if record.len() != header.len() {
                    malformed.push(Malformed {
                        row: Some(line),
                        reason: format!("expected {} fields (as in the header), found {}", header.len(), record.len()),
                        record: record_text(&record),
                    });
                    continue;
                }
                match record.iter().map(std::str::from_utf8).collect::<std::result::Result<Vec<&str>, _>>() {
                    Ok(values) => out.push_row(line, values.into_iter().map(|v| (!v.is_empty()).then_some(v))),
                    Err(_) => malformed.push(Malformed {
                        row: Some(line),
                        reason: "the row is not valid UTF-8 text".into(),
                        record: record_text(&record),
                    }),
                }
            }
            Err(error) => {
                rows_read += 1;
                malformed.push(Malformed {
                    row: Some(line),
                    reason: format!("unreadable CSV row: {error}"),
                    record: String::new(),
                });
            }
        }
    }
    RawFile { chunks: out.finish(), malformed, rows_read, row_group_starts: Vec::new() }
}

/// The fields of a CSV record joined back with commas, for the quarantine table.
fn record_text(record: &csv::ByteRecord) -> String {
    record.iter().map(String::from_utf8_lossy).collect::<Vec<_>>().join(",")
}

fn read_ndjson(bytes: &[u8], columns: Option<&[String]>) -> RawFile {
    let text = String::from_utf8_lossy(bytes);
    let mut objects = Vec::new();
    let mut malformed = Vec::new();
    let mut rows_read = 0;
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        rows_read += 1;
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(object)) => objects.push((number, object)),
            Ok(_) => malformed.push(Malformed {
                row: Some(number),
                reason: "the line is not a JSON object".into(),
                record: line.into(),
            }),
            Err(error) => malformed.push(Malformed {
                row: Some(number),
                reason: format!("invalid JSON: {error}"),
                record: line.into(),
            }),
        }
    }
    let names: Vec<String> = match columns {
        Some(columns) => columns.to_vec(),
        None => {
            let mut names: Vec<String> = Vec::new();
            for (_, object) in &objects {
                for key in object.keys() {
                    if !names.contains(key) {
                        names.push(key.clone());
                    }
                }
            }
            names
        }
    };
    let mut out = TextBatches::new(names.clone());
    for (number, object) in &objects {
        let values: Vec<Option<String>> = names
            .iter()
            .map(|name| match object.get(name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            })
            .collect();
        out.push_row(*number, values.iter().map(Option::as_deref));
    }
    RawFile { chunks: out.finish(), malformed, rows_read, row_group_starts: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;

    #[test]
    fn csv_rows_keep_line_numbers_and_malformed_rows_are_set_aside() {
        let file = read_csv(b"id,amount\na,1\nb,2,extra\n\"c\nd\",3\ne,\n");
        assert_eq!(file.rows_read, 4);
        assert_eq!(file.malformed.len(), 1);
        assert_eq!(file.malformed[0].row, Some(3));
        let chunk = &file.chunks[0];
        assert_eq!(chunk.rows, [2, 4, 6]);
        assert_eq!(chunk.batch.column(0).as_string::<i32>().value(1), "c\nd");
        assert!(chunk.batch.column(1).is_null(2), "empty fields are null");
    }

    #[test]
    fn ndjson_reads_objects_and_reports_bad_lines() {
        let wanted = vec!["id".to_string(), "amount".to_string()];
        let file = read_ndjson(b"{\"id\":\"a\",\"amount\":1.5}\n[1]\n{oops\n\n{\"id\":\"b\"}\n", Some(&wanted));
        assert_eq!(file.rows_read, 4);
        assert_eq!(file.malformed.iter().map(|m| m.row).collect::<Vec<_>>(), [Some(2), Some(3)]);
        let chunk = &file.chunks[0];
        assert_eq!(chunk.rows, [1, 5]);
        assert_eq!(chunk.batch.column(1).as_string::<i32>().value(0), "1.5");
        assert!(chunk.batch.column(1).is_null(1));
    }

    #[test]
    fn parquet_row_groups_decoded_in_parallel_come_back_in_file_order() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::Int64Type;
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::WriterProperties;

        let values: ArrayRef = Arc::new((0..100).collect::<Int64Array>());
        let batch = RecordBatch::try_from_iter([("n", values)]).unwrap();
        let mut bytes = Vec::new();
        let properties = WriterProperties::builder().set_max_row_group_row_count(Some(7)).build();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let file = InputFile {
            url: "file:///t.parquet".into(),
            format: "parquet".into(),
            size: bytes.len() as u64,
            etag: None,
            last_modified: String::new(),
            path: object_store::path::Path::from("t.parquet"),
            kind: Format::Parquet,
        };
        let raw = read_parquet(&file, bytes::Bytes::from(bytes)).unwrap();
        let read: Vec<i64> =
            raw.chunks.iter().flat_map(|c| c.batch.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(read, (0..100).collect::<Vec<i64>>());
        let rows: Vec<u64> = raw.chunks.iter().flat_map(|c| c.rows.clone()).collect();
        assert_eq!(rows, (1..=100).collect::<Vec<u64>>());
        assert_eq!(raw.rows_read, 100);
        assert_eq!(raw.row_group_starts, (0..15).map(|g| 1 + 7 * g).collect::<Vec<u64>>());
    }

    #[test]
    fn binary_files_are_not_text() {
        assert!(binary_content(b"PAR1\x00\x01").is_some());
        assert!(binary_content(b"id,amount\n").is_none());
    }
}
