//! `calls`: the call log, call control and playback (`/calls`, `/calls/{callId}`, notes, hold, hangup, recording).

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("calls").await
}
