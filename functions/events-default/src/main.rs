//! `events-default`: the WebSocket API's `$default`: answers pings, closes
//! sockets whose sign-in expired.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::live::run_socket_route("events-default").await
}
