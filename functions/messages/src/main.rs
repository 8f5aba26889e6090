//! `messages`: the workspace's texts (`GET /messages`) and sending one (`POST /messages`).

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("messages").await
}
