//! `POST /twilio/status`: call progress and conference events.
//!
//! Twilio delivers at least once and in no set order, so everything here is a
//! conditional write or a claimed step: the session's state only moves forward
//! (terminal states stick), the earliest time of each state is kept, every
//! event lands on the timeline once, and each side effect (dialing the
//! customer, telling the agent) happens at most once whoever races.

use std::collections::BTreeMap;

use crate::api::{Request, Response, empty_twiml};
use crate::app::App;
use crate::calls::{DIAL_CUSTOMER, customer_twiml_url, ring, status_url, transfer, voicemail_url};
use crate::ids::{CallId, CallSid};
use crate::model::calls::{
    Advance, CallSession, CallState, CallUpdate, Direction, LegState, Role, TO_VOICEMAIL, TimelineEvent, TransferState,
};
use crate::telemetry::error_chain;
use crate::time::Timestamp;
use crate::twilio::rest::{EndCall, NewCall, TwilioClient, TwilioError};
use crate::twilio::twiml::Response as Twiml;
use crate::twilio::webhooks::{CallStatus, ConferenceEvent, StatusCallback, Unknown};
use crate::webhook::{Webhook, WebhookError};

/// How long the customer's phone rings before Twilio gives up.
pub const CUSTOMER_RING_SECONDS: u32 = 30;
const NOTIFY_AGENT: &str = "notify-agent";
/// Left when Twilio refused to send the caller to voicemail: the next
/// callback of the call takes it and tries again.
const VOICEMAIL_RETRY: &str = "voicemail-retry";
/// The "do this once" step that stops what still rings into an ended conference.
const WIND_UP: &str = "wind-up";

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

/// Twilio's call statuses, as the session state they mean for a leg.
fn call_state(status: &CallStatus) -> Option<CallState> {
    Some(match status {
        CallStatus::Queued | CallStatus::Initiated => CallState::Dialing,
        CallStatus::Ringing => CallState::Ringing,
        CallStatus::InProgress | CallStatus::Answered => CallState::InProgress,
        CallStatus::Completed => CallState::Completed,
        CallStatus::Busy => CallState::Busy,
        CallStatus::NoAnswer => CallState::NoAnswer,
        CallStatus::Failed => CallState::Failed,
        CallStatus::Canceled => CallState::Canceled,
        CallStatus::Other(_) => return None,
    })
}

pub async fn callback(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let query = request.query_params();
    let form: StatusCallback = hook.form()?;
    let ws = &hook.workspace.id;

    // Parse everything before anything is written. A status or an event this
    // version does not know is acknowledged, never refused: Twilio would not
    // send it again.
    let unknown = form
        .status_callback_event
        .as_ref()
        .and_then(Unknown::unknown)
        .or_else(|| form.call_status.as_ref().and_then(Unknown::unknown));
    if let Some(unknown) = unknown {
        let unknown: String = unknown.chars().take(64).collect();
        tracing::warn!(value = %unknown, "a status callback this version does not know; acknowledged");
        return Ok(empty_twiml());
    }
    if form.status_callback_event.is_none() && form.call_status.is_none() {
        return Err(WebhookError::BadRequest(
            "neither a call status nor a conference event".into(),
        ));
    }
    let at = form
        .timestamp
        .as_deref()
        .and_then(Timestamp::parse_rfc2822)
        .unwrap_or_else(Timestamp::now);

    let id = match query.get("callId") {
        Some(id) => Some(CallId::parse(id).map_err(|e| WebhookError::BadRequest(e.to_string()))?),
        None => match &form.call_sid {
            Some(sid) => app.store.call_by_sid(ws, sid).await?,
            None => None,
        },
    };
    // A leg Switchboard does not track (a call placed outside it): nothing to do.
    let Some(id) = id else { return Ok(empty_twiml()) };
    let session = app
        .store
        .get_call(ws, &id)
        .await?
        .ok_or_else(|| WebhookError::NotFound(format!("call {id}")))?;

    let leg = match (query.get("leg"), &form.call_sid) {
        (Some("customer"), _) => Leg::Customer,
        (Some("agent"), _) => Leg::Agent,
        (_, Some(sid)) if session.agent_call_sid.as_ref() == Some(sid) => Leg::Agent,
        (_, Some(sid)) if session.customer_call_sid.as_ref() == Some(sid) => Leg::Customer,
        _ => Leg::Unknown,
    };
    // The participant the callback is about: named in our URL (a rung agent),
    // else found by its leg.
    let label = query
        .get("label")
        .filter(|label| session.participants.contains_key(*label))
        .map(str::to_owned)
        .or_else(|| {
            let sid = form.call_sid.as_ref()?;
            session.participant_by_sid(sid).map(|p| p.label.clone())
        });

    record(app, &session, &form, leg, at).await?;
    let role = label
        .as_deref()
        .and_then(|l| session.participants.get(l))
        .map(|p| p.role);
    match (&form.status_callback_event, &form.call_status) {
        (Some(event), _) => {
            on_participant_event(app, &hook, &session, event, label.as_deref(), at).await?;
            on_conference_event(app, &hook, &session, &form, event, leg, label.as_deref(), at).await?;
        }
        (None, Some(status)) => match (session.direction, leg, label, role) {
            (_, _, Some(label), Some(Role::Transfer | Role::Supervisor)) => {
                on_side_leg_status(app, &hook, &session, status, &label, at).await?;
            }
            (Direction::Inbound, Leg::Agent, Some(label), _) => {
                on_rung_agent_status(app, &hook, &session, status, &label, at).await?;
            }
            _ => on_call_status(app, &hook, &session, &form, status, leg, at).await?,
        },
        (None, None) => {}
    }
    Ok(empty_twiml())
}

/// Twilio's call statuses, as where a participant's leg stands.
fn leg_state(status: &CallStatus) -> LegState {
    match status {
        CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing => LegState::Ringing,
        CallStatus::InProgress | CallStatus::Answered => LegState::Answered,
        CallStatus::Completed => LegState::Left,
        CallStatus::Busy => LegState::Busy,
        CallStatus::NoAnswer => LegState::NoAnswer,
        CallStatus::Failed => LegState::Failed,
        CallStatus::Canceled | CallStatus::Other(_) => LegState::Canceled,
    }
}

/// Moves a leg to what its call status says; a leg that ends without having
/// been answered never was in the call (`canceled`, not `left`).
fn move_leg(s: &mut CallSession, label: &str, state: LegState, at: Timestamp) {
    let answered = s.participants.get(label).is_some_and(|p| p.state >= LegState::Answered);
    let state = if state == LegState::Left && !answered {
        LegState::Canceled
    } else {
        state
    };
    s.move_participant(label, state, at);
}

/// A transfer target's or a supervisor's leg moved; a target that never
/// took the call fails the transfer.
async fn on_side_leg_status(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    status: &CallStatus,
    label: &str,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let state = leg_state(status);
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| move_leg(s, label, state, at))
        .await?;
    if state.is_over() {
        transfer_leg_changed(app, hook, &modified.after, label, at).await?;
    }
    Ok(())
}

/// What a participant's leg moving means for a transfer under way; with none
/// (most legs), nothing, and no Twilio client is opened for it.
async fn transfer_leg_changed(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    label: &str,
    at: Timestamp,
) -> Result<(), WebhookError> {
    if session.active_transfer().is_none() {
        return Ok(());
    }
    let client = twilio(app, hook).await?;
    transfer::on_leg_change(app, &client, session, label, at).await?;
    Ok(())
}

/// What a conference event says of one participant: it joined, left, or
/// was put on hold or taken off it; and what that means for a transfer.
async fn on_participant_event(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    event: &ConferenceEvent,
    label: Option<&str>,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let Some(label) = label else { return Ok(()) };
    let moved: Option<&(dyn Fn(&mut CallSession) + Sync)> = match event {
        ConferenceEvent::ParticipantJoin => Some(&|s: &mut CallSession| {
            s.move_participant(label, LegState::Joined, at);
            s.transfer_joined(label);
        }),
        ConferenceEvent::ParticipantLeave => Some(&|s: &mut CallSession| {
            s.move_participant(label, LegState::Left, at);
        }),
        ConferenceEvent::ParticipantHold => Some(&|s: &mut CallSession| {
            s.set_held(label, true);
        }),
        ConferenceEvent::ParticipantUnhold => Some(&|s: &mut CallSession| {
            s.set_held(label, false);
        }),
        _ => None,
    };
    let Some(change) = moved else { return Ok(()) };
    let modified = app.store.modify_call(&session.workspace, &session.id, &change).await?;
    if matches!(
        event,
        ConferenceEvent::ParticipantJoin | ConferenceEvent::ParticipantLeave
    ) {
        transfer_leg_changed(app, hook, &modified.after, label, at).await?;
    }
    Ok(())
}

/// A rung agent's leg of an inbound call moved. When the last of them ends
/// unanswered (no answer, busy, failed, canceled), the caller is taken out
/// of the waiting room into voicemail: a claimed step, so exactly once
/// however these callbacks race.
async fn on_rung_agent_status(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    status: &CallStatus,
    label: &str,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let state = leg_state(status);
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            move_leg(s, label, state, at);
            s.to_voicemail(at);
        })
        .await?;
    let claimed = |s: &CallSession| s.steps.contains_key(TO_VOICEMAIL);
    let first = claimed(&modified.after) && !claimed(&modified.before);
    // A redirect Twilio refused left a token: the next callback takes it
    // (one caller at a time) and tries again.
    let again = !first
        && modified.after.steps.contains_key(VOICEMAIL_RETRY)
        && app
            .store
            .modify_call(&session.workspace, &session.id, &|s| {
                s.release(VOICEMAIL_RETRY);
            })
            .await?
            .before
            .steps
            .contains_key(VOICEMAIL_RETRY);
    if !(first || again) || modified.after.state.is_terminal() {
        return Ok(());
    }
    let Some(caller) = modified.after.customer_call_sid.clone() else {
        return Ok(());
    };
    tracing::info!(call = %session.id, again, "nobody answered: the caller goes to voicemail");
    let redirected = match twilio(app, hook).await {
        Ok(client) => client
            .redirect_call_to(&caller, &voicemail_url(app, &session.id, ""))
            .await
            .map(|_| ()),
        Err(error) => Err(TwilioError::Unexpected(error.to_string())),
    };
    match redirected {
        Ok(()) => {}
        // The caller hung up meanwhile: their own callback ends the call.
        Err(TwilioError::NotFound { .. }) => {}
        Err(error) => {
            tracing::warn!(call = %session.id, error = %error_chain(&error), "could not send the caller to voicemail; the next callback tries again");
            app.store
                .claim_step(&session.workspace, &session.id, VOICEMAIL_RETRY, at)
                .await?;
        }
    }
    Ok(())
}

/// Appends the event to the timeline once (keyed so that duplicates collapse).
async fn record(
    app: &App,
    session: &CallSession,
    form: &StatusCallback,
    leg: Leg,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let sequence = form.sequence_number.as_deref().unwrap_or("");
    let call_sid = form.call_sid.as_ref().map_or("", CallSid::as_str);
    let (key, kind) = match (&form.status_callback_event, &form.call_status) {
        (Some(event), _) => (
            format!("conference:{}:{call_sid}:{sequence}", event.as_str()),
            match event {
                // About the conference, not one of its legs.
                ConferenceEvent::ConferenceStart | ConferenceEvent::ConferenceEnd => event.as_str().to_owned(),
                _ => format!("{}-{}", leg.name(), event.as_str()),
            },
        ),
        (None, status) => {
            let status = status.as_ref().map_or("", CallStatus::as_str);
            (
                format!("call:{call_sid}:{status}:{sequence}"),
                format!("{}-{status}", leg.name()),
            )
        }
    };
    let conference = form.conference_sid.as_ref().map(|c| c.to_string());
    let detail: BTreeMap<String, String> = [
        ("CallDuration", form.call_duration.as_ref()),
        ("SipResponseCode", form.sip_response_code.as_ref()),
        ("ErrorCode", form.error_code.as_ref()),
        ("ConferenceSid", conference.as_ref()),
        ("Hold", form.hold.as_ref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v.chars().take(64).collect())))
    .collect();
    let event = TimelineEvent { key, at, kind, detail };
    app.store.append_event(&session.workspace, &session.id, &event).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn on_conference_event(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    form: &StatusCallback,
    event: &ConferenceEvent,
    leg: Leg,
    label: Option<&str>,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let (ws, id) = (&session.workspace, &session.id);
    if session.conference_sid.is_none()
        && let Some(conference) = &form.conference_sid
    {
        let update = CallUpdate {
            conference_sid: Some(conference.clone()),
            ..CallUpdate::default()
        };
        app.store.update_call(ws, id, &update).await?;
    }
    match (event, leg) {
        (ConferenceEvent::ParticipantJoin, Leg::Agent) if session.is_outbound() => {
            dial_customer(app, hook, session, at).await
        }
        (ConferenceEvent::ParticipantJoin, Leg::Customer) if session.is_outbound() => {
            app.store.advance_call(ws, id, CallState::InProgress, at).await?;
            Ok(())
        }
        // The agent who answered an inbound call joined the waiting caller.
        (ConferenceEvent::ParticipantJoin, _) if !session.is_outbound() && label == session.answered_by.as_deref() => {
            app.store.advance_call(ws, id, CallState::InProgress, at).await?;
            Ok(())
        }
        (ConferenceEvent::ConferenceEnd, _) => {
            wind_up(app, hook, session, at).await?;
            agent_gone(app, hook, session, at).await
        }
        (ConferenceEvent::ParticipantLeave, Leg::Agent) => agent_gone(app, hook, session, at).await,
        _ => Ok(()),
    }
}

async fn on_call_status(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    form: &StatusCallback,
    status: &CallStatus,
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
                && let Some(sid) = form.call_sid.clone()
            {
                // The dial's response was lost: learn the leg from its callback.
                app.store.link_call_sid(ws, &sid, id).await?;
                let update = CallUpdate {
                    customer_call_sid: Some(sid),
                    ..CallUpdate::default()
                };
                app.store.update_call(ws, id, &update).await?;
            }
            if session.direction == Direction::Inbound {
                return caller_status(app, hook, session, form, state, at).await;
            }
            finish_leg(app, hook, session, form, state, at).await
        }
        (Direction::Outbound, Leg::Agent) if state.is_terminal() => agent_gone(app, hook, session, at).await,
        _ => Ok(()),
    }
}

/// The caller's leg of an inbound call. It is "in progress" as soon as our
/// TwiML runs; the call is in progress only once an agent joins. When it
/// ends: a caller who hung up while waiting leaves the call `canceled`, with
/// how long they waited, and the agents stop ringing; otherwise the call
/// ends as Twilio says (`completed` after a conversation; a voicemail left
/// it `no-answer` already, and that sticks).
async fn caller_status(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    form: &StatusCallback,
    state: CallState,
    at: Timestamp,
) -> Result<(), WebhookError> {
    if !state.is_terminal() {
        return Ok(());
    }
    let duration = form.call_duration.as_deref().and_then(|d| d.parse::<u32>().ok());
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            let waiting = s.answered_by.is_none() && !s.steps.contains_key(TO_VOICEMAIL);
            if waiting {
                let waited = (at.unix_millis() - s.created_at.unix_millis()).max(0) / 1000;
                s.advance(CallState::Canceled, at);
                s.apply(&CallUpdate {
                    end_reason: Some(format!("the caller hung up after waiting {waited} s")),
                    duration_seconds: duration,
                    ..CallUpdate::default()
                });
            } else {
                s.advance(state, at);
                s.apply(&CallUpdate {
                    duration_seconds: duration,
                    ..CallUpdate::default()
                });
            }
            s.move_participant("customer", LegState::Left, at);
        })
        .await?;
    if modified.after.answered_by.is_none() {
        ring::stop_ringing(app, &hook.workspace, &modified.after).await;
    }
    Ok(())
}

/// The customer's leg moved on. A final status is written with what it
/// leaves behind (its duration, why it ended) in one change, so nobody ever
/// reads `busy` without its reason; a customer who never answered gets a word
/// to the waiting agent.
async fn finish_leg(
    app: &App,
    hook: &Webhook,
    session: &CallSession,
    form: &StatusCallback,
    state: CallState,
    at: Timestamp,
) -> Result<(), WebhookError> {
    let duration = form.call_duration.as_deref().and_then(|d| d.parse::<u32>().ok());
    let reason = match state {
        CallState::Busy => Some("the customer was busy"),
        CallState::NoAnswer => Some("the customer did not answer"),
        CallState::Failed => Some("the call to the customer failed"),
        CallState::Canceled => Some("canceled before it was answered"),
        _ => None,
    };
    let update = CallUpdate {
        duration_seconds: duration.filter(|_| state.is_terminal()),
        end_reason: reason.map(str::to_owned),
        ..CallUpdate::default()
    };
    app.store
        .modify_call(&session.workspace, &session.id, &|s| {
            // The reason is this state's only if this report ends the call.
            if matches!(s.advance(state, at), Advance::Moved { .. }) || !state.is_terminal() {
                s.apply(&update);
            } else {
                s.apply(&CallUpdate {
                    duration_seconds: update.duration_seconds,
                    ..CallUpdate::default()
                });
            }
        })
        .await?;
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
            app.store
                .modify_call(ws, id, &|s| {
                    s.apply(&CallUpdate {
                        customer_call_sid: Some(call.sid.clone()),
                        ..CallUpdate::default()
                    });
                    s.add_participant("customer", Role::Customer, None, Some(s.to.clone()), at);
                    s.link_participant("customer", &call.sid);
                    s.advance(CallState::Dialing, at);
                })
                .await?;
            tracing::info!(call = %id, "dialed the customer");
        }
        Err(error) => {
            let error = error_chain(&error);
            tracing::warn!(call = %id, %error, "the customer could not be dialed");
            app.store
                .modify_call(ws, id, &|s| {
                    s.advance(CallState::Failed, at);
                    s.apply(&CallUpdate {
                        end_reason: Some(format!("the call could not be placed: {error}")),
                        ..CallUpdate::default()
                    });
                })
                .await?;
            tell_agent_and_end(app, hook, session, "Sorry, the call could not be placed. Goodbye.").await;
        }
    }
    Ok(())
}

/// The conference ended: a transfer under way is canceled, and whoever is
/// still being rung into it (a transfer target, a supervisor) stops ringing.
/// Once, whoever reports the end first.
async fn wind_up(app: &App, hook: &Webhook, session: &CallSession, at: Timestamp) -> Result<(), WebhookError> {
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            if s.claim(WIND_UP, at) {
                s.end_transfer(TransferState::Canceled);
            }
        })
        .await?;
    if modified.before.steps.contains_key(WIND_UP) {
        return Ok(());
    }
    let ringing: Vec<CallSid> = modified
        .after
        .ringing_side_legs()
        .iter()
        .filter_map(|p| p.call_sid.clone())
        .collect();
    if ringing.is_empty() {
        return Ok(());
    }
    let client = twilio(app, hook).await?;
    for sid in &ringing {
        if let Err(error) = client.end_call(sid, EndCall::HangUp).await {
            tracing::info!(call = %session.id, leg = %sid, error = %error_chain(&error), "a leg had stopped ringing already");
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
    let modified = app
        .store
        .modify_call(ws, id, &|s| {
            s.abandon(at, "the agent left before the customer was dialed");
        })
        .await?;
    if modified.after.state == CallState::Abandoned {
        return Ok(());
    }
    let current = modified.after;
    let ringing = current.state.rank() < CallState::InProgress.rank();
    if let (true, Some(customer)) = (ringing, current.customer_call_sid) {
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
            .map_err(|e| error_chain(&e)),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = result {
        // The agent may already have hung up.
        tracing::info!(call = %session.id, %error, "could not tell the agent");
    }
}

async fn twilio(app: &App, hook: &Webhook) -> Result<TwilioClient, WebhookError> {
    Ok(app.twilio_for(&hook.workspace).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_twilio_call_status_has_a_state() {
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
            let form: StatusCallback =
                crate::twilio::webhooks::parse_form(format!("CallStatus={status}").as_bytes()).unwrap();
            let status = form.call_status.unwrap();
            assert!(
                status.unknown().is_none() && call_state(&status).is_some(),
                "{status:?}"
            );
        }
        assert_eq!(call_state(&CallStatus::Ringing), Some(CallState::Ringing));
        assert_eq!(call_state(&CallStatus::Other("bogus".into())), None);
    }
}
