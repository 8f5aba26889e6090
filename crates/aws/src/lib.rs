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
/// `AWS_ENDPOINT_URL`): loaded once per cold start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

/// The adapters behind every port.
pub fn open(sdk: &aws_config::SdkConfig, resources: &AwsResources) -> Adapters {
    let recordings = resources.recordings_bucket.as_ref().map(|bucket| {
        // Emulators behind AWS_ENDPOINT_URL serve buckets by path.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Arc::new(S3Recordings::new(aws_sdk_s3::Client::from_conf(s3), bucket.clone())) as Arc<dyn RecordingStore>
    });
    let jobs: Arc<dyn JobQueue> = match &resources.recording_queue_url {
        Some(url) => Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(sdk), url.clone())),
        None => Arc::new(NoQueue),
    };
    Adapters {
        store: Arc::new(table(sdk, resources)),
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
