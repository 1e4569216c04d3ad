//! The one place that turns a location — a plain path, `file://`, `s3://`, `gs://`,
//! `az://` (also `abfs[s]://`), or `memory://` — into an object store and a path in it.
//!
//! Credentials come only from the environment or the provider's default chain
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`), never from the pipeline file, and are never
//! part of what [`Location::display`] shows.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use url::Url;

use crate::error::{Error, Result};

/// A file or folder in some object store.
#[derive(Clone)]
pub struct Location {
    /// The store holding it, shared by every location of the same bucket.
    pub store: Arc<dyn ObjectStore>,
    /// The path inside the store.
    pub path: Path,
    /// `scheme://bucket` (or `file://`), used to show locations.
    base: String,
}

impl Location {
    /// A location below this one.
    pub fn child(&self, segment: &str) -> Location {
        Location { store: Arc::clone(&self.store), path: self.path.clone().join(segment), base: self.base.clone() }
    }

    /// The location of an object path in the same store.
    pub fn at(&self, path: Path) -> Location {
        Location { store: Arc::clone(&self.store), path, base: self.base.clone() }
    }
}

impl fmt::Display for Location {
    /// The URL without credentials, for logs, errors and the manifest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.path)
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// Resolves locations to object stores, building each store once per run.
#[derive(Default)]
pub struct Storage {
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Storage {
    /// A registry with no stores yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The store and path for `location`.
    pub fn resolve(&self, location: &str) -> Result<Location> {
        let Some((scheme, _)) = location.split_once("://") else {
            return self.local(location);
        };
        let url = Url::parse(location).map_err(|error| {
            Error::config(
                redact(location),
                format!("not a valid URL: {error}"),
                "write `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`, `file:///abs/path` or a plain path",
            )
        })?;
        if scheme == "file" {
            return self.local(url.path());
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let base = format!("{scheme}://{host}");
        let path = Path::from_url_path(url.path()).map_err(|error| {
            Error::config(
                redact(location),
                format!("invalid object path: {error}"),
                "remove empty or `..` path segments",
            )
        })?;
        let store = self.store(&base, || build_remote(scheme, &url))?;
        Ok(Location { store, path, base })
    }

    fn local(&self, path: &str) -> Result<Location> {
        let absolute = normalize(path).map_err(|message| {
            Error::config(path, message, "use an absolute path or one relative to the current folder")
        })?;
        let object_path = Path::from_absolute_path(&absolute).map_err(|error| {
            Error::config(path, format!("cannot use this path: {error}"), "use a plain file-system path")
        })?;
        let store = self.store("file://", || Ok(Arc::new(LocalFileSystem::new()) as Arc<dyn ObjectStore>))?;
        Ok(Location { store, path: object_path, base: "file://".into() })
    }

    fn store(&self, key: &str, build: impl FnOnce() -> Result<Arc<dyn ObjectStore>>) -> Result<Arc<dyn ObjectStore>> {
        let mut stores = self.stores.lock().map_err(|_| Error::Runtime("storage registry poisoned".into()))?;
        if let Some(store) = stores.get(key) {
            return Ok(Arc::clone(store));
        }
        let store = build()?;
        stores.insert(key.to_string(), Arc::clone(&store));
        Ok(store)
    }
}

fn build_remote(scheme: &str, url: &Url) -> Result<Arc<dyn ObjectStore>> {
    let shown = redact(url.as_str());
    let failed = |provider: &str, variables: &str| {
        let shown = shown.clone();
        let provider = provider.to_string();
        let variables = variables.to_string();
        move |error: object_store::Error| {
            Error::config(
                shown,
                format!("cannot configure {provider}: {error}"),
                format!("set {variables} in the environment"),
            )
        }
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => Arc::new(
            AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(failed("S3", "AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT, AWS_ALLOW_HTTP for S3-compatible servers)"))?,
        ),
        "gs" => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(failed("Google Cloud Storage", "GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT"))?,
        ),
        "az" | "azure" | "abfs" | "abfss" | "adl" => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(failed("Azure Blob Storage", "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or another AZURE_* credential)"))?,
        ),
        "memory" => Arc::new(InMemory::new()),
        other => {
            return Err(Error::config(
                shown,
                format!("unknown URL scheme `{other}`"),
                "use a plain path, file://, s3://, gs://, az:// or memory://",
            ));
        }
    };
    Ok(store)
}

/// An absolute path with `.` and `..` resolved lexically (the folder may not exist yet).
fn normalize(path: &str) -> std::result::Result<PathBuf, String> {
    let path = PathBuf::from(path);
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir().map_err(|error| format!("cannot read the current folder: {error}"))?.join(path)
    };
    let mut normalized = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                normalized.pop();
            }
            Component::CurDir => {}
            other => normalized.push(other),
        }
    }
    Ok(normalized)
}

/// A location as it may be shown: no user, password or query string (SAS tokens).
pub fn redact(location: &str) -> String {
    match Url::parse(location) {
        Ok(mut url) if location.contains("://") => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        _ => location.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_credentials_and_tokens() {
        assert_eq!(redact("s3://key:secret@bucket/data?sig=abc"), "s3://bucket/data");
        assert_eq!(redact("data/sample"), "data/sample");
    }

    #[test]
    fn plain_and_file_paths_share_one_store() {
        let storage = Storage::new();
        let a = storage.resolve("/tmp/x/../y").unwrap();
        let b = storage.resolve("file:///tmp/y").unwrap();
        assert_eq!(a.path, b.path);
        assert!(Arc::ptr_eq(&a.store, &b.store));
        assert_eq!(a.to_string(), "file:///tmp/y");
    }

    #[test]
    fn memory_stores_are_shared_by_host() {
        let storage = Storage::new();
        let a = storage.resolve("memory://test/a").unwrap();
        let b = storage.resolve("memory://test/b").unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store));
    }

    #[test]
    fn unknown_schemes_are_config_errors() {
        let error = Storage::new().resolve("ftp://host/x").err().unwrap();
        assert!(error.to_string().contains("unknown URL scheme `ftp`"), "{error}");
    }
}
