//! Switchboard's AWS adapters: the model's ports on DynamoDB (every store
//! port, one table), S3 (recordings), KMS (workspace secrets) and SQS (the
//! recording copy queue). Nothing here knows a handler.

pub mod dynamodb;
pub mod errors;
pub mod kms;
pub mod s3;
pub mod sockets;
pub mod sqs;

pub use dynamodb::DynamoStore;
pub use kms::KmsSecretBox;
pub use s3::S3Recordings;
pub use sockets::ApiGatewaySockets;
pub use sqs::SqsJobQueue;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use switchboard_model::ports::{Adapters, JobQueue, NoQueue, RecordingStore};

/// Where each adapter points.
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub table: String,
    pub kms_key_id: String,
    /// Only the functions that store or play recordings have one.
    pub recordings_bucket: Option<String>,
    /// Only the function that queues recording copies has one.
    pub recording_queue_url: Option<String>,
}

/// The SDK's configuration from its own chain (region, credentials,
/// `AWS_ENDPOINT_URL`), with Switchboard's retries and timeouts
/// ([`with_limits`]): loaded once per cold start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    with_limits(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .load()
        .await
}

/// Attempts per call, the first included: a failed attempt (a 5xx, a
/// throttle, a reset, a timeout) is retried twice.
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry waits a random time up to this (full jitter), each next
/// one up to twice as long, never more than [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Opening a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of a DynamoDB, KMS or SQS call (they answer in milliseconds):
/// a hung attempt is abandoned and retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// A whole DynamoDB, KMS or SQS call, retries included. A webhook makes a
/// handful of such calls in a row and Twilio gives it 15 s: a service that
/// hangs fails the first call within this, and the webhook is answered
/// (503, or TwiML) well inside Twilio's limit.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// S3 moves recordings part by part (8 MiB): longer, and never on a
/// webhook's path (copies run after the answer).
pub const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const S3_OPERATION_TIMEOUT: Duration = Duration::from_secs(90);

/// Bounded retries with exponential backoff and jitter (the SDK's standard
/// mode, which also stops retrying when most recent attempts failed), and
/// explicit timeouts, on a configuration `loader` (the SDK's defaults leave
/// attempts and operations without a time limit).
pub fn with_limits(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader.retry_config(retry_config()).timeout_config(timeout_config())
}

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// S3's: the same connect timeout, longer attempts (see [`S3_ATTEMPT_TIMEOUT`]).
pub fn s3_timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(S3_ATTEMPT_TIMEOUT)
        .operation_timeout(S3_OPERATION_TIMEOUT)
        .build()
}

/// The adapters behind every port.
pub fn open(sdk: &aws_config::SdkConfig, resources: &AwsResources) -> Adapters {
    open_on_table(sdk, resources, table(sdk, resources))
}

/// As [`open`], the store being `table`, which the caller keeps too (the
/// live-event functions' connections): one DynamoDB client for both.
pub fn open_on_table(sdk: &aws_config::SdkConfig, resources: &AwsResources, table: DynamoStore) -> Adapters {
    let recordings = resources.recordings_bucket.as_ref().map(|bucket| {
        // Emulators behind AWS_ENDPOINT_URL serve buckets by path.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .timeout_config(s3_timeout_config())
            .build();
        Arc::new(S3Recordings::new(aws_sdk_s3::Client::from_conf(s3), bucket.clone())) as Arc<dyn RecordingStore>
    });
    let jobs: Arc<dyn JobQueue> = match &resources.recording_queue_url {
        Some(url) => Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(sdk), url.clone())),
        None => Arc::new(NoQueue),
    };
    Adapters {
        store: Arc::new(table),
        secrets: Arc::new(KmsSecretBox::new(
            aws_sdk_kms::Client::new(sdk),
            resources.kms_key_id.clone(),
        )),
        recordings,
        jobs,
    }
}

/// The table on its own: what the live-event functions keep connections in.
pub fn table(sdk: &aws_config::SdkConfig, resources: &AwsResources) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), resources.table.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hung call must give up long before Twilio's 15 s webhook limit,
    /// with room for the few calls a webhook makes in a row.
    #[test]
    fn calls_are_bounded_in_attempts_and_time() {
        let retry = retry_config();
        assert_eq!(retry.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(retry.initial_backoff(), INITIAL_BACKOFF);
        let timeouts = timeout_config();
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert!(OPERATION_TIMEOUT * 4 < Duration::from_secs(15));
        assert!(ATTEMPT_TIMEOUT * MAX_ATTEMPTS + MAX_BACKOFF * (MAX_ATTEMPTS - 1) >= OPERATION_TIMEOUT);
    }

    #[tokio::test]
    async fn the_loaded_configuration_carries_the_limits() {
        let sdk = with_limits(aws_config::defaults(aws_config::BehaviorVersion::latest()))
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        assert_eq!(sdk.retry_config().map(RetryConfig::max_attempts), Some(MAX_ATTEMPTS));
        assert_eq!(
            sdk.timeout_config().and_then(TimeoutConfig::operation_timeout),
            Some(OPERATION_TIMEOUT)
        );
    }
}
