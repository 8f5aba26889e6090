//! `agent-twiml`: the TwiML App's Voice URL; the agent's browser joins its conference.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("agent-twiml").await
}
