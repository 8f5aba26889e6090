//! The one gate every Twilio webhook passes: find the workspace the request
//! belongs to (by its `AccountSid`) and check `X-Twilio-Signature` with that
//! account's Auth Token against the URL Twilio requested, which is rebuilt
//! from the configured public base URL, never from the `Host` header.

use secrecy::ExposeSecret;

use crate::api::Request;
use crate::app::App;
use crate::ids::AccountSid;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::twilio::signature;
use crate::workspace::Workspace;

/// A webhook whose signature checked out, with the workspace it belongs to.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub workspace: Workspace,
    pub params: Params,
}

/// Form parameters in the order sent; a name may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse_form(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
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
    let is_form = request
        .header(http::header::CONTENT_TYPE)
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let params = if is_form {
        Params::parse_form(&request.body)
    } else {
        Params::default()
    };
    // Form webhooks carry AccountSid in the body; JSON ones in the query.
    let query = request.query.as_deref().unwrap_or("");
    let query_params = Params::parse_form(query.as_bytes());
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
    let auth_token = app.secrets.open(&workspace.id, &twilio.auth_token).await?;
    let token = auth_token.expose_secret().as_bytes();

    let url = match &request.query {
        Some(query) => app.config.public_url.join(&format!("{}?{query}", request.path)),
        None => app.config.public_url.join(&request.path),
    };
    let valid = if is_form {
        let pairs: Vec<(&str, &str)> = params.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        signature::verify_form(token, &url, &pairs, signature)
    } else {
        signature::verify_body(token, &url, &request.body, signature)
    };
    if !valid {
        tracing::warn!(workspace = %workspace.id, path = %request.path, "rejected a webhook with a bad signature");
        return Err(WebhookError::Forbidden);
    }
    Ok(Webhook { workspace, params })
}
