//! `recording-copy`: copies recordings from Twilio into S3, fed by the SQS queue
//! the recording callback fills.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run_recording_copier().await
}
