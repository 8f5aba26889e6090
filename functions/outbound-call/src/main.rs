//! `outbound-call`: start an outbound call session (`POST /calls`).

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("outbound-call").await
}
