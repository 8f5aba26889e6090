//! `token`: Twilio Voice access tokens for signed-in agents (`POST /token`).

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("token").await
}
