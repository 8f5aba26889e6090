//! `outbound-call`: start an outbound call session (`POST /calls`).

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("outbound-call").await
}
