//! The REST listener: every request is recorded, may meet a fault, is
//! answered from the state, and (live) has its effects carried out.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::rest::{self, Effect, Incoming, Reply, ReplyBody};
use crate::state::FaultKind;
use crate::twilio::{Signal, Twilio};
use crate::{calls, conference, messages};

/// Largest request body read (Twilio's own limit is far below).
const MAX_BODY_BYTES: usize = 1 << 20;

/// Serves the REST API on `address` until the task is aborted.
pub(crate) async fn listen(twilio: Arc<Twilio>, address: SocketAddr) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    let refusing = Refusing {
        inner: listener,
        unreachable: twilio.unreachable.clone(),
    };
    let router = axum::Router::new().fallback(handle).with_state(twilio);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(refusing, router).await {
            tracing::error!(%error, "the simulated Twilio stopped serving");
        }
    });
    Ok((local, task))
}

async fn handle(State(twilio): State<Arc<Twilio>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return into_response(rest::twilio_error(413, 20_413, "Request body too large"));
    };
    let incoming = Incoming::read(&parts.method, &parts.uri, &parts.headers, &body);
    let refused = twilio.switches().credentials_refused;
    let (reply, effects, delay) = {
        let mut state = twilio.lock();
        state.record_request(incoming.recorded());
        if refused {
            (rest::unauthorized(), Vec::new(), None)
        } else {
            match state.take_fault(&incoming.method, &incoming.path) {
                None => {
                    let (reply, effects) = rest::handle(&mut state, &incoming);
                    (reply, effects, None)
                }
                Some(FaultKind::Status(status)) => (rest::status_error(status), Vec::new(), None),
                Some(FaultKind::Delay(delay)) => {
                    let (reply, effects) = rest::handle(&mut state, &incoming);
                    (reply, effects, Some(delay))
                }
                Some(FaultKind::DropAfterApplying) => {
                    let (_, effects) = rest::handle(&mut state, &incoming);
                    (rest::status_error(500), effects, None)
                }
            }
        }
    };
    if twilio.live {
        apply(&twilio, effects);
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    into_response(reply)
}

/// What Twilio does after a request (live mode).
fn apply(twilio: &Arc<Twilio>, effects: Vec<Effect>) {
    for effect in effects {
        let outcome = match effect {
            Effect::CallCreated(sid) => {
                calls::placed(twilio, &sid);
                continue;
            }
            Effect::CallEnded { sid, status } => {
                twilio.signal(&sid, Signal::End(status));
                continue;
            }
            Effect::CallRedirected { sid, form } => {
                calls::redirected(twilio, &sid, &form);
                continue;
            }
            Effect::MessageCreated(sid) => {
                messages::deliver(twilio, &sid);
                continue;
            }
            Effect::ConferenceRecording {
                conference,
                status,
                skip,
            } => {
                conference::recording_changed(twilio, &conference, &status, skip);
                continue;
            }
            Effect::ConferenceEnded { sid, participants } => conference::ended_via_api(twilio, &sid, &participants),
            Effect::ParticipantUpdated {
                conference,
                before,
                after,
            } => conference::participant_updated(twilio, &conference, &before, &after),
            Effect::ParticipantRemoved {
                conference,
                participant,
            } => conference::removed(twilio, &conference, &participant),
        };
        let twilio = twilio.clone();
        tokio::spawn(async move { conference::deliver(&twilio, outcome).await });
    }
}

fn into_response(reply: Reply) -> Response {
    let status = http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match reply.body {
        ReplyBody::Json(value) => ("application/json", axum::body::Body::from(value.to_string())),
        ReplyBody::Empty => ("text/plain", axum::body::Body::empty()),
        ReplyBody::Audio { content_type, bytes } => (content_type, axum::body::Body::from(bytes)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if reply.status != 204 {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    }
    response
}

/// A listener that, while `unreachable` is set, drops every connection it
/// accepts and breaks those open: Twilio cannot be reached.
struct Refusing {
    inner: TcpListener,
    unreachable: Arc<AtomicBool>,
}

impl axum::serve::Listener for Refusing {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    if self.unreachable.load(Ordering::SeqCst) {
                        drop(stream);
                        continue;
                    }
                    let guarded = Guarded {
                        stream,
                        unreachable: self.unreachable.clone(),
                    };
                    return (guarded, address);
                }
                // Out of file descriptors and the like: wait, then go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails its next read once Twilio is unreachable.
struct Guarded {
    stream: TcpStream,
    unreachable: Arc<AtomicBool>,
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.unreachable.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
