//! The test harness for handler tests: a real `App` on the embedded store in a
//! temporary directory, agents signed in with real JWTs, webhooks signed the
//! way Twilio signs them, all requests through the one route table.
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use switchboard::api::{Body, Request, Response};
use switchboard::app::App;
use switchboard::ids::{AccountSid, ApiKeySid, ApplicationSid, WorkspaceId};
use switchboard::ports::{Adapters, NoQueue, SecretBox, Store};
use switchboard::routes::Router;
use switchboard::workspace::{ApiKey, TwilioAccount, Workspace};
use switchboard_embedded::EmbeddedStore;

pub use crate::{HS256_SECRET, PUBLIC_URL, sid};

/// A form POST to `PUBLIC_URL` + `path_and_query`, signed with `auth_token`.
pub fn twilio_post(path_and_query: &str, params: &[(&str, &str)], auth_token: &str) -> Request {
    crate::signed_post(path_and_query, params, auth_token)
}

pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub dir: tempfile::TempDir,
    /// The embedded store's durable job queue, which the local server's
    /// worker drains (tests drain it themselves).
    pub queue: Arc<EmbeddedStore>,
}

impl TestApp {
    /// HS256 sign-in, embedded store.
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// The defaults above, overridden or extended by `vars`.
    pub async fn with_env(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (app, queue) = crate::embedded_app(crate::config(dir.path(), vars));
        Self {
            queue,
            app,
            router: Router::all(),
            dir,
        }
    }

    /// The same, on another store and secret box (DynamoDB and KMS on moto).
    pub async fn with_adapters(vars: &[(&str, &str)], store: Arc<dyn Store>, secrets: Arc<dyn SecretBox>) -> Self {
        let mut t = Self::with_env(vars).await;
        let adapters = Adapters {
            store,
            secrets,
            recordings: None,
            jobs: Arc::new(NoQueue),
        };
        t.app = App::new(t.app.config.clone(), adapters).expect("app");
        t
    }

    pub async fn call(&self, request: Request) -> Reply {
        Reply(self.router.dispatch(&self.app, request).await)
    }

    /// A workspace with a connected Twilio account, API key and TwiML App, as
    /// onboarding leaves it.
    pub async fn seed_workspace(&self, id: &str, account: &AccountSid, auth_token: &str) -> Workspace {
        let workspace_id = WorkspaceId::parse(id).unwrap();
        let seal = |secret: &str| {
            let secret = SecretString::from(secret.to_owned());
            let workspace_id = workspace_id.clone();
            async move { self.app.secrets.seal(&workspace_id, &secret).await.unwrap() }
        };
        let workspace = Workspace {
            id: workspace_id.clone(),
            twilio: Some(TwilioAccount {
                account_sid: account.clone(),
                auth_token: seal(auth_token).await,
                api_key: Some(ApiKey {
                    sid: sid("SK", id),
                    secret: seal(&format!("api-key-secret-of-{id}")).await,
                }),
                twiml_app_sid: Some(sid("AP", id)),
            }),
            settings: Default::default(),
        };
        self.app.store.put_workspace(&workspace).await.unwrap();
        workspace
    }
}

pub fn account(seed: &str) -> AccountSid {
    sid("AC", seed)
}

pub fn api_key(seed: &str) -> ApiKeySid {
    sid("SK", seed)
}

pub fn app_sid(seed: &str) -> ApplicationSid {
    sid("AP", seed)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An identity provider's token, HS256 with the test secret.
pub fn agent_jwt(workspace: &str, sub: &str, role: &str) -> String {
    let claims = serde_json::json!({
        "sub": sub, "workspace_id": workspace, "role": role,
        "iat": now(), "exp": now() + 600,
    });
    jwt_hs256(&claims, HS256_SECRET)
}

pub fn jwt_hs256(claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A token signed with one of the test identity provider's private keys.
pub fn jwt_from_fixture(claims: &serde_json::Value, kid: &str) -> String {
    let (algorithm, file) = match kid {
        "ec-1" => (Algorithm::ES256, "idp-ec-1.pem"),
        other => (
            Algorithm::RS256,
            if other == "rsa-2" {
                "idp-rsa-2.pem"
            } else {
                "idp-rsa-1.pem"
            },
        ),
    };
    let pem = std::fs::read(crate::repo_root().join("tests/fixtures").join(file)).unwrap();
    let key = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// The public JWKs of the fixture keys named in `kids`.
pub fn jwks(kids: &[&str]) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::repo_root().join("tests/fixtures/idp-public-jwks.json")).unwrap(),
    )
    .unwrap();
    serde_json::json!({"keys": kids.iter().map(|k| all[*k].clone()).collect::<Vec<_>>()})
}

pub fn request(method: Method, path: &str) -> Request {
    Request::new(method, path)
}

pub fn with_bearer(mut request: Request, token: &str) -> Request {
    request.headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    request
}

pub fn with_json(mut request: Request, body: &serde_json::Value) -> Request {
    request
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request.body = Bytes::from(serde_json::to_vec(body).unwrap());
    request
}

pub struct Reply(pub Response);

impl Reply {
    pub fn status(&self) -> u16 {
        self.0.status().as_u16()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.headers().get(name).and_then(|v| v.to_str().ok())
    }

    pub fn bytes(&self) -> &Bytes {
        match self.0.body() {
            Body::Full(bytes) => bytes,
            Body::File { path, .. } => panic!("a file body ({})", path.display()),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(self.bytes()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The error code of a JSON error response.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}
