//! The routes that drive a call session: placing an outbound call, the TwiML
//! of each leg, Twilio's status callbacks, and the call log and control.

pub mod conference;
pub mod control;
pub mod monitor;
pub mod outbound;
pub mod ring;
pub mod status;
pub mod transfer;
pub mod voice;

use crate::app::App;
use crate::ids::CallId;
use crate::model::calls::{CallSession, CallState};
use crate::paths;
use crate::ports::StoreError;
use crate::time::Timestamp;

pub use crate::model::calls::DIAL_CUSTOMER;

fn url(app: &App, path: &str, call: &CallId, extra: &str) -> String {
    app.config.public_url.join(&format!("{path}?callId={call}{extra}"))
}

/// Conference events and leg progress come back here.
pub fn status_url(app: &App, call: &CallId, leg: Option<&str>) -> String {
    match leg {
        Some(leg) => url(app, paths::STATUS_CALLBACK, call, &format!("&leg={leg}")),
        None => url(app, paths::STATUS_CALLBACK, call, ""),
    }
}

/// Where Twilio asks what an agent's accepted leg does (`ring`).
pub fn answer_url(app: &App, call: &CallId, label: &str) -> String {
    url(app, paths::AGENT_ANSWER_TWIML, call, &format!("&label={label}"))
}

/// Where Twilio asks what a transfer target's or a supervisor's answered
/// leg does (`join`).
pub fn join_url(app: &App, call: &CallId, label: &str) -> String {
    url(app, paths::JOIN_TWIML, call, &format!("&label={label}"))
}

pub fn customer_twiml_url(app: &App, call: &CallId) -> String {
    url(app, paths::CUSTOMER_TWIML, call, "")
}

pub fn recording_url(app: &App, call: &CallId) -> String {
    url(app, paths::RECORDING_CALLBACK, call, "")
}

pub fn voicemail_url(app: &App, call: &CallId, step: &str) -> String {
    url(app, paths::VOICEMAIL_TWIML, call, step)
}

/// An outbound session older than the connect window that the agent never
/// joined is abandoned (lazily, whoever looks first).
pub async fn expire_if_stale(app: &App, session: CallSession) -> Result<CallSession, StoreError> {
    let window = app.config.connect_window.as_secs();
    let deadline = session
        .created_at
        .plus_seconds(i64::try_from(window).unwrap_or(i64::MAX));
    if !session.is_outbound() || session.state != CallState::Created || Timestamp::now() < deadline {
        return Ok(session);
    }
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            s.abandon(deadline, "the agent never joined");
        })
        .await?;
    Ok(modified.after)
}
