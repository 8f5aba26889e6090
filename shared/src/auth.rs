//! Agent sign-in: a JWT from the company's own identity provider.
//!
//! HS256 with a shared secret (Supabase style), or RS256/ES256 with the keys the
//! provider publishes as a JWKS (Firebase, Cognito, Auth0). Keys are cached and
//! fetched again when a token names a key id we do not hold (key rotation).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tokio::sync::RwLock;
use url::Url;

use crate::config::{AuthConfig, KeySource};
use crate::ids::{AgentId, WorkspaceId};
use crate::telemetry::error_chain;
use crate::time::Timestamp;

/// A signed-in agent: who, in which workspace, with which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub workspace: WorkspaceId,
    pub id: AgentId,
    pub role: Role,
    /// When the sign-in token expires (`exp`): a live-event socket closes then.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    /// May listen to, whisper in and barge into any call of the workspace,
    /// and mute anyone in it; otherwise an agent.
    Supervisor,
    Agent,
}

impl Role {
    /// The role of the first value that names one (a role claim may be a
    /// string or a list of them); admin outranks supervisor.
    fn from_claim(values: &[&str]) -> Self {
        if values.contains(&"admin") {
            Self::Admin
        } else if values.contains(&"supervisor") {
            Self::Supervisor
        } else {
            Self::Agent
        }
    }

    /// Admins and supervisors may supervise calls.
    pub fn supervises(self) -> bool {
        matches!(self, Self::Admin | Self::Supervisor)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
    #[error("the token names no workspace (claim `{0}`)")]
    NoWorkspace(String),
    #[error("the identity provider's keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

/// Refetching the JWKS more often than this on unknown key ids would let
/// anyone make us hammer the identity provider.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Keys are refreshed at least this often even when every `kid` is known.
const MAX_KEY_AGE: Duration = Duration::from_secs(6 * 60 * 60);
const ASYMMETRIC: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// How far `exp` and `nbf` may be off from our clock.
const CLOCK_SKEW_LEEWAY_SECONDS: u64 = 30;

pub struct Authenticator {
    config: AuthConfig,
    jwks: Option<JwksCache>,
}

struct JwksCache {
    url: Url,
    min_refresh_interval: Duration,
    http: reqwest::Client,
    state: RwLock<JwksState>,
}

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
}

impl Authenticator {
    pub fn new(config: AuthConfig, http: reqwest::Client) -> Self {
        let jwks = match &config.keys {
            KeySource::Jwks(url) => Some(JwksCache {
                url: url.clone(),
                min_refresh_interval: MIN_REFRESH_INTERVAL,
                http,
                state: RwLock::new(JwksState::default()),
            }),
            KeySource::Hs256(_) => None,
        };
        Self { config, jwks }
    }

    /// Changes how soon an unknown key id may trigger another JWKS fetch.
    pub fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        if let Some(jwks) = &mut self.jwks {
            jwks.min_refresh_interval = interval;
        }
        self
    }

    /// Checks the `Authorization` header and returns the agent it signs in.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Agent, AuthError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or(AuthError::Missing)?;
        self.check(token).await
    }

    /// Checks a bare token (a WebSocket's `?token=`: browsers cannot set
    /// headers on one) exactly as a bearer token.
    pub async fn check(&self, token: &str) -> Result<Agent, AuthError> {
        let token = Some(token.trim()).filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(in_words(&e)))?;

        let (key, algorithm) = match (&self.config.keys, &self.jwks) {
            (KeySource::Hs256(secret), _) => {
                if header.alg != Algorithm::HS256 {
                    return Err(AuthError::Invalid(format!(
                        "algorithm {:?} is not accepted",
                        header.alg
                    )));
                }
                (
                    DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                    Algorithm::HS256,
                )
            }
            (KeySource::Jwks(_), Some(jwks)) => {
                if !ASYMMETRIC.contains(&header.alg) {
                    return Err(AuthError::Invalid(format!(
                        "algorithm {:?} is not accepted",
                        header.alg
                    )));
                }
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| AuthError::Invalid("the token names no key id (`kid`)".into()))?;
                jwks.key(kid).await?
            }
            (KeySource::Jwks(_), None) => unreachable!("a JWKS key source always has a cache"),
        };
        if header.alg != algorithm {
            return Err(AuthError::Invalid(
                "the token's algorithm does not match its key".into(),
            ));
        }

        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation(algorithm))
            .map_err(|e| AuthError::Invalid(in_words(&e)))?
            .claims;
        self.agent_from(&claims)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        // The leeway absorbs clock skew with the identity provider, on both
        // ends of the token's life. `nbf` is optional, but honoured when
        // present: a token meant for later is not valid now.
        validation.leeway = CLOCK_SKEW_LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
        }
        validation
    }

    fn agent_from(&self, claims: &Map<String, Value>) -> Result<Agent, AuthError> {
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        let id = AgentId::parse(sub).map_err(|e| AuthError::Invalid(e.to_string()))?;

        let workspace_claim = &self.config.workspace_claim;
        let workspace = claim(claims, workspace_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::NoWorkspace(workspace_claim.clone()))?;
        let workspace = WorkspaceId::parse(workspace).map_err(|e| AuthError::Invalid(e.to_string()))?;

        // A role is a string, or a list of them (Cognito groups, Auth0 roles).
        let role = Role::from_claim(&match claim(claims, &self.config.role_claim) {
            Some(Value::String(role)) => vec![role.as_str()],
            Some(Value::Array(roles)) => roles.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        });
        // `exp` is required and checked by the validation above.
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(Timestamp::from_unix_seconds)
            .ok_or_else(|| AuthError::Invalid("the token has no usable `exp` claim".into()))?;
        Ok(Agent {
            workspace,
            id,
            role,
            expires_at,
        })
    }
}

/// What is wrong with a token, in words a person can act on (the library's
/// own names, `InvalidSignature` or `ExpiredSignature`, are not).
fn in_words(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired: sign in again".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (its nbf is in the future)".into(),
        ErrorKind::InvalidSignature => {
            "the token's signature does not match: it was not signed with the configured key".into()
        }
        ErrorKind::InvalidIssuer => "the token was issued by another issuer than the configured one".into(),
        ErrorKind::InvalidAudience => "the token is meant for another audience than the configured one".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's `{claim}` claim is not a number of seconds"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            "this is not a well-formed JWT (three base64url parts separated by dots)".into()
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's algorithm is not the one its key is for".into()
        }
        _ => format!("the token could not be checked ({error})"),
    }
}

/// A claim by exact name (Auth0 namespaces claims with URLs, dots included),
/// else by a dotted path into nested objects (`app_metadata.workspace_id`).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    })
}

impl JwksCache {
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
        {
            let state = self.state.read().await;
            let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
            if let (true, Some(key)) = (fresh, state.keys.get(kid)) {
                return Ok(key.clone());
            }
        }
        let mut state = self.state.write().await;
        // Another request may have refreshed while we waited for the lock.
        let recently = state
            .fetched_at
            .is_some_and(|t| t.elapsed() < self.min_refresh_interval);
        if !recently {
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched_at = Some(Instant::now());
                }
                // Keep serving the keys we have if the provider is briefly down.
                Err(e) if state.keys.is_empty() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; using cached keys"),
            }
        }
        state
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::Invalid(format!("unknown key id {kid:?}")))
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
        let unavailable = |e: reqwest::Error| AuthError::KeysUnavailable(error_chain(&e.without_url()));
        let set: JwkSet = self
            .http
            .get(self.url.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else {
                continue;
            };
            let algorithm = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            keys.insert(kid, (key, algorithm));
        }
        tracing::info!(keys = keys.len(), "fetched the identity provider's signing keys");
        Ok(keys)
    }
}
