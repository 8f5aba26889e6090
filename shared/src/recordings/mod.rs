//! Call recordings and voicemails: Twilio's recording callback is acknowledged
//! at once and the media is copied into our own storage afterwards, exactly
//! once, by a queued job that retries until it succeeds.

pub mod copy;
pub mod queue;

use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError, Body, Request, Response};
use crate::app::App;
use crate::auth::Agent;
use crate::calls::Timestamp;
use crate::calls::voice::{query_params, session_from_query};
use crate::ids::{CallId, RecordingSid};
use crate::store::recordings::{Playback, RecordingKey};
use crate::twilio::twiml;
use crate::webhook::{Webhook, WebhookError};

use queue::CopyJob;

/// How long a playback link stays valid.
pub const PLAYBACK_LINK_LIFETIME: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingStatus {
    /// Twilio has it; our copy is queued or being retried.
    Pending,
    /// Our copy is stored and verified.
    Stored,
    /// Twilio recorded nothing (silence, or too short).
    Absent,
    /// Twilio failed to record.
    Failed,
}

/// One recording of a call, as stored on its session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub sid: RecordingSid,
    pub status: RecordingStatus,
    /// `Conference`, `RecordVerb` (voicemail), `DialVerb`, …
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub channels: Option<u8>,
    #[serde(default)]
    pub duration_seconds: Option<u32>,
    /// Where our copy lives (`recordings/<workspace>/<callId>/<RecordingSid>.mp3`).
    #[serde(default)]
    pub object_key: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// Hex SHA-256 of the stored bytes.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Copy attempts that failed, and why the last one did.
    #[serde(default)]
    pub failed_attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Twilio's copy was deleted after ours was verified.
    #[serde(default)]
    pub twilio_deleted: bool,
    pub received_at: Timestamp,
    #[serde(default)]
    pub stored_at: Option<Timestamp>,
}

impl Recording {
    pub fn key(&self, workspace: &crate::ids::WorkspaceId, call: &CallId) -> RecordingKey {
        RecordingKey {
            workspace: workspace.clone(),
            call: call.clone(),
            recording: self.sid.clone(),
            extension: "mp3",
        }
    }
}

fn empty() -> Response {
    api::xml_response(twiml::Response::new().to_xml())
}

/// `POST /twilio/recording?callId=`: Twilio says a recording is ready (or
/// absent, or failed). Answered at once; the copy is queued. A duplicate makes
/// no second entry, and queues again only while the copy is still pending
/// (the copy itself is idempotent), so a lost enqueue is repaired by a retry.
pub async fn callback(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let params = &hook.params;
    let sid = params
        .get("RecordingSid")
        .and_then(|sid| RecordingSid::parse(sid).ok())
        .ok_or_else(|| WebhookError::BadRequest("missing or invalid RecordingSid".into()))?;
    let status = match params.get("RecordingStatus") {
        Some("completed") => RecordingStatus::Pending,
        Some("absent") => RecordingStatus::Absent,
        Some("failed") => RecordingStatus::Failed,
        // `in-progress`: nothing to do until it completes.
        Some("in-progress") => return Ok(empty()),
        other => {
            return Err(WebhookError::BadRequest(format!("unknown RecordingStatus {other:?}")));
        }
    };
    let session = session_from_query(app, &hook, &request).await?;
    let recording = Recording {
        sid: sid.clone(),
        status,
        source: params.get("RecordingSource").map(|s| s.chars().take(32).collect()),
        channels: params.get("RecordingChannels").and_then(|c| c.parse().ok()),
        duration_seconds: params.get("RecordingDuration").and_then(|d| d.parse().ok()),
        object_key: None,
        size: None,
        sha256: None,
        content_type: None,
        failed_attempts: 0,
        // Twilio sends `ErrorCode=0` when all is well.
        last_error: params
            .get("ErrorCode")
            .filter(|code| *code != "0")
            .map(|code| format!("Twilio error {code}")),
        twilio_deleted: false,
        received_at: Timestamp::now(),
        stored_at: None,
    };
    let (ws, id) = (&session.workspace, &session.id);
    let new = app.store.put_recording(ws, id, &recording).await?;
    let pending = if new {
        status == RecordingStatus::Pending
    } else {
        app.store
            .get_call(ws, id)
            .await?
            .and_then(|s| s.recordings.get(sid.as_str()).map(|r| r.status))
            == Some(RecordingStatus::Pending)
    };
    if pending {
        let job = CopyJob {
            workspace: ws.clone(),
            call: id.clone(),
            recording: sid,
        };
        app.jobs.enqueue(&job).await?;
    }
    Ok(empty())
}

/// `GET /calls/{callId}/recording[?recording=RE…]`: the newest stored
/// recording (or the one named): a short-lived link to our copy, or on the
/// local server the file itself (with `Range`, so `<audio>` can seek).
pub async fn playback(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let raw = request.param("callId").unwrap_or_default();
    let not_found = || ApiError::NotFound(format!("no recording for call {raw:?}"));
    let id = CallId::parse(raw).map_err(|_| not_found())?;
    let session = app.store.get_call(&agent.workspace, &id).await?.ok_or_else(not_found)?;
    let wanted = query_params(&request).get("recording").map(str::to_owned);
    let recording = session
        .recordings
        .values()
        .filter(|r| r.status == RecordingStatus::Stored)
        .filter(|r| wanted.as_deref().is_none_or(|w| r.sid.as_str() == w))
        .max_by_key(|r| r.received_at)
        .ok_or_else(not_found)?;
    let store = app
        .recordings
        .as_ref()
        .ok_or_else(|| ApiError::Internal("no recordings store is configured".into()))?;
    let key = recording.key(&agent.workspace, &id);
    match store.playback(&key, PLAYBACK_LINK_LIFETIME).await? {
        Playback::Redirect(url) => {
            let location = HeaderValue::from_str(&url).map_err(|e| ApiError::Internal(e.to_string()))?;
            let mut response = api::with_type(StatusCode::FOUND, "text/plain", bytes::Bytes::new());
            response.headers_mut().insert(header::LOCATION, location);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Playback::File { path, content_type } => {
            let mut response = http::Response::new(Body::File { path, content_type });
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
            Ok(response)
        }
    }
}
