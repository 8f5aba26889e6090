//! `inbound-twiml`: numbers' Voice URL; ring the agents, then voicemail.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("inbound-twiml").await
}
