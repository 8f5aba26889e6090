//! The TwiML Twilio asks for on each leg: the agent's browser joining its
//! conference, the customer joining it, an inbound caller ringing agents, and
//! voicemail when nobody answers.

use std::time::Duration;

use crate::api::{self, Request, Response};
use crate::app::App;
use crate::calls::outbound;
use crate::calls::{CallSession, CallState, CallUpdate, Direction, Timestamp};
use crate::ids::{CallId, CallSid};
use crate::phone::E164;
use crate::routes::paths;
use crate::store::StoreError;
use crate::twilio::access_token::{agent_from_identity, agent_identity};
use crate::twilio::twiml::{Conference, Dial, Record, Response as Twiml};
use crate::webhook::{Params, Webhook, WebhookError};
use crate::workspace::Workspace;

/// How long after `POST /calls` the agent's browser may connect; later, the
/// session is abandoned and the customer is never dialed.
pub const CONNECT_WINDOW: Duration = Duration::from_secs(120);
/// How long agents ring for an inbound call before voicemail.
pub const AGENT_RING_SECONDS: u32 = 20;
pub const VOICEMAIL_MAX_SECONDS: u32 = 120;
/// The "do this once" step that dials the customer; claiming it any other way
/// (the agent left, the session expired) makes sure they are never dialed.
pub const DIAL_CUSTOMER: &str = "dial-customer";

pub fn query_params(request: &Request) -> Params {
    Params::parse_form(request.query.as_deref().unwrap_or("").as_bytes())
}

fn url(app: &App, path: &str, call: &CallId, extra: &str) -> String {
    app.config.public_url.join(&format!("{path}?callId={call}{extra}"))
}

/// Conference events and customer-leg progress come back here.
pub fn status_url(app: &App, call: &CallId, leg: Option<&str>) -> String {
    match leg {
        Some(leg) => url(app, paths::STATUS_CALLBACK, call, &format!("&leg={leg}")),
        None => url(app, paths::STATUS_CALLBACK, call, ""),
    }
}

pub fn customer_twiml_url(app: &App, call: &CallId) -> String {
    url(app, paths::CUSTOMER_TWIML, call, "")
}

pub fn recording_url(app: &App, call: &CallId) -> String {
    url(app, paths::RECORDING_CALLBACK, call, "")
}

fn voicemail_url(app: &App, call: &CallId, step: &str) -> String {
    url(app, paths::VOICEMAIL_TWIML, call, step)
}

/// The session a webhook names in its query (`?callId=`).
pub async fn session_from_query(app: &App, hook: &Webhook, request: &Request) -> Result<CallSession, WebhookError> {
    let id = query_params(request)
        .get("callId")
        .and_then(|id| CallId::parse(id).ok())
        .ok_or_else(|| WebhookError::BadRequest("missing or invalid callId".into()))?;
    app.store
        .get_call(&hook.workspace.id, &id)
        .await?
        .ok_or_else(|| WebhookError::NotFound(format!("call {id}")))
}

fn call_sid(params: &Params) -> Result<CallSid, WebhookError> {
    params
        .get("CallSid")
        .and_then(|sid| CallSid::parse(sid).ok())
        .ok_or_else(|| WebhookError::BadRequest("missing or invalid CallSid".into()))
}

fn twiml(response: Twiml) -> Response {
    api::xml_response(response.to_xml())
}

/// An outbound session older than the connect window that the agent never
/// joined is abandoned (lazily, whoever looks first).
pub async fn expire_if_stale(app: &App, session: CallSession) -> Result<CallSession, StoreError> {
    let deadline = session.created_at.plus_seconds(CONNECT_WINDOW.as_secs() as i64);
    if !session.is_outbound() || session.state != CallState::Created || Timestamp::now() < deadline {
        return Ok(session);
    }
    let (ws, id) = (&session.workspace, &session.id);
    if app.store.claim_step(ws, id, DIAL_CUSTOMER, deadline).await? {
        app.store.advance_call(ws, id, CallState::Abandoned, deadline).await?;
        let reason = CallUpdate {
            end_reason: Some("the agent never joined".into()),
            ..CallUpdate::default()
        };
        app.store.update_call(ws, id, &reason).await?;
    }
    app.store
        .get_call(ws, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))
}

/// The agent's leg: `<Dial><Conference>` that starts the conference and ends it
/// when the agent leaves, reporting its events.
fn agent_conference(app: &App, workspace: &Workspace, session: &CallSession) -> Twiml {
    let mut conference = Conference::new(&session.conference)
        .start_conference_on_enter(true)
        .end_conference_on_exit(true)
        .beep(false)
        .status_callback(&status_url(app, &session.id, None), &["start", "end", "join", "leave"]);
    if workspace.settings.record {
        conference = conference.record_from_start(&recording_url(app, &session.id));
    }
    Twiml::new().dial(Dial::new().conference(conference))
}

/// `POST /twilio/voice/agent`, the TwiML App's Voice URL: a browser `Device`
/// connecting, with `callId` from `POST /calls`, or with just `To` (the way
/// every Voice SDK quickstart dialer calls).
pub async fn agent(app: &App, hook: Webhook, _request: Request) -> Result<Response, WebhookError> {
    let params = &hook.params;
    let sid = call_sid(params)?;
    let identity = params
        .get("From")
        .and_then(|from| from.strip_prefix("client:"))
        .ok_or_else(|| WebhookError::BadRequest("the call does not come from a Voice SDK client".into()))?;
    let ws = &hook.workspace;

    let session = match params.get("callId") {
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
            let to = outbound::parse_destination(params.get("To").unwrap_or_default())?;
            let agent = agent_from_identity(identity)
                .ok_or_else(|| WebhookError::BadRequest("unknown client identity".into()))?;
            let from = outbound::caller_id(app, ws, &agent, params.get("callerId")).await?;
            outbound::create_once(app, ws, &agent, Some(&format!("agent-leg:{sid}")), &to, &from).await?
        }
    };

    let session = expire_if_stale(app, session).await?;
    if session.state != CallState::Created {
        return Ok(twiml(Twiml::say_and_hang_up("This call has already ended. Goodbye.")));
    }
    app.store.link_call_sid(&ws.id, &sid, &session.id).await?;
    let leg = CallUpdate {
        agent_call_sid: Some(sid),
        ..CallUpdate::default()
    };
    app.store.update_call(&ws.id, &session.id, &leg).await?;
    Ok(twiml(agent_conference(app, ws, &session)))
}

/// `POST /twilio/voice/customer?callId=`: the customer answered; into the
/// conference they go, ending it when they leave.
pub async fn customer(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let session = session_from_query(app, &hook, &request).await?;
    if !session.is_outbound() || session.state.is_terminal() {
        return Ok(twiml(Twiml::say_and_hang_up("Sorry, this call has ended. Goodbye.")));
    }
    let conference = Conference::new(&session.conference)
        .start_conference_on_enter(true)
        .end_conference_on_exit(true)
        .beep(false);
    Ok(twiml(Twiml::new().dial(Dial::new().conference(conference))))
}

/// `POST /twilio/voice/inbound`, every number's Voice URL: ring the number's
/// agents in their browsers, all at once; voicemail if nobody answers.
pub async fn inbound(app: &App, hook: Webhook, _request: Request) -> Result<Response, WebhookError> {
    let params = &hook.params;
    let sid = call_sid(params)?;
    let ws = &hook.workspace;
    let number = params.get("To").and_then(|to| E164::from_canonical(to).ok());
    let owned = match &number {
        Some(number) => app.store.get_number(&ws.id, number).await?,
        None => None,
    };
    let (Some(number), Some(owned)) = (number, owned) else {
        return Ok(twiml(Twiml::say_and_hang_up(
            "Sorry, the number you have called is not in service. Goodbye.",
        )));
    };

    let fresh = CallSession::new(
        ws.id.clone(),
        Direction::Inbound,
        None,
        params.get("From").unwrap_or("anonymous").chars().take(64).collect(),
        number.to_string(),
        Timestamp::now(),
    );
    // Once per CallSid, however often Twilio asks.
    let stored = app
        .store
        .remember(
            &ws.id,
            &format!("inbound:{sid}"),
            fresh.id.as_str(),
            Duration::from_secs(86_400),
        )
        .await?;
    let id = CallId::parse(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let session = fresh.with_id(id);
    match app.store.create_call(&session).await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(error) => return Err(error.into()),
    }
    app.store.link_call_sid(&ws.id, &sid, &session.id).await?;
    let leg = CallUpdate {
        customer_call_sid: Some(sid),
        ..CallUpdate::default()
    };
    app.store.update_call(&ws.id, &session.id, &leg).await?;

    if owned.agents.is_empty() {
        return Ok(twiml(to_voicemail(app, &session).await?));
    }
    let call_param = [("callId", session.id.as_str())];
    let agent_status = status_url(app, &session.id, Some("agent"));
    let dial = owned.agents.iter().fold(
        Dial::new()
            .timeout(AGENT_RING_SECONDS)
            .answer_on_bridge()
            .action(&voicemail_url(app, &session.id, "")),
        |dial, agent| dial.client_with_status(&agent_identity(agent), &call_param, &agent_status),
    );
    Ok(twiml(Twiml::new().dial(dial)))
}

/// Nobody answered: the session ends `no-answer` and the caller may leave a message.
async fn to_voicemail(app: &App, session: &CallSession) -> Result<Twiml, WebhookError> {
    let (ws, id) = (&session.workspace, &session.id);
    app.store
        .advance_call(ws, id, CallState::NoAnswer, Timestamp::now())
        .await?;
    let reason = CallUpdate {
        end_reason: Some("no agent answered; voicemail".into()),
        ..CallUpdate::default()
    };
    app.store.update_call(ws, id, &reason).await?;
    Ok(voicemail(app, id))
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

/// `POST /twilio/voice/voicemail?callId=`: where an inbound `<Dial>` ends. An
/// answered call just hangs up; otherwise the caller leaves a message.
pub async fn after_ringing(app: &App, hook: Webhook, request: Request) -> Result<Response, WebhookError> {
    let session = session_from_query(app, &hook, &request).await?;
    if query_params(&request).get("step") == Some("done") {
        return Ok(twiml(Twiml::say_and_hang_up("Thank you. Goodbye.")));
    }
    if matches!(hook.params.get("DialCallStatus"), Some("completed" | "answered")) {
        return Ok(twiml(Twiml::new().hangup()));
    }
    Ok(twiml(to_voicemail(app, &session).await?))
}
