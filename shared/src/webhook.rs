//! The one gate every Twilio webhook passes: find the workspace the request
//! belongs to (by its `AccountSid`) and check `X-Twilio-Signature` with that
//! account's Auth Token against the URL Twilio requested, which is rebuilt
//! from the configured public base URL, never from the `Host` header.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use secrecy::ExposeSecret;

use crate::api::Request;
use crate::app::App;
use crate::ids::{AccountSid, WorkspaceId};
use crate::secrets::{Sealed, SecretBox, SecretError};
use crate::store::StoreError;
use crate::twilio::signature::SigningKey;
use crate::workspace::Workspace;

/// How long an opened Auth Token's signing key is reused. Opening is a KMS
/// call in AWS (milliseconds, and billed); a revoked key or a disabled KMS key
/// takes effect within this long. A new Auth Token takes effect at once: it is
/// a different sealed value.
const SIGNING_KEY_TTL: Duration = Duration::from_secs(300);
/// Workspaces whose signing keys are kept (least recently used go first).
const SIGNING_KEYS_KEPT: usize = 1024;

/// The signing keys of the workspaces whose webhooks arrived lately, each
/// with the sealed Auth Token it was opened from.
pub struct SigningKeys(Mutex<LruCache<WorkspaceId, CachedKey>>);

struct CachedKey {
    sealed: Vec<u8>,
    opened_at: Instant,
    key: Arc<SigningKey>,
}

impl Default for SigningKeys {
    fn default() -> Self {
        let kept = NonZeroUsize::new(SIGNING_KEYS_KEPT).unwrap_or(NonZeroUsize::MIN);
        Self(Mutex::new(LruCache::new(kept)))
    }
}

impl SigningKeys {
    /// The signing key of `sealed`, `workspace`'s sealed Auth Token: kept, or
    /// opened now (and kept).
    pub async fn get(
        &self,
        secrets: &dyn SecretBox,
        workspace: &WorkspaceId,
        sealed: &Sealed,
    ) -> Result<Arc<SigningKey>, SecretError> {
        if let Some(key) = self.kept(workspace, sealed) {
            return Ok(key);
        }
        let token = secrets.open(workspace, sealed).await?;
        let key = Arc::new(SigningKey::new(token.expose_secret().as_bytes()));
        let entry = CachedKey {
            sealed: sealed.0.clone(),
            opened_at: Instant::now(),
            key: Arc::clone(&key),
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(workspace.clone(), entry);
        Ok(key)
    }

    fn kept(&self, workspace: &WorkspaceId, sealed: &Sealed) -> Option<Arc<SigningKey>> {
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = keys.get(workspace)?;
        (entry.sealed == sealed.0 && entry.opened_at.elapsed() < SIGNING_KEY_TTL).then(|| Arc::clone(&entry.key))
    }
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys(..)")
    }
}

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
    Ok(Webhook { workspace, params })
}
