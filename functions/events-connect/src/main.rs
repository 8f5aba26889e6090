//! `events-connect`: the WebSocket API's `$connect`: signs a live-event
//! socket in with its `?token=` and keeps the connection.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::live::run_socket_route("events-connect").await
}
