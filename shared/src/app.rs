//! The application context: built once per process (per Lambda cold start, or
//! once for the local server) from the configuration and the adapters the
//! entry point chose, and lent to every handler.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{AccountError, SigningKeys, TwilioClients};
use crate::api::ApiError;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::ids::WorkspaceId;
use crate::ports::{Adapters, JobQueue, RecordingStore, SecretBox, Store};
use crate::twilio::rest::TwilioClient;
use crate::workspace::Workspace;

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretBox>,
    pub recordings: Option<Arc<dyn RecordingStore>>,
    pub jobs: Arc<dyn JobQueue>,
    pub auth: Authenticator,
    /// One pooled HTTP client for the identity provider.
    pub http: reqwest::Client,
    /// REST clients for the workspaces' Twilio accounts.
    pub twilio: TwilioClients,
    /// Opened Auth Tokens, ready to check webhook signatures.
    pub signing_keys: SigningKeys,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("the store could not be opened")]
    Store(#[from] crate::ports::StoreError),
    #[error("the secret key could not be loaded: {0}")]
    Secrets(String),
    #[error("the HTTP client could not be built")]
    Http(#[source] reqwest::Error),
    #[error("{0}")]
    Unsupported(String),
}

impl App {
    pub fn new(config: Config, adapters: Adapters) -> Result<Self, StartupError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StartupError::Http)?;
        let media_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StartupError::Http)?;
        let auth = Authenticator::new(config.auth.clone(), http.clone());
        Ok(Self {
            twilio: TwilioClients {
                http: http.clone(),
                media_http,
                base: config.twilio_api_url.clone(),
            },
            config,
            store: adapters.store,
            secrets: adapters.secrets,
            recordings: adapters.recordings,
            jobs: adapters.jobs,
            auth,
            http,
            signing_keys: SigningKeys::default(),
        })
    }
}

impl App {
    /// A REST client for the workspace's own Twilio account.
    pub async fn twilio_for(&self, workspace: &Workspace) -> Result<TwilioClient, AccountError> {
        self.twilio.for_workspace(self.secrets.as_ref(), workspace).await
    }

    /// The workspace, or `NotConfigured` when it has no Twilio account yet.
    pub async fn configured_workspace(&self, id: &WorkspaceId) -> Result<Workspace, AppError> {
        let workspace = self.store.get_workspace(id).await?;
        workspace
            .filter(|w| w.twilio.is_some())
            .ok_or(AppError::Account(AccountError::NotConfigured))
    }
}

/// What the context's own helpers can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Store(error) => error.into(),
            AppError::Account(error) => error.into(),
        }
    }
}
