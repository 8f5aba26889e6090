//! The API contract (`openapi.json`, served at `GET /openapi.json`) against
//! the code: the committed file is what the route table generates, the
//! model's values as the API renders them fit its schemas (a field added to
//! a call or a message without the contract fails here), real answers of the
//! handlers fit their operation's documented responses, and `GET /health`
//! says up or down. Schemathesis holds the running server to the same
//! document (`scripts/fuzz-api.sh`).

use std::collections::BTreeMap;

use http::Method;
use serde_json::{Value, json};
use switchboard::ids::{AgentId, CallId, CallSid, ConferenceSid, MessageSid, RecordingSid, WorkspaceId};
use switchboard::model::calls::{
    CallSession, CallState, Direction, LegState, MonitorMode, Participant, Role, TimelineEvent, Transfer, TransferMode,
    TransferState, TransferTarget,
};
use switchboard::model::changes::Change;
use switchboard::model::messages::{Message, MessageStatus};
use switchboard::model::recordings::{Recording, RecordingStatus};
use switchboard::phone::E164;
use switchboard::routes;
use switchboard::time::Timestamp;
use switchboard::workspace::PhoneNumber;
use switchboard::{events, views};
use switchboard_aws::dynamodb::DynamoStore;
use switchboard_testkit::harness::{Reply, TestApp, agent_jwt, request, with_bearer, with_json};
use switchboard_testkit::{moto, repo_root, sid};

const COMMITTED: &str = "openapi.json";
/// Set to write the committed file from the code instead of comparing.
const UPDATE: &str = "SWITCHBOARD_UPDATE_OPENAPI";

fn document() -> Value {
    routes::openapi()
}

/// The committed file's exact text for `document`.
fn rendered(document: &Value) -> String {
    serde_json::to_string_pretty(document).unwrap() + "\n"
}

#[test]
fn the_committed_contract_is_what_the_code_generates() {
    let path = repo_root().join(COMMITTED);
    let generated = rendered(&document());
    if std::env::var_os(UPDATE).is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} differs from what the route table generates (shared/src/openapi.rs): \
         run `{UPDATE}=1 cargo test --test integration openapi` and commit the file"
    );
}

/// A validator for `#/components/schemas/{name}` of the document.
fn validator(name: &str) -> jsonschema::Validator {
    schema_validator(json!({ "$ref": format!("#/components/schemas/{name}") }))
}

/// A validator for `schema`, its references resolved in the document.
fn schema_validator(schema: Value) -> jsonschema::Validator {
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"].clone(),
    });
    for (key, value) in schema.as_object().unwrap() {
        root[key] = value.clone();
    }
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e}"))
}

#[track_caller]
fn assert_fits(name: &str, value: &Value) {
    let errors: Vec<String> = validator(name)
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not a {name}: {errors:#?}\n{value:#}");
}

#[track_caller]
fn assert_does_not_fit(name: &str, value: &Value) {
    assert!(!validator(name).is_valid(value), "a {name}, unexpectedly: {value:#}");
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(1_790_000_000 + seconds).unwrap()
}

fn agent(id: &str) -> AgentId {
    AgentId::parse(id).unwrap()
}

fn workspace() -> WorkspaceId {
    WorkspaceId::parse("acme").unwrap()
}

/// A session as new: every optional field unset.
fn new_session() -> CallSession {
    CallSession::new(
        workspace(),
        Direction::Outbound,
        Some(agent("alice")),
        "+14155550100".into(),
        "+14155550123".into(),
        at(0),
    )
}

/// A session with every field set: each kind of participant, a transfer,
/// recordings stored and pending.
fn full_session() -> CallSession {
    let mut session = new_session();
    session.state = CallState::InProgress;
    session.reached = BTreeMap::from([
        (CallState::Created, at(0)),
        (CallState::Dialing, at(1)),
        (CallState::Ringing, at(2)),
        (CallState::InProgress, at(3)),
    ]);
    session.updated_at = at(9);
    session.version = 12;
    session.agent_call_sid = Some(sid::<CallSid>("CA", "agent"));
    session.customer_call_sid = Some(sid::<CallSid>("CA", "customer"));
    session.conference_sid = Some(sid::<ConferenceSid>("CF", "room"));
    session.steps = BTreeMap::from([("dial-customer".to_owned(), at(1))]);
    session.end_reason = Some("the customer hung up".into());
    session.duration_seconds = Some(61);
    session.notes = Some("wants a call back".into());
    session.disposition = Some("callback".into());
    let mut stored = Recording::new(sid::<RecordingSid>("RE", "one"), RecordingStatus::Stored, at(5));
    stored.source = Some("Conference".into());
    stored.channels = Some(2);
    stored.duration_seconds = Some(60);
    stored.object_key = Some("recordings/acme/x/RE.mp3".into());
    stored.size = Some(960_000);
    stored.sha256 = Some("ab".repeat(32));
    stored.content_type = Some("audio/mpeg".into());
    stored.failed_attempts = 1;
    stored.last_error = Some("Twilio error 500".into());
    stored.twilio_deleted = true;
    stored.stored_at = Some(at(6));
    let pending = Recording::new(sid::<RecordingSid>("RE", "two"), RecordingStatus::Pending, at(7));
    for recording in [stored, pending] {
        session.recordings.insert(recording.sid.to_string(), recording);
    }
    let leg = |label: &str, role: Role, state: LegState| Participant {
        label: label.into(),
        role,
        agent: None,
        number: None,
        call_sid: Some(sid::<CallSid>("CA", label)),
        state,
        held: false,
        muted: false,
        reached: BTreeMap::from([(LegState::Ringing, at(1)), (state, at(2))]),
        monitor: None,
    };
    let customer = Participant {
        number: Some("+14155550123".into()),
        held: true,
        muted: true,
        ..leg("customer", Role::Customer, LegState::Joined)
    };
    let alice = Participant {
        agent: Some(agent("alice")),
        ..leg("agent-1", Role::Agent, LegState::Left)
    };
    let bob = Participant {
        agent: Some(agent("bob")),
        ..leg("transfer-1", Role::Transfer, LegState::Joined)
    };
    let carol = Participant {
        agent: Some(agent("carol")),
        monitor: Some(MonitorMode::Whisper),
        call_sid: None,
        ..leg("supervisor-1", Role::Supervisor, LegState::Ringing)
    };
    for participant in [customer, alice, bob, carol] {
        session.participants.insert(participant.label.clone(), participant);
    }
    session.answered_by = Some("agent-1".into());
    session.agent_label = Some("transfer-1".into());
    session.transfer = Some(Transfer {
        label: "transfer-1".into(),
        mode: TransferMode::Warm,
        to: TransferTarget::Agent(agent("bob")),
        state: TransferState::Completed,
        by: agent("alice"),
        from_label: Some("agent-1".into()),
        started_at: at(4),
    });
    session.recorded = true;
    session.recording_paused = true;
    session
}

fn message(status: MessageStatus, sent_by: Option<&str>) -> Message {
    Message {
        sid: sid::<MessageSid>("SM", "text"),
        workspace: workspace(),
        direction: if sent_by.is_some() {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        from: "+14155550100".into(),
        to: "+14155550123".into(),
        body: "See you at 3".into(),
        media_urls: vec!["https://api.twilio.com/media/0".into()],
        status,
        agent: sent_by.map(agent),
        created_at: at(0),
        updated_at: at(1),
        version: 3,
    }
}

#[test]
fn calls_as_the_api_renders_them_fit_the_call_schema() {
    for session in [new_session(), full_session()] {
        let view = views::call(&session);
        assert_fits("Call", &view);
        assert_fits("LiveEvent", &views::event(&Change::Call(Box::new(session.clone()))));

        let mut with_timeline = view.clone();
        with_timeline["timeline"] = serde_json::to_value(vec![TimelineEvent {
            key: "CA1:0".into(),
            at: at(3),
            kind: "participant-join".into(),
            detail: BTreeMap::from([("by".to_owned(), "alice".to_owned())]),
        }])
        .unwrap();
        assert_fits("CallWithTimeline", &with_timeline);
        assert_does_not_fit("CallWithTimeline", &view);
    }
    // A number as a transfer's target, and a transfer under way.
    let mut session = full_session();
    if let Some(transfer) = &mut session.transfer {
        transfer.to = TransferTarget::Number("+14155550199".into());
        transfer.state = TransferState::Ringing;
        transfer.from_label = None;
    }
    assert_fits("Call", &views::call(&session));

    // The schema is closed: a field the contract does not name is drift.
    let mut drifted = views::call(&full_session());
    drifted["somethingNew"] = json!(1);
    assert_does_not_fit("Call", &drifted);
    // What only the store needs never shows.
    let view = views::call(&full_session());
    for hidden in ["version", "steps", "workspace"] {
        assert!(view.get(hidden).is_none(), "{hidden}");
    }
}

#[test]
fn messages_numbers_and_socket_frames_fit_their_schemas() {
    for (status, by) in [
        (MessageStatus::Received, None),
        (MessageStatus::Delivered, Some("alice")),
        (MessageStatus::Other("a-status-twilio-adds-later".into()), Some("alice")),
    ] {
        let message = message(status, by);
        assert_fits("Message", &views::message(&message));
        assert_fits("LiveEvent", &views::event(&Change::Message(Box::new(message))));
    }
    for number in [
        PhoneNumber {
            number: E164::parse("+14155550100").unwrap(),
            sid: Some(sid("PN", "one")),
            agents: vec![agent("alice"), agent("bob")],
            label: Some("Sales".into()),
        },
        PhoneNumber {
            number: E164::parse("+14155550101").unwrap(),
            sid: None,
            agents: vec![],
            label: None,
        },
    ] {
        assert_fits("Number", &serde_json::to_value(&number).unwrap());
    }
    assert_fits("Pong", &serde_json::from_str(events::PONG).unwrap());
    assert_fits("Ping", &json!({"action": "ping"}));
    assert_does_not_fit("LiveEvent", &json!({"type": "pong"}));
}

/// Checks `reply` against what the document says `method path` answers with
/// its status: the status is documented, and a JSON body fits its schema.
#[track_caller]
fn assert_documented(method: &str, path: &str, reply: &Reply) {
    let document = document();
    let operation = &document["paths"][path][method.to_ascii_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not in the contract");
    let status = reply.status().to_string();
    let mut response = &operation["responses"][&status];
    if let Some(target) = response["$ref"].as_str() {
        response = document.pointer(target.trim_start_matches('#')).unwrap();
    }
    assert!(
        response.is_object(),
        "{method} {path}: {status} is not documented: {}",
        reply.text()
    );
    let Some(schema) = response["content"].get("application/json").map(|c| c["schema"].clone()) else {
        return;
    };
    let body = reply.json();
    let errors: Vec<String> = schema_validator(schema)
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:#?}\n{body:#}");
}

#[tokio::test]
async fn real_answers_fit_the_documented_responses() {
    let phone = crate::calls::phone().await;
    let t = &phone.t;
    let alice = agent_jwt("acme", "alice", "agent");
    let admin = agent_jwt("acme", "root", "admin");
    let get = |path: &str, token: &str| with_bearer(request(Method::GET, path), token);

    let token = t.call(with_bearer(request(Method::POST, "/token"), &alice)).await;
    assert_eq!(token.status(), 200, "{}", token.text());
    assert_documented("POST", "/token", &token);
    assert_documented(
        "GET",
        "/workspace/numbers",
        &t.call(get("/workspace/numbers", &alice)).await,
    );
    let wiring = t.call(get("/workspace/twilio", &admin)).await;
    assert_eq!(wiring.json()["configured"], true);
    assert_documented("GET", "/workspace/twilio", &wiring);
    let forbidden = t.call(get("/workspace/twilio", &alice)).await;
    assert_eq!(forbidden.status(), 403);
    assert_documented("GET", "/workspace/twilio", &forbidden);

    let placed = phone.place(Some("k1")).await;
    assert_eq!(placed.status(), 201, "{}", placed.text());
    assert_documented("POST", "/calls", &placed);
    let id = placed.json()["callId"].as_str().unwrap().to_owned();
    let call = t.call(get(&format!("/calls/{id}"), &alice)).await;
    assert_documented("GET", "/calls/{callId}", &call);
    assert_documented("GET", "/calls", &t.call(get("/calls?limit=5", &alice)).await);
    let changed = t.call(get("/calls?updatedAfter=2020-01-01T00:00:00Z", &alice)).await;
    assert_documented("GET", "/calls", &changed);
    let annotated = t
        .call(with_json(
            with_bearer(request(Method::PATCH, &format!("/calls/{id}")), &alice),
            &json!({"notes": "n", "disposition": "sale"}),
        ))
        .await;
    assert_eq!(annotated.status(), 200, "{}", annotated.text());
    assert_documented("PATCH", "/calls/{callId}", &annotated);
    // Not connected yet: 409 with a documented code.
    let hold = t
        .call(with_json(
            with_bearer(request(Method::POST, &format!("/calls/{id}/hold")), &alice),
            &json!({"hold": true}),
        ))
        .await;
    assert_eq!(hold.error_code(), "not_holdable");
    assert_documented("POST", "/calls/{callId}/hold", &hold);
    let hangup = t
        .call(with_bearer(
            request(Method::POST, &format!("/calls/{id}/hangup")),
            &alice,
        ))
        .await;
    assert_eq!(hangup.status(), 202, "{}", hangup.text());
    assert_documented("POST", "/calls/{callId}/hangup", &hangup);
    let missing = t.call(get(&format!("/calls/{}", CallId::generate()), &alice)).await;
    assert_eq!(missing.status(), 404);
    assert_documented("GET", "/calls/{callId}", &missing);
    let no_recording = t.call(get(&format!("/calls/{id}/recording"), &alice)).await;
    assert_documented("GET", "/calls/{callId}/recording", &no_recording);

    assert_documented("GET", "/messages", &t.call(get("/messages", &alice)).await);
    let unsigned = t.call(request(Method::GET, "/messages")).await;
    assert_eq!(unsigned.status(), 401);
    assert_documented("GET", "/messages", &unsigned);
    let not_json = {
        let mut r = with_bearer(request(Method::POST, "/messages"), &alice);
        r.headers
            .insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        t.call(r).await
    };
    assert_eq!(not_json.status(), 415);
    assert_documented("POST", "/messages", &not_json);

    // An unconfigured workspace: 409 `twilio_not_configured`, documented.
    let stranger = agent_jwt("globex", "gina", "admin");
    let token = t.call(with_bearer(request(Method::POST, "/token"), &stranger)).await;
    assert_eq!(token.error_code(), "twilio_not_configured");
    assert_documented("POST", "/token", &token);
    let wiring = t.call(get("/workspace/twilio", &stranger)).await;
    assert_eq!(wiring.json(), json!({"configured": false}));
    assert_documented("GET", "/workspace/twilio", &wiring);
    let cleared = t
        .call(with_bearer(request(Method::DELETE, "/workspace/twilio"), &stranger))
        .await;
    assert_documented("DELETE", "/workspace/twilio", &cleared);
}

#[tokio::test]
async fn the_contract_and_health_are_served_without_sign_in() {
    let t = TestApp::new().await;
    let served = t.call(request(Method::GET, "/openapi.json")).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert_eq!(served.json(), document());

    let health = t.call(request(Method::GET, "/health")).await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json(), json!({"status": "up"}));
    assert_eq!(health.header("cache-control"), Some("no-store"));
    assert_documented("GET", "/health", &health);

    let wrong_method = t.call(request(Method::POST, "/health")).await;
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.header("allow"), Some("GET"));
}

/// The `web` function's store in AWS: DynamoDB, one GetItem.
#[tokio::test]
async fn health_is_up_on_dynamodb_and_down_when_it_cannot_be_reached() {
    let local = TestApp::new().await;
    let (client, table) = moto::fresh_table().await;
    let up = TestApp::with_adapters(
        &[],
        std::sync::Arc::new(DynamoStore::new(client, &table)),
        local.app.secrets.clone(),
    )
    .await;
    let health = up.call(request(Method::GET, "/health")).await;
    assert_eq!((health.status(), health.json()), (200, json!({"status": "up"})));

    // Nothing listens on port 9 (discard) here: connections are refused.
    let config = moto::sdk_config_for("http://127.0.0.1:9").await;
    let down = TestApp::with_adapters(
        &[],
        std::sync::Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "nope")),
        local.app.secrets.clone(),
    )
    .await;
    let health = down.call(request(Method::GET, "/health")).await;
    assert_eq!(health.status(), 503);
    // Up or down, nothing more: no error detail, no address.
    assert_eq!(health.json(), json!({"status": "down"}));
    assert_documented("GET", "/health", &health);
}

// ---------------------------------------------------------------------------
// What the fuzzer found (scripts/fuzz-api.sh), kept fixed

/// An empty query value was read as an absent one: `?updatedAfter=` listed
/// the log newest first, as if no catch-up had been asked for.
#[tokio::test]
async fn an_empty_query_value_is_refused_not_read_as_absent() {
    let phone = crate::calls::phone().await;
    let admin = agent_jwt("acme", "root", "admin");
    for (method, path_and_query, operation) in [
        (Method::GET, "/calls?updatedAfter=", "/calls"),
        (Method::GET, "/calls?direction=", "/calls"),
        (Method::GET, "/messages?limit=10&cursor=", "/messages"),
        (Method::DELETE, "/workspace/twilio?force=", "/workspace/twilio"),
    ] {
        let reply = phone
            .t
            .call(with_bearer(request(method.clone(), path_and_query), &admin))
            .await;
        assert_eq!(reply.status(), 400, "{path_and_query}: {}", reply.text());
        assert!(reply.json()["error"]["message"].as_str().unwrap().contains("is empty"));
        assert_documented(method.as_str(), operation, &reply);
    }
    // Nothing was cleared by the refused DELETE.
    let wiring = phone
        .t
        .call(with_bearer(request(Method::GET, "/workspace/twilio"), &admin))
        .await;
    assert_eq!(wiring.json()["configured"], true);
    // Without a token it is still 401 first, whatever the query.
    assert_eq!(phone.t.call(request(Method::GET, "/calls?limit=")).await.status(), 401);
}

/// A key that is not text (`café` as UTF-8 bytes) was read as no key: the
/// request went through, quietly not idempotent.
#[tokio::test]
async fn an_idempotency_key_that_is_not_text_is_refused() {
    let phone = crate::calls::phone().await;
    let mut placed = with_json(
        with_bearer(request(Method::POST, "/calls"), &agent_jwt("acme", "alice", "agent")),
        &json!({"to": "+14155550123"}),
    );
    placed.headers.insert(
        "idempotency-key",
        http::HeaderValue::from_bytes("café".as_bytes()).unwrap(),
    );
    let reply = phone.t.call(placed).await;
    assert_eq!(reply.status(), 400, "{}", reply.text());
    assert_documented("POST", "/calls", &reply);
    let calls = phone
        .t
        .call(with_bearer(
            request(Method::GET, "/calls"),
            &agent_jwt("acme", "alice", "agent"),
        ))
        .await;
    assert_eq!(calls.json()["calls"], json!([]), "no call was placed");
}

/// Holding a call whose conference Twilio has already ended (its callbacks
/// not arrived yet) was a 502, as if Twilio had failed.
#[tokio::test]
async fn holding_a_call_twilio_has_ended_is_a_conflict_not_a_twilio_failure() {
    use switchboard_testkit::fake_twilio::{Fault, FaultKind};

    let phone = crate::calls::phone().await;
    let outbound = crate::calls::connect_agent(&phone).await;
    let customer = crate::calls::agent_joins(&phone, &outbound).await;
    phone.twilio.add_participant(&outbound.conference_sid, &customer);
    crate::calls::conference_event(&outbound, "participant-join", &customer, 2, 5)
        .send(&phone)
        .await;
    phone
        .twilio
        .fail_next(Fault::new("POST", "/Participants/", FaultKind::Status(404)));
    let hold = phone
        .t
        .call(with_json(
            with_bearer(
                request(Method::POST, &format!("/calls/{}/hold", outbound.call_id)),
                &agent_jwt("acme", "alice", "agent"),
            ),
            &json!({"hold": true}),
        ))
        .await;
    assert_eq!(
        (hold.status(), hold.error_code().as_str()),
        (409, "not_holdable"),
        "{}",
        hold.text()
    );
    assert!(
        hold.text().contains("the call has ended"),
        "Twilio was asked: {}",
        hold.text()
    );
    assert_documented("POST", "/calls/{callId}/hold", &hold);
}
