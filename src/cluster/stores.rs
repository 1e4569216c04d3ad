//! The object stores of a cluster's processes: every node reaches a URL's store the way
//! a local run does, through [`Storage`] (credentials from the node's environment).

use std::fmt;
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use url::Url;

use crate::storage::Storage;

/// DataFusion's object store registry over [`Storage`]: a store registered explicitly
/// (the local file system is), or else the one `storage` opens for the URL.
pub struct StoreRegistry {
    registered: DefaultObjectStoreRegistry,
    storage: Arc<Storage>,
}

impl StoreRegistry {
    /// A registry opening stores through `storage`.
    pub fn new(storage: Arc<Storage>) -> Self {
        StoreRegistry { registered: DefaultObjectStoreRegistry::new(), storage }
    }
}

impl fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreRegistry({:?}, then fidelis's storage)", self.registered)
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.registered.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.registered.get_store(url).or_else(|_| {
            let location = self.storage.resolve(url.as_str()).map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok(location.store)
        })
    }
}
