//! The one place that turns a location — a plain path, `file://`, `s3://`, `gs://`,
//! `az://` (also `abfs[s]://`), or `memory://` — into an object store and a path in it.
//!
//! Credentials come only from the environment or the provider's default chain
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`), never from the pipeline file, and are never
//! part of what [`Location::display`] shows; [`redact`] is the one function that
//! takes them out of anything recorded (logs, errors, the manifest, lineage events).
//!
//! Remote stores give up on a request that does not answer: see [`Timeouts`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use tracing::debug;
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

    /// On local disk, removes this folder and then up to `parents` folders above it while
    /// they are empty: object stores have no folders, but a disk keeps the empty ones a
    /// run's files were moved out of. Elsewhere (and for a folder not empty) nothing.
    pub fn remove_empty_folders(&self, parents: usize) {
        if self.base != "file://" {
            return;
        }
        let mut folder = std::path::PathBuf::from(format!("/{}", self.path));
        for _ in 0..=parents {
            if std::fs::remove_dir(&folder).is_err() || !folder.pop() {
                return;
            }
        }
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
        let host = url.host_str().unwrap_or_default();
        // In `abfss://container@account.dfs.core.windows.net/` the user part names the container.
        let base = match url.username() {
            user if keeps_user(scheme) && !user.is_empty() => format!("{scheme}://{user}@{host}"),
            _ => format!("{scheme}://{host}"),
        };
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
        // Folders emptied by deletes are removed too, as object stores have none: a run's
        // staging folder does not outlive its files.
        let local = || Ok(Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)) as Arc<dyn ObjectStore>);
        let store = self.store("file://", local)?;
        Ok(Location { store, path: object_path, base: "file://".into() })
    }

    fn store(&self, key: &str, build: impl FnOnce() -> Result<Arc<dyn ObjectStore>>) -> Result<Arc<dyn ObjectStore>> {
        let mut stores = self.stores.lock().map_err(|_| Error::Runtime("storage registry poisoned".into()))?;
        if let Some(store) = stores.get(key) {
            return Ok(Arc::clone(store));
        }
        let store = build()?;
        debug!(store = key, "object store opened");
        stores.insert(key.to_string(), Arc::clone(&store));
        Ok(store)
    }
}

/// How long a remote store may take before a request fails: a store that accepts
/// connections but never answers must fail the run (exit 4, retryable) within a
/// minute, not hold it for object_store's default retry budget of three minutes.
///
/// A request that hangs fails after `request`; failed requests are retried (with
/// backoff of at most [`Timeouts::MAX_BACKOFF`]) only while less than `retry` has
/// passed since the first attempt. So one request gives up after at most
/// `retry + MAX_BACKOFF + request`: 50 s with the defaults, and 30 s when the store
/// never answers at all (the first attempt's timeout already exceeds the budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (`FIDELIS_STORE_CONNECT_TIMEOUT`, default 5 s).
    pub connect: Duration,
    /// One request, from sending it to the end of the response body
    /// (`FIDELIS_STORE_TIMEOUT`, default 30 s, object_store's own default).
    pub request: Duration,
    /// Time after the first attempt of a request during which failures are retried
    /// (`FIDELIS_STORE_RETRY_TIMEOUT`, default 15 s).
    pub retry: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), request: Duration::from_secs(30), retry: Duration::from_secs(15) }
    }
}

impl Timeouts {
    /// The longest pause between two attempts of a request.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
    /// At most this many retries of one request, however fast they fail.
    const MAX_RETRIES: usize = 10;

    /// The timeouts set by `FIDELIS_STORE_CONNECT_TIMEOUT`, `FIDELIS_STORE_TIMEOUT` and
    /// `FIDELIS_STORE_RETRY_TIMEOUT` (e.g. `30s`, `1m 30s`, `500ms`, or plain seconds),
    /// the defaults for those not set.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut timeouts = Timeouts::default();
        for (name, field) in [
            ("FIDELIS_STORE_CONNECT_TIMEOUT", &mut timeouts.connect),
            ("FIDELIS_STORE_TIMEOUT", &mut timeouts.request),
            ("FIDELIS_STORE_RETRY_TIMEOUT", &mut timeouts.retry),
        ] {
            if let Some(text) = var(name).filter(|text| !text.trim().is_empty()) {
                *field = parse_duration(&text).map_err(|message| {
                    Error::config(
                        format!("environment variable {name}"),
                        format!("`{text}` is not a duration: {message}"),
                        "write a duration such as `30s`, `1m 30s` or `500ms` (a plain number is seconds)",
                    )
                })?;
            }
        }
        Ok(timeouts)
    }

    /// The longest a request to a remote store can take before it fails.
    pub fn worst_case(&self) -> Duration {
        self.retry + Self::MAX_BACKOFF + self.request
    }

    fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig { max_backoff: Self::MAX_BACKOFF, ..BackoffConfig::default() },
            max_retries: Self::MAX_RETRIES,
            retry_timeout: self.retry,
        }
    }

    /// `builder` with the connect and request timeouts, set through `set`, the store
    /// builder's own way to set a client option.
    fn apply<B>(&self, builder: B, set: impl Fn(B, ClientConfigKey, String) -> B) -> B {
        let builder = set(builder, ClientConfigKey::ConnectTimeout, format!("{}ms", self.connect.as_millis()));
        set(builder, ClientConfigKey::Timeout, format!("{}ms", self.request.as_millis()))
    }
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text).map_err(|error| error.to_string())?,
    };
    if duration.is_zero() {
        return Err("it must be longer than zero".into());
    }
    Ok(duration)
}

fn build_remote(scheme: &str, url: &Url) -> Result<Arc<dyn ObjectStore>> {
    let shown = redact(url.as_str());
    let timeouts = Timeouts::from_env()?;
    debug!(
        connect_timeout_ms = timeouts.connect.as_millis() as u64,
        request_timeout_ms = timeouts.request.as_millis() as u64,
        retry_timeout_ms = timeouts.retry.as_millis() as u64,
        gives_up_after_ms = timeouts.worst_case().as_millis() as u64,
        "remote store timeouts"
    );
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
            timeouts
                .apply(AmazonS3Builder::from_env(), |builder, key, value| builder.with_config(AmazonS3ConfigKey::Client(key), value))
                .with_retry(timeouts.retry_config())
                .with_url(url.as_str())
                .build()
                .map_err(failed("S3", "AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT, AWS_ALLOW_HTTP for S3-compatible servers)"))?,
        ),
        "gs" => Arc::new(
            timeouts
                .apply(GoogleCloudStorageBuilder::from_env(), |builder, key, value| builder.with_config(GoogleConfigKey::Client(key), value))
                .with_retry(timeouts.retry_config())
                .with_url(url.as_str())
                .build()
                .map_err(failed("Google Cloud Storage", "GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT"))?,
        ),
        "az" | "azure" | "abfs" | "abfss" | "adl" => Arc::new(
            timeouts
                .apply(MicrosoftAzureBuilder::from_env(), |builder, key, value| builder.with_config(AzureConfigKey::Client(key), value))
                .with_retry(timeouts.retry_config())
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
    Ok(lexically_normal(&absolute))
}

/// `path` with `.` and `..` resolved lexically: `a/b/../c` as `a/c`, `/..` as `/`; a
/// relative path keeps the `..` it cannot resolve (`../a`). The one place fidelis
/// normalises paths, for the paths it opens and those its messages show.
pub fn lexically_normal(path: &std::path::Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir if normal.file_name().is_some() => {
                normal.pop();
            }
            Component::ParentDir if normal.has_root() => {}
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

/// `text` as it may be recorded — in logs, errors, the manifest, lineage events, the
/// report: every URL in it without a password, a user name (except where it names an
/// Azure container) or a query string (SAS tokens, signed URLs). `text` may be a
/// single location or a message quoting some.
pub fn redact(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let scheme = &rest[scheme_start..at];
        let after = &rest[at + 3..];
        let end =
            after.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>')).unwrap_or(after.len());
        shown.push_str(&rest[..at + 3]);
        if scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
            shown.push_str(&redact_after_scheme(scheme, &after[..end]));
        } else {
            shown.push_str(&after[..end]);
        }
        rest = &after[end..];
    }
    shown.push_str(rest);
    shown
}

/// `user:password@host/path?query#fragment` without the credentials and the query.
fn redact_after_scheme(scheme: &str, url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, rest) = url.split_at(authority_end);
    let mut shown = String::with_capacity(url.len());
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            if keeps_user(scheme) && !user.is_empty() {
                shown.push_str(user);
                shown.push('@');
            }
            shown.push_str(host);
        }
        None => shown.push_str(authority),
    }
    match rest.split_once('?') {
        Some((path, query)) => {
            shown.push_str(path);
            if let Some((_, fragment)) = query.split_once('#') {
                shown.push('#');
                shown.push_str(fragment);
            }
        }
        None => shown.push_str(rest),
    }
    shown
}

/// Schemes whose URL's user part is no credential but the Azure container.
fn keeps_user(scheme: &str) -> bool {
    matches!(scheme.to_ascii_lowercase().as_str(), "abfs" | "abfss" | "wasb" | "wasbs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_lexically_in_one_way() {
        let normal = |p: &str| lexically_normal(std::path::Path::new(p)).display().to_string();
        assert_eq!(normal("pipelines/../sql/./marts/rfm.sql"), "sql/marts/rfm.sql");
        assert_eq!(normal("../data/x"), "../data/x", "a relative path keeps what it cannot resolve");
        assert_eq!(normal("a/../../b"), "../b");
        assert_eq!(normal("/work/a/../../../b"), "/b", "nothing is above the root");
    }

    #[test]
    fn redact_removes_credentials_and_tokens() {
        assert_eq!(redact("s3://key:secret@bucket/data?sig=abc"), "s3://bucket/data");
        assert_eq!(redact("https://user:p%40ss@host:9000/x?token=1#part"), "https://host:9000/x#part");
        assert_eq!(redact("gs://token@bucket"), "gs://bucket");
        assert_eq!(redact("data/sample"), "data/sample");
        assert_eq!(redact("file:///tmp/out"), "file:///tmp/out");
    }

    #[test]
    fn redact_finds_every_url_in_a_message() {
        assert_eq!(
            redact(
                "--set input=s3://k:secret@raw/x: not found; output `az://acct:key@c/y?sv=1&sig=2`, \"http://u:p@h\""
            ),
            "--set input=s3://raw/x: not found; output `az://c/y`, \"http://h\""
        );
        assert_eq!(redact("no URL here: a://"), "no URL here: a://");
    }

    #[test]
    fn redact_keeps_the_azure_container() {
        assert_eq!(
            redact("abfss://container:key@account.dfs.core.windows.net/raw?sig=x"),
            "abfss://container@account.dfs.core.windows.net/raw"
        );
    }

    #[test]
    fn timeouts_come_from_the_environment_with_defaults() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
        };
        assert_eq!(Timeouts::from_vars(vars(&[])).unwrap(), Timeouts::default());
        let set = Timeouts::from_vars(vars(&[
            ("FIDELIS_STORE_CONNECT_TIMEOUT", "2"),
            ("FIDELIS_STORE_TIMEOUT", "1m 30s"),
            ("FIDELIS_STORE_RETRY_TIMEOUT", "500ms"),
        ]))
        .unwrap();
        assert_eq!(
            set,
            Timeouts {
                connect: Duration::from_secs(2),
                request: Duration::from_secs(90),
                retry: Duration::from_millis(500)
            }
        );
        let error = Timeouts::from_vars(vars(&[("FIDELIS_STORE_TIMEOUT", "soon")])).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::exit_code::CONFIG);
        assert!(
            error.to_string().contains("environment variable FIDELIS_STORE_TIMEOUT: `soon` is not a duration"),
            "{error}"
        );
        assert!(Timeouts::from_vars(vars(&[("FIDELIS_STORE_TIMEOUT", "0s")])).is_err());
    }

    #[test]
    fn a_hung_store_fails_a_request_within_a_minute_by_default() {
        assert_eq!(Timeouts::default().worst_case(), Duration::from_secs(50));
    }

    #[test]
    fn azure_containers_of_one_account_get_stores_of_their_own() {
        let storage = Storage::new();
        let a = storage.resolve("abfss://first@account.dfs.core.windows.net/x").unwrap();
        let b = storage.resolve("abfss://second@account.dfs.core.windows.net/x").unwrap();
        assert!(!Arc::ptr_eq(&a.store, &b.store));
        assert_eq!(a.to_string(), "abfss://first@account.dfs.core.windows.net/x");
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
