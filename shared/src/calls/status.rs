//! `POST /twilio/status`: call progress and conference events.
//!
//! Twilio delivers at least once and in no set order, so everything here is a
//! conditional write or a claimed step: the session's state only moves forward
//! (terminal states stick), the earliest time of each state is kept, every
//! event lands on the timeline once, and each side effect (dialing the
//! customer, telling the agent) happens at most once whoever races.

use std::collections::BTreeMap;

use crate::api::{self, Request, Response};
use crate::app::App;
use crate::calls::voice::{DIAL_CUSTOMER, customer_twiml_url, query_params, status_url};
use crate::calls::{CallSession, CallState, CallUpdate, Direction, TimelineEvent, Timestamp};
use crate::ids::{CallId, CallSid, ConferenceSid};
use crate::onboarding;
use crate::twilio::access_token::agent_from_identity;
use crate::twilio::rest::{EndCall, NewCall, TwilioClient};
use crate::twilio::twiml::Response as Twiml;
use crate::webhook::{Params, Webhook, WebhookError};

/// How long the customer's phone rings before Twilio gives up.
pub const CUSTOMER_RING_SECONDS: u32 = 30;
const NOTIFY_AGENT: &str = "notify-agent";

/// Which leg of the session an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    /// The agent's browser (outbound), or the agent who answered (inbound).
    Agent,
    /// The customer (outbound), or the caller (inbound).
    Customer,
    Unknown,
}

impl Leg {
    fn name(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Customer => "customer",
            Self::Unknown => "other",
        }
    }
}

const CONFERENCE_EVENTS: [&str; 10] = [
    "conference-start",
    "conference-end",
    "participant-join",
    "participant-leave",
    "participant-hold",
    "participant-unhold",
    "participant-mute",
    "participant-unmute",
    "participant-modify",
    "participant-speech-start",
];

/// Twilio's call statuses, as the session state they mean for a leg.
fn call_state(status: &str) -> Option<CallState> {
    Some(match status {
        "queued" | "initiated" => CallState::Dialing,
        "ringing" => CallState::Ringing,
        "in-progress" | "answered" => CallState::InProgress,
        "completed" => CallState::Completed,
        "busy" => CallState::Busy,
        "no-answer" => CallState::NoAnswer,
        "failed" => CallState::Failed,
        "canceled" => CallState::Canceled,
        _ => return None,
    })
}

fn empty() -> Response {
    api::xml_response(Twiml::new().to_xml())
}

pub async fn callback(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let query = query_params(&request);
    let params = &hook.params;
    let ws = &hook.workspace.id;
    let sid = params.get("CallSid").and_then(|s| CallSid::parse(s).ok());

    // Parse everything before anything is written.
    let conference_event = params.get("StatusCallbackEvent");
    let call_status = params.get("CallStatus");
    match (conference_event, call_status) {
        (Some(event), _) if !CONFERENCE_EVENTS.contains(&event) => {
            return Err(WebhookError::BadRequest(format!("unknown conference event {event:?}")));
        }
        (None, Some(status)) if call_state(status).is_none() => {
            return Err(WebhookError::BadRequest(format!("unknown call status {status:?}")));
        }
        (None, None) => {
            return Err(WebhookError::BadRequest(
                "neither a call status nor a conference event".into(),
            ));
        }
        _ => {}
    }
    let at = params
        .get("Timestamp")
        .and_then(Timestamp::parse_rfc2822)
        .unwrap_or_else(Timestamp::now);

    let id = match query.get("callId") {
        Some(id) => Some(CallId::parse(id).map_err(|e| WebhookError::BadRequest(e.to_string()))?),
        None => match &sid {
            Some(sid) => app.store.call_by_sid(ws, sid).await?,
            None => None,
        },
    };
    // A leg Switchboard does not track (a call placed outside it): nothing to do.
    let Some(id) = id else { return Ok(empty()) };
    let session = app
        .store
        .get_call(ws, &id)
        .await?
        .ok_or_else(|| WebhookError::NotFound(format!("call {id}")))?;

    let leg = match (query.get("leg"), &sid) {
        (Some("customer"), _) => Leg::Customer,
        (Some("agent"), _) => Leg::Agent,
        (_, Some(sid)) if session.agent_call_sid.as_ref() == Some(sid) => Leg::Agent,
        (_, Some(sid)) if session.customer_call_sid.as_ref() == Some(sid) => Leg::Customer,
        _ => Leg::Unknown,
    };

    record(app, &session, params, leg, at).await?;
    match (conference_event, call_status) {
        (Some(event), _) => on_conference_event(app, &hook, &session, event, leg, at).await?,
        (None, Some(status)) => on_call_status(app, &hook, &session, status, leg, at).await?,
        (None, None) => {}
    }
    Ok(empty())
}

/// Appends the event to the timeline once (keyed so that duplicates collapse).
async fn record(
    app: &App,
    session: &CallSession,
    params: &Params,
    leg: Leg,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let sequence = params.get("SequenceNumber").unwrap_or("");
    let call_sid = params.get("CallSid").unwrap_or("");
    let (key, kind) = match params.get("StatusCallbackEvent") {
        Some(event) => (
            format!("conference:{event}:{call_sid}:{sequence}"),
            format!("{}-{event}", leg.name()),
        ),
        None => {
            let status = params.get("CallStatus").unwrap_or("");
            (
                format!("call:{call_sid}:{status}:{sequence}"),
                format!("{}-{status}", leg.name()),
            )
        }
    };
    let detail: BTreeMap<String, String> = ["CallDuration", "SipResponseCode", "ErrorCode", "ConferenceSid", "Hold"]
        .iter()
        .filter_map(|name| {
            params
                .get(name)
                .map(|v| ((*name).to_owned(), v.chars().take(64).collect()))
        })
        .collect();
    let event = TimelineEvent { key, at, kind, detail };
    app.store.append_event(&session.workspace, &session.id, &event).await?;
    Ok(())
}

async fn on_conference_event(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    event: &str,
    leg: Leg,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let (ws, id) = (&session.workspace, &session.id);
    if session.conference_sid.is_none()
        && let Some(conference) = hook
            .params
            .get("ConferenceSid")
            .and_then(|s| ConferenceSid::parse(s).ok())
    {
        let update = CallUpdate {
            conference_sid: Some(conference),
            ..CallUpdate::default()
        };
        app.store.update_call(ws, id, &update).await?;
    }
    match (event, leg) {
        ("participant-join", Leg::Agent) if session.is_outbound() => dial_customer(app, hook, session, at).await,
        ("participant-join", Leg::Customer) => {
            app.store.advance_call(ws, id, CallState::InProgress, at).await?;
            Ok(())
        }
        ("participant-leave", Leg::Agent) | ("conference-end", _) => agent_gone(app, hook, session, at).await,
        _ => Ok(()),
    }
}

async fn on_call_status(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    status: &str,
    leg: Leg,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let (ws, id) = (&session.workspace, &session.id);
    let Some(state) = call_state(status) else {
        return Ok(());
    };
    match (session.direction, leg) {
        // The customer's leg drives an outbound session; the caller's leg an
        // inbound one.
        (_, Leg::Customer) => {
            if session.customer_call_sid.is_none()
                && let Some(sid) = hook.params.get("CallSid").and_then(|s| CallSid::parse(s).ok())
            {
                // The dial's response was lost: learn the leg from its callback.
                app.store.link_call_sid(ws, &sid, id).await?;
                let update = CallUpdate {
                    customer_call_sid: Some(sid),
                    ..CallUpdate::default()
                };
                app.store.update_call(ws, id, &update).await?;
            }
            if session.direction == Direction::Inbound && !state.is_terminal() {
                // An inbound caller is "in progress" as soon as our TwiML runs;
                // the call is only in progress once an agent answers.
                return Ok(());
            }
            app.store.advance_call(ws, id, state, at).await?;
            finish_leg(app, hook, session, state, at).await
        }
        (Direction::Outbound, Leg::Agent) if state.is_terminal() => agent_gone(app, hook, session, at).await,
        (Direction::Inbound, Leg::Agent) if state == CallState::InProgress => {
            // One of the rung agents answered.
            app.store.advance_call(ws, id, CallState::InProgress, at).await?;
            let agent = hook
                .params
                .get("To")
                .and_then(|to| to.strip_prefix("client:"))
                .and_then(agent_from_identity);
            let update = CallUpdate {
                agent,
                ..CallUpdate::default()
            };
            app.store.update_call(ws, id, &update).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// What a leg's final status leaves behind: its duration, why it ended, and
/// (for a customer who never answered) a word to the waiting agent.
async fn finish_leg(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    state: CallState,
    _at: Timestamp,
) -> Result<(), WebhookError> {
    if !state.is_terminal() {
        return Ok(());
    }
    let duration = hook.params.get("CallDuration").and_then(|d| d.parse::<u32>().ok());
    let reason = match state {
        CallState::Busy => Some("the customer was busy"),
        CallState::NoAnswer => Some("the customer did not answer"),
        CallState::Failed => Some("the call to the customer failed"),
        CallState::Canceled => Some("canceled before it was answered"),
        _ => None,
    };
    let update = CallUpdate {
        duration_seconds: duration,
        end_reason: reason.map(str::to_owned),
        ..CallUpdate::default()
    };
    app.store.update_call(&session.workspace, &session.id, &update).await?;
    if session.is_outbound() && matches!(state, CallState::Busy | CallState::NoAnswer | CallState::Failed) {
        let message = match state {
            CallState::Busy => "The line is busy. Goodbye.",
            CallState::NoAnswer => "There was no answer. Goodbye.",
            _ => "The call could not be connected. Goodbye.",
        };
        tell_agent_and_end(app, hook, session, message).await;
    }
    Ok(())
}

/// The agent's leg has joined the conference: dial the customer, exactly once.
async fn dial_customer(app: &App, hook: &Webhook, session: &CallSession, at: Timestamp) -> Result<(), WebhookError> {
    let (ws, id) = (&session.workspace, &session.id);
    if !app.store.claim_step(ws, id, DIAL_CUSTOMER, at).await? {
        return Ok(());
    }
    let client = twilio(app, hook).await?;
    let placed = client
        .create_call(&NewCall {
            to: &session.to,
            from: &session.from,
            url: &customer_twiml_url(app, id),
            status_callback: &status_url(app, id, Some("customer")),
            timeout_seconds: CUSTOMER_RING_SECONDS,
        })
        .await;
    match placed {
        Ok(call) => {
            app.store.link_call_sid(ws, &call.sid, id).await?;
            let update = CallUpdate {
                customer_call_sid: Some(call.sid),
                ..CallUpdate::default()
            };
            app.store.update_call(ws, id, &update).await?;
            app.store.advance_call(ws, id, CallState::Dialing, at).await?;
            tracing::info!(call = %id, "dialed the customer");
        }
        Err(error) => {
            tracing::warn!(call = %id, %error, "the customer could not be dialed");
            app.store.advance_call(ws, id, CallState::Failed, at).await?;
            let update = CallUpdate {
                end_reason: Some(format!("the call could not be placed: {error}")),
                ..CallUpdate::default()
            };
            app.store.update_call(ws, id, &update).await?;
            tell_agent_and_end(app, hook, session, "Sorry, the call could not be placed. Goodbye.").await;
        }
    }
    Ok(())
}

/// The agent hung up or the conference ended. If the customer was never
/// dialed, they never will be (the claim says so) and the session is
/// abandoned; if they are still ringing, their phone stops.
async fn agent_gone(app: &App, hook: &Webhook, session: &CallSession, at: Timestamp) -> Result<(), WebhookError> {
    let (ws, id) = (&session.workspace, &session.id);
    if !session.is_outbound() {
        return Ok(());
    }
    if app.store.claim_step(ws, id, DIAL_CUSTOMER, at).await? {
        app.store.advance_call(ws, id, CallState::Abandoned, at).await?;
        let update = CallUpdate {
            end_reason: Some("the agent left before the customer was dialed".into()),
            ..CallUpdate::default()
        };
        app.store.update_call(ws, id, &update).await?;
        return Ok(());
    }
    let current = app.store.get_call(ws, id).await?;
    let ringing = current
        .as_ref()
        .is_some_and(|c| c.state.rank() < CallState::InProgress.rank());
    if let (true, Some(customer)) = (ringing, current.and_then(|c| c.customer_call_sid)) {
        let client = twilio(app, hook).await?;
        if let Err(error) = client.end_call(&customer, EndCall::Cancel).await {
            tracing::warn!(call = %id, %error, "could not stop the customer's phone ringing");
        }
    }
    Ok(())
}

/// Plays `message` to the agent alone in the conference, then hangs up their
/// leg; the conference ends with it. Best effort, once.
async fn tell_agent_and_end(app: &App, hook: &Webhook, session: &CallSession, message: &str) {
    let Some(agent) = &session.agent_call_sid else { return };
    let claimed = app
        .store
        .claim_step(&session.workspace, &session.id, NOTIFY_AGENT, Timestamp::now())
        .await;
    if !matches!(claimed, Ok(true)) {
        return;
    }
    let result = match twilio(app, hook).await {
        Ok(client) => client
            .redirect_call(agent, &Twiml::say_and_hang_up(message).to_xml())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = result {
        // The agent may already have hung up.
        tracing::info!(call = %session.id, %error, "could not tell the agent");
    }
}

async fn twilio(app: &App, hook: &Webhook) -> Result<TwilioClient, WebhookError> {
    let account = hook
        .workspace
        .twilio
        .as_ref()
        .ok_or_else(|| WebhookError::Internal("a verified webhook's workspace has no Twilio account".into()))?;
    Ok(onboarding::client_for(app, &hook.workspace.id, account).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_twilio_call_status_has_a_state() {
        for status in [
            "queued",
            "initiated",
            "ringing",
            "in-progress",
            "answered",
            "completed",
            "busy",
            "no-answer",
            "failed",
            "canceled",
        ] {
            assert!(call_state(status).is_some(), "{status}");
        }
        assert_eq!(call_state("ringing"), Some(CallState::Ringing));
        assert_eq!(call_state("bogus"), None);
    }
}
