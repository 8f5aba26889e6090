//! The one gate every Twilio webhook passes: find the workspace the request
//! belongs to (by its `AccountSid`) and check `X-Twilio-Signature` with that
//! account's Auth Token against the URL Twilio requested, which is rebuilt
//! from the configured public base URL, never from the `Host` header.

use serde::de::DeserializeOwned;

use crate::accounts::AccountError;
use crate::api::Request;
use crate::app::App;
use crate::ids::{AccountSid, CallId};
use crate::model::calls::CallSession;
use crate::ports::{SecretError, StoreError};
use crate::twilio::webhooks::{Params, parse_form};
use crate::workspace::Workspace;

/// A webhook whose signature checked out, with the workspace it belongs to.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub workspace: Workspace,
    /// The parameters as sent, which the signature covers.
    pub params: Params,
    body: bytes::Bytes,
}

impl Webhook {
    /// The form read into its typed shape (see `twilio::webhooks`); a value
    /// that is not what Twilio sends (a malformed SID) is a `BadRequest`.
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, WebhookError> {
        parse_form(&self.body).map_err(|e| WebhookError::BadRequest(format!("unexpected webhook parameters: {e}")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong signature, or an account we do not serve: 403, and
    /// nothing is written.
    #[error("the request is not signed by a Twilio account this service serves")]
    Forbidden,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("temporarily unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for WebhookError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::InvalidCursor(detail) => Self::BadRequest(detail),
            StoreError::Conflict(message) => Self::BadRequest(message),
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Corrupt(detail) => Self::Internal(detail),
        }
    }
}

impl From<AccountError> for WebhookError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotConfigured => {
                Self::Internal("a verified webhook's workspace has no Twilio account".into())
            }
            AccountError::Secret(error) => error.into(),
        }
    }
}

impl From<SecretError> for WebhookError {
    fn from(error: SecretError) -> Self {
        match error {
            SecretError::Unavailable(detail) => Self::Unavailable(detail),
            SecretError::Unopenable => Self::Internal("the workspace's auth token could not be opened".into()),
        }
    }
}

/// Verifies `request` and returns the webhook it carries.
pub async fn verify(app: &App, request: &Request) -> Result<Webhook, WebhookError> {
    let Some(signature) = request.header("x-twilio-signature") else {
        return Err(WebhookError::Forbidden);
    };
    let is_form = request.header(http::header::CONTENT_TYPE).is_some_and(is_form_type);
    let params = if is_form {
        Params::parse_form(&request.body)
    } else {
        Params::default()
    };
    // Form webhooks carry AccountSid in the body; JSON ones in the query.
    let query_params = request.query_params();
    let account = params
        .get("AccountSid")
        .or_else(|| query_params.get("AccountSid"))
        .and_then(|sid| AccountSid::parse(sid).ok())
        .ok_or(WebhookError::Forbidden)?;

    let workspace_id = app
        .store
        .workspace_by_account(&account)
        .await?
        .ok_or(WebhookError::Forbidden)?;
    let workspace = app
        .store
        .get_workspace(&workspace_id)
        .await?
        .ok_or(WebhookError::Forbidden)?;
    let Some(twilio) = workspace.twilio.as_ref().filter(|t| t.account_sid == account) else {
        return Err(WebhookError::Forbidden);
    };
    let key = app
        .signing_keys
        .get(app.secrets.as_ref(), &workspace.id, &twilio.auth_token)
        .await?;

    let url = match &request.query {
        Some(query) => app.config.public_url.join(&format!("{}?{query}", request.path)),
        None => app.config.public_url.join(&request.path),
    };
    let valid = if is_form {
        let pairs: Vec<(&str, &str)> = params.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        key.verify_form(&url, &pairs, signature)
    } else {
        key.verify_body(&url, &request.body, signature)
    };
    if !valid {
        tracing::warn!(workspace = %workspace.id, path = %request.path, "rejected a webhook with a bad signature");
        return Err(WebhookError::Forbidden);
    }
    Ok(Webhook {
        workspace,
        params,
        body: if is_form {
            request.body.clone()
        } else {
            bytes::Bytes::new()
        },
    })
}

/// Whether a `Content-Type` names a form: its media type, compared without
/// regard to case, parameters (`; charset=utf-8`) aside.
fn is_form_type(content_type: &str) -> bool {
    crate::api::is_media_type(content_type, "application/x-www-form-urlencoded")
}

/// The session id a webhook names in its query (`?callId=`).
pub fn call_id_from_query(request: &Request) -> Result<CallId, WebhookError> {
    request
        .query_params()
        .get("callId")
        .and_then(|id| CallId::parse(id).ok())
        .ok_or_else(|| WebhookError::BadRequest("missing or invalid callId".into()))
}

/// The session a webhook names in its query (`?callId=`).
pub async fn session_from_query(app: &App, hook: &Webhook, request: &Request) -> Result<CallSession, WebhookError> {
    let id = call_id_from_query(request)?;
    app.store
        .get_call(&hook.workspace.id, &id)
        .await?
        .ok_or_else(|| WebhookError::NotFound(format!("call {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_type_is_a_media_type_not_a_prefix() {
        assert!(is_form_type("application/x-www-form-urlencoded"));
        assert!(is_form_type("application/x-www-form-urlencoded; charset=utf-8"));
        assert!(is_form_type("Application/X-WWW-Form-Urlencoded"));
        assert!(is_form_type("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!is_form_type("application/x-www-form-urlencodedXYZ"));
        assert!(!is_form_type("application/json"));
    }
}
