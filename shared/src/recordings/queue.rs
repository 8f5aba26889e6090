//! Running recording copies after the callback has been answered, so that a
//! copy cannot be lost: in AWS through an SQS queue (retried by visibility
//! timeout, then a dead-letter queue), locally through a durable queue in the
//! embedded store drained by a background worker with backoff.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::app::App;
use crate::calls::Timestamp;
use crate::ids::{CallId, RecordingSid, WorkspaceId};
use crate::recordings::copy::{self, CopyError};
use crate::store::StoreError;
use crate::store::embedded::EmbeddedStore;

/// One recording to copy into our storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyJob {
    pub workspace: WorkspaceId,
    pub call: CallId,
    pub recording: RecordingSid,
}

/// The port: hand a job to whatever runs it after the response.
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

pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, job: &CopyJob) -> Result<(), StoreError> {
        let body = serde_json::to_string(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(crate::aws::describe("SQS", "SendMessage", &e)))?;
        Ok(())
    }
}

/// A job in the local queue, with its retry state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedJob {
    pub job: CopyJob,
    pub attempts: u32,
    pub not_before: Timestamp,
}

/// After this many failed attempts a job is given up (the recording keeps its
/// `pending` status and last error; a repeated callback queues it again).
pub const MAX_ATTEMPTS: u32 = 10;

/// 2, 4, 8 … seconds, at most five minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.min(16)).min(300))
}

/// Drains the embedded store's queue for as long as the process runs: the
/// local server spawns it. Jobs survive a restart; they are removed only once
/// copied, or given up.
pub async fn run_local_worker(app: Arc<App>, queue: Arc<EmbeddedStore>) {
    let wake = queue.job_signal();
    loop {
        match run_due(&app, &queue).await {
            Ok(0) => {
                // Woken by a new job, or in a second to look for due retries.
                let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "the local job queue could not be read");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Runs every job due now, once each: a success or a hopeless failure
/// removes the job, any other failure puts it back with a later due time.
/// Returns how many ran.
pub async fn run_due(app: &App, queue: &EmbeddedStore) -> Result<usize, StoreError> {
    let started = Timestamp::now();
    let mut ran = 0;
    while let Some((key, mut queued)) = queue.due_job(started).await? {
        ran += 1;
        match copy::copy_recording(app, &queued.job).await {
            Ok(_) => queue.finish_job(&key).await?,
            Err(error) if error.is_permanent() || queued.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::error!(%error, recording = %queued.job.recording, "giving up on a recording copy");
                queue.finish_job(&key).await?;
            }
            Err(error) => {
                queued.attempts += 1;
                let delay = backoff(queued.attempts);
                tracing::warn!(%error, recording = %queued.job.recording, attempts = queued.attempts, "recording copy failed; will retry");
                queued.not_before = Timestamp::now().plus_seconds(delay.as_secs() as i64);
                queue.retry_job(&key, &queued).await?;
            }
        }
    }
    Ok(ran)
}

/// The `recording-copy` function: one SQS batch. Failed copies are reported
/// back so SQS redelivers just them; a message that is not a job, or a job
/// that can never succeed, is logged and dropped instead of retried forever.
pub async fn handle_sqs_batch(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let job = match message.body.as_deref().map(serde_json::from_str::<CopyJob>) {
            Some(Ok(job)) => job,
            _ => {
                tracing::error!(message = %id, "dropping an SQS message that is not a copy job");
                continue;
            }
        };
        // Every line of this copy's logs names what it copies.
        let span = tracing::info_span!(
            "copy",
            message = %id,
            workspace = %job.workspace,
            call = %job.call,
            recording = %job.recording,
        );
        match copy::copy_recording(app, &job).instrument(span).await {
            Ok(_) => {}
            Err(error) if error.is_permanent() => {
                tracing::error!(%error, recording = %job.recording, "dropping a copy that cannot succeed");
            }
            Err(error) => {
                tracing::warn!(%error, recording = %job.recording, "recording copy failed; SQS will retry");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

impl CopyError {
    /// Errors no retry can fix.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Unknown(_) | Self::NotConfigured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
