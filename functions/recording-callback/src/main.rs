//! `recording-callback`: Twilio's recording status callback; queues the copy.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("recording-callback").await
}
