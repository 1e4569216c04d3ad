//! Reading one input file as a stream of Arrow batches while remembering, for every
//! row, where it came from (the row number reported in errors and in the quarantine
//! table). A file is never held in memory whole: Parquet row groups are fetched and
//! decoded a few at a time (on as many tasks as there are cores, their batches handed
//! on in file order), and text files are parsed line by line, from the local file or
//! from a copy of a remote one spooled to local disk.
//!
//! Row numbers are line numbers for CSV (the header is line 1) and NDJSON, and 1-based
//! row indices for Parquet. CSV and NDJSON values are read as text and typed later, so
//! that a bad value is reported with its row and column instead of failing the file.
//!
//! Nothing is lost uncounted. A problem with a whole file or a part of it (an
//! unreadable CSV header, a Parquet row group that cannot be decoded, a file that is
//! not the format its name says) is one `Malformed` piece that stands for the rows it
//! makes unreadable, and they are counted in `rows_read`; a file whose rows cannot be
//! counted at all counts as one row and says so (`rows_unknown`). A CSV header or
//! Parquet schema that lacks a required column, or has a column that is read twice,
//! is an error in either mode: the file does not fit the source's declaration.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, TimeUnit};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::basic::Type as PhysicalType;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::{GetResultPayload, ObjectStoreExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::files::InputFile;
use crate::config::{Format, Source};
use crate::error::{Error, Result};
use crate::storage::Location;

/// The byte order mark some tools (Excel's "CSV UTF-8") put before UTF-8 text.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Pieces read ahead of the one being typed.
const PIECES_AHEAD: usize = 2;

/// How files are read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Rows per batch.
    pub batch_rows: usize,
    /// Where a remote text file is copied to be parsed.
    pub spool_dir: PathBuf,
    /// Parquet row groups decoded at once.
    pub decoders: usize,
}

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

/// What a file is read as, in file order.
pub enum Piece {
    Rows(RawChunk),
    Malformed(Malformed),
}

/// What is known of a file once it has been read.
#[derive(Debug, Default)]
pub struct Summary {
    /// Rows of the file, readable or not: those in rows pieces and those malformed
    /// pieces stand for.
    pub rows_read: u64,
    /// For Parquet: the first row number of each row group, to name the group in errors.
    pub row_group_starts: Vec<u64>,
    /// The file cannot be read at all, so how many rows it has is unknown; it counts as one.
    pub rows_unknown: bool,
}

/// A file being read: its pieces in file order, then its summary.
pub struct FileReader {
    pieces: mpsc::Receiver<Piece>,
    done: JoinHandle<Result<Summary>>,
}

impl FileReader {
    /// The next piece, or `None` when the file is read (or reading failed: see `finish`).
    pub async fn next(&mut self) -> Option<Piece> {
        self.pieces.recv().await
    }

    /// What is known of the file, or why it could not be read.
    pub async fn finish(self) -> Result<Summary> {
        drop(self.pieces);
        self.done.await.map_err(|e| Error::runtime("reading an input file", e))?
    }
}

/// Starts reading `file` of `source`.
pub fn open(location: &Location, file: &InputFile, source: &Source, options: &ReadOptions) -> FileReader {
    let (sender, pieces) = mpsc::channel(PIECES_AHEAD);
    let (location, file, source, options) = (location.clone(), file.clone(), source.clone(), options.clone());
    let done = tokio::spawn(async move {
        match file.kind {
            Format::Parquet => read_parquet(&location, &file, &source, &options, &sender).await,
            _ => read_text(&location, file, source, options, sender).await,
        }
    });
    FileReader { pieces, done }
}

/// Sends `piece`; false when nobody reads any more (the load stopped), so reading stops.
async fn send(sender: &mpsc::Sender<Piece>, piece: Piece) -> bool {
    sender.send(piece).await.is_ok()
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
fn unreadable(file: &InputFile, reason: String, head: &[u8]) -> (Piece, Summary) {
    let preview: String = String::from_utf8_lossy(&head[..head.len().min(64)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let reason = format!("not a valid {} file: {reason}", file.kind);
    let piece = Piece::Malformed(Malformed { row: None, rows: 1, reason, record: preview });
    (piece, Summary { rows_read: 1, rows_unknown: true, ..Summary::default() })
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

/// Reads a Parquet file row group by row group, decoding a few groups at once and
/// handing their batches on in file order. Each group is decoded on its own, so that a
/// corrupt one costs only its own rows (from the first batch that cannot be decoded).
async fn read_parquet(
    location: &Location,
    file: &InputFile,
    source: &Source,
    options: &ReadOptions,
    sender: &mpsc::Sender<Piece>,
) -> Result<Summary> {
    let mut reader = StoreReader { location: location.at(file.path.clone()), size: file.size };
    let metadata = match ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::default()).await {
        Ok(metadata) => int96_as_instants(metadata),
        Err(error) => {
            let head = location.store.get_range(&file.path, 0..file.size.min(64)).await.unwrap_or_default();
            let (piece, summary) = unreadable(file, error.to_string(), &head);
            send(sender, piece).await;
            return Ok(summary);
        }
    };
    let names: Vec<&str> = metadata.schema().fields().iter().map(|field| field.name().as_str()).collect();
    check_columns(source, file, &names)?;
    // Only the columns the source declares are decoded.
    let wanted: Option<Vec<usize>> = source
        .columns
        .as_ref()
        .map(|columns| (0..names.len()).filter(|&i| columns.iter().any(|c| c.file_name() == names[i])).collect());
    let projection = match wanted {
        Some(indices) => ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), indices),
        None => ProjectionMask::all(),
    };
    let groups: Vec<u64> = metadata.metadata().row_groups().iter().map(|group| group.num_rows() as u64).collect();
    let row_group_starts: Vec<u64> =
        groups.iter().scan(1, |next, rows| Some(std::mem::replace(next, *next + rows))).collect();
    let decoders = options.decoders.max(1);
    let (queue_sender, mut queue) = mpsc::channel::<mpsc::Receiver<std::result::Result<RecordBatch, String>>>(decoders);
    // Starts group decoders in file order, at most `decoders` ahead of the group being handed on.
    let starter = {
        let (reader, metadata, batch_rows) = (reader.clone(), metadata.clone(), options.batch_rows);
        let count = groups.len();
        tokio::spawn(async move {
            for group in 0..count {
                let (batches, receiver) = mpsc::channel(PIECES_AHEAD);
                if queue_sender.send(receiver).await.is_err() {
                    return;
                }
                let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), metadata.clone())
                    .with_projection(projection.clone())
                    .with_batch_size(batch_rows)
                    .with_row_groups(vec![group]);
                tokio::spawn(decode_row_group(builder, batches));
            }
        })
    };
    let mut summary = Summary { row_group_starts, ..Summary::default() };
    for (group, &rows) in groups.iter().enumerate() {
        let Some(mut batches) = queue.recv().await else { break };
        let start = summary.row_group_starts[group];
        let mut next = start;
        while let Some(decoded) = batches.recv().await {
            let piece = match decoded {
                Ok(batch) => {
                    let count = batch.num_rows() as u64;
                    next += count;
                    Piece::Rows(RawChunk { batch, rows: (next - count..next).collect() })
                }
                Err(error) => {
                    let unread = (start + rows).saturating_sub(next).max(1);
                    let last = next + unread - 1;
                    let group_rows = format!("row group {group} (rows {start} to {})", start + rows.max(1) - 1);
                    let reason = match next == start {
                        true => format!("{group_rows} cannot be decoded, so its {unread} rows are not read: {error}"),
                        false => format!(
                            "{group_rows} cannot be decoded from row {next} on, so its rows {next} to {last} are not read: {error}"
                        ),
                    };
                    next += unread;
                    Piece::Malformed(Malformed {
                        row: Some(next - unread),
                        rows: unread,
                        reason,
                        record: String::new(),
                    })
                }
            };
            if !send(sender, piece).await {
                starter.abort();
                return Ok(summary);
            }
        }
        summary.rows_read += (next - start).max(rows);
    }
    starter.abort();
    Ok(summary)
}

/// A Parquet file read through its store, range by range.
#[derive(Clone)]
struct StoreReader {
    location: Location,
    size: u64,
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        async move { Ok(self.location.store.get_range(&self.location.path, range).await?) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move { Ok(self.location.store.get_ranges(&self.location.path, &ranges).await?) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let reader =
                ParquetMetaDataReader::new().with_metadata_options(options.map(|o| o.metadata_options().clone()));
            let size = self.size;
            Ok(Arc::new(reader.load_and_finish(self, size).await?))
        }
        .boxed()
    }
}

/// Decodes one row group into `batches`; a decoding error is the last thing sent. The
/// group's bytes are fetched on the async runtime, then decoded on a blocking thread (the
/// CPU work of decompressing and decoding stays off the runtime's workers).
async fn decode_row_group(
    builder: ParquetRecordBatchStreamBuilder<StoreReader>,
    batches: mpsc::Sender<std::result::Result<RecordBatch, String>>,
) {
    let fetched = match builder.build() {
        Ok(mut stream) => stream.next_row_group().await,
        Err(error) => Err(error),
    };
    let reader = match fetched {
        Ok(Some(reader)) => reader,
        Ok(None) => return,
        Err(error) => {
            let _ = batches.send(Err(error.to_string())).await;
            return;
        }
    };
    let decoding = tokio::task::spawn_blocking(move || {
        for decoded in reader {
            let failed = decoded.is_err();
            if batches.blocking_send(decoded.map_err(|error| error.to_string())).is_err() || failed {
                return;
            }
        }
    });
    // A panic while decoding is a bug in the decoder, not bad input: let it surface.
    if let Err(error) = decoding.await
        && error.is_panic()
    {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Reads a text file (CSV or NDJSON) on a thread of its own, from the local file or from
/// a copy of a remote one spooled to `options.spool_dir` (removed when read).
async fn read_text(
    location: &Location,
    file: InputFile,
    source: Source,
    options: ReadOptions,
    sender: mpsc::Sender<Piece>,
) -> Result<Summary> {
    let fetch_error = |error: object_store::Error| Error::runtime(format!("cannot read {}", file.url), error);
    let fetched = location.store.get(&file.path).await.map_err(fetch_error)?;
    let (handle, _spooled) = match fetched.payload {
        GetResultPayload::File(handle, _) => (handle, None),
        GetResultPayload::Stream(mut stream) => {
            let spooled = tempfile::NamedTempFile::new_in(&options.spool_dir)
                .map_err(|e| Error::runtime(format!("spooling {} to {}", file.url, options.spool_dir.display()), e))?;
            let mut copy = spooled.reopen().map_err(|e| Error::runtime("spooling an input file", e))?;
            while let Some(bytes) = stream.next().await {
                std::io::Write::write_all(&mut copy, &bytes.map_err(fetch_error)?)
                    .map_err(|e| Error::runtime(format!("spooling {}", file.url), e))?;
            }
            (spooled.reopen().map_err(|e| Error::runtime("spooling an input file", e))?, Some(spooled))
        }
    };
    // The spooled copy (if any) lives until the parse is done.
    tokio::task::spawn_blocking(move || parse_text(handle, &file, &source, &options, &sender))
        .await
        .map_err(|e| Error::runtime("reading an input file", e))?
}

/// Parses an opened text file, sending its pieces.
fn parse_text(
    mut handle: std::fs::File,
    file: &InputFile,
    source: &Source,
    options: &ReadOptions,
    sender: &mpsc::Sender<Piece>,
) -> Result<Summary> {
    let io_error = |e: std::io::Error| Error::runtime(format!("cannot read {}", file.url), e);
    let mut head = Vec::with_capacity(8192);
    (&mut handle).take(8192).read_to_end(&mut head).map_err(io_error)?;
    if let Some(reason) = not_text(file.kind, &head) {
        let (piece, summary) = unreadable(file, reason, &head);
        let _ = sender.blocking_send(piece);
        return Ok(summary);
    }
    let skip = if head.starts_with(UTF8_BOM) { UTF8_BOM.len() as u64 } else { 0 };
    if head.len() as u64 == file.size && head[skip as usize..].trim_ascii().is_empty() {
        // An empty file (blank lines at most): no header, no rows.
        return Ok(Summary::default());
    }
    handle.seek(SeekFrom::Start(skip)).map_err(io_error)?;
    let text = BufReader::with_capacity(1 << 20, handle);
    let mut out = TextBatches::new(options.batch_rows, sender);
    if file.kind == Format::Csv {
        return read_csv(text, &mut out, |header| check_columns(source, file, header));
    }
    let keys: Option<Vec<String>> =
        source.columns.as_ref().map(|columns| columns.iter().map(|c| c.file_name().to_string()).collect());
    let keys = match keys {
        Some(keys) => keys,
        None => {
            // Without declared columns, every key of the file is a column: a first pass finds them.
            let mut first_pass = text;
            let keys = ndjson_keys(&mut first_pass).map_err(io_error)?;
            let mut handle = first_pass.into_inner();
            handle.seek(SeekFrom::Start(skip)).map_err(io_error)?;
            return read_ndjson(BufReader::with_capacity(1 << 20, handle), &keys, &mut out).map_err(io_error);
        }
    };
    read_ndjson(text, &keys, &mut out).map_err(io_error)
}

/// Builds text columns batch by batch and sends them on, with the malformed rows, in
/// file order.
struct TextBatches<'a> {
    names: Vec<String>,
    builders: Vec<StringBuilder>,
    rows: Vec<u64>,
    batch_rows: usize,
    sender: &'a mpsc::Sender<Piece>,
    /// Nobody reads the pieces any more: reading can stop.
    stopped: bool,
}

impl<'a> TextBatches<'a> {
    fn new(batch_rows: usize, sender: &'a mpsc::Sender<Piece>) -> Self {
        TextBatches { names: Vec::new(), builders: Vec::new(), rows: Vec::new(), batch_rows, sender, stopped: false }
    }

    /// Starts the columns `names`.
    fn columns(&mut self, names: Vec<String>) {
        self.builders = names.iter().map(|_| StringBuilder::new()).collect();
        self.names = names;
    }

    fn push_row<'v>(&mut self, row: u64, values: impl Iterator<Item = Option<&'v str>>) {
        for (builder, value) in self.builders.iter_mut().zip(values) {
            builder.append_option(value);
        }
        self.rows.push(row);
        if self.rows.len() == self.batch_rows {
            self.flush();
        }
    }

    /// Sends a malformed row, after the rows before it.
    fn malformed(&mut self, malformed: Malformed) {
        self.flush();
        self.send(Piece::Malformed(malformed));
    }

    fn flush(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let fields: Vec<Field> = self.names.iter().map(|name| Field::new(name, DataType::Utf8, true)).collect();
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .expect("text columns have equal lengths by construction");
        let rows = std::mem::take(&mut self.rows);
        self.send(Piece::Rows(RawChunk { batch, rows }));
    }

    fn send(&mut self, piece: Piece) {
        self.stopped = self.stopped || self.sender.blocking_send(piece).is_err();
    }
}

/// Reads every column of a CSV file (which ones are wanted is the typing step's
/// concern) after `check` accepts its header's names. A file with an unreadable header
/// is one malformed piece standing for all its rows.
fn read_csv(text: impl Read, out: &mut TextBatches<'_>, check: impl FnOnce(&[&str]) -> Result<()>) -> Result<Summary> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text);
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
            out.malformed(Malformed {
                row: Some(1),
                rows: rows.max(1),
                reason: format!("{reason}; its {rows} data rows are not read"),
                record: header_text,
            });
            return Ok(Summary { rows_read: rows.max(1), ..Summary::default() });
        }
    };
    check(&header.iter().map(String::as_str).collect::<Vec<_>>())?;
    out.columns(header.clone());
    let mut rows_read = 0;
    while !out.stopped {
        let line = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                rows_read += 1;
                let line = record.position().map_or(line, |p| p.line());
                if record.len() != header.len() {
                    out.malformed(Malformed {
                        row: Some(line),
                        rows: 1,
                        reason: format!("expected {} fields (as in the header), found {}", header.len(), record.len()),
                        record: record_text(&record),
                    });
                    continue;
                }
                match record.iter().map(std::str::from_utf8).collect::<std::result::Result<Vec<&str>, _>>() {
                    Ok(values) => out.push_row(line, values.into_iter().map(|v| (!v.is_empty()).then_some(v))),
                    Err(_) => out.malformed(Malformed {
                        row: Some(line),
                        rows: 1,
                        reason: "the row is not valid UTF-8 text".into(),
                        record: record_text(&record),
                    }),
                }
            }
            Err(error) => {
                rows_read += 1;
                out.malformed(Malformed {
                    row: Some(line),
                    rows: 1,
                    reason: format!("unreadable CSV row: {error}"),
                    record: String::new(),
                });
            }
        }
    }
    out.flush();
    Ok(Summary { rows_read, ..Summary::default() })
}

/// The fields of a CSV record joined back with commas, for the quarantine table.
fn record_text(record: &csv::ByteRecord) -> String {
    record.iter().map(String::from_utf8_lossy).collect::<Vec<_>>().join(",")
}

/// Every key of the JSON objects of an NDJSON file, in order of first appearance.
fn ndjson_keys(text: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    let mut line = Vec::new();
    while text.read_until(b'\n', &mut line)? > 0 {
        if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(&line) {
            for key in object.keys() {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        line.clear();
    }
    Ok(keys)
}

/// Reads the `keys` of the objects of an NDJSON file, one line at a time.
fn read_ndjson(mut text: impl BufRead, keys: &[String], out: &mut TextBatches<'_>) -> std::io::Result<Summary> {
    out.columns(keys.to_vec());
    let mut rows_read = 0;
    let mut bytes = Vec::new();
    let mut number = 0;
    while !out.stopped && text.read_until(b'\n', &mut bytes)? > 0 {
        number += 1;
        let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            bytes.clear();
            continue;
        }
        rows_read += 1;
        match std::str::from_utf8(line) {
            Err(_) => out.malformed(Malformed {
                row: Some(number),
                rows: 1,
                reason: "the line is not valid UTF-8 text".into(),
                record: String::from_utf8_lossy(line).into_owned(),
            }),
            Ok(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(object)) => {
                    let values: Vec<Option<String>> = keys
                        .iter()
                        .map(|key| match object.get(key) {
                            None | Some(serde_json::Value::Null) => None,
                            Some(serde_json::Value::String(s)) => Some(s.clone()),
                            Some(other) => Some(other.to_string()),
                        })
                        .collect();
                    out.push_row(number, values.iter().map(Option::as_deref));
                }
                Ok(_) => out.malformed(Malformed {
                    row: Some(number),
                    rows: 1,
                    reason: "the line is not a JSON object".into(),
                    record: text.into(),
                }),
                Err(error) => out.malformed(Malformed {
                    row: Some(number),
                    rows: 1,
                    reason: format!("invalid JSON: {error}"),
                    record: text.into(),
                }),
            },
        }
        bytes.clear();
    }
    out.flush();
    Ok(Summary { rows_read, ..Summary::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::{Compression, ZstdLevel};
    use datafusion::parquet::file::properties::WriterProperties;

    /// What reading produced, collected.
    #[derive(Default)]
    struct Collected {
        chunks: Vec<RawChunk>,
        malformed: Vec<Malformed>,
        summary: Summary,
    }

    impl Collected {
        fn take(&mut self, piece: Piece) {
            match piece {
                Piece::Rows(chunk) => self.chunks.push(chunk),
                Piece::Malformed(malformed) => self.malformed.push(malformed),
            }
        }

        fn rows(&self) -> Vec<u64> {
            self.chunks.iter().flat_map(|c| c.rows.clone()).collect()
        }
    }

    /// Parses text with `parse`, collecting the pieces it sends.
    fn parsed(parse: impl FnOnce(&mut TextBatches<'_>) -> Summary) -> Collected {
        let (sender, mut receiver) = mpsc::channel(1024);
        let mut out = TextBatches::new(64, &sender);
        let summary = parse(&mut out);
        drop(out);
        drop(sender);
        let mut collected = Collected { summary, ..Collected::default() };
        while let Ok(piece) = receiver.try_recv() {
            collected.take(piece);
        }
        collected
    }

    fn csv(bytes: &[u8]) -> (Collected, Vec<String>) {
        let mut header = Vec::new();
        let collected = parsed(|out| {
            read_csv(bytes, out, |names| {
                header = names.iter().map(|n| n.to_string()).collect();
                Ok(())
            })
            .unwrap()
        });
        (collected, header)
    }

    fn ndjson(bytes: &[u8], keys: &[&str]) -> Collected {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        parsed(|out| read_ndjson(bytes, &keys, out).unwrap())
    }

    #[test]
    fn csv_rows_keep_line_numbers_and_malformed_rows_are_set_aside() {
        let (file, header) = csv(b"id,amount\na,1\nb,2,extra\n\"c\nd\",3\ne,\n");
        assert_eq!(header, ["id", "amount"]);
        assert_eq!(file.summary.rows_read, 4);
        assert_eq!(file.malformed.len(), 1);
        assert_eq!(file.malformed[0].row, Some(3));
        assert_eq!(file.rows(), [2, 4, 6]);
        let texts: Vec<Option<&str>> =
            file.chunks.iter().flat_map(|c| c.batch.column(0).as_string::<i32>().iter()).collect();
        assert_eq!(texts, [Some("a"), Some("c\nd"), Some("e")]);
        let last = &file.chunks.last().unwrap().batch;
        assert!(last.column(1).is_null(last.num_rows() - 1), "empty fields are null");
    }

    #[test]
    fn text_batches_hold_at_most_the_batch_size() {
        let text: String = std::iter::once("n\n".to_string()).chain((0..150).map(|n| format!("{n}\n"))).collect();
        let (file, _) = csv(text.as_bytes());
        let sizes: Vec<usize> = file.chunks.iter().map(|c| c.batch.num_rows()).collect();
        assert_eq!(sizes, [64, 64, 22]);
        assert_eq!(file.rows(), (2..=151).collect::<Vec<u64>>());
    }

    #[test]
    fn a_csv_header_that_is_not_utf8_sets_the_whole_file_aside_counting_its_rows() {
        let (file, header) = csv(b"id,r\xe9gion\n1,north\n2,south\n3,east\n");
        assert!(header.is_empty(), "the header check is not reached");
        assert!(file.chunks.is_empty());
        assert_eq!(file.summary.rows_read, 3);
        let [problem] = file.malformed.as_slice() else { panic!("one problem for the file") };
        assert_eq!((problem.row, problem.rows), (Some(1), 3));
        assert_eq!(
            problem.reason,
            "the header is not UTF-8 text (its column 2): save the file as UTF-8; its 3 data rows are not read"
        );
        assert_eq!(problem.record, "id,r\u{fffd}gion");
    }

    #[test]
    fn ndjson_reads_objects_and_reports_bad_lines() {
        let file = ndjson(
            b"{\"id\":\"a\",\"amount\":1.5}\r\n[1]\n{oops\n\n{\"id\":\"b\"}\n{\"id\":\"r\xe9gion\"}\n",
            &["id", "amount"],
        );
        assert_eq!(file.summary.rows_read, 5);
        let rows: Vec<Option<u64>> = file.malformed.iter().map(|m| m.row).collect();
        assert_eq!(rows, [Some(2), Some(3), Some(6)]);
        assert_eq!(file.malformed[2].reason, "the line is not valid UTF-8 text");
        assert_eq!(file.malformed[2].record, "{\"id\":\"r\u{fffd}gion\"}");
        assert_eq!(file.rows(), [1, 5]);
        let amounts: Vec<Option<&str>> =
            file.chunks.iter().flat_map(|c| c.batch.column(1).as_string::<i32>().iter()).collect();
        assert_eq!(amounts, [Some("1.5"), None]);
    }

    #[test]
    fn ndjson_keys_of_every_object() {
        let keys = ndjson_keys(&mut &b"{\"b\":1,\"a\":2}\nnot json\n{\"c\":3,\"a\":4}\n"[..]).unwrap();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    /// A source reading every column as found.
    fn undeclared(name: &str) -> Source {
        Source {
            name: name.into(),
            description: None,
            url: String::new(),
            glob: None,
            format: None,
            optional: false,
            on_bad_rows: crate::config::OnBadRows::Fail,
            columns: None,
            unique: Vec::new(),
            checks: Vec::new(),
            metrics: Vec::new(),
            freshness: None,
            volume: None,
        }
    }

    /// `bytes` as a local file of `kind`, read by the source `undeclared`.
    async fn read_file(bytes: &[u8], kind: Format, batch_rows: usize) -> Collected {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join(format!("input.{kind}"));
        std::fs::write(&path, bytes).unwrap();
        let location = crate::storage::Storage::new().resolve(&path.display().to_string()).unwrap();
        let file = InputFile {
            url: location.to_string(),
            format: kind.to_string(),
            size: bytes.len() as u64,
            etag: None,
            last_modified: String::new(),
            rows_unknown: false,
            path: location.path.clone(),
            kind,
        };
        let options = ReadOptions { batch_rows, spool_dir: folder.path().to_path_buf(), decoders: 2 };
        let mut reader = open(&location, &file, &undeclared("input"), &options);
        let mut collected = Collected::default();
        while let Some(piece) = reader.next().await {
            collected.take(piece);
        }
        collected.summary = reader.finish().await.unwrap();
        collected
    }

    #[tokio::test]
    async fn a_byte_order_mark_is_not_part_of_the_first_column_name() {
        let file = read_file(b"\xEF\xBB\xBFid,amount\na,1\n", Format::Csv, 64).await;
        assert_eq!(file.chunks[0].batch.schema().field(0).name(), "id");
        let file = read_file(b"\xEF\xBB\xBF{\"id\":\"a\"}\n", Format::Ndjson, 64).await;
        assert_eq!(file.chunks[0].batch.schema().field(0).name(), "id");
    }

    #[tokio::test]
    async fn an_empty_csv_file_has_no_rows_and_no_header() {
        let file = read_file(b"\n \n", Format::Csv, 64).await;
        assert_eq!((file.summary.rows_read, file.chunks.len(), file.malformed.len()), (0, 0, 0));
    }

    #[tokio::test]
    async fn a_file_that_is_not_its_format_is_one_row_of_unknown_count() {
        let file = read_file(b"PAR1\x00\x01binary", Format::Csv, 64).await;
        assert!(file.summary.rows_unknown);
        assert_eq!(file.summary.rows_read, 1);
        let [problem] = file.malformed.as_slice() else { panic!("one problem") };
        assert_eq!(problem.row, None);
        assert!(problem.reason.starts_with("not a valid csv file: the file is Parquet"), "{}", problem.reason);
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

    /// Reads `bytes` as the Parquet file of a source without declared columns, in
    /// batches of 4 rows.
    async fn read_parquet_bytes(bytes: Vec<u8>) -> Collected {
        read_file(&bytes, Format::Parquet, 4).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parquet_row_groups_decoded_in_parallel_come_back_in_file_order() {
        let raw = read_parquet_bytes(numbers_parquet()).await;
        let read: Vec<i64> =
            raw.chunks.iter().flat_map(|c| c.batch.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(read, (0..100).collect::<Vec<i64>>());
        assert_eq!(raw.rows(), (1..=100).collect::<Vec<u64>>());
        assert!(raw.chunks.iter().all(|c| c.batch.num_rows() <= 4), "batches of at most the batch size");
        assert_eq!(raw.summary.rows_read, 100);
        assert_eq!(raw.summary.row_group_starts, (0..15).map(|g| 1 + 7 * g).collect::<Vec<u64>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_row_group_costs_its_own_rows_counted_not_the_file() {
        let mut bytes = numbers_parquet();
        let metadata =
            ArrowReaderMetadata::load(&bytes::Bytes::from(bytes.clone()), ArrowReaderOptions::default()).unwrap();
        let (start, length) = metadata.metadata().row_group(1).column(0).byte_range();
        // The compressed pages of row group 1 (rows 8 to 14), overwritten.
        let data = start as usize + length as usize / 2;
        bytes[data..start as usize + length as usize].fill(0xA5);
        let raw = read_parquet_bytes(bytes).await;
        assert_eq!(raw.summary.rows_read, 100);
        let [problem] = raw.malformed.as_slice() else { panic!("one problem: {}", raw.malformed.len()) };
        assert_eq!((problem.row, problem.rows), (Some(8), 7));
        assert!(
            problem.reason.starts_with("row group 1 (rows 8 to 14) cannot be decoded, so its 7 rows are not read: "),
            "{}",
            problem.reason
        );
        assert_eq!(raw.rows(), (1..=7).chain(15..=100).collect::<Vec<u64>>());
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
