//! `status-callback`: call progress and conference events drive the session.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("status-callback").await
}
