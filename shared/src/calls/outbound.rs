//! Placing an outbound call: `POST /calls` stores a session the agent's browser
//! then connects to; nothing rings until the agent is in the conference.

use http::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::{self, ApiError, IDEMPOTENCY_TTL, Request, Response};
use crate::app::App;
use crate::auth::Agent;
use crate::ids::{AgentId, CallId};
use crate::model::calls::{CallSession, Direction};
use crate::phone::E164;
use crate::ports::StoreError;
use crate::time::Timestamp;
use crate::webhook::WebhookError;
use crate::workspace::{CallerIdError, Workspace};

/// Why a call cannot be placed as asked.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    InvalidNumber(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    NoCallerId(CallerIdError),
    #[error("this workspace has no Twilio account yet: an admin must configure it first with PUT /workspace/twilio")]
    NotConfigured,
    #[error("this Idempotency-Key was used for a different call")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CallError> for ApiError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::InvalidNumber(message) => Self::BadRequest(message),
            CallError::NotAllowed(message) => Self::Forbidden(message),
            CallError::NoCallerId(_) => Self::Conflict {
                code: "no_caller_id",
                message: error.to_string(),
            },
            CallError::NotConfigured => Self::Conflict {
                code: "twilio_not_configured",
                message: error.to_string(),
            },
            CallError::KeyReused => Self::Conflict {
                code: "idempotency_key_reused",
                message: error.to_string(),
            },
            CallError::Store(error) => error.into(),
        }
    }
}

impl From<CallError> for WebhookError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Store(error) => error.into(),
            other => Self::BadRequest(other.to_string()),
        }
    }
}

/// The number an agent's call goes out from (`Workspace::caller_id`).
pub async fn caller_id(
    app: &App,
    workspace: &Workspace,
    agent: &AgentId,
    requested: Option<&str>,
) -> Result<E164, CallError> {
    let requested = requested
        .map(E164::parse)
        .transpose()
        .map_err(|e| CallError::InvalidNumber(format!("from: {e}")))?;
    let numbers = app.store.list_numbers(&workspace.id).await?;
    workspace
        .caller_id(&numbers, agent, requested.as_ref())
        .map_err(|error| match error {
            CallerIdError::NotAllowed(number) => CallError::NotAllowed(format!(
                "{number} is not a number of this workspace that you may call from"
            )),
            no_caller_id @ CallerIdError::NoCallerId => CallError::NoCallerId(no_caller_id),
        })
}

pub fn parse_destination(to: &str) -> Result<E164, CallError> {
    E164::parse(to).map_err(|e| CallError::InvalidNumber(format!("to: {e}")))
}

/// Creates the session for an agent's outbound call exactly once per
/// `once_key`: concurrent and repeated requests with the same key get the same
/// session. The key's stored value carries a fingerprint of the request, so a
/// key reused for another call is refused.
pub async fn create_once(
    app: &App,
    workspace: &Workspace,
    agent: &AgentId,
    once_key: Option<&str>,
    to: &E164,
    from: &E164,
) -> Result<CallSession, CallError> {
    if workspace.twilio.is_none() {
        return Err(CallError::NotConfigured);
    }
    let fresh = CallSession::new(
        workspace.id.clone(),
        Direction::Outbound,
        Some(agent.clone()),
        from.to_string(),
        to.to_string(),
        Timestamp::now(),
    );
    let Some(key) = once_key else {
        app.store.create_call(&fresh).await?;
        return Ok(fresh);
    };
    let fingerprint = hex::encode(&Sha256::digest(format!("{to} {from}"))[..8]);
    let stored = app
        .store
        .remember(
            &workspace.id,
            key,
            &format!("{} {fingerprint}", fresh.id),
            IDEMPOTENCY_TTL,
        )
        .await?;
    let (id, stored_fingerprint) = stored
        .split_once(' ')
        .ok_or_else(|| StoreError::Corrupt(format!("idempotency record {stored:?}")))?;
    if stored_fingerprint != fingerprint {
        return Err(CallError::KeyReused);
    }
    let id = CallId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let session = fresh.with_id(id);
    match app.store.create_call(&session).await {
        Ok(()) => Ok(session),
        // Another request with the same key got there first: theirs is ours.
        Err(StoreError::Conflict(_)) => app
            .store
            .get_call(&workspace.id, &session.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(session.id.to_string()).into()),
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceCall {
    to: String,
    #[serde(default)]
    from: Option<String>,
}

/// `POST /calls`.
pub async fn place(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: PlaceCall = request.json()?;
    let key = request.idempotency_key("calls", &agent.id)?;
    let to = parse_destination(&body.to)?;
    let workspace = app
        .store
        .get_workspace(&agent.workspace)
        .await?
        .ok_or(CallError::NotConfigured)?;
    let from = caller_id(app, &workspace, &agent.id, body.from.as_deref()).await?;
    let session = create_once(app, &workspace, &agent.id, key.as_deref(), &to, &from).await?;
    tracing::info!(call = %session.id, "created an outbound call session");
    Ok(api::json_response(
        StatusCode::CREATED,
        &serde_json::json!({
            "callId": session.id,
            "conference": session.conference,
            "from": session.from,
            "to": session.to,
            "connectParams": {"callId": session.id},
        }),
    ))
}
