//! `recording-callback`: Twilio's recording status callback; queues the copy.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("recording-callback").await
}
