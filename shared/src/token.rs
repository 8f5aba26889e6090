//! `POST /token`: a Twilio Voice access token for the signed-in agent's browser.

use std::time::Duration;

use http::StatusCode;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::api::{self, ApiError, Request, Response};
use crate::app::App;
use crate::auth::Agent;
use crate::paths;
use crate::time::Timestamp;
use crate::twilio::access_token::{self, VoiceGrant};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    token: String,
    identity: String,
    expires_in: u64,
    /// Where the browser opens its live-event socket (`?token=` its sign-in token).
    events_url: String,
}

pub async fn issue(app: &App, agent: Agent, _request: Request) -> Result<Response, ApiError> {
    let not_configured = || ApiError::Conflict {
        code: "twilio_not_configured",
        message:
            "this workspace has no Twilio account yet: an admin must configure it first with PUT /workspace/twilio"
                .into(),
    };
    let workspace = app
        .store
        .get_workspace(&agent.workspace)
        .await?
        .ok_or_else(not_configured)?;
    let twilio = workspace.twilio.as_ref().ok_or_else(not_configured)?;
    let (Some(api_key), Some(application_sid)) = (&twilio.api_key, &twilio.twiml_app_sid) else {
        return Err(not_configured());
    };
    let secret = app.secrets.open(&workspace.id, &api_key.secret).await?;

    let identity = access_token::agent_identity(&agent.id);
    // A Voice token never outlives the sign-in that obtained it.
    let now = Timestamp::now();
    let signed_in_for = Duration::from_secs((agent.expires_at.unix_seconds() - now.unix_seconds()).max(1) as u64);
    let lifetime = app.config.token_lifetime.min(signed_in_for);
    let token = access_token::mint(
        &VoiceGrant {
            account_sid: &twilio.account_sid,
            api_key_sid: &api_key.sid,
            api_key_secret: secret.expose_secret().as_bytes(),
            application_sid,
            identity: &identity,
            lifetime,
        },
        now.unix_seconds().max(0) as u64,
    );
    tracing::info!(identity = %identity, "issued a voice access token");
    Ok(api::no_store(api::json_response(
        StatusCode::OK,
        &TokenResponse {
            token,
            identity,
            expires_in: lifetime.as_secs(),
            events_url: app
                .config
                .events_url
                .clone()
                .unwrap_or_else(|| app.config.public_url.websocket(paths::EVENTS)),
        },
    )))
}
