//! `switchboard agent-token`: an agent's sign-in token for local use (the
//! dialer, curl), signed with the configured HS256 secret and carrying the
//! configured claim names, issuer and audience, so the server accepts it as
//! it would one from the company's identity provider. With only a JWKS URL
//! configured the provider holds the private keys: it is refused.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use switchboard::auth::Authenticator;
use switchboard::config::{Config, ConfigError, KeySource};
use switchboard::ids::{AgentId, WorkspaceId};
use switchboard::time::Timestamp;

/// The longest a printed token lives: a month.
const MAX_TTL_SECONDS: u64 = 30 * 24 * 60 * 60;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print an agent's sign-in token (JWT), signed with SWITCHBOARD_AUTH_HS256_SECRET.
    AgentToken(Args),
}

#[derive(clap::Args)]
pub struct Args {
    /// The agent's workspace (the workspace claim).
    #[arg(long)]
    workspace: String,
    /// The agent's id (`sub`).
    #[arg(long)]
    agent: String,
    /// The role claim: `admin` configures the workspace; `supervisor` listens in.
    #[arg(long, value_enum)]
    role: Option<RoleArg>,
    /// How long the token is valid.
    #[arg(long, default_value_t = 8 * 60 * 60, value_parser = clap::value_parser!(u64).range(1..=MAX_TTL_SECONDS))]
    ttl_seconds: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Admin,
    Supervisor,
}

impl RoleArg {
    fn claim(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Supervisor => "supervisor",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentTokenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "agent-token signs with SWITCHBOARD_AUTH_HS256_SECRET, and this configuration signs agents in with \
         the identity provider's keys (SWITCHBOARD_AUTH_JWKS_URL), whose private keys Switchboard never holds: \
         get a token from the identity provider instead"
    )]
    JwksOnly,
    #[error("--{0}: {1}")]
    InvalidArgument(&'static str, String),
    #[error("the token could not be signed: {0}")]
    Signing(String),
    #[error("the signed token is not accepted by this configuration: {0}")]
    NotAccepted(String),
}

/// Runs the subcommand: the token on stdout, or a message on stderr and exit code 2.
pub async fn main(command: Command) -> std::process::ExitCode {
    let Command::AgentToken(args) = command;
    match token(&args, |name| std::env::var(name).ok()).await {
        Ok(token) => {
            println!("{token}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("switchboard agent-token: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

/// A signed token for `args`, with the configuration `lookup` reads, checked
/// by the same authenticator the server runs.
pub async fn token(args: &Args, lookup: impl Fn(&str) -> Option<String>) -> Result<String, AgentTokenError> {
    // The public URL plays no part in signing in; it need not be set here.
    let config = Config::from_lookup(|name| {
        lookup(name).or_else(|| (name == "SWITCHBOARD_PUBLIC_URL").then(|| "http://127.0.0.1:3000".to_owned()))
    })?;
    let KeySource::Hs256(secret) = &config.auth.keys else {
        return Err(AgentTokenError::JwksOnly);
    };
    let workspace = WorkspaceId::parse(&args.workspace)
        .map_err(|e| AgentTokenError::InvalidArgument("workspace", e.to_string()))?;
    let agent = AgentId::parse(&args.agent).map_err(|e| AgentTokenError::InvalidArgument("agent", e.to_string()))?;

    let now = Timestamp::now().unix_seconds();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(agent.as_str()));
    claims.insert(config.auth.workspace_claim.clone(), json!(workspace.as_str()));
    if let Some(role) = args.role {
        claims.insert(config.auth.role_claim.clone(), json!(role.claim()));
    }
    if let Some(issuer) = &config.auth.issuer {
        claims.insert("iss".into(), json!(issuer));
    }
    if let Some(audience) = &config.auth.audience {
        claims.insert("aud".into(), json!(audience));
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + args.ttl_seconds as i64));
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &Value::Object(claims),
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .map_err(|e| AgentTokenError::Signing(e.to_string()))?;

    // Whatever the claim settings, what is printed is what the server accepts.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| AgentTokenError::Signing(e.to_string()))?;
    let signed_in = Authenticator::new(config.auth.clone(), http)
        .check(&token)
        .await
        .map_err(|e| AgentTokenError::NotAccepted(e.to_string()))?;
    if signed_in.workspace != workspace || signed_in.id != agent {
        return Err(AgentTokenError::NotAccepted(
            "it signs in another agent or workspace than asked".into(),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;
    use switchboard::auth::Role;

    use super::*;

    const SECRET: &str = "agent-token-test-secret-0123456789abcdef";

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn args(line: &[&str]) -> Args {
        let cli = Cli::try_parse_from(std::iter::once("switchboard").chain(line.iter().copied())).expect("arguments");
        let Command::AgentToken(args) = cli.command;
        args
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    fn claims(token: &str) -> Value {
        let payload = token.split('.').nth(1).expect("a JWT");
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64url"),
        )
        .expect("JSON claims")
    }

    async fn check(token: &str, lookup: impl Fn(&str) -> Option<String>) -> switchboard::auth::Agent {
        let config =
            Config::from_lookup(|n| lookup(n).or_else(|| (n == "SWITCHBOARD_PUBLIC_URL").then(|| "http://x".into())))
                .expect("config");
        Authenticator::new(config.auth, reqwest::Client::new())
            .check(token)
            .await
            .expect("the server accepts it")
    }

    #[tokio::test]
    async fn signs_an_admin_token_the_server_accepts() {
        let lookup = env(&[("SWITCHBOARD_AUTH_HS256_SECRET", SECRET)]);
        let token = token(
            &args(&[
                "agent-token",
                "--workspace",
                "acme",
                "--agent",
                "alice",
                "--role",
                "admin",
            ]),
            &lookup,
        )
        .await
        .expect("a token");
        let agent = check(&token, &lookup).await;
        assert_eq!((agent.workspace.as_str(), agent.id.as_str()), ("acme", "alice"));
        assert_eq!(agent.role, Role::Admin);
        let claims = claims(&token);
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 8 * 60 * 60, "eight hours unless told");
    }

    #[tokio::test]
    async fn uses_the_configured_claim_names_issuer_and_audience() {
        let lookup = env(&[
            ("SWITCHBOARD_AUTH_HS256_SECRET", SECRET),
            ("SWITCHBOARD_AUTH_ISSUER", "https://idp.example/"),
            ("SWITCHBOARD_AUTH_AUDIENCE", "switchboard"),
            ("SWITCHBOARD_AUTH_WORKSPACE_CLAIM", "https://example.com/workspace"),
            ("SWITCHBOARD_AUTH_ROLE_CLAIM", "app_role"),
        ]);
        let line = [
            "agent-token",
            "--workspace",
            "acme",
            "--agent",
            "bob",
            "--role",
            "supervisor",
            "--ttl-seconds",
            "120",
        ];
        let token = token(&args(&line), &lookup).await.expect("a token");
        let claims = claims(&token);
        assert_eq!(claims["iss"], "https://idp.example/");
        assert_eq!(claims["aud"], "switchboard");
        assert_eq!(claims["https://example.com/workspace"], "acme");
        assert_eq!(claims["app_role"], "supervisor");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
        let agent = check(&token, &lookup).await;
        assert_eq!(agent.id.as_str(), "bob");
        assert_ne!(agent.role, Role::Admin);
        // Another issuer's server refuses it: the claims are the configured ones, not defaults.
        let elsewhere = env(&[
            ("SWITCHBOARD_AUTH_HS256_SECRET", SECRET),
            ("SWITCHBOARD_AUTH_ISSUER", "https://other.example/"),
        ]);
        let config = Config::from_lookup(|n| {
            elsewhere(n).or_else(|| (n == "SWITCHBOARD_PUBLIC_URL").then(|| "http://x".into()))
        })
        .unwrap();
        assert!(
            Authenticator::new(config.auth, reqwest::Client::new())
                .check(&token)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn is_refused_with_only_a_jwks_url() {
        let lookup = env(&[("SWITCHBOARD_AUTH_JWKS_URL", "https://idp.example/.well-known/jwks.json")]);
        let error = token(
            &args(&["agent-token", "--workspace", "acme", "--agent", "alice"]),
            &lookup,
        )
        .await
        .expect_err("refused");
        assert!(matches!(error, AgentTokenError::JwksOnly));
        assert!(error.to_string().contains("SWITCHBOARD_AUTH_JWKS_URL"), "{error}");
    }

    #[tokio::test]
    async fn refuses_bad_ids_and_a_missing_configuration() {
        let lookup = env(&[("SWITCHBOARD_AUTH_HS256_SECRET", SECRET)]);
        let error = token(
            &args(&["agent-token", "--workspace", "a b", "--agent", "alice"]),
            &lookup,
        )
        .await
        .expect_err("refused");
        assert!(error.to_string().starts_with("--workspace:"), "{error}");
        let error = token(
            &args(&["agent-token", "--workspace", "acme", "--agent", "alice"]),
            env(&[]),
        )
        .await
        .expect_err("refused");
        assert!(error.to_string().contains("SWITCHBOARD_AUTH_HS256_SECRET"), "{error}");
    }

    #[test]
    fn the_arguments_are_checked() {
        let parse = |line: &[&str]| Cli::try_parse_from(std::iter::once("switchboard").chain(line.iter().copied()));
        assert!(
            parse(&["agent-token", "--agent", "alice"]).is_err(),
            "--workspace is required"
        );
        assert!(parse(&["agent-token", "--workspace", "w", "--agent", "a", "--role", "owner"]).is_err());
        assert!(parse(&["agent-token", "--workspace", "w", "--agent", "a", "--ttl-seconds", "0"]).is_err());
        assert!(
            parse(&[
                "agent-token",
                "--workspace",
                "w",
                "--agent",
                "a",
                "--role",
                "supervisor"
            ])
            .is_ok()
        );
    }
}
