//! Live events: where changes come from (a feed from the embedded store on
//! the local server; DynamoDB Streams in AWS) and where they go (the sockets
//! of the browsers signed in to the workspace).

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::changes::Change;
use crate::ids::{AgentId, WorkspaceId};
use crate::ports::store::StoreError;
use crate::time::Timestamp;

/// Every change a store has made durable, as it happens (the local server's
/// live events). A receiver that falls too far behind is told it lagged.
pub trait ChangeFeed: Send + Sync {
    fn subscribe(&self) -> broadcast::Receiver<Change>;
}

/// A browser's socket to the WebSocket API (AWS), as stored between its
/// `$connect` and its `$disconnect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's connection id.
    pub id: String,
    pub workspace: WorkspaceId,
    pub agent: AgentId,
    /// When the agent's sign-in token expires, or API Gateway's two-hour
    /// limit, whichever comes first: the socket is closed then.
    pub expires_at: Timestamp,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError>;

    /// The connection, found by its id alone (`$disconnect` and `$default`
    /// carry nothing else), if it is still stored.
    async fn get_connection(&self, id: &str) -> Result<Option<Connection>, StoreError>;

    /// The workspace's connections (a query by workspace, never a scan),
    /// expired ones included: the caller closes those.
    async fn workspace_connections(&self, workspace: &WorkspaceId) -> Result<Vec<Connection>, StoreError>;

    /// Forgets a connection; forgetting one that is gone is no error.
    async fn delete_connection(&self, connection: &Connection) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The socket is closed (API Gateway's 410 `GoneException`).
    #[error("the connection is gone")]
    Gone,
    #[error("the socket could not be reached: {0}")]
    Unavailable(String),
}

/// Sends to and closes sockets of the WebSocket API.
#[async_trait]
pub trait Sockets: Send + Sync {
    async fn send(&self, connection: &str, text: &str) -> Result<(), SocketError>;
    async fn close(&self, connection: &str) -> Result<(), SocketError>;
}
