//! Twilio's REST contract: every method of `switchboard::twilio::rest::TwilioClient`
//! against Twilio's official OpenAPI description of API v2010, served by Prism
//! (`@stoplight/prism-cli` and `@twilio-alpha/mcp`, pinned in `package.json`).
//!
//! Prism checks each request against the spec (path, query, form body, HTTP
//! Basic auth) and answers 422 with a problem JSON listing the violations when
//! one breaks it; otherwise it answers the spec's own example, which our types
//! must decode. It answers from static examples, so this checks requests and
//! response shapes, not behaviour (`wiremock` tests in `shared/src/twilio/rest.rs`
//! do that).
//!
//! The client talks to Prism through a small recording proxy started per test,
//! so a failure names Prism's violations (our client only keeps the status of a
//! 422) and a test can see every request a call made.
//!
//! Needs `SWITCHBOARD_TEST_PRISM_URL`; `scripts/test.sh` starts Prism and sets it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use switchboard::ids::{AccountSid, ApiKeySid, ApplicationSid, CallSid, ConferenceSid, PhoneNumberSid};
use switchboard::twilio::rest::{
    Application, EndCall, IncomingNumber, NumberWebhooks, ParticipantChange, TwilioClient, TwilioError, VoiceWebhooks,
};

pub const PRISM_URL_VAR: &str = "SWITCHBOARD_TEST_PRISM_URL";

// Realistic values: SIDs are two letters and 32 hex digits, as Twilio issues them.
const ACCOUNT: &str = "AC3f6b1c0e9d8a7b6c5d4e3f2a1b0c9d8e";
const AUTH_TOKEN: &str = "9c1e5b7d3a2f4e6c8b0a1d3f5e7c9b2a";
const API_KEY: &str = "SK5d2e8f1a4b7c0d3e6f9a2b5c8d1e4f7a";
const API_KEY_SECRET: &str = "Zq8vR2mK5tY7wP1xN4bC6dF9gH3jL0sA";
const APP: &str = "AP7a1c3e5b9d2f4a6c8e0b1d3f5a7c9e2b";
const NUMBER: &str = "PN2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a";

const VOICE_URL: &str = "https://sb.example.com/twilio/voice/w-01hzy3k5q8r2t6v9x1c4e7g0j3";
const STATUS_URL: &str = "https://sb.example.com/twilio/status/w-01hzy3k5q8r2t6v9x1c4e7g0j3";
const SMS_URL: &str = "https://sb.example.com/twilio/sms/w-01hzy3k5q8r2t6v9x1c4e7g0j3";

/// Prism's base URL, or a panic that says how to get one (never a silent skip).
pub fn prism_url() -> Url {
    match std::env::var(PRISM_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => {
            Url::parse(url.trim()).unwrap_or_else(|e| panic!("{PRISM_URL_VAR}={url:?} is not a URL: {e}"))
        }
        _ => panic!(
            "{PRISM_URL_VAR} is not set. These tests check our Twilio client against Twilio's OpenAPI \
             description served by Prism and are never skipped: run them with scripts/test.sh (it runs \
             `npm ci` and starts Prism), or run `npm ci` and \
             `npx prism mock node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json -p 4010` \
             yourself and set {PRISM_URL_VAR}=http://127.0.0.1:4010"
        ),
    }
}

// ---------------------------------------------------------------------------
// Prism's verdict

/// One complaint from Prism's 422 problem JSON (`validation[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, e.g. `["body", "VoiceUrl"]` or `["query", "pagesize"]`.
    pub location: Vec<String>,
    /// The JSON Schema keyword that failed, e.g. `pattern`, `format`, `type`.
    pub code: String,
    /// Prism's sentence, e.g. `Request body property VoiceUrl must match format "uri"`.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}: {}]", self.message, self.location.join("."), self.code)
    }
}

/// The violations Prism lists in a response: empty when Prism accepted the
/// request (any status but 422), Prism's list for a 422. Panics on a 422 whose
/// body is not Prism's problem JSON, since then nobody can say what was wrong.
pub async fn violations(response: reqwest::Response) -> Vec<Violation> {
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("reading Prism's answer");
    violations_in(status, &body)
}

/// [`violations`] over a status and body already read.
pub fn violations_in(status: u16, body: &[u8]) -> Vec<Violation> {
    if status != 422 {
        return Vec::new();
    }
    let problem: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "a 422 that is not Prism's problem JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let Some(list) = problem.get("validation").and_then(Value::as_array) else {
        panic!("Prism's 422 lists no `validation`: {problem}");
    };
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    list.iter()
        .map(|v| Violation {
            location: v
                .get("location")
                .and_then(Value::as_array)
                .map(|parts| parts.iter().map(text).collect())
                .unwrap_or_default(),
            code: v.get("code").map(text).unwrap_or_default(),
            message: v.get("message").map(text).unwrap_or_default(),
        })
        .collect()
}

/// Prism's known complaint about a repeated form key (`StatusCallbackEvent=initiated&
/// StatusCallbackEvent=ringing`, what Twilio's own helper libraries send): Prism
/// does not read repeated keys as an array. That one is Prism's, not ours
/// (DESIGN.md, "Testing against real things"); a test may allow it and nothing else.
pub fn is_repeated_key_limitation(violation: &Violation, field: &str) -> bool {
    violation.location == ["body", field] && violation.code == "type" && violation.message.ends_with("must be array")
}

// ---------------------------------------------------------------------------
// The recording proxy

/// One request our client made, and Prism's answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: Method,
    /// Path and query, as sent.
    pub target: String,
    pub request_body: String,
    pub status: u16,
    pub response_body: String,
    pub violations: Vec<Violation>,
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.target)?;
        if !self.request_body.is_empty() {
            write!(f, "\n    body: {}", self.request_body)?;
        }
        write!(f, "\n    -> {}", self.status)?;
        for violation in &self.violations {
            write!(f, "\n       violation: {violation}")?;
        }
        if self.violations.is_empty() && !(200..300).contains(&self.status) {
            write!(f, " {}", self.response_body)?;
        }
        Ok(())
    }
}

struct ProxyState {
    prism: Url,
    http: reqwest::Client,
    /// `Prefer: example=…` for follow-up pages (requests with a `PageToken`).
    next_pages_example: Option<&'static str>,
    exchanges: Mutex<Vec<Exchange>>,
}

/// Forwards to Prism untouched (but for the `Prefer` header above) and records
/// every exchange.
pub struct Contract {
    base: Url,
    state: Arc<ProxyState>,
}

impl Contract {
    /// The proxy's URL, for `SWITCHBOARD_TWILIO_API_URL`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Prism answers every request with the same example; where that example
    /// has a `next_page_uri`, a client that follows pages would never stop.
    /// This asks Prism for the spec's named `example` on follow-up pages.
    pub async fn answering_next_pages_with(example: &'static str) -> Self {
        Self::start_with(Some(example)).await
    }

    async fn start_with(next_pages_example: Option<&'static str>) -> Self {
        let state = Arc::new(ProxyState {
            prism: prism_url(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            next_pages_example,
            exchanges: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let app = axum::Router::new().fallback(forward).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.exchanges.lock().unwrap().clone()
    }

    /// A client for the account, authenticated with its Auth Token.
    pub fn auth_token_client(&self) -> TwilioClient {
        TwilioClient::with_auth_token(
            test_http(),
            self.base.clone(),
            AccountSid::parse(ACCOUNT).unwrap(),
            SecretString::from(AUTH_TOKEN.to_owned()),
        )
    }

    /// A client for the account, authenticated with an API key.
    pub fn api_key_client(&self) -> TwilioClient {
        TwilioClient::with_api_key(
            test_http(),
            self.base.clone(),
            AccountSid::parse(ACCOUNT).unwrap(),
            &ApiKeySid::parse(API_KEY).unwrap(),
            SecretString::from(API_KEY_SECRET.to_owned()),
        )
    }

    /// The call's result, after checking Prism accepted every request it made:
    /// a failure lists each exchange with Prism's violations.
    pub fn accepted<T>(&self, what: &str, result: Result<T, TwilioError>) -> T {
        let exchanges = self.exchanges();
        let refused = exchanges.iter().any(|e| !(200..300).contains(&e.status));
        match result {
            Ok(value) if !refused && !exchanges.is_empty() => value,
            Ok(_) => panic!(
                "{what}: succeeded, but not every request was accepted:\n{}",
                list(&exchanges)
            ),
            Err(error) => panic!("{what}: {error:?}\n{}", list(&exchanges)),
        }
    }
}

fn list(exchanges: &[Exchange]) -> String {
    if exchanges.is_empty() {
        return "  (no request reached Prism)".into();
    }
    exchanges.iter().map(|e| format!("  {e}\n")).collect()
}

fn test_http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.to_string());
    let mut outgoing = headers;
    for hop in [
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
    ] {
        outgoing.remove(hop);
    }
    if let Some(example) = state.next_pages_example
        && uri
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("PageToken=")))
    {
        outgoing.insert("prefer", HeaderValue::from_str(&format!("example={example}")).unwrap());
    }
    let url = state.prism.join(&target).expect("joining the target onto Prism's URL");
    let sent = state
        .http
        .request(method.clone(), url)
        .headers(outgoing)
        .body(body.clone())
        .send()
        .await;
    let (status, mut response_headers, response_body) = match sent {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            match answer.bytes().await {
                Ok(bytes) => (status, headers, bytes),
                Err(e) => bad_gateway(format!("reading Prism's answer: {e}")),
            }
        }
        Err(e) => bad_gateway(format!("Prism at {} did not answer: {e}", state.prism)),
    };
    state.exchanges.lock().unwrap().push(Exchange {
        method,
        target,
        request_body: String::from_utf8_lossy(&body).into_owned(),
        status: status.as_u16(),
        response_body: String::from_utf8_lossy(&response_body).into_owned(),
        violations: violations_in(status.as_u16(), &response_body),
    });
    for hop in [header::CONTENT_LENGTH, header::CONNECTION, header::TRANSFER_ENCODING] {
        response_headers.remove(hop);
    }
    let mut response = Response::new(Body::from(response_body));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}

/// Prism unreachable: a 502 that says so, recorded like any other answer.
fn bad_gateway(reason: String) -> (StatusCode, HeaderMap, Bytes) {
    (StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::from(reason))
}

fn account_path(rest: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}{rest}")
}

fn hooks() -> VoiceWebhooks {
    VoiceWebhooks {
        voice_url: VOICE_URL.into(),
        status_callback: STATUS_URL.into(),
    }
}

fn number_hooks() -> NumberWebhooks {
    NumberWebhooks {
        voice_url: VOICE_URL.into(),
        status_callback: STATUS_URL.into(),
        sms_url: SMS_URL.into(),
    }
}

// ---------------------------------------------------------------------------
// Prism itself: the check is live, not vacuous

#[tokio::test]
async fn prism_wants_http_basic_credentials() {
    let url = prism_url().join(&account_path(".json")).unwrap();
    let http = test_http();
    let anonymous = http.get(url.clone()).send().await.unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "Prism should enforce accountSid_authToken basic auth"
    );
    let signed = http
        .get(url)
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
}

#[tokio::test]
async fn prism_lists_what_breaks_the_spec() {
    let url = prism_url()
        .join(&account_path("/Applications.json?PageSize=5000"))
        .unwrap();
    let response = test_http()
        .get(url)
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let found = violations(response).await;
    assert!(
        found
            .iter()
            .any(|v| v.location == ["query", "pagesize"] && v.code == "maximum"),
        "{found:?}"
    );
}

#[tokio::test]
async fn prism_reads_repeated_form_keys_as_one_string() {
    // What Twilio's helper libraries send for several events: Prism's known limitation.
    let url = prism_url().join(&account_path("/Calls.json")).unwrap();
    let form = [
        ("To", "client:agent-7"),
        ("From", "+14155550123"),
        ("Url", VOICE_URL),
        ("StatusCallback", STATUS_URL),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
    ];
    let response = test_http()
        .post(url)
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .form(&form)
        .send()
        .await
        .unwrap();
    let found = violations(response).await;
    assert!(
        found.len() == 1 && is_repeated_key_limitation(&found[0], "StatusCallbackEvent"),
        "expected only Prism's repeated-key complaint: {found:?}"
    );
}

#[tokio::test]
async fn a_request_that_breaks_the_spec_is_rejected_422() {
    let contract = Contract::start().await;
    let bad = VoiceWebhooks {
        voice_url: "not a url".into(),
        status_callback: STATUS_URL.into(),
    };
    let error = contract
        .auth_token_client()
        .create_application("switchboard", &bad)
        .await
        .expect_err("Prism should refuse a VoiceUrl that is not a URI");
    assert!(matches!(error, TwilioError::Rejected { status: 422, .. }), "{error:?}");
    let exchanges = contract.exchanges();
    assert!(
        exchanges[0]
            .violations
            .iter()
            .any(|v| v.location == ["body", "VoiceUrl"] && v.code == "format"),
        "{}",
        list(&exchanges)
    );
}

// ---------------------------------------------------------------------------
// Every method of the client

#[tokio::test]
async fn fetch_account() {
    let contract = Contract::start().await;
    let account = contract.accepted("fetch_account", contract.auth_token_client().fetch_account().await);
    assert!(AccountSid::parse(&account.sid).is_ok(), "{account:?}");
    assert_eq!(account.status.as_deref(), Some("active"));
    let exchanges = contract.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].target, account_path(".json"));
}

#[tokio::test]
async fn create_key() {
    let contract = Contract::start().await;
    let key = contract.accepted(
        "create_key",
        contract
            .auth_token_client()
            .create_key("switchboard w-01hzy3k5q8")
            .await,
    );
    assert!(key.sid.as_str().starts_with("SK"));
    assert!(!key.secret.expose_secret().is_empty(), "a new key carries its secret");
    let exchanges = contract.exchanges();
    assert_eq!((exchanges[0].method.as_str(), exchanges[0].status), ("POST", 201));
}

#[tokio::test]
async fn fetch_key() {
    let contract = Contract::start().await;
    let sid = ApiKeySid::parse(API_KEY).unwrap();
    let key = contract.accepted("fetch_key", contract.auth_token_client().fetch_key(&sid).await);
    assert!(key.sid.as_str().starts_with("SK"));
}

#[tokio::test]
async fn delete_key() {
    let contract = Contract::start().await;
    let sid = ApiKeySid::parse(API_KEY).unwrap();
    contract.accepted("delete_key", contract.auth_token_client().delete_key(&sid).await);
    assert_eq!(contract.exchanges()[0].status, 204);
}

#[tokio::test]
async fn find_applications_follows_pages() {
    // The spec's default example (`readFull`) has a `next_page_uri`; Prism would
    // answer it forever. Follow-up pages get the spec's `readEmpty`.
    let contract = Contract::answering_next_pages_with("readEmpty").await;
    let apps: Vec<Application> = contract.accepted(
        "find_applications",
        contract
            .api_key_client()
            .find_applications("switchboard w-01hzy3k5q8")
            .await,
    );
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert!(apps[0].sid.as_str().starts_with("AP"));
    let exchanges = contract.exchanges();
    assert_eq!(exchanges.len(), 2, "{}", list(&exchanges));
    assert!(exchanges[0].target.contains("FriendlyName=switchboard+w-01hzy3k5q8"));
    assert!(exchanges[1].target.contains("PageToken="), "{}", list(&exchanges));
}

#[tokio::test]
async fn fetch_application() {
    let contract = Contract::start().await;
    let sid = ApplicationSid::parse(APP).unwrap();
    let app = contract.accepted(
        "fetch_application",
        contract.api_key_client().fetch_application(&sid).await,
    );
    assert!(app.sid.as_str().starts_with("AP"));
}

#[tokio::test]
async fn create_application() {
    let contract = Contract::start().await;
    let app = contract.accepted(
        "create_application",
        contract
            .api_key_client()
            .create_application("switchboard w-01hzy3k5q8", &hooks())
            .await,
    );
    assert!(app.sid.as_str().starts_with("AP"));
    assert_eq!(contract.exchanges()[0].status, 201);
}

#[tokio::test]
async fn update_application() {
    let contract = Contract::start().await;
    let sid = ApplicationSid::parse(APP).unwrap();
    let app = contract.accepted(
        "update_application",
        contract.api_key_client().update_application(&sid, &hooks()).await,
    );
    assert!(app.sid.as_str().starts_with("AP"));
}

#[tokio::test]
async fn delete_application() {
    let contract = Contract::start().await;
    let sid = ApplicationSid::parse(APP).unwrap();
    contract.accepted(
        "delete_application",
        contract.api_key_client().delete_application(&sid).await,
    );
    assert_eq!(contract.exchanges()[0].status, 204);
}

#[tokio::test]
async fn list_incoming_numbers() {
    let contract = Contract::answering_next_pages_with("readEmpty").await;
    let numbers: Vec<IncomingNumber> = contract.accepted(
        "list_incoming_numbers",
        contract.api_key_client().list_incoming_numbers().await,
    );
    assert!(!numbers.is_empty());
    assert!(numbers.iter().all(|n| n.phone_number.starts_with('+')), "{numbers:?}");
}

#[tokio::test]
async fn fetch_incoming_number() {
    let contract = Contract::start().await;
    let sid = PhoneNumberSid::parse(NUMBER).unwrap();
    let number = contract.accepted(
        "fetch_incoming_number",
        contract.api_key_client().fetch_incoming_number(&sid).await,
    );
    assert!(number.sid.as_str().starts_with("PN"));
}

#[tokio::test]
async fn update_incoming_number_to_switchboard() {
    let contract = Contract::start().await;
    let sid = PhoneNumberSid::parse(NUMBER).unwrap();
    let number = contract.accepted(
        "update_incoming_number (Switchboard's webhooks)",
        contract
            .api_key_client()
            .update_incoming_number(&sid, &number_hooks(), false)
            .await,
    );
    assert!(number.sid.as_str().starts_with("PN"));
}

/// Twilio empties a field given as an empty value; its OpenAPI description has
/// no way to say so, and flags the empty value. Only those complaints, on only
/// the fields named, are the spec's gap rather than our mistake.
fn is_empty_value_limitation(violation: &Violation, fields: &[&str]) -> bool {
    violation.location.len() == 2
        && violation.location[0] == "body"
        && fields.contains(&violation.location[1].as_str())
        && matches!(violation.code.as_str(), "format" | "minLength" | "pattern")
}

/// Sends one request expected to draw only empty-value complaints on `fields`.
fn only_empty_value_complaints(contract: &Contract, what: &str, fields: &[&str]) {
    let exchanges = contract.exchanges();
    assert_eq!(exchanges.len(), 1, "{what}: {}", list(&exchanges));
    let violations = &exchanges[0].violations;
    assert!(
        !violations.is_empty() && violations.iter().all(|v| is_empty_value_limitation(v, fields)),
        "{what}: {}",
        list(&exchanges)
    );
}

#[tokio::test]
async fn update_incoming_number_cleared() {
    let contract = Contract::start().await;
    let sid = PhoneNumberSid::parse(NUMBER).unwrap();
    let _ = contract
        .api_key_client()
        .update_incoming_number(&sid, &NumberWebhooks::cleared(), false)
        .await;
    only_empty_value_complaints(
        &contract,
        "update_incoming_number (cleared)",
        &["VoiceUrl", "StatusCallback", "SmsUrl"],
    );
}

#[tokio::test]
async fn update_incoming_number_clearing_its_application() {
    let contract = Contract::start().await;
    let sid = PhoneNumberSid::parse(NUMBER).unwrap();
    let _ = contract
        .api_key_client()
        .update_incoming_number(&sid, &number_hooks(), true)
        .await;
    only_empty_value_complaints(
        &contract,
        "update_incoming_number (clearing VoiceApplicationSid)",
        &["VoiceApplicationSid"],
    );
}

// ---------------------------------------------------------------------------
// The call flow's requests

const CALL: &str = "CA4c6e8a0b2d4f6a8c0e2b4d6f8a0c2e4b";
const CONFERENCE: &str = "CF6e8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e";

/// Checks that the one request made drew no complaint but Prism's known
/// repeated-key one (a real `StatusCallbackEvent` list, DESIGN.md).
fn only_repeated_key_complaint(contract: &Contract, what: &str) {
    let exchanges = contract.exchanges();
    assert_eq!(exchanges.len(), 1, "{what}: {}", list(&exchanges));
    let violations = &exchanges[0].violations;
    assert!(
        violations
            .iter()
            .all(|v| is_repeated_key_limitation(v, "StatusCallbackEvent")),
        "{what}: {}",
        list(&exchanges)
    );
    assert!(
        exchanges[0].request_body.matches("StatusCallbackEvent=").count() == 4,
        "{what}: one parameter per event: {}",
        exchanges[0].request_body
    );
}

#[tokio::test]
async fn create_call() {
    let contract = Contract::start().await;
    let _ = contract
        .api_key_client()
        .create_call(&switchboard::twilio::rest::NewCall {
            to: "+14155550199",
            from: "+14155550100",
            url: VOICE_URL,
            status_callback: STATUS_URL,
            timeout_seconds: 30,
        })
        .await;
    only_repeated_key_complaint(&contract, "create_call");
}

/// An agent's browser rung for an inbound call: a `client:` address with the
/// call's custom parameters, the ring time as `Timeout`.
#[tokio::test]
async fn create_call_to_an_agents_browser() {
    let contract = Contract::start().await;
    let agent = switchboard::ids::AgentId::parse("alice").unwrap();
    let to = switchboard::twilio::access_token::client_address(
        &agent,
        &[
            ("callId", "01JDQ4ZK8M3V6X2T9B7C5N1P0R"),
            ("from", "+14155550177"),
            ("kind", "inbound"),
        ],
    );
    let _ = contract
        .api_key_client()
        .create_call(&switchboard::twilio::rest::NewCall {
            to: &to,
            from: "+14155550177",
            url: "https://sb.example.com/twilio/voice/answer?callId=01JDQ4ZK8M3V6X2T9B7C5N1P0R&label=agent-1",
            status_callback: STATUS_URL,
            timeout_seconds: 20,
        })
        .await;
    only_repeated_key_complaint(&contract, "create_call (client)");
}

/// An inbound caller nobody answered, sent out of the waiting room into voicemail.
#[tokio::test]
async fn redirect_call_to_a_url() {
    let contract = Contract::start().await;
    let call = contract.accepted(
        "redirect_call_to",
        contract
            .api_key_client()
            .redirect_call_to(
                &CallSid::parse(CALL).unwrap(),
                "https://sb.example.com/twilio/voice/voicemail?callId=01JDQ4ZK8M3V6X2T9B7C5N1P0R",
            )
            .await,
    );
    assert!(call.sid.as_str().starts_with("CA"));
}

#[tokio::test]
async fn send_message() {
    let contract = Contract::start().await;
    let sent = contract.accepted(
        "send_message",
        contract
            .api_key_client()
            .send_message(&switchboard::twilio::rest::NewMessage {
                to: "+14155550199",
                from: "+14155550100",
                body: "Your order is ready & waiting \u{1f44d}",
                status_callback: "https://sb.example.com/twilio/sms/status",
            })
            .await,
    );
    assert!(sent.sid.as_str().starts_with("SM"), "{sent:?}");
    assert_eq!(sent.status.as_ref().map(|s| s.as_str()), Some("queued"));
    let exchanges = contract.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].method, Method::POST);
    assert_eq!(exchanges[0].target, account_path("/Messages.json"));
}

#[tokio::test]
async fn redirect_call() {
    let contract = Contract::start().await;
    let twiml = switchboard::twilio::twiml::Response::say_and_hang_up("There was no answer. Goodbye.").to_xml();
    let call = contract.accepted(
        "redirect_call",
        contract
            .api_key_client()
            .redirect_call(&CallSid::parse(CALL).unwrap(), &twiml)
            .await,
    );
    assert!(call.sid.as_str().starts_with("CA"));
}

#[tokio::test]
async fn end_call() {
    for how in [EndCall::Cancel, EndCall::HangUp] {
        let contract = Contract::start().await;
        contract.accepted(
            "end_call",
            contract
                .api_key_client()
                .end_call(&CallSid::parse(CALL).unwrap(), how)
                .await,
        );
    }
}

#[tokio::test]
async fn end_conference() {
    let contract = Contract::start().await;
    contract.accepted(
        "end_conference",
        contract
            .api_key_client()
            .end_conference(&ConferenceSid::parse(CONFERENCE).unwrap())
            .await,
    );
}

#[tokio::test]
async fn hold_participant() {
    for hold in [true, false] {
        let contract = Contract::start().await;
        contract.accepted(
            "hold_participant",
            contract
                .api_key_client()
                .hold_participant(
                    &ConferenceSid::parse(CONFERENCE).unwrap(),
                    &CallSid::parse(CALL).unwrap(),
                    hold,
                    switchboard::calls::control::HOLD_MUSIC_URL,
                )
                .await,
        );
    }
}

/// Every change a transfer, a supervisor or a mute makes to a participant.
#[tokio::test]
async fn update_participant() {
    let coached = CallSid::parse(CALL).unwrap();
    let changes = [
        // A transferring agent who may leave without ending the call.
        ParticipantChange {
            end_conference_on_exit: Some(false),
            ..ParticipantChange::default()
        },
        // Mute, unmute.
        ParticipantChange {
            muted: Some(true),
            ..ParticipantChange::default()
        },
        // A supervisor listening, whispering, barging.
        ParticipantChange {
            muted: Some(true),
            coaching: Some(false),
            ..ParticipantChange::default()
        },
        ParticipantChange {
            muted: Some(false),
            coaching: Some(true),
            call_sid_to_coach: Some(&coached),
            ..ParticipantChange::default()
        },
        ParticipantChange {
            hold: Some(true),
            hold_url: Some(switchboard::calls::control::HOLD_MUSIC_URL),
            end_conference_on_exit: Some(true),
            ..ParticipantChange::default()
        },
    ];
    for change in changes {
        let contract = Contract::start().await;
        contract.accepted(
            "update_participant",
            contract
                .api_key_client()
                .update_participant(
                    &ConferenceSid::parse(CONFERENCE).unwrap(),
                    &CallSid::parse(CALL).unwrap(),
                    &change,
                )
                .await,
        );
    }
}

#[tokio::test]
async fn remove_participant() {
    let contract = Contract::start().await;
    contract.accepted(
        "remove_participant",
        contract
            .api_key_client()
            .remove_participant(
                &ConferenceSid::parse(CONFERENCE).unwrap(),
                &CallSid::parse(CALL).unwrap(),
            )
            .await,
    );
}

#[tokio::test]
async fn pause_and_resume_a_conference_recording() {
    for paused in [true, false] {
        let contract = Contract::start().await;
        contract.accepted(
            "pause_conference_recording",
            contract
                .api_key_client()
                .pause_conference_recording(&ConferenceSid::parse(CONFERENCE).unwrap(), paused)
                .await,
        );
    }
}

// ---------------------------------------------------------------------------
// The onboarding cycle through the handlers

/// `PUT`, `GET` and `DELETE /workspace/twilio` against the spec: whatever the
/// outcome with Prism's static examples, every request the handlers send is
/// one Twilio's spec accepts (clearing a number's URLs draws only the
/// empty-value complaint the spec cannot avoid).
#[tokio::test]
async fn the_configure_check_clear_cycle_sends_only_requests_the_spec_accepts() {
    use http::Method;
    use switchboard_testkit::harness::*;

    let contract = Contract::answering_next_pages_with("readEmpty").await;
    let t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", contract.base().as_str())]).await;
    let admin = agent_jwt("acme", "root", "admin");
    let configure = with_json(
        with_bearer(request(Method::PUT, "/workspace/twilio"), &admin),
        &serde_json::json!({"accountSid": ACCOUNT, "authToken": AUTH_TOKEN}),
    );
    let configured = t.call(configure).await;
    // Prism's examples are not what was set, so read-backs may disagree (502);
    // never a 5xx of ours, never a refused request.
    assert!(matches!(configured.status(), 200 | 502), "{}", configured.text());
    assert!(
        configured.json()["resources"].as_array().is_some_and(|r| !r.is_empty()),
        "{}",
        configured.text()
    );
    let checked = t
        .call(with_bearer(request(Method::GET, "/workspace/twilio"), &admin))
        .await;
    assert_eq!(checked.status(), 200, "{}", checked.text());
    let cleared = t
        .call(with_bearer(
            request(Method::DELETE, "/workspace/twilio?force=true"),
            &admin,
        ))
        .await;
    assert_eq!(cleared.status(), 200, "{}", cleared.text());

    let exchanges = contract.exchanges();
    assert!(exchanges.len() > 5, "{}", list(&exchanges));
    let refused: Vec<&Exchange> = exchanges
        .iter()
        .filter(|e| {
            !e.violations.iter().all(|v| {
                let clearing = e.method == Method::POST && e.target.contains("/IncomingPhoneNumbers/");
                clearing
                    && is_empty_value_limitation(v, &["VoiceUrl", "StatusCallback", "SmsUrl", "VoiceApplicationSid"])
            })
        })
        .collect();
    assert!(refused.is_empty(), "requests the spec refuses:\n{}", list(&exchanges));
}
