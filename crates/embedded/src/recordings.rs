//! Recordings in a local directory, for the embedded mode.
//!
//! `<dir>/<object_key>` holds the media and `<dir>/<object_key>.json` what
//! `stat` reports (size, SHA-256, content type). An upload streams into a
//! hidden temporary file beside its final place (same filesystem, so the
//! final rename is atomic), hashing as it goes; nothing appears under the key
//! until `finish`. Directories are 0700 and files 0600 (see
//! [`crate::owner_only`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use switchboard_model::ports::{Playback, RecordingStore, RecordingUpload, StoreError, StoredObject};
use switchboard_model::recordings::RecordingKey;

/// Recordings stored as files under one directory.
#[derive(Debug, Clone)]
pub struct LocalRecordings {
    dir: PathBuf,
}

impl LocalRecordings {
    /// Recordings live under `dir`, which is created on the first upload.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Recordings under `dir`, created now as 0700, or tightened to it if it
    /// is open to others: with no access to the directory, others reach no
    /// recording below it whatever an older file's own mode. Blocks; call it
    /// once at startup.
    pub fn open(dir: PathBuf) -> Result<Self, StoreError> {
        crate::owner_only::create_dir(&dir).map_err(|e| io_error("cannot create the recording directory", &dir, e))?;
        Ok(Self { dir })
    }

    fn path_of(&self, key: &RecordingKey) -> Result<PathBuf, StoreError> {
        // Every other part of the key is a parsed id; the extension is the one
        // free-form part, so keep it from ever naming another path.
        let ext = key.extension;
        if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::Unavailable(format!(
                "unsupported recording extension {ext:?}"
            )));
        }
        Ok(self.dir.join(key.object_key()))
    }
}

/// What `stat` reads back, kept beside the media.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sidecar {
    size: u64,
    sha256: String,
    content_type: String,
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Creates directories (and their missing parents) as 0700.
fn private_dir_builder() -> tokio::fs::DirBuilder {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(crate::owner_only::DIR_MODE);
    builder
}

/// Creates a new file, 0600, for writing; fails if it exists.
async fn private_new_file(path: &Path) -> io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(crate::owner_only::FILE_MODE);
    options.open(path).await
}

/// A hidden, unique name beside `path`.
fn temp_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{suffix}", ulid::Ulid::new()))
}

#[async_trait]
impl RecordingStore for LocalRecordings {
    async fn begin(&self, key: &RecordingKey, content_type: &str) -> Result<Box<dyn RecordingUpload>, StoreError> {
        let target = self.path_of(key)?;
        if let Some(parent) = target.parent() {
            private_dir_builder()
                .create(parent)
                .await
                .map_err(|e| io_error("cannot create the recording directory", parent, e))?;
        }
        let temp = temp_path(&target, "part");
        let file = private_new_file(&temp)
            .await
            .map_err(|e| io_error("cannot create a temporary recording file", &temp, e))?;
        Ok(Box::new(LocalUpload {
            file: Some(file),
            temp: Some(temp),
            target,
            content_type: content_type.to_owned(),
            hasher: Sha256::new(),
            size: 0,
        }))
    }

    async fn stat(&self, key: &RecordingKey) -> Result<Option<StoredObject>, StoreError> {
        let path = self.path_of(key)?;
        stat_file(&path).await
    }

    async fn playback(&self, key: &RecordingKey, _valid_for: Duration) -> Result<Playback, StoreError> {
        // The local server streams the file itself, so there is no link to expire.
        let path = self.path_of(key)?;
        match stat_file(&path).await? {
            Some(object) => Ok(Playback::File {
                path,
                content_type: object.content_type,
            }),
            None => Err(StoreError::NotFound(format!("recording {}", key.object_key()))),
        }
    }
}

/// A recording is there when both its sidecar and its media are, and they agree.
async fn stat_file(path: &Path) -> Result<Option<StoredObject>, StoreError> {
    let sidecar_path = sidecar_path(path);
    let raw = match tokio::fs::read(&sidecar_path).await {
        Ok(raw) => raw,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read the recording metadata", &sidecar_path, e)),
    };
    let sidecar: Sidecar = serde_json::from_slice(&raw)
        .map_err(|e| StoreError::Corrupt(format!("recording metadata {}: {e}", sidecar_path.display())))?;
    let size = match tokio::fs::metadata(path).await {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read the recording", path, e)),
    };
    if size != sidecar.size {
        return Err(StoreError::Corrupt(format!(
            "recording {} holds {size} bytes but its metadata says {}",
            path.display(),
            sidecar.size
        )));
    }
    Ok(Some(StoredObject {
        size,
        sha256: sidecar.sha256,
        content_type: sidecar.content_type,
    }))
}

struct LocalUpload {
    /// `None` once finished or aborted.
    file: Option<tokio::fs::File>,
    /// The temporary file; `None` once it is renamed into place or removed.
    temp: Option<PathBuf>,
    target: PathBuf,
    content_type: String,
    hasher: Sha256,
    size: u64,
}

impl LocalUpload {
    async fn complete(&mut self) -> Result<StoredObject, StoreError> {
        let temp = self.temp.clone().ok_or_else(|| finished(&self.target))?;
        let mut file = self.file.take().ok_or_else(|| finished(&self.target))?;
        file.flush()
            .await
            .map_err(|e| io_error("cannot write the recording", &temp, e))?;
        file.sync_all()
            .await
            .map_err(|e| io_error("cannot flush the recording to disk", &temp, e))?;
        drop(file);

        let object = StoredObject {
            size: self.size,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
            content_type: self.content_type.clone(),
        };
        // Metadata first: media under the key always has metadata beside it.
        write_sidecar(&self.target, &object).await?;
        tokio::fs::rename(&temp, &self.target)
            .await
            .map_err(|e| io_error("cannot move the recording into place", &self.target, e))?;
        self.temp = None;
        if let Some(parent) = self.target.parent() {
            sync_dir(parent).await?;
        }
        Ok(object)
    }
}

#[async_trait]
impl RecordingUpload for LocalUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or_else(|| finished(&self.target))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error("cannot write the recording", &self.target, e))?;
        self.hasher.update(&chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<StoredObject, StoreError> {
        // On failure, dropping `self` removes the temporary file.
        self.complete().await
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        drop(self.file.take());
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        match tokio::fs::remove_file(&temp).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("cannot remove the temporary recording file", &temp, e)),
        }
    }
}

impl Drop for LocalUpload {
    /// An upload dropped without `finish` or `abort` leaves nothing behind.
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
    }
}

async fn write_sidecar(target: &Path, object: &StoredObject) -> Result<(), StoreError> {
    let sidecar = Sidecar {
        size: object.size,
        sha256: object.sha256.clone(),
        content_type: object.content_type.clone(),
    };
    let json = serde_json::to_vec(&sidecar)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode recording metadata: {e}")))?;
    let path = sidecar_path(target);
    let temp = temp_path(&path, "tmp");
    let written = async {
        let mut file = private_new_file(&temp).await?;
        file.write_all(&json).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temp, &path).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(io_error("cannot write the recording metadata", &path, e));
    }
    Ok(())
}

/// Makes a rename in `dir` survive a crash.
async fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    if cfg!(unix) {
        let file = tokio::fs::File::open(dir)
            .await
            .map_err(|e| io_error("cannot open the recording directory", dir, e))?;
        file.sync_all()
            .await
            .map_err(|e| io_error("cannot sync the recording directory", dir, e))?;
    }
    Ok(())
}

fn finished(target: &Path) -> StoreError {
    StoreError::Unavailable(format!("the upload of {} is already finished", target.display()))
}

fn io_error(what: &str, path: &Path, error: io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_model::ids::{CallId, RecordingSid, WorkspaceId};

    fn key(ext: &'static str) -> RecordingKey {
        RecordingKey {
            workspace: WorkspaceId::parse("acme").unwrap(),
            call: CallId::generate(),
            recording: RecordingSid::parse(&format!("RE{}", "ab".repeat(16))).unwrap(),
            extension: ext,
        }
    }

    /// Every file under `dir`, relative to it.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    out.push(path.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn an_upload_streams_in_and_is_described_by_stat() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().to_path_buf());
        let key = key("mp3");
        let chunks: Vec<Vec<u8>> = (0u8..40).map(|i| vec![i; 64 * 1024 + usize::from(i)]).collect();
        let all: Vec<u8> = chunks.concat();

        let mut upload = store.begin(&key, "audio/mpeg").await.unwrap();
        for chunk in &chunks {
            upload.write(Bytes::from(chunk.clone())).await.unwrap();
        }
        assert_eq!(
            store.stat(&key).await.unwrap(),
            None,
            "nothing is visible before finish"
        );
        assert!(!dir.path().join(key.object_key()).exists());

        let stored = upload.finish().await.unwrap();
        let expected = StoredObject {
            size: all.len() as u64,
            sha256: sha256_hex(&all),
            content_type: "audio/mpeg".into(),
        };
        assert_eq!(stored, expected);
        assert_eq!(store.stat(&key).await.unwrap(), Some(expected));
        assert_eq!(std::fs::read(dir.path().join(key.object_key())).unwrap(), all);
        let object_key = key.object_key();
        assert_eq!(
            files(dir.path()),
            vec![object_key.clone(), format!("{object_key}.json")],
            "no temporary files left"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn recordings_and_their_directories_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        // Created lazily by the first upload, or up front by `open`.
        let lazy = LocalRecordings::new(root.path().join("lazy"));
        let opened = LocalRecordings::open(root.path().join("opened")).unwrap();
        assert_eq!(mode(&root.path().join("opened")), 0o700);
        for store in [lazy, opened] {
            let key = key("mp3");
            let mut upload = store.begin(&key, "audio/mpeg").await.unwrap();
            upload.write(Bytes::from_static(b"ID3")).await.unwrap();
            upload.finish().await.unwrap();
            let media = store.dir.join(key.object_key());
            assert_eq!(mode(&media), 0o600, "{}", media.display());
            assert_eq!(mode(&sidecar_path(&media)), 0o600);
            let mut dir = media.parent().unwrap();
            while dir.starts_with(&store.dir) {
                assert_eq!(mode(dir), 0o700, "{}", dir.display());
                dir = dir.parent().unwrap();
            }
        }

        // A directory left open to others by an older version is tightened.
        let old = root.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        LocalRecordings::open(old.clone()).unwrap();
        assert_eq!(mode(&old), 0o700);
    }

    #[tokio::test]
    async fn an_empty_upload_is_an_empty_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().join("not-yet-created"));
        let key = key("wav");
        let stored = store.begin(&key, "audio/wav").await.unwrap().finish().await.unwrap();
        assert_eq!(stored.size, 0);
        assert_eq!(stored.sha256, sha256_hex(b""));
        assert_eq!(store.stat(&key).await.unwrap(), Some(stored));
    }

    #[tokio::test]
    async fn abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().to_path_buf());
        let key = key("mp3");
        let mut upload = store.begin(&key, "audio/mpeg").await.unwrap();
        upload.write(Bytes::from_static(b"partial")).await.unwrap();
        upload.abort().await.unwrap();
        assert_eq!(store.stat(&key).await.unwrap(), None);
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    }

    #[tokio::test]
    async fn a_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().to_path_buf());
        let key = key("mp3");
        let mut upload = store.begin(&key, "audio/mpeg").await.unwrap();
        upload.write(Bytes::from_static(b"partial")).await.unwrap();
        drop(upload);
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    }

    #[tokio::test]
    async fn a_second_upload_replaces_the_first_and_an_aborted_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().to_path_buf());
        let key = key("mp3");
        let mut first = store.begin(&key, "audio/mpeg").await.unwrap();
        first.write(Bytes::from_static(b"first")).await.unwrap();
        first.finish().await.unwrap();

        let mut aborted = store.begin(&key, "audio/wav").await.unwrap();
        aborted.write(Bytes::from_static(b"never")).await.unwrap();
        aborted.abort().await.unwrap();
        assert_eq!(store.stat(&key).await.unwrap().unwrap().sha256, sha256_hex(b"first"));

        let mut second = store.begin(&key, "audio/mpeg").await.unwrap();
        second.write(Bytes::from_static(b"second take")).await.unwrap();
        let stored = second.finish().await.unwrap();
        assert_eq!(store.stat(&key).await.unwrap(), Some(stored));
        assert_eq!(
            std::fs::read(dir.path().join(key.object_key())).unwrap(),
            b"second take"
        );
    }

    #[tokio::test]
    async fn playback_is_the_file_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().to_path_buf());
        let key = key("mp3");
        let missing = store.playback(&key, Duration::from_secs(60)).await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))));

        let mut upload = store.begin(&key, "audio/mpeg").await.unwrap();
        upload.write(Bytes::from_static(b"ID3")).await.unwrap();
        upload.finish().await.unwrap();
        match store.playback(&key, Duration::from_secs(60)).await.unwrap() {
            Playback::File { path, content_type } => {
                assert_eq!(path, dir.path().join(key.object_key()));
                assert_eq!(content_type, "audio/mpeg");
            }
            Playback::Redirect(url) => panic!("expected a file, got a redirect to {url}"),
        }
    }

    #[tokio::test]
    async fn media_without_matching_metadata_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().to_path_buf());
        let key = key("mp3");
        let path = dir.path().join(key.object_key());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"media with no metadata").unwrap();
        assert_eq!(store.stat(&key).await.unwrap(), None, "media alone was never finished");

        std::fs::write(sidecar_path(&path), b"{broken").unwrap();
        assert!(matches!(store.stat(&key).await, Err(StoreError::Corrupt(_))));
        let sidecar = r#"{"size":1,"sha256":"00","contentType":"audio/mpeg"}"#;
        std::fs::write(sidecar_path(&path), sidecar).unwrap();
        assert!(
            matches!(store.stat(&key).await, Err(StoreError::Corrupt(_))),
            "size mismatch"
        );
    }

    #[tokio::test]
    async fn a_free_form_extension_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalRecordings::new(dir.path().join("recordings"));
        for ext in ["", "mp3/../../x", ".."] {
            assert!(store.begin(&key(ext), "audio/mpeg").await.is_err(), "{ext:?}");
        }
    }
}
