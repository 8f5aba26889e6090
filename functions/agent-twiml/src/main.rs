//! `agent-twiml`: the TwiML App's Voice URL; the agent's browser joins its conference.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("agent-twiml").await
}
