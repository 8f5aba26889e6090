//! Live events: every change to a call session or a message, pushed whole to
//! the sockets of the browsers signed in to its workspace (`views::event`).
//!
//! On the local server the embedded store's change feed drives a [`Hub`]:
//! one broadcast channel per workspace that has sockets, each frame
//! serialised once. In AWS the table's DynamoDB Stream drives [`fan_out`],
//! which posts to the workspace's stored connections; `$connect`,
//! `$disconnect` and `$default` are [`connect`], [`disconnect`] and
//! [`on_message`]. Either way the webhook that made a change never waits on
//! a browser.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::auth::{AuthError, Authenticator};
use crate::ids::WorkspaceId;
use crate::model::changes::Change;
use crate::ports::{Connection, ConnectionStore, SocketError, Sockets, StoreError};
use crate::telemetry::error_chain;
use crate::time::Timestamp;
use crate::views;

/// API Gateway closes every WebSocket after two hours; clients reconnect.
pub const SOCKET_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);
/// The answer to `{"action":"ping"}`.
pub const PONG: &str = r#"{"type":"pong"}"#;
/// How many sockets the fan-out posts to at once.
const FAN_OUT_CONCURRENCY: usize = 32;

/// One change, serialised once for every socket of its workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub workspace: WorkspaceId,
    pub text: Arc<str>,
}

impl Frame {
    pub fn of(change: &Change) -> Self {
        Self {
            workspace: change.workspace().clone(),
            text: views::event(change).to_string().into(),
        }
    }
}

/// Whether a message from a client is a keep-alive: `{"action":"ping"}`.
pub fn is_ping(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v["action"] == "ping")
}

/// When a socket signed in by a token expiring at `token_expires_at` must
/// close: then, or at API Gateway's limit, whichever comes first.
pub fn closes_at(token_expires_at: Timestamp, now: Timestamp) -> Timestamp {
    token_expires_at.min(now.plus_seconds(SOCKET_LIFETIME.as_secs() as i64))
}

// ---------------------------------------------------------------------------
// The local server

/// Frames for the local server's sockets: a broadcast channel per workspace
/// with at least one socket. Each socket's receiver holds at most `capacity`
/// frames it has not taken yet; one that falls further behind is told it
/// lagged, and its socket is closed (it catches up after reconnecting), so a
/// slow browser never slows the others or the webhooks.
pub struct Hub {
    channels: Mutex<HashMap<WorkspaceId, broadcast::Sender<Arc<Frame>>>>,
    capacity: usize,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn subscribe(&self, workspace: &WorkspaceId) -> broadcast::Receiver<Arc<Frame>> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .entry(workspace.clone())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Sends the change to its workspace's sockets, if it has any.
    pub fn publish(&self, change: &Change) {
        let channel = {
            let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
            let workspace = change.workspace();
            let Some(channel) = channels.get(workspace) else { return };
            if channel.receiver_count() == 0 {
                // Its last socket closed: forget the channel.
                channels.remove(workspace);
                return;
            }
            channel.clone()
        };
        // Serialised outside the lock: other workspaces' sockets subscribe meanwhile.
        let _ = channel.send(Arc::new(Frame::of(change)));
    }

    /// Forwards a store's change feed to the sockets, for as long as the feed
    /// lasts. If the hub itself falls behind the feed, the changes it missed
    /// are gone for the live sockets; they are in the store, and a client
    /// lists them with `updatedAfter` (the README's reconnect loop).
    pub async fn run(&self, mut feed: broadcast::Receiver<Change>) {
        loop {
            match feed.recv().await {
                Ok(change) => self.publish(&change),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "live events fell behind the store's changes");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// AWS: the WebSocket API's routes and the stream's fan-out

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("the connections could not be stored or read")]
    Store(#[from] StoreError),
    #[error("the socket could not be reached")]
    Socket(#[from] SocketError),
}

/// `$connect`: the agent's token (the query string's `token`, checked as a
/// bearer token is) signs the socket in; the connection is kept until the
/// token expires, or two hours.
pub async fn connect(
    auth: &Authenticator,
    connections: &dyn ConnectionStore,
    connection_id: &str,
    token: Option<&str>,
    now: Timestamp,
) -> Result<Connection, EventsError> {
    let agent = auth.check(token.unwrap_or_default()).await?;
    let connection = Connection {
        id: connection_id.to_owned(),
        workspace: agent.workspace,
        agent: agent.id,
        expires_at: closes_at(agent.expires_at, now),
    };
    connections.put_connection(&connection).await?;
    tracing::info!(workspace = %connection.workspace, connection = connection_id, "a socket connected");
    Ok(connection)
}

/// `$disconnect` (best effort: API Gateway may not send it; the TTL and the
/// fan-out clean up after it).
pub async fn disconnect(connections: &dyn ConnectionStore, connection_id: &str) -> Result<(), EventsError> {
    if let Some(connection) = connections.get_connection(connection_id).await? {
        connections.delete_connection(&connection).await?;
    }
    Ok(())
}

/// `$default`: a client's message. A ping is answered with a pong, unless
/// the socket's time is up: then it is closed.
pub async fn on_message(
    connections: &dyn ConnectionStore,
    sockets: &dyn Sockets,
    connection_id: &str,
    body: &str,
    now: Timestamp,
) -> Result<(), EventsError> {
    let Some(connection) = connections.get_connection(connection_id).await? else {
        // Not one of ours (any more): close it.
        return close_quietly(sockets, connection_id).await;
    };
    if connection.expires_at <= now {
        close_quietly(sockets, connection_id).await?;
        connections.delete_connection(&connection).await?;
        return Ok(());
    }
    if is_ping(body) {
        match sockets.send(connection_id, PONG).await {
            Ok(()) => {}
            Err(SocketError::Gone) => connections.delete_connection(&connection).await?,
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

async fn close_quietly(sockets: &dyn Sockets, connection_id: &str) -> Result<(), EventsError> {
    match sockets.close(connection_id).await {
        Ok(()) | Err(SocketError::Gone) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    pub sent: usize,
    /// Gone (410) or expired: closed and forgotten.
    pub removed: usize,
    pub failed: usize,
}

/// Posts one change to every live socket of its workspace; forgets the ones
/// that are gone, and closes and forgets the expired ones.
pub async fn fan_out(
    connections: &dyn ConnectionStore,
    sockets: &dyn Sockets,
    change: &Change,
    now: Timestamp,
) -> Result<FanOut, EventsError> {
    let targets = connections.workspace_connections(change.workspace()).await?;
    if targets.is_empty() {
        // Most changes are of workspaces with no browser open: nothing to serialise.
        return Ok(FanOut::default());
    }
    let frame = Frame::of(change);
    let outcomes: Vec<Outcome> = futures_util::stream::iter(targets)
        .map(|connection| deliver(connections, sockets, &frame, connection, now))
        .buffer_unordered(FAN_OUT_CONCURRENCY)
        .collect()
        .await;
    let mut fan_out = FanOut::default();
    for outcome in outcomes {
        match outcome {
            Outcome::Sent => fan_out.sent += 1,
            Outcome::Removed => fan_out.removed += 1,
            Outcome::Failed => fan_out.failed += 1,
        }
    }
    Ok(fan_out)
}

enum Outcome {
    Sent,
    Removed,
    Failed,
}

async fn deliver(
    connections: &dyn ConnectionStore,
    sockets: &dyn Sockets,
    frame: &Frame,
    connection: Connection,
    now: Timestamp,
) -> Outcome {
    let result = if connection.expires_at <= now {
        close_quietly(sockets, &connection.id).await.map(|()| false)
    } else {
        match sockets.send(&connection.id, &frame.text).await {
            Ok(()) => Ok(true),
            Err(SocketError::Gone) => Ok(false),
            Err(error) => Err(EventsError::from(error)),
        }
    };
    match result {
        Ok(true) => Outcome::Sent,
        Ok(false) => match connections.delete_connection(&connection).await {
            Ok(()) => Outcome::Removed,
            Err(error) => {
                tracing::warn!(connection = %connection.id, error = %error_chain(&error), "could not forget a closed socket");
                Outcome::Failed
            }
        },
        Err(error) => {
            tracing::warn!(connection = %connection.id, error = %error_chain(&error), "could not post to a socket");
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_are_recognised_and_nothing_else() {
        assert!(is_ping(r#"{"action":"ping"}"#));
        assert!(is_ping(r#"{"action": "ping", "extra": 1}"#));
        assert!(!is_ping(r#"{"action":"pong"}"#));
        assert!(!is_ping("ping"));
        assert!(!is_ping(""));
    }

    #[test]
    fn a_socket_closes_with_its_token_or_after_two_hours() {
        let now = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(closes_at(now.plus_seconds(600), now), now.plus_seconds(600));
        assert_eq!(closes_at(now.plus_seconds(86_400), now), now.plus_seconds(7200));
    }
}
