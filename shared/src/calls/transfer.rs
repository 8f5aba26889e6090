//! Transfers: `POST /calls/{callId}/transfer`, `/transfer/complete` and
//! `/transfer/cancel`, and what the target's leg reports.
//!
//! The target is rung with a call of its own over the Calls API; its TwiML,
//! fetched when they answer (`/twilio/voice/join`), brings them into the
//! call's conference, so a canceled transfer answered late is refused as a
//! late inbound accept is. Before the transferring agent can leave, their
//! "end the conference on exit" is turned off; the target's is turned on when
//! the call is handed over, so the last agent leaving still ends it.

use http::StatusCode;
use serde::Deserialize;

use crate::api::{self, ApiError, Request, Response};
use crate::app::App;
use crate::auth::Agent;
use crate::calls::control::{HOLD_MUSIC_URL, ended_or_upstream, load, may_control, note, twilio};
use crate::calls::outbound::{self, CallError};
use crate::calls::ring::{RingError, ring_into_call};
use crate::ids::{AgentId, CallSid, ConferenceSid};
use crate::model::calls::{
    CallSession, LegState, MonitorMode, Role, TimelineEvent, Transfer, TransferMode, TransferState, TransferTarget,
};
use crate::phone::E164;
use crate::ports::StoreError;
use crate::telemetry::error_chain;
use crate::time::Timestamp;
use crate::twilio::access_token::client_address;
use crate::twilio::rest::{EndCall, ParticipantChange, TwilioClient, TwilioError};
use crate::workspace::Workspace;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: Target,
    mode: TransferMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
enum Target {
    Agent(String),
    Number(String),
}

fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Conflict {
        code,
        message: message.into(),
    }
}

/// `POST /calls/{callId}/transfer` `{"to": {"agent": id} | {"number": "+E164"}, "mode": "warm" | "cold"}`.
pub async fn start(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: TransferBody = request.json()?;
    let to = match body.to {
        Target::Agent(id) => {
            TransferTarget::Agent(AgentId::parse(&id).map_err(|e| ApiError::BadRequest(format!("to.agent: {e}")))?)
        }
        Target::Number(number) => TransferTarget::Number(
            E164::parse(&number)
                .map_err(|e| ApiError::BadRequest(format!("to.number: {e}")))?
                .to_string(),
        ),
    };
    let session = load(app, &agent, &request).await?;
    may_control(&agent, &session)?;
    if let TransferTarget::Agent(target) = &to
        && session.agent.as_ref() == Some(target)
    {
        return Err(ApiError::BadRequest(format!("the call is with {target} already")));
    }
    let (Some(conference), Some(_)) = (&session.conference_sid, from_leg(&session)) else {
        return Err(conflict(
            "not_transferable",
            "only a connected call with an agent on it can be transferred",
        ));
    };
    let workspace = app.configured_workspace(&agent.workspace).await?;
    let from = match &to {
        TransferTarget::Number(_) => transfer_caller_id(app, &workspace, &agent.id, &session).await?,
        // The browser shows who the call is with.
        TransferTarget::Agent(_) => E164::from_canonical(session.customer_number())
            .map_or_else(|_| session.our_number().to_owned(), |n| n.to_string()),
    };

    let now = Timestamp::now();
    let (ws, id) = (&agent.workspace, &session.id);
    let modified = app
        .store
        .modify_call(ws, id, &|s| {
            let label = s.next_label(Role::Transfer);
            let _ = s.start_transfer(&label, body.mode, to.clone(), agent.id.clone(), now);
        })
        .await?;
    let started = modified
        .after
        .transfer
        .as_ref()
        .filter(|t| t.started_at == now && t.by == agent.id);
    let Some(transfer) = started
        .filter(|_| modified.before.transfer != modified.after.transfer)
        .cloned()
    else {
        // Ask the rule again why it refused (it is deterministic).
        let mut refused = modified.after.clone();
        let reason = refused
            .start_transfer("transfer-0", body.mode, to.clone(), agent.id.clone(), now)
            .err()
            .map_or_else(|| "the transfer could not start".to_owned(), |e| e.to_string());
        return Err(conflict("not_transferable", reason));
    };
    let session = modified.after;

    let client = app.twilio_for(&workspace).await?;
    if let Err(error) = ring_target(app, &workspace, &client, &session, conference, &transfer, &from).await {
        tracing::warn!(call = %id, error = %error_chain(&error), "the transfer target could not be rung");
        if let Some(failed) = end(app, &session, TransferState::Failed, now).await? {
            restore_logged(&client, &failed).await;
        }
        return Err(match error {
            RingError::Twilio(error) => ended_or_upstream("not_transferable", "transfer")(error),
            RingError::Store(error) => error.into(),
        });
    }
    let target = target_name(&transfer.to);
    let mode = mode_name(transfer.mode);
    note(
        app,
        &agent,
        &session,
        "transfer-started",
        &[("to", &target), ("mode", mode), ("label", &transfer.label)],
    )
    .await?;
    let session = load(app, &agent, &request).await?;
    Ok(api::json_response(
        StatusCode::ACCEPTED,
        &serde_json::json!({"callId": session.id, "transfer": session.transfer}),
    ))
}

/// The leg of the agent the call is handed over from.
fn from_leg(session: &CallSession) -> Option<CallSid> {
    session
        .agent_leg()
        .filter(|p| !p.state.is_over())
        .and_then(|p| p.call_sid.clone())
}

/// An outside target sees the number the call is on, if the agent may call
/// from it; else the agent's own caller ID (`Workspace::caller_id`).
async fn transfer_caller_id(
    app: &App,
    workspace: &Workspace,
    agent: &AgentId,
    session: &CallSession,
) -> Result<String, ApiError> {
    match outbound::caller_id(app, workspace, agent, Some(session.our_number())).await {
        Ok(number) => Ok(number.to_string()),
        Err(CallError::NotAllowed(_)) => Ok(outbound::caller_id(app, workspace, agent, None).await?.to_string()),
        Err(error) => Err(error.into()),
    }
}

/// Lets the transferring agent leave without ending the call, holds the
/// customer for a warm transfer, and rings the target.
async fn ring_target(
    app: &App,
    workspace: &Workspace,
    client: &TwilioClient,
    session: &CallSession,
    conference: &ConferenceSid,
    transfer: &Transfer,
    from: &str,
) -> Result<CallSid, RingError> {
    if let Some(leg) = from_leg(session) {
        arrange(client, session, conference, transfer, &leg, false, true).await?;
    }
    let to = match &transfer.to {
        TransferTarget::Agent(agent) => client_address(
            agent,
            &[
                ("callId", session.id.as_str()),
                ("from", session.customer_number()),
                ("kind", "transfer"),
            ],
        ),
        TransferTarget::Number(number) => number.clone(),
    };
    ring_into_call(
        app,
        workspace,
        client,
        session,
        (&transfer.label, "transfer"),
        &to,
        from,
    )
    .await
}

/// Whether `leg` leaving ends the call, and (a warm transfer) whether the
/// customer is on hold: the two changes every step of a transfer makes.
async fn arrange(
    client: &TwilioClient,
    session: &CallSession,
    conference: &ConferenceSid,
    transfer: &Transfer,
    leg: &CallSid,
    leaving_ends_call: bool,
    customer_held: bool,
) -> Result<(), TwilioError> {
    let change = ParticipantChange {
        end_conference_on_exit: Some(leaving_ends_call),
        ..ParticipantChange::default()
    };
    client.update_participant(conference, leg, &change).await?;
    match (&session.customer_call_sid, transfer.mode) {
        (Some(customer), TransferMode::Warm) => {
            client
                .hold_participant(conference, customer, customer_held, HOLD_MUSIC_URL)
                .await
        }
        _ => Ok(()),
    }
}

/// `POST /calls/{callId}/transfer/complete`: a warm transfer's target has
/// talked with the transferring agent; the customer comes off hold, the
/// transferring agent leaves, and the call is the target's.
pub async fn complete(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let session = load(app, &agent, &request).await?;
    may_control(&agent, &session)?;
    let Some(transfer) = session.active_transfer() else {
        return Err(conflict("no_transfer", "no transfer of this call is under way"));
    };
    if transfer.state != TransferState::Talking {
        return Err(conflict(
            "transfer_not_answered",
            "the transfer's target has not answered yet",
        ));
    }
    let client = twilio(app, &agent).await?;
    hand_over(app, &client, &session)
        .await
        .map_err(ended_or_upstream("no_transfer", "complete the transfer"))?;
    let session = load(app, &agent, &request).await?;
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"callId": session.id, "transfer": session.transfer, "agent": session.agent}),
    ))
}

/// `POST /calls/{callId}/transfer/cancel`: the target is hung up, the
/// customer comes off hold, and the call stays with its agent. Safe to send
/// again: a transfer canceled already is restored again (a first attempt
/// Twilio refused finishes), whatever is gone at Twilio is no error.
pub async fn cancel(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let session = load(app, &agent, &request).await?;
    may_control(&agent, &session)?;
    let canceled = match end(app, &session, TransferState::Canceled, Timestamp::now()).await? {
        Some(canceled) => canceled,
        None if session
            .transfer
            .as_ref()
            .is_some_and(|t| t.state == TransferState::Canceled)
            && !session.state.is_terminal() =>
        {
            session
        }
        None => return Err(conflict("no_transfer", "no transfer of this call is under way")),
    };
    let client = twilio(app, &agent).await?;
    if let Some(target) = canceled
        .transfer
        .as_ref()
        .and_then(|t| canceled.participants.get(&t.label))
        && let Some(sid) = target.call_sid.as_ref().filter(|_| !target.state.is_over())
    {
        // Best effort: a target still ringing whom Twilio would not hang up
        // is refused by the join TwiML if they answer.
        if let Err(error) = client.end_call(sid, EndCall::HangUp).await {
            tracing::warn!(call = %canceled.id, error = %error_chain(&error), "could not hang up the transfer target");
        }
    }
    restore(&client, &canceled)
        .await
        .map_err(ended_or_upstream("no_transfer", "cancel the transfer"))?;
    let session = load(app, &agent, &request).await?;
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"callId": session.id, "transfer": session.transfer}),
    ))
}

/// Ends the active transfer as `state`, once: the session after, if this
/// call ended it (and put it on the timeline).
async fn end(
    app: &App,
    session: &CallSession,
    state: TransferState,
    at: Timestamp,
) -> Result<Option<CallSession>, StoreError> {
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            s.end_transfer(state);
        })
        .await?;
    let ended = |s: &CallSession| s.active_transfer().is_none();
    if ended(&modified.before) || !ended(&modified.after) {
        return Ok(None);
    }
    let after = modified.after;
    if let Some(transfer) = &after.transfer {
        let kind = match state {
            TransferState::Canceled => "transfer-canceled",
            TransferState::Completed => "transfer-completed",
            _ => "transfer-failed",
        };
        timeline(app, &after, transfer, kind, at).await?;
    }
    Ok(Some(after))
}

async fn timeline(
    app: &App,
    session: &CallSession,
    transfer: &Transfer,
    kind: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    let event = TimelineEvent {
        key: format!("{}:{kind}", transfer.label),
        at,
        kind: kind.to_owned(),
        detail: [
            ("label".to_owned(), transfer.label.clone()),
            ("to".to_owned(), target_name(&transfer.to)),
            ("mode".to_owned(), mode_name(transfer.mode).to_owned()),
        ]
        .into(),
    };
    app.store.append_event(&session.workspace, &session.id, &event).await?;
    Ok(())
}

fn target_name(target: &TransferTarget) -> String {
    match target {
        TransferTarget::Agent(agent) => agent.to_string(),
        TransferTarget::Number(number) => number.clone(),
    }
}

fn mode_name(mode: TransferMode) -> &'static str {
    match mode {
        TransferMode::Warm => "warm",
        TransferMode::Cold => "cold",
    }
}

/// After a transfer that did not happen: the customer comes off hold and
/// the transferring agent's leaving ends the call again; if they left
/// meanwhile, nobody is there for the customer and the call ends. Every
/// step may be repeated.
async fn restore(client: &TwilioClient, session: &CallSession) -> Result<(), TwilioError> {
    let (Some(conference), Some(transfer)) = (&session.conference_sid, &session.transfer) else {
        return Ok(());
    };
    let from = transfer.from_label.as_deref().and_then(|l| session.participants.get(l));
    match from.filter(|p| !p.state.is_over()).and_then(|p| p.call_sid.as_ref()) {
        None => client.end_conference(conference).await,
        Some(leg) => arrange(client, session, conference, transfer, leg, true, false).await,
    }
}

/// `restore`, where nobody waits for an answer: a failure is logged.
async fn restore_logged(client: &TwilioClient, session: &CallSession) {
    if let Err(error) = restore(client, session).await {
        tracing::warn!(call = %session.id, error = %error_chain(&error), "could not restore the call after its transfer");
    }
}

/// Hands the call to the transfer's target: their leaving ends the call
/// from now on, the customer comes off hold, the transferring agent's leg
/// leaves (if it is still there), a whispering supervisor coaches the new
/// agent. Every step may be repeated; the session records it once.
pub async fn hand_over(app: &App, client: &TwilioClient, session: &CallSession) -> Result<(), TwilioError> {
    let (Some(conference), Some(transfer)) = (&session.conference_sid, session.active_transfer()) else {
        return Ok(());
    };
    let Some(target) = session
        .participants
        .get(&transfer.label)
        .and_then(|p| p.call_sid.clone())
    else {
        return Ok(());
    };
    arrange(client, session, conference, transfer, &target, true, false).await?;
    let from = transfer.from_label.as_deref().and_then(|l| session.participants.get(l));
    if let Some(leg) = from.filter(|p| !p.state.is_over()).and_then(|p| p.call_sid.as_ref()) {
        match client.remove_participant(conference, leg).await {
            Ok(()) | Err(TwilioError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let whisperers = session.participants.values().filter(|p| {
        p.role == Role::Supervisor && p.monitor == Some(MonitorMode::Whisper) && p.state == LegState::Joined
    });
    for supervisor in whisperers {
        if let Some(leg) = &supervisor.call_sid {
            let coach = ParticipantChange {
                coaching: Some(true),
                call_sid_to_coach: Some(&target),
                ..ParticipantChange::default()
            };
            if let Err(error) = client.update_participant(conference, leg, &coach).await {
                tracing::warn!(call = %session.id, error = %error_chain(&error), "the supervisor could not coach the new agent");
            }
        }
    }
    let now = Timestamp::now();
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            s.complete_transfer();
        })
        .await
        .map_err(|e| TwilioError::Unexpected(format!("the transfer was made but not recorded: {e}")))?;
    if modified.before.active_transfer().is_some()
        && let Some(transfer) = modified
            .after
            .transfer
            .as_ref()
            .filter(|t| t.state == TransferState::Completed)
    {
        tracing::info!(call = %session.id, label = %transfer.label, "the call was handed over");
        if let Err(error) = timeline(app, &modified.after, transfer, "transfer-completed", now).await {
            tracing::warn!(call = %session.id, error = %error_chain(&error), "the transfer's completion is not on the timeline");
        }
    }
    Ok(())
}

/// What a conference event or a call status says of a transfer: the target
/// joined (a cold transfer, or one whose agent left, is handed over), the
/// target's leg ended before the hand-over (the transfer failed), or the
/// transferring agent left while the target talks (handed over at once).
pub async fn on_leg_change(
    app: &App,
    client: &TwilioClient,
    session: &CallSession,
    label: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    let Some(transfer) = session.active_transfer() else {
        return Ok(());
    };
    let Some(leg) = session.participants.get(label) else {
        return Ok(());
    };
    if transfer.label == label {
        if leg.state.is_over() {
            if let Some(failed) = end(app, session, TransferState::Failed, at).await? {
                tracing::info!(call = %session.id, %label, "the transfer target did not take the call");
                restore_logged(client, &failed).await;
            }
        } else if leg.state == LegState::Joined && session.hands_over_on_join(label) {
            hand_over_logged(app, client, session).await;
        }
    } else if transfer.from_label.as_deref() == Some(label) && leg.state.is_over() {
        // The transferring agent left: the customer must not wait for them.
        if transfer.state == TransferState::Talking {
            hand_over_logged(app, client, session).await;
        }
    }
    Ok(())
}

async fn hand_over_logged(app: &App, client: &TwilioClient, session: &CallSession) {
    if let Err(error) = hand_over(app, client, session).await {
        tracing::warn!(call = %session.id, error = %error_chain(&error), "could not hand the call over");
    }
}
