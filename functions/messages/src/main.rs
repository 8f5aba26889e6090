//! `messages`: the workspace's texts (`GET /messages`) and sending one (`POST /messages`).

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("messages").await
}
