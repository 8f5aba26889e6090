//! `configure`: connect and check the workspace's Twilio account, and assign
//! numbers to agents (`PUT`/`GET /workspace/twilio`, `/workspace/numbers`).

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("configure").await
}
