//! Twilio's recording media endpoint, played by a small server that really
//! streams: bodies are generated chunk by chunk, never held whole, so a test
//! can copy hundreds of megabytes and measure the copier's memory, and can cut
//! a download off half-way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

pub const CHUNK: usize = 64 * 1024;

/// How the server answers for one recording.
#[derive(Clone, Debug)]
pub enum Media {
    /// `len` bytes of audio, in 64 KiB chunks; optionally the connection
    /// breaks after `fail_after` bytes.
    Audio { len: u64, fail_after: Option<u64> },
    /// Twilio's XML error page, with a success status (it happens).
    XmlError,
}

#[derive(Default)]
struct MediaState {
    recordings: HashMap<String, Media>,
    deleted: Vec<String>,
    downloads: usize,
    failing_deletes: usize,
}

pub struct MediaServer {
    base: String,
    state: Arc<Mutex<MediaState>>,
}

impl MediaServer {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(MediaState::default()));
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Recordings/{file}",
                axum::routing::get(media).delete(delete),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    /// For `SWITCHBOARD_TWILIO_API_URL`.
    pub fn uri(&self) -> &str {
        &self.base
    }

    pub fn serve(&self, sid: &str, media: Media) {
        self.state.lock().unwrap().recordings.insert(sid.to_owned(), media);
    }

    /// The next `count` deletes answer 500 (Twilio having a bad moment).
    pub fn fail_deletes(&self, count: usize) {
        self.state.lock().unwrap().failing_deletes = count;
    }

    pub fn deleted(&self) -> Vec<String> {
        self.state.lock().unwrap().deleted.clone()
    }

    pub fn downloads(&self) -> usize {
        self.state.lock().unwrap().downloads
    }
}

/// The bytes of a recording of `len` bytes, chunk by chunk: deterministic and
/// not compressible.
pub fn chunks(len: u64) -> impl Iterator<Item = Bytes> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sent: u64 = 0;
    std::iter::from_fn(move || {
        if sent >= len {
            return None;
        }
        let n = CHUNK.min((len - sent) as usize);
        let mut chunk = Vec::with_capacity(n);
        while chunk.len() < n {
            // xorshift64*
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            chunk.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        chunk.truncate(n);
        sent += n as u64;
        Some(Bytes::from(chunk))
    })
}

/// Hex SHA-256 of [`chunks`]`(len)`.
pub fn sha256_of(len: u64) -> String {
    let mut hash = Sha256::new();
    for chunk in chunks(len) {
        hash.update(&chunk);
    }
    hex::encode(hash.finalize())
}

async fn media(
    State(state): State<Arc<Mutex<MediaState>>>,
    Path((_account, file)): Path<(String, String)>,
) -> Response {
    let Some(sid) = file.strip_suffix(".mp3") else {
        return not_found();
    };
    let found = {
        let mut state = state.lock().unwrap();
        state.downloads += 1;
        state.recordings.get(sid).cloned()
    };
    match found {
        None => not_found(),
        Some(Media::XmlError) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/xml")
            .body(Body::from(
                "<TwilioResponse><RestException><Code>20404</Code><Message>Not found</Message></RestException></TwilioResponse>",
            ))
            .unwrap(),
        Some(Media::Audio { len, fail_after }) => {
            let mut sent = 0u64;
            let stream = futures_util::stream::iter(chunks(len).map(move |chunk| {
                sent += chunk.len() as u64;
                match fail_after {
                    Some(limit) if sent > limit => Err(std::io::Error::other("connection reset")),
                    _ => Ok(chunk),
                }
            }));
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "audio/mpeg")
                .header(header::CONTENT_LENGTH, len)
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}

async fn delete(
    State(state): State<Arc<Mutex<MediaState>>>,
    Path((_account, file)): Path<(String, String)>,
) -> StatusCode {
    let Some(sid) = file.strip_suffix(".json") else {
        return StatusCode::NOT_FOUND;
    };
    let mut state = state.lock().unwrap();
    if state.failing_deletes > 0 {
        state.failing_deletes -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    match state.recordings.remove(sid) {
        Some(_) => {
            state.deleted.push(sid.to_owned());
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

fn not_found() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"code": 20404, "message": "The requested resource was not found", "status": 404}"#,
        ))
        .unwrap()
}
