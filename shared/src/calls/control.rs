//! The call log and call control: `GET /calls`, `GET /calls/{callId}`,
//! `PATCH /calls/{callId}`, `POST /calls/{callId}/hold`, `POST /calls/{callId}/hangup`.
//! Everything is scoped to the caller's workspace: another workspace's call is
//! a 404, indistinguishable from one that does not exist.

use http::StatusCode;
use serde::Deserialize;

use crate::api::{self, ApiError, Request, Response};
use crate::app::App;
use crate::auth::{Agent, Role};
use crate::calls::expire_if_stale;
use crate::ids::{AgentId, CallId};
use crate::model::calls::{CallSession, CallState, CallUpdate, Direction, TimelineEvent};
use crate::ports::CallQuery;
use crate::time::Timestamp;
use crate::twilio::rest::{EndCall, TwilioClient, TwilioError};
use crate::views;

/// Twilio's own hold music (classical), served from Twilio's public bucket.
pub const HOLD_MUSIC_URL: &str = "https://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3";
const MAX_NOTES_CHARS: usize = 4000;
const MAX_DISPOSITION_CHARS: usize = 64;

/// `GET /calls?agent=&direction=&status=&limit=&cursor=`: newest first; or
/// `GET /calls?updatedAfter=&limit=&cursor=`: what changed at or after a
/// moment, oldest change first (a client catching up on live events).
pub async fn list(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let params = request.query_params();
    if let Some(query) = api::changes_query(&params, &["agent", "direction", "status"])? {
        let page = app.store.calls_changed(&agent.workspace, &query).await?;
        let calls: Vec<_> = page.items.iter().map(views::call).collect();
        return Ok(api::json_response(
            StatusCode::OK,
            &serde_json::json!({"calls": calls, "next": page.next}),
        ));
    }
    let bad = |name: &str, value: &str| ApiError::BadRequest(format!("{name}={value:?} is not valid"));
    let query = CallQuery {
        agent: match params.get("agent") {
            Some(a) => Some(AgentId::parse(a).map_err(|_| bad("agent", a))?),
            None => None,
        },
        direction: match params.get("direction") {
            Some(d) => Some(Direction::parse(d).ok_or_else(|| bad("direction", d))?),
            None => None,
        },
        state: match params.get("status") {
            Some(s) => Some(CallState::parse(s).ok_or_else(|| bad("status", s))?),
            None => None,
        },
        limit: api::page_limit(params.get("limit"))?,
        cursor: params.get("cursor").map(str::to_owned),
    };
    let page = app.store.list_calls(&agent.workspace, &query).await?;
    let mut calls = Vec::with_capacity(page.items.len());
    for session in page.items {
        calls.push(views::call(&expire_if_stale(app, session).await?));
    }
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"calls": calls, "next": page.next}),
    ))
}

pub(super) async fn load(app: &App, agent: &Agent, request: &Request) -> Result<CallSession, ApiError> {
    let raw = request.param("callId").unwrap_or_default();
    let not_found = || ApiError::NotFound(format!("no call {raw:?}"));
    let id = CallId::parse(raw).map_err(|_| not_found())?;
    let session = app.store.get_call(&agent.workspace, &id).await?.ok_or_else(not_found)?;
    Ok(expire_if_stale(app, session).await?)
}

/// Only the call's own agent, or an admin, may change it.
pub(super) fn may_control(agent: &Agent, session: &CallSession) -> Result<(), ApiError> {
    if agent.role == Role::Admin || session.agent.as_ref() == Some(&agent.id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the call's agent or an admin may change it".into(),
        ))
    }
}

/// `GET /calls/{callId}`: the session with its timeline.
pub async fn get(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let session = load(app, &agent, &request).await?;
    let timeline = app.store.timeline(&agent.workspace, &session.id).await?;
    let mut body = views::call(&session);
    body["timeline"] = serde_json::to_value(timeline).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(api::json_response(StatusCode::OK, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Annotation {
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    disposition: Option<String>,
}

/// `PATCH /calls/{callId}` `{"notes", "disposition"}`.
pub async fn annotate(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: Annotation = request.json()?;
    if body.notes.is_none() && body.disposition.is_none() {
        return Err(ApiError::BadRequest("send notes, disposition or both".into()));
    }
    if body.notes.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS) {
        return Err(ApiError::BadRequest(format!(
            "notes are at most {MAX_NOTES_CHARS} characters"
        )));
    }
    if body
        .disposition
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DISPOSITION_CHARS || d.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(format!(
            "disposition is at most {MAX_DISPOSITION_CHARS} printable characters"
        )));
    }
    let session = load(app, &agent, &request).await?;
    may_control(&agent, &session)?;
    let update = CallUpdate {
        notes: body.notes,
        disposition: body.disposition,
        ..CallUpdate::default()
    };
    app.store.update_call(&agent.workspace, &session.id, &update).await?;
    let session = load(app, &agent, &request).await?;
    Ok(api::json_response(StatusCode::OK, &views::call(&session)))
}

pub(super) async fn twilio(app: &App, agent: &Agent) -> Result<TwilioClient, ApiError> {
    let workspace = app.configured_workspace(&agent.workspace).await?;
    Ok(app.twilio_for(&workspace).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    hold: bool,
}

/// `POST /calls/{callId}/hold` `{"hold": true|false}`: the customer hears hold
/// music (a conference participant on hold), or comes back.
pub async fn hold(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: HoldBody = request.json()?;
    let session = load(app, &agent, &request).await?;
    may_control(&agent, &session)?;
    let (Some(conference), Some(customer), CallState::InProgress) =
        (&session.conference_sid, &session.customer_call_sid, session.state)
    else {
        return Err(ApiError::Conflict {
            code: "not_holdable",
            message: "only a connected conference call can be put on hold".into(),
        });
    };
    twilio(app, &agent)
        .await?
        .hold_participant(conference, customer, body.hold, HOLD_MUSIC_URL)
        .await
        .map_err(ended_or_upstream("not_holdable", "hold"))?;
    let kind = if body.hold { "customer-held" } else { "customer-resumed" };
    note(app, &agent, &session, kind, &[]).await?;
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"callId": session.id, "hold": body.hold}),
    ))
}

/// Maps Twilio's answer to a change of a live call: a 404 means the call (or
/// its conference) ended at Twilio before its callbacks reached us, so the
/// change has nothing to act on (409 `code`), not that Twilio failed.
pub(super) fn ended_or_upstream(code: &'static str, step: &'static str) -> impl Fn(TwilioError) -> ApiError {
    move |error| match error {
        TwilioError::NotFound { .. } => ApiError::Conflict {
            code,
            message: "the call has ended".into(),
        },
        other => ApiError::upstream(step)(other),
    }
}

/// Puts what an agent did to the call on its timeline, with who did it.
pub(super) async fn note(
    app: &App,
    agent: &Agent,
    session: &CallSession,
    kind: &str,
    detail: &[(&str, &str)],
) -> Result<(), ApiError> {
    let mut detail: std::collections::BTreeMap<String, String> =
        detail.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    detail.insert("by".into(), agent.id.to_string());
    let event = TimelineEvent {
        key: format!("control:{}", ulid::Ulid::new()),
        at: Timestamp::now(),
        kind: kind.into(),
        detail,
    };
    app.store.append_event(&agent.workspace, &session.id, &event).await?;
    Ok(())
}

/// `POST /calls/{callId}/hangup`: ends the call for everyone in it.
pub async fn hangup(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let session = load(app, &agent, &request).await?;
    may_control(&agent, &session)?;
    let (ws, id) = (&agent.workspace, &session.id);
    if session.state.is_terminal() {
        return Ok(hangup_response(&session));
    }
    // Nothing dialed yet: make sure nothing ever is.
    if session.is_outbound() {
        let now = Timestamp::now();
        app.store
            .modify_call(ws, id, &|s| {
                s.abandon(now, "hung up before the customer was dialed");
            })
            .await?;
    }
    let client = twilio(app, &agent).await?;
    let ended = match (
        &session.conference_sid,
        &session.customer_call_sid,
        &session.agent_call_sid,
    ) {
        // The conference ends both legs at once.
        (Some(conference), _, _) if session.is_outbound() => client.end_conference(conference).await,
        (_, Some(customer), agent_leg) => {
            let how = if session.state == CallState::InProgress {
                EndCall::HangUp
            } else {
                EndCall::Cancel
            };
            let customer = client.end_call(customer, how).await.map(|_| ());
            match agent_leg {
                Some(agent_leg) if session.is_outbound() => client
                    .end_call(agent_leg, EndCall::HangUp)
                    .await
                    .map(|_| ())
                    .and(customer),
                _ => customer,
            }
        }
        (_, None, Some(agent_leg)) => client.end_call(agent_leg, EndCall::HangUp).await.map(|_| ()),
        _ => Ok(()),
    };
    match ended {
        // Already over at Twilio: the callbacks will say how.
        Ok(()) | Err(TwilioError::NotFound { .. }) => {}
        Err(error) => return Err(ApiError::upstream("hang up")(error)),
    }
    let session = load(app, &agent, &request).await?;
    Ok(hangup_response(&session))
}

fn hangup_response(session: &CallSession) -> Response {
    api::json_response(
        StatusCode::ACCEPTED,
        &serde_json::json!({"callId": session.id, "state": session.state}),
    )
}
