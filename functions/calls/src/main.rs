//! `calls`: the call log and call control (`/calls`, `/calls/{callId}`, hold, hangup).

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("calls").await
}
