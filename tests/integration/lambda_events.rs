//! Every sample event in `events/` goes where a deployed function would take
//! it: `lambda_http`'s own event parsing, `switchboard_lambda::from_lambda`,
//! the routes of that one function, `into_lambda`, and `lambda_http`'s own
//! response encoding. Each file has an expected response here; every function
//! of the route table has at least one event (events/README.md).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::{Context, LambdaEvent, RequestExt, Service};
use serde_json::Value;
use switchboard::ids::{AgentId, CallId, WorkspaceId};
use switchboard::model::calls::{CallSession, Direction};
use switchboard::phone::E164;
use switchboard::routes::{self, ROUTES, Route, Router};
use switchboard::time::Timestamp;
use switchboard::twilio::signature;
use switchboard::workspace::PhoneNumber;
use switchboard_lambda::{from_lambda, into_lambda};
use switchboard_testkit::harness::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The Auth Token of workspace `acme` that signs the Twilio events (events/README.md).
const EVENTS_TWILIO_AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

struct Event {
    /// `<function>/<case>.json`, relative to events/.
    name: String,
    function: String,
    json: String,
    raw: Value,
}

fn events() -> Vec<Event> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut events = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("events/") {
        let path = entry.expect("events/ entry").path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !path.is_dir() {
            assert!(
                file == "README.md",
                "events/{file}: events live in events/<function>/, one folder per function"
            );
            continue;
        }
        if is_worker(&file) || is_socket_function(&file) {
            // A worker's events are SQS messages or stream records (see
            // worker_events_are_what_their_source_delivers); a socket route's
            // are WebSocket events (tests/integration/live_aws.rs runs them).
            continue;
        }
        for entry in std::fs::read_dir(&path).expect("events/<function>/") {
            let path = entry.expect("event").path();
            let case = path.file_name().unwrap().to_string_lossy().into_owned();
            let name = format!("{file}/{case}");
            assert!(case.ends_with(".json"), "events/{name}: only .json events here");
            let json = std::fs::read_to_string(&path).unwrap();
            let raw = serde_json::from_str(&json).unwrap_or_else(|e| panic!("events/{name} is not JSON: {e}"));
            events.push(Event {
                name,
                function: file.clone(),
                json,
                raw,
            });
        }
    }
    events.sort_by(|a, b| a.name.cmp(&b.name));
    events
}

fn is_worker(function: &str) -> bool {
    routes::WORKERS.iter().any(|(name, _)| *name == function)
}

fn is_socket_function(function: &str) -> bool {
    routes::SOCKET_ROUTES.iter().any(|r| r.function == function)
}

/// The API Gateway route key of a route: `POST /token`, `GET /calls/{callId}`.
fn route_key(route: &Route) -> String {
    let path: Vec<String> = route
        .path
        .split('/')
        .map(|segment| match segment.strip_prefix("{*") {
            Some(rest) => format!("{{{}+}}", rest.trim_end_matches('}')),
            None => segment.to_owned(),
        })
        .collect();
    format!("{} {}", route.method, path.join("/"))
}

fn route_of(event: &Event) -> &'static Route {
    let key = event.raw["routeKey"].as_str().unwrap_or_default();
    ROUTES
        .iter()
        .find(|r| r.function == event.function && route_key(r) == key)
        .unwrap_or_else(|| {
            panic!(
                "events/{}: routeKey {key:?} is no route of {}",
                event.name, event.function
            )
        })
}

// ---------------------------------------------------------------------------
// What each event must get

struct Expected {
    /// What acme has before the event, beyond its connected Twilio account.
    setup: Setup,
    status: u16,
    check: fn(&Reply, &Seen),
}

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    /// Just the Twilio account (onboarding done, no numbers yet).
    Connected,
    /// Acme's number `ACME_NUMBER`, which rings alice and she may call from.
    Number,
    /// The number, and alice's outbound call `CALL_ID` to `CUSTOMER`, just created.
    OutboundCall,
}

/// Acme's phone number in the events.
const ACME_NUMBER: &str = "+14155550100";
/// The customer alice calls.
const CUSTOMER: &str = "+14155550123";
/// The outbound call the Twilio events of an outbound call name (`?callId=`).
const CALL_ID: &str = "01JDQ4ZK8M3V6X2T9B7C5N1P0R";

/// What happened around a request: the calls Switchboard made to Twilio
/// (mocked: every DELETE answers 204, anything else 404), and the state of
/// the call `CALL_ID` afterwards.
struct Seen {
    twilio: Vec<(String, String)>,
    call_state: Option<String>,
    /// The call `CALL_ID` as stored, if it exists.
    call: Option<Value>,
}

async fn set_up(t: &TestApp, setup: Setup) {
    let ws = WorkspaceId::parse("acme").unwrap();
    if setup == Setup::Connected {
        return;
    }
    let number = PhoneNumber {
        number: E164::parse(ACME_NUMBER).unwrap(),
        sid: Some(sid("PN", "acme-main-line")),
        agents: vec![AgentId::parse("alice").unwrap()],
        label: Some("Main line".into()),
    };
    t.app.store.replace_numbers(&ws, &[number]).await.unwrap();
    if setup == Setup::OutboundCall {
        // Created when the events' Twilio timestamps say: 26 Nov 2024, 10:30:55 UTC.
        let created = Timestamp::parse_rfc2822("Tue, 26 Nov 2024 10:30:55 +0000").unwrap();
        let session = CallSession::new(
            ws.clone(),
            Direction::Outbound,
            Some(AgentId::parse("alice").unwrap()),
            ACME_NUMBER.into(),
            CUSTOMER.into(),
            created,
        )
        .with_id(CallId::parse(CALL_ID).unwrap());
        t.app.store.create_call(&session).await.unwrap();
    }
}

async fn stored_call(t: &TestApp) -> Option<Value> {
    let ws = WorkspaceId::parse("acme").unwrap();
    let call = t
        .app
        .store
        .get_call(&ws, &CallId::parse(CALL_ID).unwrap())
        .await
        .unwrap()?;
    Some(serde_json::to_value(call).expect("a call serialises"))
}

fn twiml(reply: &Reply) -> String {
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(content_type.contains("xml"), "TwiML, not {content_type:?}");
    reply.text()
}

fn expected(event: &str) -> Expected {
    match event {
        "token/post-token.json" => Expected {
            setup: Setup::Connected,
            status: 200,
            check: |reply, _| voice_token_for_alice(reply),
        },
        "token/post-token-signed-out.json" => Expected {
            setup: Setup::Connected,
            status: 401,
            check: |reply, _| {
                assert_eq!(reply.error_code(), "unauthorized");
                assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
            },
        },
        "configure/get-numbers.json" => Expected {
            setup: Setup::Connected,
            status: 200,
            check: |reply, seen| {
                // Onboarding has not listed any number for acme yet.
                assert_eq!(reply.json(), serde_json::json!({"numbers": []}));
                assert!(seen.twilio.is_empty(), "reading numbers never calls Twilio");
            },
        },
        "clear/delete-twilio.json" => Expected {
            setup: Setup::Connected,
            status: 200,
            check: |reply, seen| {
                let body = reply.json();
                assert_eq!(body["cleared"], true, "{body}");
                let results: Vec<(&str, &str)> = body["resources"]
                    .as_array()
                    .expect("resources")
                    .iter()
                    .map(|r| (r["kind"].as_str().unwrap_or(""), r["result"].as_str().unwrap_or("")))
                    .collect();
                assert_eq!(results, [("twimlApp", "deleted"), ("apiKey", "deleted")], "{body}");
                let account = account("acme");
                let mut calls = seen.twilio.clone();
                calls.sort();
                let expected = [
                    format!("/2010-04-01/Accounts/{account}/Applications/{}.json", app_sid("acme")),
                    format!("/2010-04-01/Accounts/{account}/Keys/{}.json", api_key("acme")),
                ]
                .map(|path| ("DELETE".to_owned(), path));
                assert_eq!(calls, expected, "acme's TwiML App and API key are deleted at Twilio");
            },
        },
        "outbound-call/post-calls.json" => Expected {
            setup: Setup::Number,
            status: 201,
            check: |reply, _| {
                let body = reply.json();
                assert_eq!(body["from"], ACME_NUMBER, "alice's number is her caller ID: {body}");
                assert_eq!(body["to"], CUSTOMER, "{body}");
                assert!(body["callId"].is_string(), "{body}");
                assert_eq!(body["connectParams"]["callId"], body["callId"], "{body}");
            },
        },
        "web/get-dialer.json" => Expected {
            setup: Setup::Connected,
            status: 200,
            check: |reply, _| {
                assert!(reply.text().contains("<title>"), "the dialer's page");
            },
        },
        "calls/get-calls.json" => Expected {
            setup: Setup::Connected,
            status: 200,
            check: |reply, _| assert_eq!(reply.json()["calls"], serde_json::json!([])),
        },
        "agent-twiml/voice-sdk-connect.json" => Expected {
            setup: Setup::Number,
            status: 200,
            check: |reply, seen| {
                // A dialer that sends only `To`: a session, and the agent into its conference.
                let xml = twiml(reply);
                assert!(xml.contains("<Conference"), "{xml}");
                assert!(
                    xml.contains("https://voice.example.test/twilio/status?callId="),
                    "{xml}"
                );
                assert!(
                    seen.twilio.is_empty(),
                    "the customer is dialed only once the agent has joined"
                );
            },
        },
        "customer-twiml/customer-answered.json" => Expected {
            setup: Setup::OutboundCall,
            status: 200,
            check: |reply, _| {
                let xml = twiml(reply);
                assert!(xml.contains("<Conference"), "{xml}");
                assert!(!xml.contains("<Hangup"), "{xml}");
            },
        },
        "inbound-twiml/incoming-call.json" => Expected {
            setup: Setup::Number,
            status: 200,
            check: |reply, seen| {
                let xml = twiml(reply);
                assert!(
                    xml.contains("<Conference") && xml.contains(r#"startConferenceOnEnter="false""#),
                    "the caller waits in the call's conference: {xml}"
                );
                assert!(
                    seen.twilio
                        .iter()
                        .any(|(method, path)| method == "POST" && path.ends_with("/Calls.json")),
                    "alice's browser is rung: {:?}",
                    seen.twilio
                );
            },
        },
        "status-callback/customer-ringing.json" => Expected {
            setup: Setup::OutboundCall,
            status: 200,
            check: |_, seen| assert_eq!(seen.call_state.as_deref(), Some("ringing")),
        },
        "recording-callback/recording-completed.json" => Expected {
            setup: Setup::OutboundCall,
            status: 200,
            check: |reply, seen| {
                twiml(reply);
                // Kept on the call, its copy queued (the local queue here, SQS when deployed).
                let call = seen.call.as_ref().expect("the call");
                assert!(
                    call.to_string().contains("RE3c9a7f1e5d2b8c4a6f0e1d2c3b4a5968"),
                    "{call}"
                );
            },
        },
        "messages/get-messages.json" => Expected {
            setup: Setup::Connected,
            status: 200,
            check: |reply, _| assert_eq!(reply.json()["messages"], serde_json::json!([])),
        },
        "sms/incoming-text.json" => Expected {
            setup: Setup::Number,
            status: 200,
            check: |reply, seen| {
                twiml(reply);
                assert!(seen.twilio.is_empty(), "no auto-reply is configured, nothing is sent");
            },
        },
        other => panic!("events/{other} has no expected response: add it to expected() in tests/lambda_events.rs"),
    }
}

/// A Voice access token for `alice` of `acme`, signed with acme's API key.
fn voice_token_for_alice(reply: &Reply) {
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["identity"], "agent_alice");
    assert_eq!(body["expiresIn"], 3600);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(
        body["token"].as_str().expect("token"),
        // What the harness seeds as acme's API key secret.
        &DecodingKey::from_secret(b"api-key-secret-of-acme"),
        &validation,
    )
    .expect("the token is signed with acme's API key secret")
    .claims;
    assert_eq!(claims["iss"], api_key("acme").as_str());
    assert_eq!(claims["sub"], account("acme").as_str());
    assert_eq!(claims["grants"]["identity"], "agent_alice");
    assert_eq!(
        claims["grants"]["voice"]["outgoing"]["application_sid"],
        app_sid("acme").as_str()
    );
}

// ---------------------------------------------------------------------------
// The checks

#[test]
fn every_function_has_an_event_and_every_event_a_route_of_its_function() {
    let events = events();
    let with_events: BTreeSet<&str> = events.iter().map(|e| e.function.as_str()).collect();
    let events_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    for function in routes::functions() {
        if is_worker(function) || is_socket_function(function) {
            // Checked by worker_events_are_what_their_source_delivers and
            // tests/integration/live_aws.rs; here: they have one.
            let files = std::fs::read_dir(events_dir.join(function))
                .map(|dir| dir.count())
                .unwrap_or(0);
            assert!(files > 0, "events/{function}/ has no event for function {function}");
            continue;
        }
        assert!(
            with_events.contains(function),
            "events/{function}/ has no event for function {function}"
        );
    }
    for event in &events {
        let raw = &event.raw;
        let name = &event.name;
        assert!(
            routes::functions().contains(&event.function.as_str()),
            "events/{name}: {} is no function",
            event.function
        );
        assert_eq!(raw["version"], "2.0", "events/{name}: HTTP API payload format 2.0");
        let context = &raw["requestContext"];
        assert_eq!(context["stage"], "$default", "events/{name}");
        assert_eq!(context["routeKey"], raw["routeKey"], "events/{name}");
        assert_eq!(context["http"]["path"], raw["rawPath"], "events/{name}");
        assert!(
            context["requestId"].is_string() && context["timeEpoch"].is_number(),
            "events/{name}"
        );
        assert!(
            raw["rawQueryString"].is_string() && raw["isBase64Encoded"].is_boolean(),
            "events/{name}"
        );
        let route = route_of(event);
        assert_eq!(context["http"]["method"], route.method.as_str(), "events/{name}");
    }
}

/// Twilio events carry the signature Twilio would send with the documented
/// test Auth Token, for the harness's public URL.
#[test]
fn twilio_events_are_signed_with_the_documented_auth_token() {
    for event in events().iter().filter(|e| route_of(e).handler.is_twilio()) {
        let raw = &event.raw;
        let name = &event.name;
        let header = |wanted: &str| {
            raw["headers"]
                .as_object()
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(wanted)))
                .and_then(|(_, v)| v.as_str())
        };
        let sent = header("x-twilio-signature").unwrap_or_else(|| panic!("events/{name}: X-Twilio-Signature"));
        let mut url = format!("{PUBLIC_URL}{}", raw["rawPath"].as_str().unwrap());
        let query = raw["rawQueryString"].as_str().unwrap_or_default();
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let body = body_bytes(raw);
        let form = header("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let params: Vec<(String, String)> = if form {
            form_urlencoded::parse(&body).into_owned().collect()
        } else {
            Vec::new()
        };
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let expected = signature::sign(EVENTS_TWILIO_AUTH_TOKEN.as_bytes(), &url, &params);
        assert_eq!(
            sent, expected,
            "events/{name}: signed for {url} with the documented Auth Token"
        );
        if let Some((_, account_sid)) = params.iter().find(|(k, _)| *k == "AccountSid") {
            assert_eq!(*account_sid, account("acme").as_str(), "events/{name}: acme's account");
        }
    }
}

fn body_bytes(raw: &Value) -> Vec<u8> {
    let body = raw["body"].as_str().unwrap_or_default();
    if raw["isBase64Encoded"] == true {
        BASE64.decode(body).expect("a base64 body")
    } else {
        body.as_bytes().to_vec()
    }
}

#[tokio::test]
async fn every_event_gets_its_expected_response_through_lambda_http() {
    let events = events();
    assert!(!events.is_empty());

    for (n, event) in events.iter().enumerate() {
        let name = &event.name;
        let raw = &event.raw;
        let expected = expected(name);

        // A fresh app per event (events may change state), with acme
        // connected to a mocked Twilio.
        let twilio = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&twilio)
            .await;
        // Calls placed (an agent's browser rung) are queued, as Twilio does.
        Mock::given(method("POST"))
            .and(wiremock::matchers::path_regex(r"/Calls\.json$"))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
                "sid": "CA00000000000000000000000000000001", "status": "queued"
            })))
            .mount(&twilio)
            .await;
        let t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())]).await;
        t.seed_workspace("acme", &account("acme"), EVENTS_TWILIO_AUTH_TOKEN)
            .await;
        set_up(&t, expected.setup).await;

        // What the runtime does with the invocation: parse the event, attach
        // the invocation's context.
        let request = lambda_http::request::from_str(&event.json)
            .unwrap_or_else(|e| panic!("events/{name}: lambda_http cannot parse it: {e}"));
        let mut context = Context::default();
        context.request_id = format!("8f6d3c2e-0000-4000-8000-{n:012}");
        let request = request.with_lambda_context(context.clone());

        // The core request is the event, byte for byte where signatures need it.
        let core = from_lambda(request);
        assert_eq!(
            core.method.as_str(),
            raw["requestContext"]["http"]["method"],
            "events/{name}"
        );
        assert_eq!(core.path, raw["rawPath"].as_str().unwrap(), "events/{name}: rawPath");
        let query = raw["rawQueryString"].as_str().unwrap_or_default();
        assert_eq!(
            core.query.as_deref().unwrap_or_default(),
            query,
            "events/{name}: rawQueryString"
        );
        assert_eq!(core.body.as_ref(), body_bytes(raw).as_slice(), "events/{name}: body");
        for (header, value) in raw["headers"].as_object().expect("headers") {
            assert_eq!(
                core.header(header.as_str()),
                value.as_str(),
                "events/{name}: header {header}"
            );
        }
        assert_eq!(
            core.request_id, context.request_id,
            "events/{name}: the Lambda request id reaches the logs"
        );

        // The routes this function serves, as the deployed function serves
        // them (the `web` function hands its embedded files over first).
        if event.function == "web" {
            routes::serve_pages(dialer::FILES);
        }
        let router = Router::for_function(&event.function).expect("a function of the route table");
        let response = router.dispatch(&t.app, core).await;
        let status = response.status();
        let headers = response.headers().clone();
        let reply = Reply(response);
        assert_eq!(reply.status(), expected.status, "events/{name}: {}", reply.text());
        let call = stored_call(&t).await;
        let seen = Seen {
            twilio: twilio
                .received_requests()
                .await
                .unwrap_or_default()
                .iter()
                .map(|r| (r.method.to_string(), r.url.path().to_owned()))
                .collect(),
            call_state: call.as_ref().and_then(|c| c["state"].as_str().map(str::to_owned)),
            call,
        };
        (expected.check)(&reply, &seen);
        let body = reply.bytes().clone();

        // into_lambda keeps status, headers and body; text stays text.
        let lambda_response = into_lambda(reply.0);
        assert_eq!(lambda_response.status(), status, "events/{name}");
        assert_eq!(lambda_response.headers(), &headers, "events/{name}");
        match lambda_response.body() {
            lambda_http::Body::Text(text) => assert_eq!(text.as_bytes(), body.as_ref(), "events/{name}"),
            lambda_http::Body::Binary(bytes) => {
                assert!(
                    std::str::from_utf8(bytes).is_err(),
                    "events/{name}: UTF-8 goes out as text"
                );
                assert_eq!(bytes.as_slice(), body.as_ref(), "events/{name}");
            }
            lambda_http::Body::Empty => assert!(body.is_empty(), "events/{name}"),
            _ => panic!("events/{name}: unexpected body kind"),
        }

        // And what API Gateway receives back, encoded by lambda_http itself.
        let wire = wire_response(&event.json, context, lambda_response).await;
        assert_eq!(wire["statusCode"], status.as_u16(), "events/{name}: {wire}");
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(
            wire["headers"]["content-type"].as_str(),
            content_type,
            "events/{name}: {wire}"
        );
        if std::str::from_utf8(&body).is_ok() && !body.is_empty() {
            assert_eq!(wire["isBase64Encoded"], false, "events/{name}: {wire}");
            assert_eq!(
                wire["body"].as_str().map(str::as_bytes),
                Some(body.as_ref()),
                "events/{name}"
            );
        }
    }
}

/// The JSON the Lambda runtime would return to API Gateway for `response`,
/// through `lambda_http`'s own adapter (the one `lambda_http::run` uses).
async fn wire_response(event: &str, context: Context, response: lambda_http::Response<lambda_http::Body>) -> Value {
    let payload: lambda_http::request::LambdaRequest = serde_json::from_str(event).expect("a Lambda HTTP event");
    let mut response = Some(response);
    let service = lambda_http::service_fn(move |_request: lambda_http::Request| {
        let response = response.take().expect("one response per event");
        async move { Ok::<_, Infallible>(response) }
    });
    let mut adapter = lambda_http::Adapter::from(service);
    let encoded = adapter
        .call(LambdaEvent::new(payload, context))
        .await
        .expect("infallible");
    serde_json::to_value(encoded).expect("the response serialises")
}

/// A worker's sample events are what its source delivers, for `sam local
/// invoke`: SQS messages carrying copy jobs (`recording-copy`), DynamoDB
/// Streams records of session and message items (`events-fanout`). Every
/// worker has one.
#[test]
fn worker_events_are_what_their_source_delivers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    for (worker, _) in routes::WORKERS {
        let folder = dir.join(worker);
        let files: Vec<_> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("events/{worker}/: {e}"))
            .map(|entry| entry.expect("event").path())
            .collect();
        assert!(!files.is_empty(), "events/{worker}/ has no event");
        for path in files {
            let name = path.display();
            let json = std::fs::read_to_string(&path).unwrap();
            match *worker {
                "recording-copy" => {
                    let event: aws_lambda_events::event::sqs::SqsEvent =
                        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"));
                    assert!(!event.records.is_empty(), "{name}");
                    for record in &event.records {
                        let body = record.body.as_deref().expect("a message body");
                        let job: switchboard::jobs::CopyJob =
                            serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: not a copy job: {e}"));
                        assert_eq!(job.workspace.as_str(), "acme", "{name}");
                        assert_eq!(job.call.as_str(), CALL_ID, "{name}");
                    }
                }
                "events-fanout" => {
                    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_str(&json)
                        .unwrap_or_else(|e| panic!("{name} is not a DynamoDB Streams event: {e}"));
                    assert!(!event.records.is_empty(), "{name}");
                    for record in event.records {
                        let change = switchboard_aws::dynamodb::change_from_image(record.change.new_image)
                            .unwrap_or_else(|| panic!("{name}: not a session or message item"))
                            .unwrap_or_else(|e| panic!("{name}: {e}"));
                        assert_eq!(change.workspace().as_str(), "acme", "{name}");
                    }
                }
                other => panic!("a worker with no known event source: {other}"),
            }
        }
    }
}

/// The dialer's built files, as `functions/web` embeds them.
#[allow(dead_code)]
mod dialer {
    use switchboard::routes::PageFile;
    include!("../../web/dist.rs");
}
