//! Finding a source's files: a single object, or every object below a prefix that
//! matches the source's glob and has a format.

use futures::TryStreamExt;
use globset::GlobMatcher;
use object_store::{ObjectStoreExt, path::Path};
use serde::{Deserialize, Serialize};

use crate::config::{Format, Source};
use crate::error::{Error, Result};
use crate::storage::Location;

/// One input file, as recorded in the run manifest (its fingerprint).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputFile {
    /// The file's URL, without credentials.
    pub url: String,
    /// The format it is read as.
    pub format: String,
    /// Size in bytes.
    pub size: u64,
    /// The store's entity tag, when it has one.
    pub etag: Option<String>,
    /// Last modification time, RFC 3339.
    pub last_modified: String,
    /// Present (true) when the file cannot be read at all, so its row count is
    /// unknown: it counts as one row, quarantined (or an error with `on_bad_rows: fail`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rows_unknown: bool,
    #[serde(skip)]
    pub(crate) path: Path,
    #[serde(skip, default = "listed_format")]
    pub(crate) kind: Format,
}

/// The reader of a file known only from a manifest read back, which is never loaded.
fn listed_format() -> Format {
    Format::Parquet
}

/// The files of `source` at `location`, sorted by path so runs are reproducible.
pub async fn list(source: &Source, location: &Location) -> Result<Vec<InputFile>> {
    let glob: Option<GlobMatcher> = match &source.glob {
        Some(glob) => Some(
            globset::Glob::new(glob)
                .map_err(|error| Error::config(&source.name, format!("invalid glob: {error}"), "fix `glob`"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let listing_error =
        |error: object_store::Error| Error::runtime(format!("source `{}`: cannot list {location}", source.name), error);
    // A location that is itself an object is a single-file source.
    let objects = match location.store.head(&location.path).await {
        Ok(meta) if !location.path.as_ref().is_empty() => vec![meta],
        Ok(_) | Err(object_store::Error::NotFound { .. }) => {
            location.store.list(Some(&location.path)).try_collect::<Vec<_>>().await.or_else(|error| match error {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                other => Err(listing_error(other)),
            })?
        }
        Err(error) => return Err(listing_error(error)),
    };
    let mut files = Vec::new();
    for meta in objects {
        let relative: Vec<String> = meta
            .location
            .prefix_match(&location.path)
            .map(|parts| parts.map(|part| part.as_ref().to_string()).collect())
            .unwrap_or_default();
        // Below the source's folder, `_SUCCESS`, `.crc` files and `_staging/` folders are not data.
        if relative.iter().any(|part| part.starts_with('_') || part.starts_with('.')) {
            continue;
        }
        let relative = match relative.is_empty() {
            true => meta.location.filename().unwrap_or_default().to_string(),
            false => relative.join("/"),
        };
        if glob.as_ref().is_some_and(|glob| !glob.is_match(&relative)) {
            continue;
        }
        let Some(kind) = source.format.or_else(|| Format::from_path(meta.location.as_ref())) else {
            continue;
        };
        files.push(InputFile {
            url: location.at(meta.location.clone()).to_string(),
            format: kind.to_string(),
            size: meta.size,
            etag: meta.e_tag.clone(),
            last_modified: meta.last_modified.to_rfc3339(),
            rows_unknown: false,
            path: meta.location,
            kind,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
