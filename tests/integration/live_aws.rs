//! Live events in AWS, over the wire: the `$connect`, `$disconnect` and
//! `$default` handlers and the stream fan-out, with the connections in
//! DynamoDB on moto and the sockets behind the API Gateway Management API.
//! moto proves the Management API's wire format only (it accepts any
//! connection id and never answers 410), so which sockets were posted to,
//! and the clean-up of gone ones, are checked against an HTTP double.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use serde_json::{Value, json};
use switchboard::ids::{AgentId, WorkspaceId};
use switchboard::ports::{Connection, ConnectionStore, Sockets};
use switchboard::time::Timestamp;
use switchboard_aws::{ApiGatewaySockets, DynamoStore};
use switchboard_lambda::live::{self, Live};
use switchboard_testkit::harness::agent_jwt;
use switchboard_testkit::{moto, repo_root};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The sockets' double: every connection answers 200, but `gone` answers
/// 410 `GoneException`, as API Gateway does for a closed socket.
async fn sockets_double(gone: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    for id in gone {
        Mock::given(path(format!("/@connections/{id}")))
            .respond_with(
                ResponseTemplate::new(410)
                    .insert_header("x-amzn-errortype", "GoneException")
                    .set_body_json(json!({"message": null})),
            )
            .mount(&server)
            .await;
    }
    Mock::given(path_regex_connections())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn path_regex_connections() -> wiremock::matchers::PathRegexMatcher {
    wiremock::matchers::path_regex(r"^/@connections/[^/]+$")
}

async fn live(sockets: &str) -> (Live, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = switchboard_testkit::embedded_app(switchboard_testkit::config(dir.path(), &[]));
    let (client, table) = moto::fresh_table().await;
    let sdk = moto::sdk_config_for(sockets).await;
    let live = Live {
        app,
        connections: DynamoStore::new(client, table),
        sockets: Some(ApiGatewaySockets::new(&sdk, sockets)),
    };
    (live, dir)
}

/// A WebSocket event as API Gateway sends it (the sample events' shape).
fn socket_event(file: &str, connection: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut raw: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("events").join(file)).unwrap()).unwrap();
    raw["requestContext"]["connectionId"] = connection.into();
    serde_json::from_value(raw).unwrap_or_else(|e| panic!("events/{file}: {e}"))
}

fn with_token(mut event: ApiGatewayWebsocketProxyRequest, token: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut raw = serde_json::to_value(&event).unwrap();
    raw["queryStringParameters"] = json!({"token": token});
    event = serde_json::from_value(raw).unwrap();
    event
}

fn connection(id: &str, workspace: &str, expires_at: Timestamp) -> Connection {
    Connection {
        id: id.into(),
        workspace: WorkspaceId::parse(workspace).unwrap(),
        agent: AgentId::parse("alice").unwrap(),
        expires_at,
    }
}

async fn requests(double: &MockServer) -> Vec<(String, String, String)> {
    double
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.url.path().to_owned(),
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn connect_keeps_the_socket_of_a_signed_in_agent_and_disconnect_forgets_it() {
    let double = sockets_double(&[]).await;
    let (live, _dir) = live(&double.uri()).await;

    let refused = live::connect(&live, socket_event("events-connect/connect-bad-token.json", "bad")).await;
    assert_eq!(refused.status_code, 401);
    assert!(
        live.connections.get_connection("bad").await.unwrap().is_none(),
        "nothing stored"
    );
    let no_token = socket_event("events-connect/connect.json", "none");
    let no_token = {
        let mut raw = serde_json::to_value(&no_token).unwrap();
        raw["queryStringParameters"] = json!({});
        serde_json::from_value(raw).unwrap()
    };
    assert_eq!(live::connect(&live, no_token).await.status_code, 401);

    let accepted = live::connect(&live, socket_event("events-connect/connect.json", "c-1")).await;
    assert_eq!(accepted.status_code, 200);
    let stored = live.connections.get_connection("c-1").await.unwrap().expect("stored");
    assert_eq!(stored.workspace.as_str(), "acme");
    assert_eq!(stored.agent.as_str(), "alice");
    let two_hours = Timestamp::now().plus_seconds(2 * 3600 + 5);
    assert!(stored.expires_at <= two_hours, "at most API Gateway's two hours");
    let listed = live.connections.workspace_connections(&stored.workspace).await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&stored));

    // A token that expires in a minute: the connection expires with it.
    let soon = switchboard_testkit::harness::jwt_hs256(
        &json!({"sub": "bob", "workspace_id": "acme", "exp": Timestamp::now().unix_seconds() + 60}),
        switchboard_testkit::HS256_SECRET,
    );
    let event = with_token(socket_event("events-connect/connect.json", "c-2"), &soon);
    assert_eq!(live::connect(&live, event).await.status_code, 200);
    let bob = live.connections.get_connection("c-2").await.unwrap().unwrap();
    assert!(bob.expires_at <= Timestamp::now().plus_seconds(61));

    let gone = live::disconnect(&live, socket_event("events-disconnect/disconnect.json", "c-1")).await;
    assert_eq!(gone.status_code, 200);
    assert!(live.connections.get_connection("c-1").await.unwrap().is_none());
    assert_eq!(
        live.connections.workspace_connections(&stored.workspace).await.unwrap(),
        [bob]
    );
    assert!(requests(&double).await.is_empty(), "connecting posts nothing");
}

#[tokio::test]
async fn a_ping_gets_a_pong_and_an_expired_socket_is_closed() {
    let double = sockets_double(&[]).await;
    let (live, _dir) = live(&double.uri()).await;
    let later = Timestamp::now().plus_seconds(600);
    live.connections
        .put_connection(&connection("fresh", "acme", later))
        .await
        .unwrap();
    live.connections
        .put_connection(&connection("stale", "acme", Timestamp::now().plus_seconds(-1)))
        .await
        .unwrap();

    let pong = live::message(&live, socket_event("events-default/ping.json", "fresh")).await;
    assert_eq!(pong.status_code, 200);
    let expired = live::message(&live, socket_event("events-default/ping.json", "stale")).await;
    assert_eq!(expired.status_code, 200);

    let seen = requests(&double).await;
    assert!(
        seen.contains(&("POST".into(), "/@connections/fresh".into(), r#"{"type":"pong"}"#.into())),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(m, p, _)| m == "DELETE" && p == "/@connections/stale"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|(m, p, _)| m == "POST" && p == "/@connections/stale"),
        "no pong to it"
    );
    assert!(live.connections.get_connection("stale").await.unwrap().is_none());
    assert!(live.connections.get_connection("fresh").await.unwrap().is_some());
}

#[tokio::test]
async fn the_fan_out_posts_to_exactly_the_workspaces_live_sockets_and_forgets_gone_ones() {
    let double = sockets_double(&["gone"]).await;
    let (live, _dir) = live(&double.uri()).await;
    let later = Timestamp::now().plus_seconds(600);
    for c in [
        connection("live", "acme", later),
        connection("gone", "acme", later),
        connection("expired", "acme", Timestamp::now().plus_seconds(-5)),
        connection("elsewhere", "beta", later),
    ] {
        live.connections.put_connection(&c).await.unwrap();
    }

    // The stream's record, as Lambda delivers it (events/events-fanout/).
    let event: StreamEvent = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/events-fanout/call-changed.json")).unwrap(),
    )
    .unwrap();
    live::fan_out(&live, event).await;

    let seen = requests(&double).await;
    let posts: Vec<&str> = seen
        .iter()
        .filter(|(m, _, _)| m == "POST")
        .map(|(_, p, _)| p.as_str())
        .collect();
    let mut posts_sorted = posts.clone();
    posts_sorted.sort();
    assert_eq!(posts_sorted, ["/@connections/gone", "/@connections/live"], "{seen:?}");
    let body = &seen.iter().find(|(_, p, _)| p == "/@connections/live").unwrap().2;
    let frame: Value = serde_json::from_str(body).unwrap();
    assert_eq!(frame["type"], "call");
    assert_eq!(frame["data"]["callId"], "01JDQ4ZK8M3V6X2T9B7C5N1P0R");
    assert_eq!(frame["data"]["state"], "in-progress");
    assert!(frame["data"].get("version").is_none(), "the view, not the stored item");
    assert!(
        seen.iter()
            .any(|(m, p, _)| m == "DELETE" && p == "/@connections/expired"),
        "the expired socket is closed: {seen:?}"
    );

    let acme = live
        .connections
        .workspace_connections(&WorkspaceId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(
        acme.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["live"],
        "gone and expired sockets are forgotten"
    );
    assert!(live.connections.get_connection("elsewhere").await.unwrap().is_some());

    // A message change reaches the same sockets.
    let event: StreamEvent = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/events-fanout/message-received.json")).unwrap(),
    )
    .unwrap();
    live::fan_out(&live, event).await;
    let seen = requests(&double).await;
    let message = seen
        .iter()
        .filter(|(m, p, _)| m == "POST" && p == "/@connections/live")
        .map(|(_, _, body)| serde_json::from_str::<Value>(body).unwrap())
        .find(|frame| frame["type"] == "message")
        .expect("the message frame");
    assert_eq!(message["data"]["body"], "Hello");
}

/// The Management API's requests are well-formed (moto serves the API).
#[tokio::test]
async fn posting_and_closing_speak_the_management_apis_wire_format() {
    let sdk = moto::sdk_config().await;
    let sockets = ApiGatewaySockets::new(&sdk, &moto::moto_url());
    sockets
        .send("Z2Fzcw=", r#"{"type":"pong"}"#)
        .await
        .expect("PostToConnection");
    sockets.close("Z2Fzcw=").await.expect("DeleteConnection");
}

#[tokio::test]
async fn a_refused_socket_is_told_why_without_its_token() {
    let double = sockets_double(&[]).await;
    let (live, _dir) = live(&double.uri()).await;
    let token = agent_jwt("acme", "alice", "agent");
    let refused = live::connect(
        &live,
        with_token(socket_event("events-connect/connect.json", "x"), &format!("{token}x")),
    )
    .await;
    assert_eq!(refused.status_code, 401);
    let body = serde_json::to_string(&refused.body).unwrap();
    assert!(body.contains("signature"), "the reason, in words: {body}");
    assert!(
        !body.contains(&token[..20]),
        "the answer carries no part of the token: {body}"
    );
}
