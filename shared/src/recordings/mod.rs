//! Call recordings and voicemails: Twilio's recording callback is acknowledged
//! at once and the media is copied into our own storage afterwards, exactly
//! once, by a queued job that retries until it succeeds.

pub mod copy;
pub mod worker;

use std::time::Duration;

use http::{HeaderValue, StatusCode, header};

use crate::api::{self, ApiError, Body, Request, Response, empty_twiml};
use crate::app::App;
use crate::auth::Agent;
use crate::ids::CallId;
use crate::jobs::CopyJob;
use crate::model::recordings::{Recording, RecordingStatus};
use crate::ports::Playback;
use crate::time::Timestamp;
use crate::twilio::webhooks::{RecordingCallback, RecordingProgress, Unknown};
use crate::webhook::{Webhook, WebhookError, session_from_query};

/// How long a playback link stays valid.
pub const PLAYBACK_LINK_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// `POST /twilio/recording?callId=`: Twilio says a recording is ready (or
/// absent, or failed). Answered at once; the copy is queued. A duplicate makes
/// no second entry, and queues again while the job still has work to do
/// (`Recording::needs_work`: the copy, or the deletion of Twilio's copy), so
/// a lost enqueue is repaired by a retry; the job itself is idempotent.
pub async fn callback(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let form: RecordingCallback = hook.form()?;
    let status = match &form.recording_status {
        RecordingProgress::Completed => RecordingStatus::Pending,
        RecordingProgress::Absent => RecordingStatus::Absent,
        RecordingProgress::Failed => RecordingStatus::Failed,
        // Nothing to do until it completes.
        RecordingProgress::InProgress => return Ok(empty_twiml()),
        other => {
            let unknown: String = other.unknown().unwrap_or_default().chars().take(64).collect();
            tracing::warn!(value = %unknown, "a recording status this version does not know; acknowledged");
            return Ok(empty_twiml());
        }
    };
    let session = session_from_query(app, &hook, &request).await?;
    let mut recording = Recording::new(form.recording_sid.clone(), status, Timestamp::now());
    recording.source = form.recording_source.map(|s| s.chars().take(32).collect());
    recording.channels = form.recording_channels.and_then(|c| c.parse().ok());
    recording.duration_seconds = form.recording_duration.and_then(|d| d.parse().ok());
    // Twilio sends `ErrorCode=0` when all is well.
    recording.last_error = form
        .error_code
        .filter(|code| code != "0")
        .map(|code| format!("Twilio error {}", code.chars().take(16).collect::<String>()));

    let (ws, id) = (&session.workspace, &session.id);
    let modified = app
        .store
        .modify_call(ws, id, &|s| {
            s.add_recording(&recording);
        })
        .await?;
    let delete_at_twilio = hook.workspace.settings.delete_twilio_recording_after_copy;
    let needs_work = modified
        .after
        .recordings
        .get(form.recording_sid.as_str())
        .is_some_and(|r| r.needs_work(delete_at_twilio));
    if needs_work {
        let job = CopyJob {
            workspace: ws.clone(),
            call: id.clone(),
            recording: form.recording_sid,
        };
        app.jobs.enqueue(&job).await?;
    }
    Ok(empty_twiml())
}

/// `GET /calls/{callId}/recording[?recording=RE…]`: the newest stored
/// recording (or the one named): a short-lived link to our copy, or on the
/// local server the file itself (with `Range`, so `<audio>` can seek).
pub async fn playback(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let raw = request.param("callId").unwrap_or_default();
    let not_found = || ApiError::NotFound(format!("no recording for call {raw:?}"));
    let id = CallId::parse(raw).map_err(|_| not_found())?;
    let session = app.store.get_call(&agent.workspace, &id).await?.ok_or_else(not_found)?;
    let wanted = request.query_params().get("recording").map(str::to_owned);
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
