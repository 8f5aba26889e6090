//! The job queue on SQS: the recording callback sends, the `recording-copy`
//! function consumes (with redelivery, then a dead-letter queue).

use async_trait::async_trait;
use switchboard_model::jobs::CopyJob;
use switchboard_model::ports::{JobQueue, StoreError};

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
            .map_err(|e| StoreError::Unavailable(crate::errors::describe("SQS", "SendMessage", &e)))?;
        Ok(())
    }
}
