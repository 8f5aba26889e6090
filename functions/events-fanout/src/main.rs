//! `events-fanout`: fed by the table's DynamoDB Stream, posts every changed
//! call and message to its workspace's sockets.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::live::run_fan_out().await
}
