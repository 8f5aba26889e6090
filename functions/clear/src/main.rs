//! `clear`: disconnect the workspace's Twilio account (`DELETE /workspace/twilio`).

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("clear").await
}
