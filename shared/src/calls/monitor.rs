//! Supervisors: `POST /calls/{callId}/monitor` `{"mode": "listen" | "whisper" | "barge"}`
//! rings the supervisor's browser into the call (or changes the mode of the
//! leg they have in it), `DELETE /calls/{callId}/monitor` takes it out.
//!
//! Only admins and supervisors may; the browser never sets muting or
//! coaching itself: the join TwiML and the participant updates here do,
//! after the role check. A supervisor never ends the conference on leaving,
//! and never keeps it going once the agent and the customer are gone.

use http::StatusCode;
use serde::Deserialize;

use crate::api::{self, ApiError, Request, Response};
use crate::app::App;
use crate::auth::Agent;
use crate::calls::control::{ended_or_upstream, load, note, twilio};
use crate::calls::ring::ring_into_call;
use crate::ids::CallSid;
use crate::model::calls::{CallSession, CallState, LegState, MonitorMode, Role};
use crate::telemetry::error_chain;
use crate::time::Timestamp;
use crate::twilio::access_token::client_address;
use crate::twilio::rest::{EndCall, ParticipantChange, TwilioError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorBody {
    mode: MonitorMode,
}

fn mode_name(mode: MonitorMode) -> &'static str {
    match mode {
        MonitorMode::Listen => "listen",
        MonitorMode::Whisper => "whisper",
        MonitorMode::Barge => "barge",
    }
}

/// Only admins and supervisors supervise.
fn may_supervise(agent: &Agent, session: &CallSession) -> Result<(), ApiError> {
    if !agent.role.supervises() {
        return Err(ApiError::Forbidden(
            "only supervisors and admins may listen in, whisper or barge".into(),
        ));
    }
    if session.agent_leg().and_then(|p| p.agent.as_ref()) == Some(&agent.id) {
        return Err(ApiError::BadRequest("you are this call's agent".into()));
    }
    Ok(())
}

/// `POST /calls/{callId}/monitor`.
pub async fn start(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: MonitorBody = request.json()?;
    let session = load(app, &agent, &request).await?;
    may_supervise(&agent, &session)?;
    let (Some(conference), CallState::InProgress) = (&session.conference_sid, session.state) else {
        return Err(ApiError::Conflict {
            code: "not_connected",
            message: "only a connected call can be supervised".into(),
        });
    };
    let coached = session.agent_leg().and_then(|p| p.call_sid.clone());
    if body.mode == MonitorMode::Whisper && coached.is_none() {
        return Err(ApiError::Conflict {
            code: "no_agent",
            message: "the call has no agent to whisper to".into(),
        });
    }
    let (ws, id) = (&agent.workspace, &session.id);
    let workspace = app.configured_workspace(ws).await?;
    let client = app.twilio_for(&workspace).await?;
    // A supervisor in the call already: Twilio first, so that the session
    // never says a mode Twilio did not take.
    if let Some(leg) = session.supervisor_of(&agent.id).filter(|p| p.state == LegState::Joined)
        && let Some(sid) = &leg.call_sid
    {
        let change = mode_change(body.mode, coached.as_ref());
        client
            .update_participant(conference, sid, &change)
            .await
            .map_err(ended_or_upstream("not_connected", "change the supervisor's mode"))?;
    }
    let now = Timestamp::now();
    let modified = app
        .store
        .modify_call(ws, id, &|s| match s.supervisor_of(&agent.id).map(|p| p.label.clone()) {
            Some(label) => {
                s.set_monitor(&label, body.mode);
            }
            None => {
                let label = s.next_label(Role::Supervisor);
                s.add_participant(&label, Role::Supervisor, Some(agent.id.clone()), None, now);
                s.set_monitor(&label, body.mode);
            }
        })
        .await?;
    let Some(leg) = modified.after.supervisor_of(&agent.id).cloned() else {
        return Err(ApiError::Internal("the supervisor's leg was not recorded".into()));
    };
    let existing = modified.before.supervisor_of(&agent.id).is_some();
    let status = match (&leg.call_sid, existing) {
        (Some(_), true) if leg.state == LegState::Joined => StatusCode::OK,
        // Ringing still: the join TwiML reads the mode when they answer.
        (_, true) => StatusCode::ACCEPTED,
        (_, false) => {
            let to = client_address(
                &agent.id,
                &[
                    ("callId", session.id.as_str()),
                    ("from", session.customer_number()),
                    ("kind", "monitor"),
                ],
            );
            let leg = (leg.label.as_str(), "supervisor");
            ring_into_call(app, &workspace, &client, &session, leg, &to, session.our_number())
                .await
                .map_err(|e| e.into_api("ring the supervisor"))?;
            StatusCode::ACCEPTED
        }
    };
    note(
        app,
        &agent,
        &session,
        "monitor",
        &[("mode", mode_name(body.mode)), ("label", &leg.label)],
    )
    .await?;
    let session = load(app, &agent, &request).await?;
    Ok(api::json_response(
        status,
        &serde_json::json!({"callId": session.id, "participant": session.participants.get(&leg.label)}),
    ))
}

/// What Twilio must change for a joined supervisor to be in `mode`.
fn mode_change(mode: MonitorMode, coached: Option<&CallSid>) -> ParticipantChange<'_> {
    match mode {
        MonitorMode::Listen => ParticipantChange {
            muted: Some(true),
            coaching: Some(false),
            ..ParticipantChange::default()
        },
        MonitorMode::Whisper => ParticipantChange {
            muted: Some(false),
            coaching: Some(true),
            call_sid_to_coach: coached,
            ..ParticipantChange::default()
        },
        MonitorMode::Barge => ParticipantChange {
            muted: Some(false),
            coaching: Some(false),
            ..ParticipantChange::default()
        },
    }
}

/// `DELETE /calls/{callId}/monitor`: the caller's own supervisor leg leaves
/// (or stops ringing).
pub async fn stop(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let session = load(app, &agent, &request).await?;
    if !agent.role.supervises() {
        return Err(ApiError::Forbidden(
            "only supervisors and admins supervise calls".into(),
        ));
    }
    let Some(leg) = session.supervisor_of(&agent.id).cloned() else {
        return Err(ApiError::Conflict {
            code: "not_monitoring",
            message: "you are not supervising this call".into(),
        });
    };
    let client = twilio(app, &agent).await?;
    let removed = match (&leg.call_sid, &session.conference_sid) {
        (Some(sid), Some(conference)) if leg.state == LegState::Joined => {
            client.remove_participant(conference, sid).await
        }
        (Some(sid), _) => client.end_call(sid, EndCall::HangUp).await.map(|_| ()),
        (None, _) => Ok(()),
    };
    match removed {
        Ok(()) | Err(TwilioError::NotFound { .. }) => {}
        Err(error) => return Err(ApiError::upstream("remove the supervisor")(error)),
    }
    let now = Timestamp::now();
    let state = if leg.state == LegState::Joined {
        LegState::Left
    } else {
        LegState::Canceled
    };
    app.store
        .modify_call(&agent.workspace, &session.id, &|s| {
            s.move_participant(&leg.label, state, now);
        })
        .await?;
    if let Err(error) = note(app, &agent, &session, "monitor-stopped", &[("label", &leg.label)]).await {
        tracing::warn!(call = %session.id, error = %error_chain(&error), "not on the timeline");
    }
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"callId": session.id, "label": leg.label}),
    ))
}
