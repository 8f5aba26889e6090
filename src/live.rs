//! `GET /events` on the local server: the live-event WebSocket. The agent's
//! sign-in token comes as `?token=` (a browser cannot set headers on a
//! WebSocket) and is checked before the upgrade, exactly as a bearer token;
//! the socket then gets every change of the agent's workspace from the hub
//! and closes when the token expires.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard::api::ApiError;
use switchboard::events::{self, Frame, Hub, PONG};
use switchboard::time::Timestamp;
use tokio::sync::broadcast;

use crate::{State as Shared, into_axum};

/// Close codes (4000–4999 are the application's own).
const TOKEN_EXPIRED: u16 = 4001;
const TOO_SLOW: u16 = 4002;

#[derive(Deserialize)]
pub struct Token {
    token: Option<String>,
}

pub async fn events(
    State((app, _router, hub)): State<Shared>,
    Query(query): Query<Token>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let agent = match app.auth.check(query.token.as_deref().unwrap_or_default()).await {
        Ok(agent) => agent,
        Err(error) => return into_axum(ApiError::from(error).into_response(), http::HeaderMap::new()).await,
    };
    let Ok(upgrade) = upgrade else {
        return into_axum(ApiError::UpgradeRequired.into_response(), http::HeaderMap::new()).await;
    };
    let Some(hub) = hub else {
        return into_axum(
            ApiError::Unavailable("live events need the embedded store".into()).into_response(),
            http::HeaderMap::new(),
        )
        .await;
    };
    let frames = hub.subscribe(&agent.workspace);
    let closes_at = events::closes_at(agent.expires_at, Timestamp::now());
    tracing::info!(workspace = %agent.workspace, "a socket connected");
    // A socket mostly idles: small buffers (tungstenite's defaults are 128
    // KiB to read and 128 KiB to write) keep 10,000 of them near 75 MB
    // instead of 1.4 GB (benches/live.rs); frames are a few KiB at most.
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, frames, closes_at))
        .into_response()
}

/// One socket, until it closes, its token expires or it falls behind.
async fn serve(mut socket: WebSocket, mut frames: broadcast::Receiver<Arc<Frame>>, closes_at: Timestamp) {
    let left = (closes_at.unix_millis() - Timestamp::now().unix_millis()).max(0) as u64;
    let expiry = tokio::time::sleep(std::time::Duration::from_millis(left));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            () = &mut expiry => {
                close(socket, TOKEN_EXPIRED, "the sign-in token expired: sign in again and reconnect").await;
                return;
            }
            frame = frames.recv() => match frame {
                Ok(frame) => {
                    if socket.send(Message::Text(frame.text.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    close(socket, TOO_SLOW, "too far behind: reconnect and list what changed (updatedAfter)").await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) if events::is_ping(&text) => {
                    if socket.send(Message::Text(PONG.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Frames per socket a slow browser may leave untaken before it is closed.
pub const SOCKET_BUFFER: usize = 256;

pub fn hub() -> Arc<Hub> {
    Arc::new(Hub::new(SOCKET_BUFFER))
}
