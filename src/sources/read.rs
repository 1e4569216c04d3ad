//! Reading one input file into Arrow batches while remembering, for every row, where
//! it came from (the row number reported in errors and in the quarantine table).
//!
//! Row numbers are line numbers for CSV (the header is line 1) and NDJSON, and 1-based
//! row indices for Parquet. CSV and NDJSON values are read as text and typed later, so
//! that a bad value is reported with its row and column instead of failing the file.
//!
//! Nothing is lost uncounted. A problem with a whole file or a part of it (an
//! unreadable CSV header, a Parquet row group that cannot be decoded, a file that is
//! not the format its name says) is one `Malformed` entry that stands for the rows it
//! makes unreadable, and they are counted in `rows_read`; a file whose rows cannot be
//! counted at all counts as one row and says so (`rows_unknown`). A CSV header or
//! Parquet schema that lacks a required column, or has a column that is read twice,
//! is an error in either mode: the file does not fit the source's declaration.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::basic::Type as PhysicalType;
use object_store::ObjectStoreExt;

use super::files::InputFile;
use crate::config::{Format, Source};
use crate::error::{Error, Result};
use crate::storage::Location;

/// Rows per batch built from text formats.
const BATCH_ROWS: usize = 64 * 1024;

/// The byte order mark some tools (Excel's "CSV UTF-8") put before UTF-8 text.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A batch and the row number of each of its rows.
pub struct RawChunk {
    pub batch: RecordBatch,
    pub rows: Vec<u64>,
}

/// A row, a part of a file or a whole file that could not be read into fields.
pub struct Malformed {
    /// Where it starts: a row number, or `None` for the whole file.
    pub row: Option<u64>,
    /// How many of the file's rows it stands for: 1 for a row (or a whole file of
    /// unknown size), more for a part of a file (a row group, the rows below an
    /// unreadable header).
    pub rows: u64,
    pub reason: String,
    /// The raw text of the row (or the file's first bytes), for the quarantine table.
    pub record: String,
}

/// What reading a file produced.
#[derive(Default)]
pub struct RawFile {
    pub chunks: Vec<RawChunk>,
    pub malformed: Vec<Malformed>,
    /// Rows of the file, readable or not: those in `chunks` and those `malformed` stands for.
    pub rows_read: u64,
    /// For Parquet: the first row number of each row group, to name the group in errors.
    pub row_group_starts: Vec<u64>,
    /// The file cannot be read at all, so how many rows it has is unknown; it counts as one.
    pub rows_unknown: bool,
}

/// Reads `file` of `source`.
pub async fn read(location: &Location, file: &InputFile, source: &Source) -> Result<RawFile> {
    let fetch_error = |error: object_store::Error| Error::runtime(format!("cannot read {}", file.url), error);
    // Whole files are read at once: input files are at most a few hundred MB, and
    // one request per file is the fastest way to read object storage.
    let bytes = location.store.get(&file.path).await.map_err(fetch_error)?.bytes().await.map_err(fetch_error)?;
    if file.kind == Format::Parquet {
        let metadata = match ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::default()) {
            Ok(metadata) => metadata,
            Err(error) => return Ok(unreadable(file, error.to_string(), &bytes)),
        };
        let metadata = int96_as_instants(metadata);
        let names: Vec<&str> = metadata.schema().fields().iter().map(|field| field.name().as_str()).collect();
        check_columns(source, file, &names)?;
        return Ok(read_parquet(bytes, &metadata));
    }
    if let Some(reason) = not_text(file.kind, &bytes) {
        return Ok(unreadable(file, reason, &bytes));
    }
    if file.kind == Format::Csv {
        let (raw, header) = read_csv(&bytes);
        if !header.is_empty() {
            check_columns(source, file, &header.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        return Ok(raw);
    }
    let keys: Option<Vec<String>> =
        source.columns.as_ref().map(|columns| columns.iter().map(|c| c.file_name().to_string()).collect());
    Ok(read_ndjson(&bytes, keys.as_deref()))
}

/// INT96 timestamps (Spark's default until 3.x) hold UTC instants, as Spark writes and
/// reads them, but Arrow reads them as naive times, which typing would take for
/// wall-clock times in the pipeline's timezone: they are read as instants instead.
fn int96_as_instants(metadata: ArrowReaderMetadata) -> ArrowReaderMetadata {
    let columns = metadata.metadata().file_metadata().schema_descr().columns();
    let int96: Vec<&str> = columns
        .iter()
        .filter(|column| column.physical_type() == PhysicalType::INT96 && column.path().parts().len() == 1)
        .map(|column| column.name())
        .collect();
    if int96.is_empty() {
        return metadata;
    }
    let naive = DataType::Timestamp(TimeUnit::Nanosecond, None);
    let fields: Vec<FieldRef> = metadata
        .schema()
        .fields()
        .iter()
        .map(|field| match field.data_type() == &naive && int96.contains(&field.name().as_str()) {
            true => Arc::new(
                field.as_ref().clone().with_data_type(DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))),
            ),
            false => Arc::clone(field),
        })
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata.schema().metadata().clone()));
    let options = ArrowReaderOptions::new().with_schema(schema);
    ArrowReaderMetadata::try_new(Arc::clone(metadata.metadata()), options).unwrap_or(metadata)
}

/// Why a text file (CSV, NDJSON) is not one: Parquet files start with `PAR1`,
/// UTF-16 text with its byte order mark, text never contains NUL bytes, and an
/// NDJSON file named `.csv` starts with `{`.
fn not_text(kind: Format, bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(b"PAR1") {
        return Some("the file is Parquet, not text; set `format: parquet` or fix its extension".into());
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Some("the file is UTF-16 text; save it as UTF-8".into());
    }
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Some("the file is binary, not text (it contains NUL bytes)".into());
    }
    let text = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes).trim_ascii_start();
    if kind == Format::Csv && text.starts_with(b"{") {
        return Some(
            "it looks like NDJSON (its first line starts with `{`); set `format: ndjson` or fix its extension".into(),
        );
    }
    None
}

/// A file that cannot be read at all: one bad row, of a file whose row count is unknown.
fn unreadable(file: &InputFile, reason: String, bytes: &[u8]) -> RawFile {
    let preview: String = String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    RawFile {
        malformed: vec![Malformed {
            row: None,
            rows: 1,
            reason: format!("not a valid {} file: {reason}", file.kind),
            record: preview,
        }],
        rows_read: 1,
        rows_unknown: true,
        ..RawFile::default()
    }
}

/// Checks the column names of a file (its CSV header or Parquet schema) against the
/// source: every required column is there, and no column the source reads is there
/// twice (which one would be read?). Sources without declared columns read them all.
fn check_columns(source: &Source, file: &InputFile, found: &[&str]) -> Result<()> {
    let declared = source.columns.as_deref();
    let is_read = |name: &str| declared.is_none_or(|columns| columns.iter().any(|c| c.file_name() == name));
    let mut twice = Vec::new();
    for (index, &name) in found.iter().enumerate() {
        if !is_read(name) || found[..index].contains(&name) {
            continue;
        }
        let places: Vec<String> = (0..found.len()).filter(|&i| found[i] == name).map(|i| (i + 1).to_string()).collect();
        if places.len() > 1 {
            twice.push(format!("`{name}` (columns {})", places.join(" and ")));
        }
    }
    let missing: Vec<String> = declared
        .unwrap_or_default()
        .iter()
        .filter(|column| column.required && !found.contains(&column.file_name()))
        .map(|column| match &column.from {
            Some(from) => format!("`{}` (from `{from}`)", column.name),
            None => format!("`{}`", column.name),
        })
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        let plural = if missing.len() == 1 { "" } else { "s" };
        problems.push(format!("lacks required column{plural} {}", missing.join(", ")));
    }
    if !twice.is_empty() {
        problems.push(format!("has {} more than once", twice.join(", ")));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let csv = file.kind == Format::Csv;
    let has = if csv { "its first line (the header) has" } else { "it has" };
    let mut message =
        format!("source `{}`: {} {}; {has}: {}.", source.name, file.url, problems.join(" and "), listed(found));
    if !missing.is_empty() && csv {
        message.push_str(" A CSV file's first line must name its columns: add the header line, or map other names with `from:` in the source's `columns`.");
        if let [only] = found
            && let Some(separator) = [';', '\t', '|'].into_iter().find(|s| only.contains(*s))
        {
            message.push_str(&format!(
                " The header looks separated by `{}`: fidelis reads comma-separated files.",
                separator.escape_default()
            ));
        }
    } else if !missing.is_empty() {
        message.push_str(" Map your column names with `from:` in the source's `columns`.");
    }
    if !twice.is_empty() {
        message.push_str(" Rename the repeated columns so that each is read from one place.");
    }
    Err(Error::Data(message))
}

/// Column names for a message: at most 20, each cut to 40 characters (a headerless
/// file's first line can be anything).
fn listed(names: &[&str]) -> String {
    const SHOWN: usize = 20;
    const LONGEST: usize = 40;
    if names.is_empty() {
        return "no columns".into();
    }
    let mut shown: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|name| match name.char_indices().nth(LONGEST) {
            Some((end, _)) => format!("{}…", &name[..end]),
            None => name.to_string(),
        })
        .collect();
    if names.len() > SHOWN {
        shown.push(format!("… ({} columns in all)", names.len()));
    }
    shown.join(", ")
}

fn read_parquet(bytes: bytes::Bytes, metadata: &ArrowReaderMetadata) -> RawFile {
    let groups: Vec<u64> = metadata.metadata().row_groups().iter().map(|group| group.num_rows() as u64).collect();
    let row_group_starts: Vec<u64> =
        groups.iter().scan(1, |next, rows| Some(std::mem::replace(next, *next + rows))).collect();
    // Decompressing and decoding dominate reading a large file: its row groups are
    // decoded on every core, in contiguous runs, and put back in file order. Each
    // group is decoded on its own, so that a corrupt one costs only its own rows.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, groups.len().max(1));
    let per_thread = groups.len().div_ceil(threads).max(1);
    let decoded: Vec<std::result::Result<Vec<RecordBatch>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let run = t * per_thread..((t + 1) * per_thread).min(groups.len());
                let bytes = bytes.clone();
                scope.spawn(move || run.map(|group| decode_row_group(&bytes, metadata, group)).collect::<Vec<_>>())
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("a Parquet decoding thread panicked")).collect()
    });
    let mut raw = RawFile { row_group_starts, ..RawFile::default() };
    for (group, outcome) in decoded.into_iter().enumerate() {
        let (start, rows) = (raw.row_group_starts[group], groups[group]);
        match outcome {
            Ok(batches) => {
                let mut next = start;
                for batch in batches {
                    let count = batch.num_rows() as u64;
                    raw.chunks.push(RawChunk { batch, rows: (next..next + count).collect() });
                    next += count;
                }
                raw.rows_read += rows;
            }
            Err(error) => {
                let last = start + rows.max(1) - 1;
                raw.malformed.push(Malformed {
                    row: Some(start),
                    rows: rows.max(1),
                    reason: format!(
                        "row group {group} (rows {start} to {last}) cannot be decoded, so its {rows} rows are not read: {error}"
                    ),
                    record: String::new(),
                });
                raw.rows_read += rows.max(1);
            }
        }
    }
    raw
}

/// The batches of row group `group` of a Parquet file.
fn decode_row_group(
    bytes: &bytes::Bytes,
    metadata: &ArrowReaderMetadata,
    group: usize,
) -> std::result::Result<Vec<RecordBatch>, String> {
    ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), metadata.clone())
        .with_batch_size(BATCH_ROWS)
        .with_row_groups(vec![group])
        .build()
        .map_err(|error| error.to_string())?
        .collect::<std::result::Result<Vec<RecordBatch>, _>>()
        .map_err(|error| error.to_string())
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

/// Reads every column of a CSV file (which ones are wanted is the typing step's
/// concern), and its header's names: none for an empty file, or when the header is
/// unreadable (then the file's rows are one `Malformed` entry).
fn read_csv(bytes: &[u8]) -> (RawFile, Vec<String>) {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if bytes.trim_ascii().is_empty() {
        return (RawFile::default(), Vec::new());
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(|name| name.trim().to_string()).collect(),
        Err(error) => {
            let reason = match error.kind() {
                csv::ErrorKind::Utf8 { err, .. } => {
                    format!("the header is not UTF-8 text (its column {}): save the file as UTF-8", err.field() + 1)
                }
                _ => format!("unreadable CSV header: {error}"),
            };
            let header_text = reader.byte_headers().map(record_text).unwrap_or_default();
            // Rows cannot be matched to columns without their header: they are counted
            // and set aside with it.
            let mut rows = 0;
            while !matches!(reader.read_byte_record(&mut record), Ok(false)) {
                rows += 1;
            }
            let raw = RawFile {
                malformed: vec![Malformed {
                    row: Some(1),
                    rows: rows.max(1),
                    reason: format!("{reason}; its {rows} data rows are not read"),
                    record: header_text,
                }],
                rows_read: rows.max(1),
                ..RawFile::default()
            };
            return (raw, Vec::new());
        }
    };
    let mut out = TextBatches::new(header.clone());
    let mut malformed = Vec::new();
    let mut rows_read = 0;
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
                        rows: 1,
                        reason: format!("expected {} fields (as in the header), found {}", header.len(), record.len()),
                        record: record_text(&record),
                    });
                    continue;
                }
                match record.iter().map(std::str::from_utf8).collect::<std::result::Result<Vec<&str>, _>>() {
                    Ok(values) => out.push_row(line, values.into_iter().map(|v| (!v.is_empty()).then_some(v))),
                    Err(_) => malformed.push(Malformed {
                        row: Some(line),
                        rows: 1,
                        reason: "the row is not valid UTF-8 text".into(),
                        record: record_text(&record),
                    }),
                }
            }
            Err(error) => {
                rows_read += 1;
                malformed.push(Malformed {
                    row: Some(line),
                    rows: 1,
                    reason: format!("unreadable CSV row: {error}"),
                    record: String::new(),
                });
            }
        }
    }
    let raw = RawFile { chunks: out.finish(), malformed, rows_read, ..RawFile::default() };
    (raw, header)
}

/// The fields of a CSV record joined back with commas, for the quarantine table.
fn record_text(record: &csv::ByteRecord) -> String {
    record.iter().map(String::from_utf8_lossy).collect::<Vec<_>>().join(",")
}

fn read_ndjson(bytes: &[u8], columns: Option<&[String]>) -> RawFile {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut objects = Vec::new();
    let mut malformed = Vec::new();
    let mut rows_read = 0;
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        rows_read += 1;
        let Ok(line) = std::str::from_utf8(line) else {
            malformed.push(Malformed {
                row: Some(number),
                rows: 1,
                reason: "the line is not valid UTF-8 text".into(),
                record: String::from_utf8_lossy(line).into_owned(),
            });
            continue;
        };
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(object)) => objects.push((number, object)),
            Ok(_) => malformed.push(Malformed {
                row: Some(number),
                rows: 1,
                reason: "the line is not a JSON object".into(),
                record: line.into(),
            }),
            Err(error) => malformed.push(Malformed {
                row: Some(number),
                rows: 1,
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
    RawFile { chunks: out.finish(), malformed, rows_read, ..RawFile::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::{Compression, ZstdLevel};
    use datafusion::parquet::file::properties::WriterProperties;

    #[test]
    fn csv_rows_keep_line_numbers_and_malformed_rows_are_set_aside() {
        let (file, header) = read_csv(b"id,amount\na,1\nb,2,extra\n\"c\nd\",3\ne,\n");
        assert_eq!(header, ["id", "amount"]);
        assert_eq!(file.rows_read, 4);
        assert_eq!(file.malformed.len(), 1);
        assert_eq!(file.malformed[0].row, Some(3));
        let chunk = &file.chunks[0];
        assert_eq!(chunk.rows, [2, 4, 6]);
        assert_eq!(chunk.batch.column(0).as_string::<i32>().value(1), "c\nd");
        assert!(chunk.batch.column(1).is_null(2), "empty fields are null");
    }

    #[test]
    fn a_csv_header_that_is_not_utf8_sets_the_whole_file_aside_counting_its_rows() {
        let (file, header) = read_csv(b"id,r\xe9gion\n1,north\n2,south\n3,east\n");
        assert!(header.is_empty());
        assert!(file.chunks.is_empty());
        assert_eq!(file.rows_read, 3);
        let [problem] = file.malformed.as_slice() else { panic!("one problem for the file") };
        assert_eq!((problem.row, problem.rows), (Some(1), 3));
        assert_eq!(
            problem.reason,
            "the header is not UTF-8 text (its column 2): save the file as UTF-8; its 3 data rows are not read"
        );
        assert_eq!(problem.record, "id,r\u{fffd}gion");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_column_name() {
        let (_, header) = read_csv(b"\xEF\xBB\xBFid,amount\na,1\n");
        assert_eq!(header, ["id", "amount"]);
        let file = read_ndjson(b"\xEF\xBB\xBF{\"id\":\"a\"}\n", None);
        assert_eq!(file.chunks[0].batch.schema().field(0).name(), "id");
    }

    #[test]
    fn an_empty_csv_file_has_no_rows_and_no_header() {
        let (file, header) = read_csv(b"\n \n");
        assert!(header.is_empty());
        assert_eq!((file.rows_read, file.chunks.len(), file.malformed.len()), (0, 0, 0));
    }

    #[test]
    fn ndjson_reads_objects_and_reports_bad_lines() {
        let wanted = vec!["id".to_string(), "amount".to_string()];
        let file = read_ndjson(
            b"{\"id\":\"a\",\"amount\":1.5}\r\n[1]\n{oops\n\n{\"id\":\"b\"}\n{\"id\":\"r\xe9gion\"}\n",
            Some(&wanted),
        );
        assert_eq!(file.rows_read, 5);
        let rows: Vec<Option<u64>> = file.malformed.iter().map(|m| m.row).collect();
        assert_eq!(rows, [Some(2), Some(3), Some(6)]);
        assert_eq!(file.malformed[2].reason, "the line is not valid UTF-8 text");
        assert_eq!(file.malformed[2].record, "{\"id\":\"r\u{fffd}gion\"}");
        let chunk = &file.chunks[0];
        assert_eq!(chunk.rows, [1, 5]);
        assert_eq!(chunk.batch.column(1).as_string::<i32>().value(0), "1.5");
        assert!(chunk.batch.column(1).is_null(1));
    }

    /// A Parquet file of `n` = 0..100 in row groups of 7 rows, zstd-compressed.
    fn numbers_parquet() -> Vec<u8> {
        let values: ArrayRef = Arc::new((0..100).collect::<Int64Array>());
        let batch = RecordBatch::try_from_iter([("n", values)]).unwrap();
        let mut bytes = Vec::new();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(7))
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        bytes
    }

    fn read_parquet_bytes(bytes: Vec<u8>) -> RawFile {
        let bytes = bytes::Bytes::from(bytes);
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::default()).unwrap();
        read_parquet(bytes, &metadata)
    }

    #[test]
    fn parquet_row_groups_decoded_in_parallel_come_back_in_file_order() {
        let raw = read_parquet_bytes(numbers_parquet());
        let read: Vec<i64> =
            raw.chunks.iter().flat_map(|c| c.batch.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(read, (0..100).collect::<Vec<i64>>());
        let rows: Vec<u64> = raw.chunks.iter().flat_map(|c| c.rows.clone()).collect();
        assert_eq!(rows, (1..=100).collect::<Vec<u64>>());
        assert_eq!(raw.rows_read, 100);
        assert_eq!(raw.row_group_starts, (0..15).map(|g| 1 + 7 * g).collect::<Vec<u64>>());
    }

    #[test]
    fn a_corrupt_row_group_costs_its_own_rows_counted_not_the_file() {
        let mut bytes = numbers_parquet();
        let metadata = ArrowReaderMetadata::load(&bytes::Bytes::from(bytes.clone()), Default::default()).unwrap();
        let (start, length) = metadata.metadata().row_group(1).column(0).byte_range();
        // The compressed pages of row group 1 (rows 8 to 14), overwritten.
        let data = start as usize + length as usize / 2;
        bytes[data..start as usize + length as usize].fill(0xA5);
        let raw = read_parquet_bytes(bytes);
        assert_eq!(raw.rows_read, 100);
        let [problem] = raw.malformed.as_slice() else { panic!("one problem: {}", raw.malformed.len()) };
        assert_eq!((problem.row, problem.rows), (Some(8), 7));
        assert!(
            problem.reason.starts_with("row group 1 (rows 8 to 14) cannot be decoded, so its 7 rows are not read: "),
            "{}",
            problem.reason
        );
        let rows: Vec<u64> = raw.chunks.iter().flat_map(|c| c.rows.clone()).collect();
        assert_eq!(rows, (1..=7).chain(15..=100).collect::<Vec<u64>>());
    }

    #[test]
    fn files_that_are_not_text() {
        assert_eq!(
            not_text(Format::Csv, b"PAR1\x00\x01").as_deref(),
            Some("the file is Parquet, not text; set `format: parquet` or fix its extension")
        );
        assert_eq!(
            not_text(Format::Csv, b"\xFF\xFEi\x00d\x00").as_deref(),
            Some("the file is UTF-16 text; save it as UTF-8")
        );
        assert_eq!(
            not_text(Format::Csv, b" {\"id\": 1}\n").as_deref(),
            Some("it looks like NDJSON (its first line starts with `{`); set `format: ndjson` or fix its extension")
        );
        assert_eq!(not_text(Format::Ndjson, b"{\"id\": 1}\n"), None);
        assert_eq!(not_text(Format::Csv, b"id,amount\n"), None);
    }
}
