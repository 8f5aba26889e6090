//! The Twilio account of a workspace, as the services need it: a REST client
//! with the workspace's own stored credentials, and the key that checks its
//! webhooks' signatures (opened once, then kept for a while).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use secrecy::{ExposeSecret, SecretString};

use crate::api::ApiError;
use crate::ids::{AccountSid, ApiKeySid, WorkspaceId};
use crate::ports::{SecretBox, SecretError};
use crate::sealed::Sealed;
use crate::twilio::rest::TwilioClient;
use crate::twilio::signature::SigningKey;
use crate::workspace::{TwilioAccount, Workspace};

/// Why a workspace's Twilio client cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("this workspace has no Twilio account yet: an admin must configure it first with PUT /workspace/twilio")]
    NotConfigured,
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Builds REST clients for workspaces' accounts.
pub struct TwilioClients {
    /// For API calls: short timeouts.
    pub http: reqwest::Client,
    /// For recording media: no total timeout (a long recording takes as long
    /// as it takes), a read timeout for stalls.
    pub media_http: reqwest::Client,
    pub base: url::Url,
}

impl TwilioClients {
    /// A client for credentials not stored yet (onboarding checks them).
    pub fn with_auth_token(&self, account: AccountSid, auth_token: SecretString) -> TwilioClient {
        TwilioClient::with_auth_token(self.http.clone(), self.base.clone(), account, auth_token)
    }

    /// A client authenticated with an API key of the account.
    pub fn with_api_key(&self, account: AccountSid, key: &ApiKeySid, secret: SecretString) -> TwilioClient {
        TwilioClient::with_api_key(self.http.clone(), self.base.clone(), account, key, secret)
    }

    /// A client for `account`, authenticated with its Auth Token.
    pub async fn for_account(
        &self,
        secrets: &dyn SecretBox,
        workspace: &WorkspaceId,
        account: &TwilioAccount,
    ) -> Result<TwilioClient, AccountError> {
        self.with(&self.http, secrets, workspace, account).await
    }

    /// A client for the workspace's account: `NotConfigured` if it has none.
    pub async fn for_workspace(
        &self,
        secrets: &dyn SecretBox,
        workspace: &Workspace,
    ) -> Result<TwilioClient, AccountError> {
        let account = workspace.twilio.as_ref().ok_or(AccountError::NotConfigured)?;
        self.for_account(secrets, &workspace.id, account).await
    }

    /// The same, on the media HTTP client: for streaming recordings.
    pub async fn media_for_workspace(
        &self,
        secrets: &dyn SecretBox,
        workspace: &Workspace,
    ) -> Result<TwilioClient, AccountError> {
        let account = workspace.twilio.as_ref().ok_or(AccountError::NotConfigured)?;
        self.with(&self.media_http, secrets, &workspace.id, account).await
    }

    async fn with(
        &self,
        http: &reqwest::Client,
        secrets: &dyn SecretBox,
        workspace: &WorkspaceId,
        account: &TwilioAccount,
    ) -> Result<TwilioClient, AccountError> {
        let auth_token = secrets.open(workspace, &account.auth_token).await?;
        Ok(TwilioClient::with_auth_token(
            http.clone(),
            self.base.clone(),
            account.account_sid.clone(),
            auth_token,
        ))
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotConfigured => Self::Conflict {
                code: "twilio_not_configured",
                message: error.to_string(),
            },
            AccountError::Secret(error) => error.into(),
        }
    }
}

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
