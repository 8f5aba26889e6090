//! Configuration from environment variables, validated once at start.
//!
//! Every error names the variable at fault. The standard `AWS_*` variables
//! (region, credentials, `AWS_ENDPOINT_URL`) are left to the AWS SDK.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::twilio::access_token::MAX_LIFETIME;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The base URL Twilio reaches, without a trailing slash.
    pub public_url: PublicUrl,
    pub auth: AuthConfig,
    /// Twilio's REST API base (tests point it at a mock).
    pub twilio_api_url: Url,
    pub backend: Backend,
    /// Lifetime of the Voice access tokens handed to agents.
    pub token_lifetime: Duration,
    /// How long after `POST /calls` the agent's browser may connect; later,
    /// the session is abandoned and the customer is never dialed.
    pub connect_window: Duration,
    /// The WebSocket URL browsers open for live events (`POST /token`
    /// answers it): the WebSocket API's stage in AWS; on the local server,
    /// its own `/events` when unset.
    pub events_url: Option<String>,
    /// The WebSocket API's management endpoint (functions that post to
    /// sockets): `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub events_endpoint: Option<Url>,
}

#[derive(Debug, Clone)]
pub enum Backend {
    /// redb, local secret key and recordings, all under one directory.
    Embedded {
        data_dir: PathBuf,
        /// The most memory redb's page cache may take, in MiB.
        cache_mb: u64,
    },
    /// DynamoDB, KMS and S3. The bucket is only needed by the functions that
    /// store or play recordings, so it is checked where it is used.
    Aws {
        table: String,
        kms_key_id: String,
        recordings_bucket: Option<String>,
        /// The SQS queue recording copies run from (the recording callback
        /// enqueues; the `recording-copy` function consumes).
        recording_queue_url: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub keys: KeySource,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim that names the agent's workspace.
    pub workspace_claim: String,
    /// The claim that names the agent's role (`admin` may configure).
    pub role_claim: String,
}

#[derive(Debug, Clone)]
pub enum KeySource {
    /// A shared secret (Supabase style).
    Hs256(SecretString),
    /// The identity provider's published keys (Firebase, Cognito, Auth0).
    Jwks(Url),
}

/// The public base URL, kept as a string so webhook URLs are built exactly as
/// Twilio will request them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must have a host".into());
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The same base as a WebSocket URL (`ws://`, `wss://`) for `path`.
    pub fn websocket(&self, path: &str) -> String {
        let url = self.join(path);
        match url.strip_prefix("http") {
            Some(rest) => format!("ws{rest}"),
            None => url,
        }
    }

    /// The URL of one of our routes, e.g. `join("/twilio/status")`.
    pub fn join(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const DEFAULT_TWILIO_API_URL: &str = "https://api.twilio.com";
pub const DEFAULT_DATA_DIR: &str = ".switchboard";
/// redb's page cache on the local server (redb's own default is 1 GiB).
pub const DEFAULT_STORE_CACHE_MB: u64 = 32;
const STORE_CACHE_MB: std::ops::RangeInclusive<u64> = 1..=65_536;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let public_url = get("SWITCHBOARD_PUBLIC_URL")
            .ok_or_else(|| bad("SWITCHBOARD_PUBLIC_URL", "is required: the base URL Twilio reaches"))?;
        let public_url = PublicUrl::parse(&public_url).map_err(|e| bad("SWITCHBOARD_PUBLIC_URL", e))?;

        let twilio_api_url = get("SWITCHBOARD_TWILIO_API_URL").unwrap_or_else(|| DEFAULT_TWILIO_API_URL.into());
        let twilio_api_url = Url::parse(&twilio_api_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                bad(
                    "SWITCHBOARD_TWILIO_API_URL",
                    format!("{twilio_api_url:?} is not an http(s) URL"),
                )
            })?;

        let backend = match get("SWITCHBOARD_STORE").as_deref() {
            None | Some("embedded") => Backend::Embedded {
                data_dir: get("SWITCHBOARD_DATA_DIR")
                    .unwrap_or_else(|| DEFAULT_DATA_DIR.into())
                    .into(),
                cache_mb: match get("SWITCHBOARD_STORE_CACHE_MB") {
                    None => DEFAULT_STORE_CACHE_MB,
                    Some(raw) => raw
                        .parse()
                        .ok()
                        .filter(|mb| STORE_CACHE_MB.contains(mb))
                        .ok_or_else(|| {
                            bad(
                                "SWITCHBOARD_STORE_CACHE_MB",
                                format!(
                                    "must be a whole number of MiB from {} to {}",
                                    STORE_CACHE_MB.start(),
                                    STORE_CACHE_MB.end()
                                ),
                            )
                        })?,
                },
            },
            Some("dynamodb") => Backend::Aws {
                table: get("SWITCHBOARD_TABLE")
                    .ok_or_else(|| bad("SWITCHBOARD_TABLE", "is required when SWITCHBOARD_STORE=dynamodb"))?,
                kms_key_id: get("SWITCHBOARD_KMS_KEY_ID")
                    .ok_or_else(|| bad("SWITCHBOARD_KMS_KEY_ID", "is required when SWITCHBOARD_STORE=dynamodb"))?,
                recordings_bucket: get("SWITCHBOARD_RECORDINGS_BUCKET"),
                recording_queue_url: get("SWITCHBOARD_RECORDING_QUEUE_URL"),
            },
            Some(other) => {
                return Err(bad(
                    "SWITCHBOARD_STORE",
                    format!("{other:?} is not one of `embedded`, `dynamodb`"),
                ));
            }
        };

        let keys = match (get("SWITCHBOARD_AUTH_HS256_SECRET"), get("SWITCHBOARD_AUTH_JWKS_URL")) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "SWITCHBOARD_AUTH_JWKS_URL",
                    "set either SWITCHBOARD_AUTH_HS256_SECRET or SWITCHBOARD_AUTH_JWKS_URL, not both",
                ));
            }
            (Some(secret), None) => {
                if secret.len() < 32 {
                    return Err(bad("SWITCHBOARD_AUTH_HS256_SECRET", "must be at least 32 characters"));
                }
                KeySource::Hs256(SecretString::from(secret))
            }
            (None, Some(url)) => KeySource::Jwks(
                Url::parse(&url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| bad("SWITCHBOARD_AUTH_JWKS_URL", format!("{url:?} is not an http(s) URL")))?,
            ),
            (None, None) => {
                return Err(bad(
                    "SWITCHBOARD_AUTH_HS256_SECRET",
                    "agent sign-in needs SWITCHBOARD_AUTH_HS256_SECRET or SWITCHBOARD_AUTH_JWKS_URL",
                ));
            }
        };

        let auth = AuthConfig {
            keys,
            issuer: get("SWITCHBOARD_AUTH_ISSUER"),
            audience: get("SWITCHBOARD_AUTH_AUDIENCE"),
            workspace_claim: get("SWITCHBOARD_AUTH_WORKSPACE_CLAIM").unwrap_or_else(|| "workspace_id".into()),
            role_claim: get("SWITCHBOARD_AUTH_ROLE_CLAIM").unwrap_or_else(|| "role".into()),
        };

        let token_lifetime = seconds(&get, "SWITCHBOARD_TOKEN_TTL_SECONDS", 3600, 60..=MAX_LIFETIME.as_secs())?;
        let connect_window = seconds(&get, "SWITCHBOARD_CONNECT_WINDOW_SECONDS", 120, 5..=600)?;

        let events_url = get("SWITCHBOARD_EVENTS_URL")
            .map(|raw| match Url::parse(&raw) {
                Ok(url) if matches!(url.scheme(), "ws" | "wss") => Ok(raw),
                _ => Err(bad("SWITCHBOARD_EVENTS_URL", format!("{raw:?} is not a ws(s) URL"))),
            })
            .transpose()?;
        let events_endpoint = get("SWITCHBOARD_EVENTS_ENDPOINT")
            .map(|raw| {
                Url::parse(&raw)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| bad("SWITCHBOARD_EVENTS_ENDPOINT", format!("{raw:?} is not an http(s) URL")))
            })
            .transpose()?;

        Ok(Self {
            public_url,
            auth,
            twilio_api_url,
            backend,
            token_lifetime,
            connect_window,
            events_url,
            events_endpoint,
        })
    }
}

/// A duration in whole seconds from `name`, within `range`, else `default`.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let Some(raw) = get(name) else {
        return Ok(Duration::from_secs(default));
    };
    raw.parse::<u64>()
        .ok()
        .filter(|s| range.contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            bad(
                name,
                format!(
                    "must be a whole number of seconds from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com/"),
        ("SWITCHBOARD_AUTH_HS256_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn minimal_configuration_uses_the_documented_defaults() {
        let c = config(&BASE).unwrap();
        assert_eq!(
            c.public_url.join("/twilio/status"),
            "https://voice.example.com/twilio/status"
        );
        assert_eq!(c.twilio_api_url.as_str(), "https://api.twilio.com/");
        assert!(matches!(
            c.backend,
            Backend::Embedded { ref data_dir, cache_mb: DEFAULT_STORE_CACHE_MB } if data_dir == &PathBuf::from(".switchboard")
        ));
        assert_eq!(c.auth.workspace_claim, "workspace_id");
        assert_eq!(c.auth.role_claim, "role");
        assert_eq!(c.token_lifetime, Duration::from_secs(3600));
        assert_eq!(c.connect_window, Duration::from_secs(120));
    }

    #[test]
    fn the_store_cache_is_set_in_mib_within_bounds() {
        let c = config(&[BASE[0], BASE[1], ("SWITCHBOARD_STORE_CACHE_MB", "16")]).unwrap();
        assert!(matches!(c.backend, Backend::Embedded { cache_mb: 16, .. }));
        for wrong in ["0", "-1", "lots", "65537"] {
            let error = config(&[BASE[0], BASE[1], ("SWITCHBOARD_STORE_CACHE_MB", wrong)]).unwrap_err();
            assert_eq!(error.var, "SWITCHBOARD_STORE_CACHE_MB", "{wrong}");
        }
    }

    #[test]
    fn the_events_url_is_the_public_url_as_a_websocket() {
        let c = config(&[BASE[1], ("SWITCHBOARD_PUBLIC_URL", "https://h.example/prod")]).unwrap();
        assert_eq!(c.public_url.websocket("/events"), "wss://h.example/prod/events");
        let c = config(&[BASE[1], ("SWITCHBOARD_PUBLIC_URL", "http://127.0.0.1:3000")]).unwrap();
        assert_eq!(c.public_url.websocket("/events"), "ws://127.0.0.1:3000/events");
        assert!(config(&[BASE[0], BASE[1], ("SWITCHBOARD_EVENTS_URL", "https://x")]).is_err());
        let c = config(&[BASE[0], BASE[1], ("SWITCHBOARD_EVENTS_URL", "wss://a.example/live")]).unwrap();
        assert_eq!(c.events_url.as_deref(), Some("wss://a.example/live"));
    }

    #[test]
    fn public_url_keeps_a_path_prefix() {
        let c = config(&[BASE[1], ("SWITCHBOARD_PUBLIC_URL", "https://h.example/prod")]).unwrap();
        assert_eq!(c.public_url.join("/token"), "https://h.example/prod/token");
    }

    #[test]
    fn every_error_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[BASE[1]], "SWITCHBOARD_PUBLIC_URL"),
            (
                &[BASE[1], ("SWITCHBOARD_PUBLIC_URL", "ftp://x")],
                "SWITCHBOARD_PUBLIC_URL",
            ),
            (
                &[BASE[1], ("SWITCHBOARD_PUBLIC_URL", "https://x/?a=1")],
                "SWITCHBOARD_PUBLIC_URL",
            ),
            (&[BASE[0]], "SWITCHBOARD_AUTH_HS256_SECRET"),
            (
                &[BASE[0], ("SWITCHBOARD_AUTH_HS256_SECRET", "short")],
                "SWITCHBOARD_AUTH_HS256_SECRET",
            ),
            (
                &[BASE[0], BASE[1], ("SWITCHBOARD_AUTH_JWKS_URL", "https://idp/jwks")],
                "SWITCHBOARD_AUTH_JWKS_URL",
            ),
            (
                &[BASE[0], ("SWITCHBOARD_AUTH_JWKS_URL", "not a url")],
                "SWITCHBOARD_AUTH_JWKS_URL",
            ),
            (
                &[BASE[0], BASE[1], ("SWITCHBOARD_STORE", "postgres")],
                "SWITCHBOARD_STORE",
            ),
            (
                &[BASE[0], BASE[1], ("SWITCHBOARD_STORE", "dynamodb")],
                "SWITCHBOARD_TABLE",
            ),
            (
                &[
                    BASE[0],
                    BASE[1],
                    ("SWITCHBOARD_STORE", "dynamodb"),
                    ("SWITCHBOARD_TABLE", "t"),
                ],
                "SWITCHBOARD_KMS_KEY_ID",
            ),
            (
                &[BASE[0], BASE[1], ("SWITCHBOARD_TWILIO_API_URL", "nope")],
                "SWITCHBOARD_TWILIO_API_URL",
            ),
            (
                &[BASE[0], BASE[1], ("SWITCHBOARD_CONNECT_WINDOW_SECONDS", "0")],
                "SWITCHBOARD_CONNECT_WINDOW_SECONDS",
            ),
            (
                &[BASE[0], BASE[1], ("SWITCHBOARD_TOKEN_TTL_SECONDS", "90000")],
                "SWITCHBOARD_TOKEN_TTL_SECONDS",
            ),
            (
                &[BASE[0], BASE[1], ("SWITCHBOARD_TOKEN_TTL_SECONDS", "1h")],
                "SWITCHBOARD_TOKEN_TTL_SECONDS",
            ),
        ];
        for (vars, var) in cases {
            let err = config(vars).unwrap_err();
            assert_eq!(err.var, *var, "{vars:?}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn dynamodb_backend_and_jwks() {
        let c = config(&[
            BASE[0],
            ("SWITCHBOARD_AUTH_JWKS_URL", "https://idp.example/.well-known/jwks.json"),
            ("SWITCHBOARD_AUTH_ISSUER", "https://idp.example/"),
            ("SWITCHBOARD_STORE", "dynamodb"),
            ("SWITCHBOARD_TABLE", "switchboard"),
            ("SWITCHBOARD_KMS_KEY_ID", "alias/switchboard"),
            ("SWITCHBOARD_TOKEN_TTL_SECONDS", "86400"),
        ])
        .unwrap();
        assert!(matches!(c.auth.keys, KeySource::Jwks(_)));
        assert_eq!(c.auth.issuer.as_deref(), Some("https://idp.example/"));
        assert!(matches!(
            c.backend,
            Backend::Aws { ref table, recordings_bucket: None, ref kms_key_id, .. } if table == "switchboard" && kms_key_id == "alias/switchboard"
        ));
        assert_eq!(c.token_lifetime, Duration::from_secs(86_400));
    }
}
