//! The TwiML Twilio asks for on each leg: the agent's browser joining its
//! conference, the customer joining it, an inbound caller ringing agents, and
//! voicemail when nobody answers.

use std::time::Duration;

use crate::api::{Request, Response, twiml};
use crate::app::App;
use crate::calls::ring;
use crate::calls::{expire_if_stale, outbound, recording_url, status_url, voicemail_url};
use crate::ids::{CallId, CallSid};
use crate::model::calls::{CallSession, CallState, CallUpdate, Direction, LegState, MonitorMode, Role, TO_VOICEMAIL};
use crate::phone::E164;
use crate::ports::StoreError;
use crate::time::Timestamp;
use crate::twilio::access_token::{agent_from_identity, agent_identity};
use crate::twilio::twiml::{Conference, Dial, Record, Response as Twiml};
use crate::twilio::webhooks::VoiceRequest;
use crate::webhook::{Webhook, WebhookError, call_id_from_query, session_from_query};
use crate::workspace::Workspace;

pub const VOICEMAIL_MAX_SECONDS: u32 = 120;
/// How long an inbound call's CallSid is remembered to find its session again.
const INBOUND_KEY_TTL: Duration = Duration::from_secs(86_400);

/// The call's conference for a leg whose leaving ends it; `starts`: whether
/// its joining starts it too.
fn ending_conference(session: &CallSession, starts: bool) -> Conference {
    Conference::new(&session.conference)
        .start_conference_on_enter(starts)
        .end_conference_on_exit(true)
        .beep(false)
}

/// `<Dial><Conference>`: the TwiML that puts a leg into `conference`.
fn dial_into(conference: Conference) -> Twiml {
    Twiml::new().dial(Dial::new().conference(conference))
}

/// The leg the conference is made for (the placing agent's; an inbound
/// caller's, who waits with the workspace's music unless `starts`): it
/// reports the conference's events and records it.
fn reporting_conference(app: &App, workspace: &Workspace, session: &CallSession, starts: bool) -> Twiml {
    let mut conference = ending_conference(session, starts).status_callback(
        &status_url(app, &session.id, None),
        &["start", "end", "join", "leave", "hold"],
    );
    if !starts && let Some(wait_url) = &workspace.settings.wait_url {
        conference = conference.wait_url(wait_url);
    }
    if workspace.settings.record {
        conference = conference.record_from_start(&recording_url(app, &session.id));
    }
    dial_into(conference)
}

/// `POST /twilio/voice/agent`, the TwiML App's Voice URL: a browser `Device`
/// connecting, with `callId` from `POST /calls`, or with just `To` (the way
/// every Voice SDK quickstart dialer calls).
pub async fn agent(app: &App, hook: Webhook, _request: Request) -> Result<Response, WebhookError> {
    let form: VoiceRequest = hook.form()?;
    let identity = form
        .from
        .as_deref()
        .and_then(|from| from.strip_prefix("client:"))
        .ok_or_else(|| WebhookError::BadRequest("the call does not come from a Voice SDK client".into()))?;
    let ws = &hook.workspace;

    let session = match form.call_id.as_deref() {
        Some(id) => {
            let id = CallId::parse(id).map_err(|e| WebhookError::BadRequest(e.to_string()))?;
            let session = app
                .store
                .get_call(&ws.id, &id)
                .await?
                .ok_or_else(|| WebhookError::NotFound(format!("call {id}")))?;
            let owner = session.agent.as_ref().map(agent_identity);
            if !session.is_outbound() || owner.as_deref() != Some(identity) {
                return Err(WebhookError::BadRequest("this call belongs to another agent".into()));
            }
            session
        }
        None => {
            // A dialer that only sends `To`: the same rules as `POST /calls`,
            // once per CallSid however often Twilio asks.
            let to = outbound::parse_destination(form.to.as_deref().unwrap_or_default())?;
            let agent = agent_from_identity(identity)
                .ok_or_else(|| WebhookError::BadRequest("unknown client identity".into()))?;
            let from = outbound::caller_id(app, ws, &agent, form.caller_id.as_deref()).await?;
            let key = format!("agent-leg:{}", form.call_sid);
            outbound::create_once(app, ws, &agent, Some(&key), &to, &from).await?
        }
    };

    let session = expire_if_stale(app, session).await?;
    if session.state != CallState::Created {
        return Ok(twiml(Twiml::say_and_hang_up("This call has already ended. Goodbye.")));
    }
    app.store.link_call_sid(&ws.id, &form.call_sid, &session.id).await?;
    let now = Timestamp::now();
    let recorded = ws.settings.record;
    app.store
        .modify_call(&ws.id, &session.id, &|s| {
            s.apply(&CallUpdate {
                agent_call_sid: Some(form.call_sid.clone()),
                ..CallUpdate::default()
            });
            s.connect_placing_agent(&form.call_sid, now);
            s.recorded |= recorded;
        })
        .await?;
    // The agent's leg starts the conference; the agent leaving ends it.
    Ok(twiml(reporting_conference(app, ws, &session, true)))
}

/// `POST /twilio/voice/customer?callId=`: the customer answered; into the
/// conference they go, ending it when they leave.
pub async fn customer(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let session = session_from_query(app, &hook, &request).await?;
    if !session.is_outbound() || session.state.is_terminal() {
        return Ok(twiml(Twiml::say_and_hang_up("Sorry, this call has ended. Goodbye.")));
    }
    Ok(twiml(dial_into(ending_conference(&session, true))))
}

/// `POST /twilio/voice/inbound`, every number's Voice URL: the caller waits
/// in the call's conference (music, not silence) while every agent of the
/// number is rung in the browser; the first to answer joins and starts it.
/// A number with no agents goes to voicemail at once.
pub async fn inbound(app: &App, hook: Webhook, _request: Request) -> Result<Response, WebhookError> {
    let form: VoiceRequest = hook.form()?;
    let ws = &hook.workspace;
    let number = form.to.as_deref().and_then(|to| E164::from_canonical(to).ok());
    let owned = match &number {
        Some(number) => app.store.get_number(&ws.id, number).await?,
        None => None,
    };
    let (Some(number), Some(owned)) = (number, owned) else {
        return Ok(twiml(Twiml::say_and_hang_up(
            "Sorry, the number you have called is not in service. Goodbye.",
        )));
    };

    let session = inbound_session(app, ws, &form.call_sid, form.from.as_deref(), &number).await?;
    if owned.agents.is_empty() {
        return Ok(twiml(to_voicemail(app, &session).await?));
    }
    if session.state.is_terminal() || session.steps.contains_key(TO_VOICEMAIL) {
        // Twilio asked again after the call moved on.
        return Ok(twiml(Twiml::say_and_hang_up("Sorry, this call has ended. Goodbye.")));
    }
    if !ring::ring_agents(app, ws, &session, &owned.agents).await? {
        // No agent could be rung at all.
        return Ok(twiml(to_voicemail(app, &session).await?));
    }
    // The caller waits (does not start it) until an agent joins; the caller
    // leaving ends it.
    Ok(twiml(reporting_conference(app, ws, &session, false)))
}

/// `POST /twilio/voice/answer?callId=&label=`: an agent's browser accepted
/// the call it was rung for. The first to answer joins the conference and
/// starts it, and every other agent's browser stops ringing at once; an
/// accept that comes after someone else's is told so and hung up.
pub async fn answer(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let form: VoiceRequest = hook.form()?;
    let label = query_label(&request)?;
    let id = call_id_from_query(&request)?;
    // Only a leg Switchboard rang for an agent answers here.
    let rung = |s: &CallSession| s.participants.get(&label).is_some_and(|p| p.role == Role::Agent);
    let now = Timestamp::now();
    // One read: the change itself finds the session (`NotFound` if none).
    let modified = app
        .store
        .modify_call(&hook.workspace.id, &id, &|s| {
            if !rung(s) {
                return;
            }
            s.link_participant(&label, &form.call_sid);
            if s.answer(&label, now) {
                s.apply(&CallUpdate {
                    agent_call_sid: Some(form.call_sid.clone()),
                    ..CallUpdate::default()
                });
            }
        })
        .await?;
    let after = &modified.after;
    if !rung(after) {
        return Ok(twiml(Twiml::say_and_hang_up(
            "Sorry, this call cannot be answered. Goodbye.",
        )));
    }
    if after.answered_by.as_deref() != Some(label.as_str()) {
        tracing::info!(call = %id, %label, "a late accept was refused");
        return Ok(twiml(Twiml::say_and_hang_up(
            "Another agent has answered this call. Goodbye.",
        )));
    }
    app.store.link_call_sid(&hook.workspace.id, &form.call_sid, &id).await?;
    if modified.before.answered_by.is_none() {
        tracing::info!(call = %id, %label, "an agent answered");
        ring::stop_ringing(app, &hook.workspace, after).await;
    }
    Ok(twiml(dial_into(ending_conference(after, true))))
}

/// The session of an inbound call: created once per CallSid, however often
/// Twilio asks, with the caller's leg linked to it as its customer.
async fn inbound_session(
    app: &App,
    ws: &Workspace,
    sid: &CallSid,
    from: Option<&str>,
    number: &E164,
) -> Result<CallSession, WebhookError> {
    let now = Timestamp::now();
    let caller: String = from.unwrap_or("anonymous").chars().take(64).collect();
    let mut fresh = CallSession::new(
        ws.id.clone(),
        Direction::Inbound,
        None,
        caller.clone(),
        number.to_string(),
        now,
    );
    let stored = app
        .store
        .remember(&ws.id, &format!("inbound:{sid}"), fresh.id.as_str(), INBOUND_KEY_TTL)
        .await?;
    let id = CallId::parse(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    fresh = fresh.with_id(id);
    fresh.add_participant("customer", Role::Customer, None, Some(caller), now);
    fresh.link_participant("customer", sid);
    fresh.move_participant("customer", LegState::Answered, now);
    fresh.customer_call_sid = Some(sid.clone());
    fresh.recorded = ws.settings.record;
    let session = match app.store.create_call(&fresh).await {
        Ok(()) => fresh,
        Err(StoreError::Conflict(_)) => app
            .store
            .get_call(&ws.id, &fresh.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(fresh.id.to_string()))?,
        Err(error) => return Err(error.into()),
    };
    app.store.link_call_sid(&ws.id, sid, &session.id).await?;
    Ok(session)
}

/// Nobody answered: the session ends `no-answer` and the caller may leave a message.
async fn to_voicemail(app: &App, session: &CallSession) -> Result<Twiml, WebhookError> {
    let now = Timestamp::now();
    app.store
        .modify_call(&session.workspace, &session.id, &|s| {
            // No agent may answer from here on (a leg still ringing is refused).
            s.claim(TO_VOICEMAIL, now);
            s.advance(CallState::NoAnswer, now);
            s.apply(&CallUpdate {
                end_reason: Some("no agent answered; voicemail".into()),
                ..CallUpdate::default()
            });
        })
        .await?;
    Ok(voicemail(app, &session.id))
}

fn voicemail(app: &App, call: &CallId) -> Twiml {
    Twiml::new()
        .say("Nobody is available to take your call. Please leave a message after the beep.")
        .record(
            Record::new()
                .max_length(VOICEMAIL_MAX_SECONDS)
                .play_beep(true)
                .action(&voicemail_url(app, call, "&step=done"))
                .recording_status_callback(&recording_url(app, call)),
        )
        .say("No message was recorded. Goodbye.")
        .hangup()
}

/// `POST /twilio/voice/voicemail?callId=`: where a caller nobody answered is
/// sent (out of the conference's waiting room): they leave a message. After
/// the recording (`&step=done`), goodbye.
pub async fn voicemail_twiml(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let session = session_from_query(app, &hook, &request).await?;
    if request.query_params().get("step") == Some("done") {
        return Ok(twiml(Twiml::say_and_hang_up("Thank you. Goodbye.")));
    }
    if session.answered_by.is_some() {
        return Ok(twiml(Twiml::new().hangup()));
    }
    Ok(twiml(to_voicemail(app, &session).await?))
}

/// `POST /twilio/voice/join?callId=&label=`: a transfer target or a
/// supervisor answered the call they were rung for. They join the call's
/// conference without ending it on their way out (a target's leaving ends
/// it once the call is handed over to them); a supervisor listening is
/// muted, one whispering coaches the call's agent. A transfer that was
/// canceled meanwhile, or a call that ended, is said so and hung up.
pub async fn join(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let form: VoiceRequest = hook.form()?;
    let label = query_label(&request)?;
    let id = call_id_from_query(&request)?;
    let now = Timestamp::now();
    let joining = |s: &CallSession| {
        s.participants
            .get(&label)
            .is_some_and(|p| matches!(p.role, Role::Transfer | Role::Supervisor))
    };
    // One read: the change itself finds the session (`NotFound` if none).
    let modified = app
        .store
        .modify_call(&hook.workspace.id, &id, &|s| {
            if joining(s) {
                s.link_participant(&label, &form.call_sid);
                s.move_participant(&label, LegState::Answered, now);
            }
        })
        .await?;
    let session = modified.after;
    let Some(participant) = session.participants.get(&label).filter(|_| joining(&session)) else {
        return Ok(twiml(Twiml::say_and_hang_up("Sorry, this call has ended. Goodbye.")));
    };
    if session.state.is_terminal() || participant.state.is_over() {
        return Ok(twiml(Twiml::say_and_hang_up("Sorry, this call has ended. Goodbye.")));
    }
    app.store
        .link_call_sid(&session.workspace, &form.call_sid, &session.id)
        .await?;
    let mut conference = Conference::new(&session.conference)
        .end_conference_on_exit(false)
        .beep(false);
    if participant.role == Role::Transfer {
        if session.active_transfer().is_none_or(|t| t.label != label) {
            return Ok(twiml(Twiml::say_and_hang_up("This transfer was canceled. Goodbye.")));
        }
        conference = conference.start_conference_on_enter(true);
    } else {
        // A supervisor never starts (or keeps) a conference of their own.
        conference = conference.start_conference_on_enter(false);
        match participant.monitor {
            Some(MonitorMode::Listen) | None => conference = conference.muted(true),
            Some(MonitorMode::Whisper) => {
                if let Some(agent) = session.agent_leg().and_then(|p| p.call_sid.as_ref()) {
                    conference = conference.coach(agent.as_str());
                }
            }
            Some(MonitorMode::Barge) => {}
        }
    }
    Ok(twiml(dial_into(conference)))
}

/// The participant label in a callback URL we built (`&label=`).
fn query_label(request: &Request) -> Result<String, WebhookError> {
    request
        .query_params()
        .get("label")
        .filter(|label| !label.is_empty() && label.len() <= 32)
        .map(str::to_owned)
        .ok_or_else(|| WebhookError::BadRequest("missing label".into()))
}
