//! The recordings port: media streamed in by parts, never whole in memory, and
//! played back through a short-lived link (S3) or a local file (embedded).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::ports::store::StoreError;
use crate::recordings::RecordingKey;

/// What was stored: checked against what was sent before anything is deleted
/// at Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub content_type: String,
}

pub enum Playback {
    /// A presigned URL to redirect the browser to.
    Redirect(String),
    /// A file the local server streams itself (with `Range` support).
    File { path: PathBuf, content_type: String },
}

#[async_trait]
pub trait RecordingStore: Send + Sync {
    /// Starts an upload. Nothing is visible under `key` until `finish`.
    async fn begin(&self, key: &RecordingKey, content_type: &str) -> Result<Box<dyn RecordingUpload>, StoreError>;

    /// What is stored under `key`, if anything.
    async fn stat(&self, key: &RecordingKey) -> Result<Option<StoredObject>, StoreError>;

    async fn playback(&self, key: &RecordingKey, valid_for: Duration) -> Result<Playback, StoreError>;
}

/// One upload in progress. Dropping it without `finish` or `abort` may leave
/// parts behind (S3 lifecycle rules clean those up); call `abort` on failure.
#[async_trait]
pub trait RecordingUpload: Send {
    /// Adds bytes. Memory use stays bounded by the part size, whatever the total.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Makes the object visible, and says what it holds.
    async fn finish(self: Box<Self>) -> Result<StoredObject, StoreError>;

    /// Discards everything written.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}
