//! The routes that drive a call session: placing an outbound call, the TwiML
//! of each leg, Twilio's status callbacks, and the call log and control.

pub mod control;
pub mod outbound;
pub mod ring;
pub mod status;
pub mod voice;

use std::time::Duration;

use crate::app::App;
use crate::ids::CallId;
use crate::model::calls::{CallSession, CallState};
use crate::paths;
use crate::ports::StoreError;
use crate::time::Timestamp;

/// How long after `POST /calls` the agent's browser may connect; later, the
/// session is abandoned and the customer is never dialed.
pub const CONNECT_WINDOW: Duration = Duration::from_secs(120);
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
    let deadline = session.created_at.plus_seconds(CONNECT_WINDOW.as_secs() as i64);
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
