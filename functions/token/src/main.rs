//! `token`: Twilio Voice access tokens for signed-in agents (`POST /token`).

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("token").await
}
