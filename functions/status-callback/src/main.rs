//! `status-callback`: call progress and conference events drive the session.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("status-callback").await
}
