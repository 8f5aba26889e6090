//! `inbound-twiml`: numbers' Voice URL; ring the agents, then voicemail.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("inbound-twiml").await
}
