//! The local server's copy worker: drains a durable queue (the embedded
//! store's) in the background, with backoff, so a copy survives a restart.
//! In AWS, SQS and the `recording-copy` function play this part.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::ports::{DurableQueue, StoreError};
use crate::recordings::copy;
use crate::telemetry::error_chain;
use crate::time::Timestamp;

/// After this many failed attempts a job is given up (the recording keeps its
/// status and last error; a repeated callback queues it again).
pub const MAX_ATTEMPTS: u32 = 10;

/// 2, 4, 8 … seconds, at most five minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.min(16)).min(300))
}

/// Drains `queue` for as long as the process runs: the local server spawns
/// it. Jobs are removed only once done, or given up.
pub async fn run_local_worker(app: Arc<App>, queue: Arc<dyn DurableQueue>) {
    let wake = queue.job_signal();
    loop {
        match run_due(&app, queue.as_ref()).await {
            Ok(0) => {
                // Woken by a new job, or in a second to look for due retries.
                let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "the local job queue could not be read");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Runs every job due now, once each: a success or a hopeless failure
/// removes the job, any other failure puts it back with a later due time.
/// Returns how many ran.
pub async fn run_due(app: &App, queue: &dyn DurableQueue) -> Result<usize, StoreError> {
    let started = Timestamp::now();
    let mut ran = 0;
    while let Some((key, mut queued)) = queue.due_job(started).await? {
        ran += 1;
        match copy::copy_recording(app, &queued.job).await {
            Ok(_) => queue.finish_job(&key).await?,
            Err(error) if error.is_permanent() || queued.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::error!(error = %error_chain(&error), recording = %queued.job.recording, "giving up on a recording copy");
                queue.finish_job(&key).await?;
            }
            Err(error) => {
                queued.attempts += 1;
                let delay = backoff(queued.attempts);
                tracing::warn!(error = %error_chain(&error), recording = %queued.job.recording, attempts = queued.attempts, "recording copy failed; will retry");
                queued.not_before = Timestamp::now().plus_seconds(delay.as_secs() as i64);
                queue.retry_job(&key, &queued).await?;
            }
        }
    }
    Ok(ran)
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
