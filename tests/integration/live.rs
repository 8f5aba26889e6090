//! Live events on the local server, over real WebSockets: the binary on a
//! free port, real WebSocket clients, Twilio's side played by the stateful
//! fake and every webhook signed as Twilio signs it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::twilio::signature;
use switchboard_testkit::fake_twilio::FakeTwilio;
use switchboard_testkit::harness::{HS256_SECRET, jwt_hs256, now};
use switchboard_testkit::sid;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::server_process::ServerProcess;

const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const ACME_NUMBER: &str = "+14155550100";
const CALLER: &str = "+14155550177";
/// How long a socket may wait for the frame a request caused.
const FRAME_WAIT: Duration = Duration::from_secs(5);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    process: ServerProcess,
    http: reqwest::Client,
}

fn token(sub: &str, workspace: &str, role: &str, expires_in: i64) -> String {
    let now = now() as i64;
    jwt_hs256(
        &json!({"sub": sub, "workspace_id": workspace, "role": role, "iat": now, "exp": now + expires_in}),
        HS256_SECRET,
    )
}

fn agent(sub: &str, workspace: &str) -> String {
    token(sub, workspace, "agent", 3600)
}

async fn start(twilio: &FakeTwilio) -> Server {
    Server {
        process: ServerProcess::start(&[], &[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())], HS256_SECRET),
        http: reqwest::Client::new(),
    }
}

impl Server {
    /// Acme connected to the fake Twilio, its number ringing alice and bob.
    async fn connect_acme(&self) {
        let admin = token("root", "acme", "admin", 3600);
        let reply = self
            .http
            .put(format!("{}/workspace/twilio", self.process.base))
            .bearer_auth(&admin)
            .json(&json!({"accountSid": account(), "authToken": AUTH_TOKEN}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{}", reply.text().await.unwrap());
        let reply = self
            .http
            .put(format!("{}/workspace/numbers/%2B14155550100", self.process.base))
            .bearer_auth(&admin)
            .json(&json!({"agents": ["alice", "bob"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }

    /// A form POST signed as Twilio signs it, for this server's own URL.
    async fn twilio(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let account = account();
        let mut all = vec![("AccountSid", account.as_str())];
        all.extend_from_slice(params);
        let url = format!("{}{path}", self.process.base);
        let signature = signature::sign(AUTH_TOKEN.as_bytes(), &url, &all);
        self.http
            .post(url)
            .header("x-twilio-signature", signature)
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    async fn socket(&self, token: &str) -> Socket {
        let url = format!("{}/events?token={token}", self.process.base.replace("http://", "ws://"));
        let (socket, response) = tokio_tungstenite::connect_async(url).await.expect("the socket opens");
        assert_eq!(response.status(), 101);
        socket
    }

    /// The handshake's HTTP answer when the socket is refused.
    async fn refused(&self, query: &str) -> u16 {
        let url = format!("{}/events{query}", self.process.base.replace("http://", "ws://"));
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => panic!("{query}: the socket was accepted"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("{query}: {other}"),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let reply = self
            .http
            .get(format!("{}{path}", self.process.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        reply.json().await.unwrap()
    }
}

fn account() -> String {
    sid("AC", "acme")
}

/// The next text frame, as JSON.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(FRAME_WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The next call frame whose call is `id` and whose state is `state`.
async fn call_in_state(socket: &mut Socket, id: &str, state: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == "call" && frame["data"]["callId"] == id && frame["data"]["state"] == state {
            return frame;
        }
    }
}

/// Sends a ping and expects the pong as the very next frame: nothing else
/// was waiting for this socket.
async fn nothing_waiting(socket: &mut Socket) {
    socket.send(Message::Text(r#"{"action":"ping"}"#.into())).await.unwrap();
    assert_eq!(next(socket).await, json!({"type": "pong"}));
}

async fn inbound_call(server: &Server, call_sid: &str) -> String {
    let reply = server
        .twilio(
            "/twilio/voice/inbound",
            &[
                ("CallSid", call_sid),
                ("From", CALLER),
                ("To", ACME_NUMBER),
                ("CallStatus", "ringing"),
            ],
        )
        .await;
    assert_eq!(reply.status(), 200);
    let calls = server.get("/calls?direction=inbound", &agent("alice", "acme")).await;
    calls["calls"][0]["callId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_socket_of_the_workspace_sees_calls_change_and_no_other_does() {
    let twilio = FakeTwilio::start(&account(), AUTH_TOKEN).await;
    twilio.add_number(ACME_NUMBER);
    let server = start(&twilio).await;
    server.connect_acme().await;

    // Two tabs of alice, bob, and carol of another workspace.
    let mut alice_1 = server.socket(&agent("alice", "acme")).await;
    let mut alice_2 = server.socket(&agent("alice", "acme")).await;
    let mut bob = server.socket(&agent("bob", "acme")).await;
    let mut carol = server.socket(&agent("carol", "beta")).await;

    // An inbound call rings: every socket of acme learns of it.
    let caller_leg = sid::<String>("CA", "live-caller");
    let id = inbound_call(&server, &caller_leg).await;
    for socket in [&mut alice_1, &mut alice_2, &mut bob] {
        let frame = call_in_state(socket, &id, "created").await;
        assert_eq!(frame["data"]["direction"], "inbound");
        assert_eq!(frame["data"]["from"], CALLER);
        assert!(frame["data"]["updatedAt"].is_string());
        assert!(frame["data"].get("version").is_none() && frame["data"].get("steps").is_none());
    }

    // The caller hangs up before anyone answered: the signed status callback
    // arrives as an event carrying the new state, to every socket of acme.
    let reply = server
        .twilio(
            "/twilio/status",
            &[
                ("CallSid", &caller_leg),
                ("CallStatus", "completed"),
                ("SequenceNumber", "3"),
            ],
        )
        .await;
    assert_eq!(reply.status(), 200);
    let mut seen = Vec::new();
    for socket in [&mut alice_1, &mut alice_2, &mut bob] {
        seen.push(call_in_state(socket, &id, "canceled").await["data"]["updatedAt"].clone());
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "one change, one object: {seen:?}"
    );

    // Nothing of acme reached beta's socket.
    nothing_waiting(&mut carol).await;
}

#[tokio::test]
async fn a_client_that_reconnects_lists_what_it_missed() {
    let twilio = FakeTwilio::start(&account(), AUTH_TOKEN).await;
    twilio.add_number(ACME_NUMBER);
    let server = start(&twilio).await;
    server.connect_acme().await;
    let alice = agent("alice", "acme");

    let mut socket = server.socket(&alice).await;
    let first = inbound_call(&server, &sid::<String>("CA", "missed-1")).await;
    let watermark = call_in_state(&mut socket, &first, "created").await["data"]["updatedAt"]
        .as_str()
        .unwrap()
        .to_owned();
    socket.close(None).await.unwrap();

    // While no socket is open: the first call ends, a second rings, a text arrives.
    server
        .twilio(
            "/twilio/status",
            &[
                ("CallSid", &sid::<String>("CA", "missed-1")),
                ("CallStatus", "canceled"),
            ],
        )
        .await;
    let second = inbound_call(&server, &sid::<String>("CA", "missed-2")).await;
    let text_sid = sid::<String>("SM", "missed-text");
    let reply = server
        .twilio(
            "/twilio/sms",
            &[
                ("MessageSid", &text_sid),
                ("From", CALLER),
                ("To", ACME_NUMBER),
                ("Body", "call me"),
            ],
        )
        .await;
    assert_eq!(reply.status(), 200);

    // Back: what changed at or after the newest update it saw, oldest first.
    let mut socket = server.socket(&alice).await;
    let calls = server
        .get(&format!("/calls?updatedAfter={}", urlencode(&watermark)), &alice)
        .await;
    let listed: Vec<(&str, &str)> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["callId"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert!(listed.contains(&(first.as_str(), "canceled")), "{listed:?}");
    assert!(listed.contains(&(second.as_str(), "created")), "{listed:?}");
    let updated: Vec<&str> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["updatedAt"].as_str().unwrap())
        .collect();
    assert!(
        updated.windows(2).all(|w| w[0] <= w[1]),
        "oldest change first: {updated:?}"
    );
    let messages = server
        .get(&format!("/messages?updatedAfter={}", urlencode(&watermark)), &alice)
        .await;
    assert_eq!(messages["messages"][0]["sid"], text_sid.as_str());
    // And the socket goes on with what happens next.
    nothing_waiting(&mut socket).await;
}

#[tokio::test]
async fn bad_tokens_are_refused_before_the_upgrade_and_an_expired_socket_closes() {
    let twilio = FakeTwilio::start(&account(), AUTH_TOKEN).await;
    let server = start(&twilio).await;
    assert_eq!(server.refused("").await, 401, "no token");
    assert_eq!(server.refused("?token=").await, 401, "an empty token");
    assert_eq!(server.refused("?token=not-a-jwt").await, 401, "garbage");
    let forged = jwt_hs256(
        &json!({"sub": "alice", "workspace_id": "acme", "exp": 4_102_444_800u64}),
        "another-secret-of-at-least-32-characters",
    );
    assert_eq!(server.refused(&format!("?token={forged}")).await, 401, "another key");
    let expired = token("alice", "acme", "agent", -120);
    assert_eq!(server.refused(&format!("?token={expired}")).await, 401, "expired");
    let no_workspace = jwt_hs256(&json!({"sub": "alice", "exp": 4_102_444_800u64}), HS256_SECRET);
    assert_eq!(
        server.refused(&format!("?token={no_workspace}")).await,
        401,
        "no workspace"
    );

    // A plain GET (no upgrade) is told what /events is.
    let reply = server
        .http
        .get(format!(
            "{}/events?token={}",
            server.process.base,
            agent("alice", "acme")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 426);

    // A token that expires in two seconds: the socket works, then closes.
    let mut socket = server.socket(&token("alice", "acme", "agent", 2)).await;
    nothing_waiting(&mut socket).await;
    let closed = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed when the token expired")
    .expect("a close frame");
    assert_eq!(closed.code, CloseCode::from(4001));
}

fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Every participant change reaches the sockets as it happens: who answered,
/// who joined the conference, who was muted.
#[tokio::test]
async fn participant_changes_are_pushed_as_they_happen() {
    let twilio = FakeTwilio::start(&account(), AUTH_TOKEN).await;
    twilio.add_number(ACME_NUMBER);
    let server = start(&twilio).await;
    server.connect_acme().await;
    let mut alice = server.socket(&agent("alice", "acme")).await;

    let caller_leg = sid::<String>("CA", "live-participants");
    let id = inbound_call(&server, &caller_leg).await;
    let bob_leg = twilio
        .calls()
        .into_iter()
        .find(|c| c.to.starts_with("client:agent_bob"))
        .expect("bob is rung")
        .sid;
    let label = |frame: &Value, label: &str| frame["data"]["participants"][label].clone();

    // Bob accepts: alice's socket sees bob's leg answered and hers stop ringing.
    let answer = server
        .twilio(
            &format!("/twilio/voice/answer?callId={id}&label=agent-2"),
            &[("CallSid", &bob_leg), ("From", ACME_NUMBER), ("To", "client:agent_bob")],
        )
        .await;
    assert_eq!(answer.status(), 200);
    let answered = loop {
        let frame = next(&mut alice).await;
        if frame["type"] == "call" && label(&frame, "agent-2")["state"] == "answered" {
            break frame;
        }
    };
    assert_eq!(answered["data"]["answeredBy"], "agent-2");

    // Both legs join the conference; then bob mutes the caller.
    let conference = twilio.add_conference(&format!("sb-{id}"));
    twilio.add_participant(&conference, &caller_leg);
    for (sequence, leg) in [&caller_leg, &bob_leg].into_iter().enumerate() {
        let joined = server
            .twilio(
                &format!("/twilio/status?callId={id}"),
                &[
                    ("ConferenceSid", &conference),
                    ("StatusCallbackEvent", "participant-join"),
                    ("CallSid", leg),
                    ("SequenceNumber", &sequence.to_string()),
                ],
            )
            .await;
        assert_eq!(joined.status(), 200);
    }
    let in_progress = call_in_state(&mut alice, &id, "in-progress").await;
    assert_eq!(label(&in_progress, "agent-2")["state"], "joined");
    let muted = server
        .http
        .post(format!("{}/calls/{id}/participants/customer/mute", server.process.base))
        .bearer_auth(agent("bob", "acme"))
        .json(&json!({"muted": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(muted.status(), 200, "{}", muted.text().await.unwrap());
    loop {
        let frame = next(&mut alice).await;
        if frame["type"] == "call" && label(&frame, "customer")["muted"] == true {
            break;
        }
    }
}
