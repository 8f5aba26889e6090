//! Handing work to whatever runs it after the response: an SQS queue in AWS,
//! a durable queue in the embedded store on the local server.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::jobs::{CopyJob, QueuedJob};
use crate::ports::store::StoreError;
use crate::time::Timestamp;

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn enqueue(&self, job: &CopyJob) -> Result<(), StoreError>;
}

/// A function that enqueues nothing is misconfigured: say so on use.
pub struct NoQueue;

#[async_trait]
impl JobQueue for NoQueue {
    async fn enqueue(&self, _job: &CopyJob) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(
            "no recording queue is configured (SWITCHBOARD_RECORDING_QUEUE_URL)".into(),
        ))
    }
}

/// A queue whose jobs survive a restart, drained by a worker in the same
/// process: a job is removed only once it is done, or given up.
#[async_trait]
pub trait DurableQueue: JobQueue {
    /// Notified whenever a job is queued.
    fn job_signal(&self) -> Arc<Notify>;

    /// The oldest job due at `now`, with its key.
    async fn due_job(&self, now: Timestamp) -> Result<Option<(String, QueuedJob)>, StoreError>;

    async fn finish_job(&self, key: &str) -> Result<(), StoreError>;

    /// Puts a job back with its new retry state.
    async fn retry_job(&self, key: &str, queued: &QueuedJob) -> Result<(), StoreError>;
}
