//! Switchboard on one machine: the model's ports on a redb file (every store
//! port and a durable job queue), local files (recordings) and a local key
//! (workspace secrets). Only the local server links this crate.

pub mod recordings;
pub mod secrets;
pub mod store;

pub use recordings::LocalRecordings;
pub use secrets::LocalSecretBox;
pub use store::EmbeddedStore;

use std::path::Path;
use std::sync::Arc;

use switchboard_model::ports::{Adapters, StoreError};

/// Every adapter under one data directory: the store (`store/`), the secret
/// key (`secret.key`, created on first start) and the recordings
/// (`recordings/`). The store is also the durable job queue, which the local
/// server drains itself: it is returned on its own for that.
pub fn open(data_dir: &Path) -> Result<(Adapters, Arc<EmbeddedStore>), StoreError> {
    let store = Arc::new(EmbeddedStore::open(&data_dir.join("store"))?);
    let secrets = LocalSecretBox::open_or_create(&data_dir.join("secret.key"))
        .map_err(|e| StoreError::Unavailable(format!("the secret key could not be loaded: {e}")))?;
    let adapters = Adapters {
        store: store.clone(),
        secrets: Arc::new(secrets),
        recordings: Some(Arc::new(LocalRecordings::new(data_dir.join("recordings")))),
        jobs: store.clone(),
    };
    Ok((adapters, store))
}
