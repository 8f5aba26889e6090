//! The ports: one small trait per capability the handlers need from the
//! outside world. Adapters (DynamoDB, redb, S3, local files, KMS, SQS)
//! implement them; handlers see only the traits.

pub mod events;
pub mod jobs;
pub mod recordings;
pub mod secrets;
pub mod store;

pub use events::{ChangeFeed, Connection, ConnectionStore, SocketError, Sockets};
pub use jobs::{DurableQueue, JobQueue, NoQueue};
pub use recordings::{Playback, RecordingStore, RecordingUpload, StoredObject};
pub use secrets::{SecretBox, SecretError};
pub use store::*;

use std::sync::Arc;

/// The adapters behind every port, as an entry point opened them: what the
/// application context is built from.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretBox>,
    /// `None` when no recordings store is configured (a function that
    /// neither stores nor plays recordings).
    pub recordings: Option<Arc<dyn RecordingStore>>,
    /// Where recording copies go to run after the callback is answered.
    pub jobs: Arc<dyn JobQueue>,
}
