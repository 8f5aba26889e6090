//! The sandbox's HTTP routes, which the local server mounts in sandbox mode:
//! simulated people (`/sandbox/calls`, `/sandbox/messages`), the simulated
//! browser device (`/sandbox/device/…`, signed in with the agent's bearer
//! token), fault switches, timers, the accounts and the webhook log.
//!
//! Every answer is JSON; errors are `{"error": {"code", "message"}}`. The
//! shapes are documented in the README ("Try it without a Twilio account").

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{DeviceAction, DeviceError, DeviceOwner, PeopleError, Sim, Switches, Timing};

/// Why the device API refuses a request: a status, a code, a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Whose device a request drives: reads the `Authorization` header (the
/// agent's sign-in token) and names the account and client identity.
pub type Identify =
    Arc<dyn Fn(Option<String>) -> Pin<Box<dyn Future<Output = Result<DeviceOwner, Refusal>> + Send>> + Send + Sync>;

#[derive(Clone)]
struct Sandbox {
    sim: Arc<Sim>,
    identify: Identify,
}

/// The `/sandbox` routes over `sim`.
pub fn routes(sim: Arc<Sim>, identify: Identify) -> axum::Router {
    axum::Router::new()
        .route("/sandbox/accounts", get(accounts))
        .route("/sandbox/calls", post(place_call))
        .route("/sandbox/messages", post(send_text))
        .route("/sandbox/faults", get(faults).post(set_faults))
        .route("/sandbox/timers", get(timers).post(set_timers))
        .route("/sandbox/webhooks", get(webhooks))
        .route("/sandbox/device/connect", post(connect))
        .route("/sandbox/device/incoming", get(incoming))
        .route("/sandbox/device/calls/{call_sid}", get(device_call))
        .route("/sandbox/device/{call_sid}/{action}", post(device_act))
        .with_state(Sandbox { sim, identify })
}

fn reply(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(axum::body::Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    reply(
        status,
        &json!({"error": {"code": code, "message": message.to_string()}}),
    )
}

/// The JSON body, or a 400 saying why not.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal {
        status: 400,
        code: "bad_request".into(),
        message: format!("the body: {e}"),
    })
}

/// So that `?` answers a refusal as its JSON error.
impl From<Refusal> for Response {
    fn from(refusal: Refusal) -> Self {
        let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNAUTHORIZED);
        error(status, &refusal.code, refusal.message)
    }
}

fn people_error(e: PeopleError) -> Response {
    match e {
        PeopleError::UnknownNumber(_) => error(StatusCode::NOT_FOUND, "unknown_number", e),
        PeopleError::InvalidNumber(_) | PeopleError::InvalidBody => error(StatusCode::BAD_REQUEST, "bad_request", e),
    }
}

fn device_error(e: DeviceError) -> Response {
    match &e {
        DeviceError::Token(token) => reply(
            StatusCode::UNAUTHORIZED,
            &json!({"error": {"code": "invalid_access_token", "twilioCode": token.code(), "message": e.to_string()}}),
        ),
        DeviceError::NotYours => error(StatusCode::FORBIDDEN, "not_your_token", e),
        DeviceError::NotFound => error(StatusCode::NOT_FOUND, "not_found", e),
        DeviceError::NotRinging(_) | DeviceError::Over(_) => error(StatusCode::CONFLICT, "not_ringing", e),
        DeviceError::NoVoiceUrl => error(StatusCode::CONFLICT, "no_voice_url", e),
        DeviceError::BadDigits => error(StatusCode::BAD_REQUEST, "bad_request", e),
    }
}

/// The device's requests, as a browser's to Twilio's edge: none get through
/// while Twilio is unreachable (the `reachable` fault), so the dialer shows it.
async fn owner(sandbox: &Sandbox, headers: &HeaderMap) -> Result<DeviceOwner, Refusal> {
    if sandbox.sim.is_unreachable() {
        return Err(Refusal {
            status: 503,
            code: "twilio_unreachable".into(),
            message: "Twilio cannot be reached: the sandbox's reachable fault switch is off".into(),
        });
    }
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (sandbox.identify)(authorization).await
}

async fn accounts(State(sandbox): State<Sandbox>) -> Response {
    let accounts: Vec<Value> = sandbox
        .sim
        .accounts()
        .into_iter()
        .map(|a| json!({"accountSid": a.account_sid, "authToken": a.auth_token, "numbers": a.numbers}))
        .collect();
    reply(StatusCode::OK, &json!({"accounts": accounts}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlaceCall {
    from: String,
    to: String,
    hang_up_after_seconds: Option<u64>,
}

async fn place_call(State(sandbox): State<Sandbox>, body: Bytes) -> Result<Response, Response> {
    let body: PlaceCall = parse(&body)?;
    let hang_up_after = body.hang_up_after_seconds.map(Duration::from_secs);
    let sid = sandbox
        .sim
        .place_call(&body.from, &body.to, hang_up_after)
        .map_err(people_error)?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({"callSid": sid, "from": body.from, "to": body.to, "status": "ringing"}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendText {
    from: String,
    to: String,
    body: String,
}

async fn send_text(State(sandbox): State<Sandbox>, body: Bytes) -> Result<Response, Response> {
    let body: SendText = parse(&body)?;
    let received = sandbox
        .sim
        .send_text(&body.from, &body.to, &body.body)
        .await
        .map_err(people_error)?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({
            "messageSid": received.message_sid,
            "webhookStatus": received.webhook_status,
            "reply": received.reply.map(|r| json!({"messageSid": r.sid, "body": r.body})),
        }),
    ))
}

fn faults_json(sim: &Sim) -> Value {
    let switches = sim.switches();
    json!({
        "credentials": if switches.credentials_refused { "refused" } else { "ok" },
        "reachable": !sim.is_unreachable(),
        "failCalls": switches.fail_calls,
        "badSignatures": switches.bad_signatures,
    })
}

async fn faults(State(sandbox): State<Sandbox>) -> Response {
    reply(StatusCode::OK, &faults_json(&sandbox.sim))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Faults {
    credentials: Option<String>,
    reachable: Option<bool>,
    fail_calls: Option<bool>,
    bad_signatures: Option<bool>,
}

async fn set_faults(State(sandbox): State<Sandbox>, body: Bytes) -> Result<Response, Response> {
    let body: Faults = parse(&body)?;
    let mut switches: Switches = sandbox.sim.switches();
    match body.credentials.as_deref() {
        None => {}
        Some("refused") => switches.credentials_refused = true,
        Some("ok") => switches.credentials_refused = false,
        Some(other) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("credentials is \"refused\" or \"ok\", not {other:?}"),
            ));
        }
    }
    if let Some(fail) = body.fail_calls {
        switches.fail_calls = fail;
    }
    if let Some(bad) = body.bad_signatures {
        switches.bad_signatures = bad;
    }
    sandbox.sim.set_switches(switches);
    if let Some(reachable) = body.reachable {
        sandbox.sim.set_unreachable(!reachable);
    }
    Ok(reply(StatusCode::OK, &faults_json(&sandbox.sim)))
}

fn timers_json(timing: &Timing) -> Value {
    json!({
        "scale": timing.scale,
        "ringSeconds": timing.ring.as_secs_f64(),
        "voicemailSeconds": timing.speech.as_secs_f64(),
    })
}

async fn timers(State(sandbox): State<Sandbox>) -> Response {
    reply(StatusCode::OK, &timers_json(&sandbox.sim.timing()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Timers {
    scale: Option<f64>,
    ring_seconds: Option<f64>,
    voicemail_seconds: Option<f64>,
}

async fn set_timers(State(sandbox): State<Sandbox>, body: Bytes) -> Result<Response, Response> {
    let body: Timers = parse(&body)?;
    let seconds =
        |value: f64| (value.is_finite() && (0.0..=3600.0).contains(&value)).then(|| Duration::from_secs_f64(value));
    let mut timing = sandbox.sim.timing();
    if let Some(scale) = body.scale {
        if !(scale.is_finite() && (0.001..=10.0).contains(&scale)) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "scale is from 0.001 to 10",
            ));
        }
        timing.scale = scale;
    }
    for (value, field, name) in [
        (body.ring_seconds, &mut timing.ring, "ringSeconds"),
        (body.voicemail_seconds, &mut timing.speech, "voicemailSeconds"),
    ] {
        if let Some(value) = value {
            match seconds(value) {
                Some(duration) => *field = duration,
                None => {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("{name} is from 0 to 3600"),
                    ));
                }
            }
        }
    }
    sandbox.sim.set_timing(timing);
    Ok(reply(StatusCode::OK, &timers_json(&timing)))
}

async fn webhooks(State(sandbox): State<Sandbox>, Query(query): Query<BTreeMap<String, String>>) -> Response {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .min(500);
    let all = sandbox.sim.webhooks();
    let sent: Vec<Value> = all
        .iter()
        .skip(all.len().saturating_sub(limit))
        .map(|w| {
            let params: BTreeMap<&str, &str> = w.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            json!({"method": w.method, "url": w.url, "params": params, "status": w.status, "answer": w.answer})
        })
        .collect();
    reply(StatusCode::OK, &json!({"webhooks": sent}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Connect {
    token: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

async fn connect(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Result<Response, Response> {
    let owner = owner(&sandbox, &headers).await?;
    let body: Connect = parse(&body)?;
    let params: Vec<(String, String)> = body.params.into_iter().collect();
    let call = sandbox
        .sim
        .device_connect(Some(&owner), &body.token, &params)
        .map_err(device_error)?;
    Ok(reply(StatusCode::CREATED, &json!(call)))
}

async fn incoming(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Result<Response, Response> {
    let owner = owner(&sandbox, &headers).await?;
    let calls = sandbox.sim.device_incoming(&owner);
    Ok(reply(
        StatusCode::OK,
        &json!({"identity": owner.identity, "calls": calls}),
    ))
}

async fn device_call(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Path(call_sid): Path<String>,
) -> Result<Response, Response> {
    let owner = owner(&sandbox, &headers).await?;
    let call = sandbox.sim.device_call(&owner, &call_sid).map_err(device_error)?;
    Ok(reply(StatusCode::OK, &json!(call)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Digits {
    digits: String,
}

async fn device_act(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Path((call_sid, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Response> {
    let owner = owner(&sandbox, &headers).await?;
    let action = match action.as_str() {
        "accept" => DeviceAction::Accept,
        "reject" => DeviceAction::Reject,
        "hangup" => DeviceAction::HangUp,
        "digits" => DeviceAction::Digits(parse::<Digits>(&body)?.digits),
        other => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no device action {:?} (accept, reject, hangup, digits)",
                    other.chars().take(32).collect::<String>()
                ),
            ));
        }
    };
    let call = sandbox
        .sim
        .device_act(&owner, &call_sid, action)
        .await
        .map_err(device_error)?;
    Ok(reply(StatusCode::OK, &json!(call)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    /// The routes on a loopback port, every device request signed in as one agent.
    async fn serve(sim: Arc<Sim>) -> String {
        let identify: Identify = Arc::new(|_| {
            Box::pin(async {
                Ok(DeviceOwner {
                    account_sid: "AC00000000000000000000000000000001".into(),
                    identity: "agent_alice".into(),
                })
            })
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, routes(sim, identify)).await });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn the_device_cannot_reach_an_unreachable_twilio() {
        let sim = Sim::start(
            "AC00000000000000000000000000000001",
            "00000000000000000000000000000001",
            Options::live(),
        )
        .await
        .unwrap();
        let sim = Arc::new(sim);
        let base = serve(sim.clone()).await;
        let http = reqwest::Client::new();
        let incoming = || http.get(format!("{base}/sandbox/device/incoming")).send();

        let reachable = incoming().await.unwrap();
        assert_eq!(reachable.status(), 200);
        let body: Value = reachable.json().await.unwrap();
        assert_eq!(body, json!({"identity": "agent_alice", "calls": []}));

        sim.set_unreachable(true);
        for response in [
            incoming().await.unwrap(),
            http.get(format!("{base}/sandbox/device/calls/CA1"))
                .send()
                .await
                .unwrap(),
            http.post(format!("{base}/sandbox/device/CA1/accept"))
                .send()
                .await
                .unwrap(),
            http.post(format!("{base}/sandbox/device/connect"))
                .body(r#"{"token": "x"}"#)
                .send()
                .await
                .unwrap(),
        ] {
            assert_eq!(response.status(), 503);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "twilio_unreachable");
        }
        // The people and the switches are not Twilio's edge: they still answer.
        let faults = http.get(format!("{base}/sandbox/faults")).send().await.unwrap();
        assert_eq!(faults.status(), 200);

        sim.set_unreachable(false);
        assert_eq!(incoming().await.unwrap().status(), 200);
    }
}
