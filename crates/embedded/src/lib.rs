//! Switchboard on one machine: the model's ports on a redb file (every store
//! port and a durable job queue), local files (recordings) and a local key
//! (workspace secrets). Only the local server links this crate.

pub mod owner_only;
pub mod recordings;
pub mod secrets;
pub mod store;

pub use recordings::LocalRecordings;
pub use secrets::LocalSecretBox;
pub use store::{DEFAULT_CACHE_MB, EmbeddedStore, StoreCheck, StoreOptions, check_store};

use std::path::Path;
use std::sync::Arc;

use switchboard_model::ports::{Adapters, StoreError};

/// Every adapter under one data directory: the store (`store/`), the secret
/// key (`secret.key`, created on first start) and the recordings
/// (`recordings/`). The store is also the durable job queue, which the local
/// server drains itself: it is returned on its own for that.
///
/// Everything in it is its owner's only (see [`owner_only`]): directories
/// 0700, files 0600, looser ones found there tightened.
pub fn open(data_dir: &Path) -> Result<(Adapters, Arc<EmbeddedStore>), StoreError> {
    open_with(data_dir, StoreOptions::default())
}

/// As [`open`], the store opened with `options` (its cache size).
pub fn open_with(data_dir: &Path, options: StoreOptions) -> Result<(Adapters, Arc<EmbeddedStore>), StoreError> {
    owner_only::create_dir(data_dir).map_err(|e| {
        StoreError::Unavailable(format!("cannot create the data directory {}: {e}", data_dir.display()))
    })?;
    let store = Arc::new(EmbeddedStore::open_with(&data_dir.join("store"), options)?);
    let secrets = LocalSecretBox::open_or_create(&data_dir.join("secret.key"))
        .map_err(|e| StoreError::Unavailable(format!("the secret key could not be loaded: {e}")))?;
    let recordings = LocalRecordings::open(data_dir.join("recordings"))?;
    let adapters = Adapters {
        store: store.clone(),
        secrets: Arc::new(secrets),
        recordings: Some(Arc::new(recordings)),
        jobs: store.clone(),
    };
    Ok((adapters, store))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// What `open` leaves in the data directory, and the mode each must have.
    fn expected(data: &Path) -> [(std::path::PathBuf, u32); 5] {
        [
            (data.to_path_buf(), 0o700),
            (data.join("store"), 0o700),
            (data.join("store").join("switchboard.redb"), 0o600),
            (data.join("secret.key"), 0o600),
            (data.join("recordings"), 0o700),
        ]
    }

    #[test]
    fn a_new_data_directory_is_the_owners_only() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("nested").join("data");
        let _opened = open(&data).unwrap();
        for (path, want) in expected(&data) {
            assert_eq!(mode(&path), want, "{}", path.display());
        }
        assert_eq!(mode(&root.path().join("nested")), 0o700, "a created parent too");
    }

    #[test]
    fn a_data_directory_left_open_to_others_is_tightened_on_open() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        drop(open(&data).unwrap());
        for (path, want) in expected(&data) {
            let loose = if want == 0o700 { 0o755 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
        }
        let _reopened = open(&data).unwrap();
        for (path, want) in expected(&data) {
            assert_eq!(mode(&path), want, "{}", path.display());
        }
    }
}
