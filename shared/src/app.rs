//! The application context: built once per process (per Lambda cold start, or
//! once for the local server) and lent to every handler.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::config::{Backend, Config, ConfigError};
use crate::recordings::queue::{JobQueue, NoQueue, SqsJobQueue};
use crate::secrets::SecretBox;
use crate::secrets::kms::KmsSecretBox;
use crate::secrets::local::LocalSecretBox;
use crate::store::Store;
use crate::store::StoreError;
use crate::store::dynamodb::DynamoStore;
use crate::store::embedded::EmbeddedStore;
use crate::store::recordings::RecordingStore;
use crate::store::recordings::local::LocalRecordings;
use crate::store::recordings::s3::S3Recordings;
use crate::webhook::SigningKeys;

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretBox>,
    /// `None` when no bucket is configured for this function.
    pub recordings: Option<Arc<dyn RecordingStore>>,
    pub auth: Authenticator,
    /// One pooled HTTP client for Twilio and the identity provider.
    pub http: reqwest::Client,
    /// For recording media: no total timeout (a long recording takes as long
    /// as it takes), a read timeout for stalls.
    pub media_http: reqwest::Client,
    /// Where recording copies go to run after the callback is answered.
    pub jobs: Arc<dyn JobQueue>,
    /// The embedded store, when it also holds the local job queue that the
    /// local server's worker drains.
    pub local_jobs: Option<Arc<EmbeddedStore>>,
    /// Opened Auth Tokens, ready to check webhook signatures.
    pub signing_keys: SigningKeys,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the store could not be opened: {0}")]
    Store(#[from] StoreError),
    #[error("the secret key could not be loaded: {0}")]
    Secrets(String),
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
}

impl App {
    /// Opens the backend the configuration names.
    pub async fn from_config(config: Config) -> Result<Self, StartupError> {
        let adapters = Adapters::open(&config).await?;
        let mut app = Self::new(config, adapters.store, adapters.secrets, adapters.recordings)?;
        app.jobs = adapters.jobs;
        app.local_jobs = adapters.local_jobs;
        Ok(app)
    }

    /// Assembles a context from parts (tests use this with their own stores).
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretBox>,
        recordings: Option<Arc<dyn RecordingStore>>,
    ) -> Result<Self, StartupError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartupError::Http(e.to_string()))?;
        let media_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartupError::Http(e.to_string()))?;
        let auth = Authenticator::new(config.auth.clone(), http.clone());
        Ok(Self {
            config,
            store,
            secrets,
            recordings,
            auth,
            http,
            media_http,
            jobs: Arc::new(NoQueue),
            local_jobs: None,
            signing_keys: SigningKeys::default(),
        })
    }
}

/// The adapters behind the ports, for one backend.
struct Adapters {
    store: Arc<dyn Store>,
    secrets: Arc<dyn SecretBox>,
    recordings: Option<Arc<dyn RecordingStore>>,
    jobs: Arc<dyn JobQueue>,
    local_jobs: Option<Arc<EmbeddedStore>>,
}

impl Adapters {
    async fn open(config: &Config) -> Result<Self, StartupError> {
        match &config.backend {
            Backend::Embedded { data_dir } => {
                let store = Arc::new(EmbeddedStore::open(&data_dir.join("store"))?);
                Ok(Self {
                    store: store.clone(),
                    secrets: Arc::new(
                        LocalSecretBox::open_or_create(&data_dir.join("secret.key"))
                            .map_err(|e| StartupError::Secrets(e.to_string()))?,
                    ),
                    recordings: Some(Arc::new(LocalRecordings::new(data_dir.join("recordings")))),
                    jobs: store.clone(),
                    local_jobs: Some(store),
                })
            }
            Backend::Aws {
                table,
                kms_key_id,
                recordings_bucket,
                recording_queue_url,
            } => {
                // Region, credentials and AWS_ENDPOINT_URL come from the SDK's own chain.
                let sdk = aws_config::load_from_env().await;
                let recordings = recordings_bucket.as_ref().map(|bucket| {
                    // Emulators behind AWS_ENDPOINT_URL serve buckets by path.
                    let s3 = aws_sdk_s3::config::Builder::from(&sdk)
                        .force_path_style(sdk.endpoint_url().is_some())
                        .build();
                    Arc::new(S3Recordings::new(aws_sdk_s3::Client::from_conf(s3), bucket.clone()))
                        as Arc<dyn RecordingStore>
                });
                let jobs: Arc<dyn JobQueue> = match recording_queue_url {
                    Some(url) => Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), url.clone())),
                    None => Arc::new(NoQueue),
                };
                Ok(Self {
                    store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone())),
                    secrets: Arc::new(KmsSecretBox::new(aws_sdk_kms::Client::new(&sdk), kms_key_id.clone())),
                    recordings,
                    jobs,
                    local_jobs: None,
                })
            }
        }
    }
}
