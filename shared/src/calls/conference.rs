//! What happens inside a call's conference: `POST
//! /calls/{callId}/participants/{label}/mute` `{"muted": bool}` and `POST
//! /calls/{callId}/recording` `{"action": "pause" | "resume"}`.
//!
//! Participants are named by Switchboard (`customer`, `agent-1`,
//! `transfer-1`, `supervisor-1`, as `GET /calls/{callId}` lists them), never
//! by what a request says, so a label only ever finds a leg of this call.

use http::StatusCode;
use serde::Deserialize;

use crate::api::{self, ApiError, Request, Response};
use crate::app::App;
use crate::auth::Agent;
use crate::calls::control::{ended_or_upstream, load, may_control, note, twilio};
use crate::model::calls::{CallSession, CallState, LegState, Participant, Role};
use crate::twilio::rest::{ParticipantChange, TwilioError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteBody {
    muted: bool,
}

/// Supervisors and admins may mute anyone; the call's agent the customer
/// or a transfer target.
fn may_mute(agent: &Agent, session: &CallSession, participant: &Participant) -> Result<(), ApiError> {
    if agent.role.supervises() {
        return Ok(());
    }
    may_control(agent, session)?;
    match participant.role {
        Role::Customer | Role::Transfer => Ok(()),
        Role::Agent | Role::Supervisor => Err(ApiError::Forbidden(
            "the call's agent may mute the customer or a transfer target only".into(),
        )),
    }
}

/// `POST /calls/{callId}/participants/{label}/mute`.
pub async fn mute(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: MuteBody = request.json()?;
    let label = request.param("label").unwrap_or_default().to_owned();
    let session = load(app, &agent, &request).await?;
    let participant = session
        .participants
        .get(&label)
        .ok_or_else(|| ApiError::NotFound(format!("no participant {label:?} in this call")))?;
    may_mute(&agent, &session, participant)?;
    let (Some(conference), Some(sid), LegState::Joined) =
        (&session.conference_sid, &participant.call_sid, participant.state)
    else {
        return Err(ApiError::Conflict {
            code: "not_in_conference",
            message: format!("{label} is not in the call's conference"),
        });
    };
    let change = ParticipantChange {
        muted: Some(body.muted),
        ..ParticipantChange::default()
    };
    twilio(app, &agent)
        .await?
        .update_participant(conference, sid, &change)
        .await
        .map_err(ended_or_upstream("not_in_conference", "mute"))?;
    app.store
        .modify_call(&agent.workspace, &session.id, &|s| {
            s.set_muted(&label, body.muted);
        })
        .await?;
    let kind = if body.muted {
        "participant-muted"
    } else {
        "participant-unmuted"
    };
    note(app, &agent, &session, kind, &[("label", &label)]).await?;
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"callId": session.id, "label": label, "muted": body.muted}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RecordingAction {
    Pause,
    Resume,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingBody {
    action: RecordingAction,
}

/// `POST /calls/{callId}/recording`: pauses the conference's recording (what
/// is said meanwhile is left out of it, not replaced by silence) or resumes it.
pub async fn pause_or_resume(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: RecordingBody = request.json()?;
    let session = load(app, &agent, &request).await?;
    if !agent.role.supervises() {
        may_control(&agent, &session)?;
    }
    let not_recording = || ApiError::Conflict {
        code: "not_recording",
        message: "this call is not being recorded".into(),
    };
    if !session.recorded {
        return Err(not_recording());
    }
    let (Some(conference), CallState::InProgress) = (&session.conference_sid, session.state) else {
        return Err(not_recording());
    };
    let paused = matches!(body.action, RecordingAction::Pause);
    match twilio(app, &agent)
        .await?
        .pause_conference_recording(conference, paused)
        .await
    {
        Ok(()) => {}
        // Twilio has no recording under way for it (not started, or over).
        Err(TwilioError::NotFound { .. }) => return Err(not_recording()),
        Err(error) => return Err(ApiError::upstream("pause the recording")(error)),
    }
    app.store
        .modify_call(&agent.workspace, &session.id, &|s| {
            s.recording_paused = paused;
        })
        .await?;
    let kind = if paused {
        "recording-paused"
    } else {
        "recording-resumed"
    };
    note(app, &agent, &session, kind, &[]).await?;
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"callId": session.id, "recordingPaused": paused}),
    ))
}
