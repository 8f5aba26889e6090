//! `clear`: disconnect the workspace's Twilio account (`DELETE /workspace/twilio`).

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("clear").await
}
