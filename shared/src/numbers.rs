//! The workspace's phone numbers and who answers them: `GET /workspace/numbers`
//! and `PUT /workspace/numbers/{number}`. The set of numbers comes from Twilio
//! (onboarding lists the account's numbers); only agents and labels are set here.

use http::StatusCode;
use serde::Deserialize;

use crate::api::{self, ApiError, Request, Response};
use crate::app::App;
use crate::auth::Agent;
use crate::ids::AgentId;
use crate::phone::E164;

const MAX_AGENTS_PER_NUMBER: usize = 200;
const MAX_LABEL_CHARS: usize = 64;

/// Any agent may read the numbers: a dialer shows which caller IDs it may use.
pub async fn list(app: &App, agent: Agent, _request: Request) -> Result<Response, ApiError> {
    let numbers = app.store.list_numbers(&agent.workspace).await?;
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"numbers": numbers}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    agents: Vec<AgentId>,
    #[serde(default)]
    label: Option<String>,
}

pub async fn assign(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let raw = request.param("number").unwrap_or_default();
    let number = E164::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let body: NumberBody = request.json()?;
    if body.agents.len() > MAX_AGENTS_PER_NUMBER {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_AGENTS_PER_NUMBER} agents per number"
        )));
    }
    let label = body.label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if label
        .as_ref()
        .is_some_and(|l| l.chars().count() > MAX_LABEL_CHARS || l.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(format!(
            "label must be at most {MAX_LABEL_CHARS} printable characters"
        )));
    }
    let not_found = || ApiError::NotFound(format!("{number} is not one of this workspace's numbers"));
    let mut stored = app
        .store
        .get_number(&agent.workspace, &number)
        .await?
        .ok_or_else(not_found)?;
    let mut agents = body.agents;
    agents.sort();
    agents.dedup();
    stored.agents = agents;
    stored.label = label;
    app.store.update_number(&agent.workspace, &stored).await?;
    Ok(api::json_response(StatusCode::OK, &stored))
}
