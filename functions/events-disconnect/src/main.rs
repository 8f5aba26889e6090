//! `events-disconnect`: the WebSocket API's `$disconnect`: forgets the connection.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::live::run_socket_route("events-disconnect").await
}
