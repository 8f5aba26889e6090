//! `switchboard --sandbox`: the real binary with Twilio simulated, driven
//! over HTTP only (no hook into the process), as a user or the dialer would:
//! onboarding with a sandbox account, tokens, outbound and inbound calls
//! through the simulated browser device, recordings copied and played,
//! texts, faults, the webhook gate, and the README's commands as written.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_testkit::harness::{HS256_SECRET, agent_jwt};

use crate::server_process::{KillOnDrop, ServerProcess};

/// Simulated seconds run ten times faster in these tests.
const SCALE: f64 = 0.1;
const CALLER: &str = "+14155550177";

struct Sandbox {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Sandbox {
    async fn start() -> Self {
        Self::start_with_secret(HS256_SECRET).await
    }

    async fn start_with_secret(secret: &str) -> Self {
        let sandbox = Self::spawn(&[], secret);
        let (status, timers) = sandbox
            .send(Method::POST, "/sandbox/timers", None, Some(json!({"scale": SCALE})))
            .await;
        assert_eq!(status, 200, "{timers}");
        sandbox
    }

    /// `switchboard --sandbox` with `vars`, its timers not yet scaled.
    fn spawn(vars: &[(&str, &str)], secret: &str) -> Self {
        Self {
            server: ServerProcess::start(&["--sandbox"], vars, secret),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, method: Method, path: &str, bearer: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.server.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, bearer: &str) -> Value {
        let (status, body) = self.send(Method::GET, path, Some(bearer), None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn accounts(&self) -> Vec<Value> {
        let (status, body) = self.send(Method::GET, "/sandbox/accounts", None, None).await;
        assert_eq!(status, 200, "{body}");
        body["accounts"].as_array().unwrap().clone()
    }

    /// Connects sandbox account `n` to workspace `acme` as its admin.
    async fn connect(&self, n: usize, settings: Value) -> Value {
        let account = self.accounts().await[n].clone();
        let mut body = json!({"accountSid": account["accountSid"], "authToken": account["authToken"]});
        for (k, v) in settings.as_object().unwrap() {
            body[k] = v.clone();
        }
        let admin = agent_jwt("acme", "alice", "admin");
        let (status, configured) = self
            .send(Method::PUT, "/workspace/twilio", Some(&admin), Some(body))
            .await;
        assert_eq!(status, 200, "{configured}");
        assert_eq!(configured["complete"], true, "{configured}");
        account
    }

    /// The agent's Voice access token, from `POST /token`.
    async fn voice_token(&self, agent: &str) -> String {
        let (status, body) = self.send(Method::POST, "/token", Some(agent), None).await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Sets the agents `number` rings, as `admin`.
    async fn assign(&self, admin: &str, number: &str, agents: &[&str]) -> u16 {
        let path = format!("/workspace/numbers/{}", number.replace('+', "%2B"));
        let body = json!({"agents": agents});
        self.send(Method::PUT, &path, Some(admin), Some(body)).await.0
    }

    /// An outbound call to `to`, from `POST /calls`.
    async fn place(&self, bearer: &str, to: &str) -> (u16, Value) {
        self.send(Method::POST, "/calls", Some(bearer), Some(json!({"to": to})))
            .await
    }

    /// The simulated customer `CALLER` dials `number`.
    async fn ring_in(&self, number: &str) -> (u16, Value) {
        let body = json!({"from": CALLER, "to": number});
        self.send(Method::POST, "/sandbox/calls", None, Some(body)).await
    }

    /// The browser connects, with the Voice token and the params of a call
    /// `POST /calls` placed.
    async fn connect_device(&self, bearer: &str, voice: &str, placed: &Value) -> (u16, Value) {
        let body = json!({"token": voice, "params": placed["connectParams"]});
        self.send(Method::POST, "/sandbox/device/connect", Some(bearer), Some(body))
            .await
    }

    async fn call(&self, id: &str, bearer: &str) -> Value {
        self.get(&format!("/calls/{id}"), bearer).await
    }
}

/// Polls `check` until it gives a value (20 s at most, real time).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kinds(call: &Value) -> Vec<String> {
    call["timeline"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| e["kind"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_outbound_call_runs_end_to_end_with_its_recording_and_live_events() {
    let sandbox = Sandbox::start().await;
    let account = sandbox.connect(0, json!({"record": true})).await;
    let our_number = account["numbers"][0].as_str().unwrap().to_owned();
    let admin = agent_jwt("acme", "alice", "admin");
    let status = sandbox.assign(&admin, &our_number, &["alice"]).await;
    assert_eq!(status, 200);
    let voice = sandbox.voice_token(&admin).await;

    // The live-event socket, opened before the call.
    let (status, token) = sandbox.send(Method::POST, "/token", Some(&admin), None).await;
    assert_eq!(status, 200);
    let events_url = format!("{}?token={admin}", token["eventsUrl"].as_str().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(events_url.as_str()).await.unwrap();

    // The customer answers and hangs up after 30 simulated seconds.
    let (status, placed) = sandbox.place(&admin, "+15005551030").await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["callId"].as_str().unwrap().to_owned();
    assert_eq!(placed["from"], our_number.as_str());

    // The browser connects with the call's params; its leg joins the conference.
    let (status, leg) = sandbox.connect_device(&admin, &voice, &placed).await;
    assert_eq!(status, 201, "{leg}");
    assert_eq!(leg["direction"], "outgoing");
    assert_eq!(leg["parameters"]["callId"], id.as_str());
    let agent_leg = leg["callSid"].as_str().unwrap().to_owned();

    let answered = eventually("the customer to answer", || async {
        let call = sandbox.call(&id, &admin).await;
        (call["state"] == "in-progress").then_some(call)
    })
    .await;
    let timeline = kinds(&answered);
    for kind in [
        "agent-participant-join",
        "customer-ringing",
        "customer-participant-join",
    ] {
        assert!(timeline.iter().any(|k| k == kind), "{kind} in {timeline:?}");
    }
    let device = sandbox.get(&format!("/sandbox/device/calls/{agent_leg}"), &admin).await;
    assert_eq!(device["status"], "in-progress");
    assert_eq!(device["conference"], answered["conference"], "{device}");

    // Hold and back: Twilio (simulated) takes both.
    for hold in [true, false] {
        let (status, body) = sandbox
            .send(
                Method::POST,
                &format!("/calls/{id}/hold"),
                Some(&admin),
                Some(json!({"hold": hold})),
            )
            .await;
        assert_eq!(status, 200, "hold {hold}: {body}");
    }

    // The customer hangs up: the conference ends for both.
    let ended = eventually("the call to complete", || async {
        let call = sandbox.call(&id, &admin).await;
        (call["state"] == "completed").then_some(call)
    })
    .await;
    let timeline = kinds(&ended);
    for kind in ["customer-held", "customer-resumed", "customer-completed"] {
        assert!(timeline.iter().any(|k| k == kind), "{kind} in {timeline:?}");
    }
    let device = eventually("the browser's leg to end", || async {
        let leg = sandbox.get(&format!("/sandbox/device/calls/{agent_leg}"), &admin).await;
        (leg["status"] == "completed").then_some(leg)
    })
    .await;
    assert!(device["duration"].as_u64().unwrap() >= 25, "{device}");

    // The recording is copied, then played from our own storage.
    let recording = eventually("the recording to be stored", || async {
        let call = sandbox.call(&id, &admin).await;
        call["recordings"]
            .as_object()
            .and_then(|r| r.values().find(|r| r["status"] == "stored").cloned())
    })
    .await;
    assert_eq!(recording["source"], "Conference");
    let response = sandbox
        .http
        .get(format!("{}/calls/{id}/recording", sandbox.server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    let audio = response.bytes().await.unwrap();
    let ms = switchboard_twilio_sim::media::mp3_duration_ms(&audio).expect("valid MPEG audio frames");
    let seconds = recording["durationSeconds"].as_u64().unwrap();
    assert!(seconds >= 25, "{recording}");
    assert!(
        ms / 1000 >= seconds.saturating_sub(1),
        "{ms} ms of audio for {seconds} s"
    );

    // The socket saw the call change as it happened.
    let mut seen = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(2), socket.next()).await {
        if let Ok(text) = message.to_text()
            && let Ok(event) = serde_json::from_str::<Value>(text)
        {
            seen.push(event);
        }
    }
    assert!(
        seen.iter()
            .any(|e| e.to_string().contains(&id) && e.to_string().contains("in-progress")),
        "live events for the call: {seen:?}"
    );
}

#[tokio::test]
async fn an_inbound_call_rings_every_agent_and_the_first_to_accept_takes_it() {
    let sandbox = Sandbox::start().await;
    let account = sandbox.connect(1, json!({})).await;
    let number = account["numbers"][1].as_str().unwrap().to_owned();
    let admin = agent_jwt("acme", "alice", "admin");
    let status = sandbox.assign(&admin, &number, &["alice", "bob", "carol"]).await;
    assert_eq!(status, 200);
    let agents: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|a| agent_jwt("acme", a, "agent"))
        .collect();

    let (status, placed) = sandbox.ring_in(&number).await;
    assert_eq!(status, 201, "{placed}");

    // Every agent's device rings, with who is calling.
    let mut rung = Vec::new();
    for agent in &agents {
        let leg = eventually("the agent's device to ring", || async {
            let incoming = sandbox.get("/sandbox/device/incoming", agent).await;
            incoming["calls"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["status"] == "ringing").cloned())
        })
        .await;
        assert_eq!(leg["parameters"]["from"], CALLER);
        assert_eq!(leg["parameters"]["kind"], "inbound");
        rung.push(leg);
    }
    let id = rung[0]["parameters"]["callId"].as_str().unwrap().to_owned();
    assert!(rung.iter().all(|leg| leg["parameters"]["callId"] == id.as_str()));

    // Bob accepts: he is in the call, the others stop ringing.
    let bob_leg = rung[1]["callSid"].as_str().unwrap().to_owned();
    let (status, accepted) = sandbox
        .send(
            Method::POST,
            &format!("/sandbox/device/{bob_leg}/accept"),
            Some(&agents[1]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    let call = eventually("the call to be answered", || async {
        let call = sandbox.call(&id, &admin).await;
        (call["state"] == "in-progress").then_some(call)
    })
    .await;
    assert_eq!(call["direction"], "inbound");
    for (n, agent) in [(0, &agents[0]), (2, &agents[2])] {
        let sid = rung[n]["callSid"].as_str().unwrap().to_owned();
        let stopped = eventually("the other devices to stop ringing", || async {
            let leg = sandbox.get(&format!("/sandbox/device/calls/{sid}"), agent).await;
            (leg["status"] == "canceled").then_some(leg)
        })
        .await;
        assert_eq!(stopped["status"], "canceled");
        // Too late to accept.
        let (status, body) = sandbox
            .send(
                Method::POST,
                &format!("/sandbox/device/{sid}/accept"),
                Some(agent),
                None,
            )
            .await;
        assert_eq!(status, 409, "{body}");
    }
    // Another agent's call is not alice's to touch.
    let (status, _) = sandbox
        .send(
            Method::POST,
            &format!("/sandbox/device/{bob_leg}/hangup"),
            Some(&agents[0]),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Bob hangs up: the call is over.
    let (status, _) = sandbox
        .send(
            Method::POST,
            &format!("/sandbox/device/{bob_leg}/hangup"),
            Some(&agents[1]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    eventually("the call to complete", || async {
        let call = sandbox.call(&id, &admin).await;
        (call["state"] == "completed").then_some(())
    })
    .await;
}

#[tokio::test]
async fn nobody_answers_and_the_caller_leaves_a_voicemail() {
    let sandbox = Sandbox::start().await;
    let account = sandbox.connect(0, json!({"ringSeconds": 5})).await;
    let number = account["numbers"][0].as_str().unwrap().to_owned();
    let admin = agent_jwt("acme", "alice", "admin");
    sandbox.assign(&admin, &number, &["bob"]).await;
    let (status, _) = sandbox.ring_in(&number).await;
    assert_eq!(status, 201);
    let call = eventually("a voicemail to be stored", || async {
        let calls = sandbox.get("/calls?limit=1", &admin).await;
        let call = calls["calls"][0].clone();
        let stored = call["recordings"].as_object().is_some_and(|r| {
            r.values()
                .any(|r| r["status"] == "stored" && r["source"] == "RecordVerb")
        });
        stored.then_some(call)
    })
    .await;
    assert_eq!(call["state"], "no-answer", "{call}");
}

#[tokio::test]
async fn busy_unanswered_and_failing_numbers_end_the_call_as_they_say() {
    let sandbox = Sandbox::start().await;
    let account = sandbox.connect(2, json!({})).await;
    let admin = agent_jwt("acme", "alice", "admin");
    let our_number = account["numbers"][0].as_str().unwrap();
    sandbox.assign(&admin, our_number, &["alice"]).await;
    let voice = sandbox.voice_token(&admin).await;
    for (to, state, told) in [
        ("+15005550002", "busy", "The line is busy. Goodbye."),
        ("+15005550003", "no-answer", "There was no answer. Goodbye."),
        ("+15005550004", "failed", "The call could not be connected. Goodbye."),
    ] {
        let (status, placed) = sandbox.place(&admin, to).await;
        assert_eq!(status, 201, "{placed}");
        let id = placed["callId"].as_str().unwrap().to_owned();
        let (status, leg) = sandbox.connect_device(&admin, &voice, &placed).await;
        assert_eq!(status, 201, "{leg}");
        // The state, then (a second write) why.
        eventually(state, || async {
            let call = sandbox.call(&id, &admin).await;
            (call["state"] == state && call["endReason"].is_string()).then_some(call)
        })
        .await;
        let sid = leg["callSid"].as_str().unwrap().to_owned();
        let heard = eventually("the agent to be told", || async {
            let leg = sandbox.get(&format!("/sandbox/device/calls/{sid}"), &admin).await;
            (leg["status"] == "completed").then_some(leg["heard"].clone())
        })
        .await;
        assert_eq!(heard, json!([told]), "{to}");
    }
}

#[tokio::test]
async fn texts_come_in_and_go_out() {
    let sandbox = Sandbox::start().await;
    let account = sandbox
        .connect(0, json!({"smsAutoReply": "Thanks, we will text you back."}))
        .await;
    let number = account["numbers"][2].as_str().unwrap().to_owned();
    let admin = agent_jwt("acme", "alice", "admin");

    let (status, sent) = sandbox
        .send(
            Method::POST,
            "/sandbox/messages",
            None,
            Some(json!({"from": CALLER, "to": number, "body": "Is my order ready?"})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["webhookStatus"], 200);
    assert_eq!(sent["reply"]["body"], "Thanks, we will text you back.");
    let messages = sandbox.get("/messages", &admin).await;
    let inbound = &messages["messages"][0];
    assert_eq!(inbound["body"], "Is my order ready?");
    assert_eq!(inbound["direction"], "inbound");
    assert_eq!(inbound["from"], CALLER);

    let (status, text) = sandbox
        .send(
            Method::POST,
            "/messages",
            Some(&admin),
            Some(json!({"from": number, "to": CALLER, "body": "Yes, come by!"})),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let sid = text["sid"].as_str().unwrap().to_owned();
    eventually("the text to be delivered", || async {
        let messages = sandbox.get("/messages", &admin).await;
        messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["sid"] == sid.as_str() && m["status"] == "delivered")
            .then_some(())
    })
    .await;

    // An unknown number is a clear 404, a malformed body a 400.
    let (status, body) = sandbox
        .send(
            Method::POST,
            "/sandbox/messages",
            None,
            Some(json!({"from": CALLER, "to": "+14155559999", "body": "hi"})),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_number")));
    let (status, _) = sandbox
        .send(Method::POST, "/sandbox/messages", None, Some(json!({"from": CALLER})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sandbox_webhooks_pass_the_gate_unmodified_and_a_bad_signature_is_refused() {
    let sandbox = Sandbox::start().await;
    let account = sandbox.connect(0, json!({})).await;
    let number = account["numbers"][0].as_str().unwrap().to_owned();

    // A webhook for the sandbox account, signed with anything but its Auth
    // Token: refused, as any other.
    let form = [
        ("AccountSid", account["accountSid"].as_str().unwrap()),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", "completed"),
    ];
    for signature in [Some("bm90IGEgc2lnbmF0dXJlIGF0IGFsbCE="), None] {
        let mut request = sandbox
            .http
            .post(format!("{}/twilio/status", sandbox.server.base))
            .form(&form);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        assert_eq!(request.send().await.unwrap().status(), 403);
    }

    // The simulated Twilio signing with the wrong key: the inbound call is
    // refused at the gate (403), and nothing is stored.
    let (status, _) = sandbox
        .send(
            Method::POST,
            "/sandbox/faults",
            None,
            Some(json!({"badSignatures": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = sandbox.ring_in(&number).await;
    assert_eq!(status, 201);
    let refused = eventually("the voice webhook's answer", || async {
        let (_, log) = sandbox.send(Method::GET, "/sandbox/webhooks", None, None).await;
        log["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["url"].as_str().unwrap_or("").ends_with("/twilio/voice/inbound"))
            .cloned()
    })
    .await;
    assert_eq!(refused["status"], 403, "{refused}");
    let admin = agent_jwt("acme", "alice", "admin");
    assert_eq!(sandbox.get("/calls", &admin).await["calls"], json!([]));
}

#[tokio::test]
async fn tokens_are_checked_as_twilio_checks_them_and_faults_show_the_failure_screens() {
    let sandbox = Sandbox::start().await;
    let admin = agent_jwt("acme", "alice", "admin");

    // Credentials refused: connecting the account fails, saying so.
    let (status, _) = sandbox
        .send(
            Method::POST,
            "/sandbox/faults",
            None,
            Some(json!({"credentials": "refused"})),
        )
        .await;
    assert_eq!(status, 200);
    let account = sandbox.accounts().await[0].clone();
    let body = json!({"accountSid": account["accountSid"], "authToken": account["authToken"]});
    let (status, refused) = sandbox
        .send(Method::PUT, "/workspace/twilio", Some(&admin), Some(body.clone()))
        .await;
    assert!((400..500).contains(&status), "{status} {refused}");
    // Unreachable: a different failure.
    sandbox
        .send(
            Method::POST,
            "/sandbox/faults",
            None,
            Some(json!({"credentials": "ok", "reachable": false})),
        )
        .await;
    let (status, unreachable) = sandbox
        .send(Method::PUT, "/workspace/twilio", Some(&admin), Some(body.clone()))
        .await;
    assert!(status >= 500, "{status} {unreachable}");
    assert_ne!(unreachable["error"]["code"], refused["error"]["code"]);
    let (status, faults) = sandbox
        .send(Method::POST, "/sandbox/faults", None, Some(json!({"reachable": true})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        faults,
        json!({"credentials": "ok", "reachable": true, "failCalls": false, "badSignatures": false})
    );
    sandbox.connect(0, json!({"callerId": account["numbers"][0]})).await;

    // A Voice token that is not what Twilio would take.
    let voice = sandbox.voice_token(&admin).await;
    let mut forged = voice.clone();
    forged.pop();
    forged.push(if voice.ends_with('A') { 'B' } else { 'A' });
    let (status, body) = sandbox
        .send(
            Method::POST,
            "/sandbox/device/connect",
            Some(&admin),
            Some(json!({"token": forged, "params": {}})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["twilioCode"], 20107);
    // Another agent's token is not this agent's to use.
    let bob = agent_jwt("acme", "bob", "agent");
    let (status, _) = sandbox
        .send(
            Method::POST,
            "/sandbox/device/connect",
            Some(&bob),
            Some(json!({"token": voice, "params": {}})),
        )
        .await;
    assert_eq!(status, 403);
    // No sign-in, no device.
    let (status, _) = sandbox.send(Method::GET, "/sandbox/device/incoming", None, None).await;
    assert_eq!(status, 401);

    // Calls failing: the customer's leg fails, the agent is told.
    sandbox
        .send(Method::POST, "/sandbox/faults", None, Some(json!({"failCalls": true})))
        .await;
    let (_, placed) = sandbox.place(&admin, "+15005550001").await;
    let id = placed["callId"].as_str().unwrap().to_owned();
    let (status, _) = sandbox.connect_device(&admin, &voice, &placed).await;
    assert_eq!(status, 201);
    eventually("the call to fail", || async {
        let call = sandbox.call(&id, &admin).await;
        (call["state"] == "failed").then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_sandbox_routes_exist_only_in_sandbox_mode() {
    let server = ServerProcess::start(&[], &[], HS256_SECRET);
    let response = reqwest::get(format!("{}/sandbox/accounts", server.base)).await.unwrap();
    let status = response.status();
    drop(server);
    assert_eq!(status, 404);
    // SWITCHBOARD_SANDBOX=1 is the flag's twin; `0` is off.
    for (value, expected) in [("1", 200), ("0", 404)] {
        let server = ServerProcess::start(&[], &[("SWITCHBOARD_SANDBOX", value)], HS256_SECRET);
        let status = reqwest::get(format!("{}/sandbox/accounts", server.base))
            .await
            .unwrap()
            .status();
        drop(server);
        assert_eq!(status, expected, "SWITCHBOARD_SANDBOX={value}");
    }
    for route in switchboard::routes::ROUTES {
        assert!(
            !route.path.starts_with("/sandbox"),
            "{} is in the route table",
            route.path
        );
    }
}

/// The README's "Try it without a Twilio account", run as written: its
/// first block starts the server (here: the test's binary, with the
/// README's secret); the others run in one shell, `cargo run … --` standing
/// for this binary. A command that drifts from the API fails here.
#[tokio::test]
async fn the_readme_commands_run_as_written() {
    let readme = std::fs::read_to_string(switchboard_testkit::repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Try it without a Twilio account\n")
        .nth(1)
        .expect("README has a \"Try it without a Twilio account\" section");
    let section = section.split("\n## ").next().unwrap();
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("\n```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 4, "{blocks:?}");
    let start = blocks[0];
    assert!(
        start.contains("--sandbox"),
        "the first block starts the sandbox: {start}"
    );
    let secret = start
        .split("SWITCHBOARD_AUTH_HS256_SECRET='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the first block sets SWITCHBOARD_AUTH_HS256_SECRET='…'");
    let sandbox = Sandbox::start_with_secret(secret).await;
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "set -euo pipefail\ncargo() {{ while [ \"$1\" != \"--\" ]; do shift; done; shift; \"$SWITCHBOARD_BIN\" \"$@\"; }}\n{}\n",
        blocks[1..].join("\n")
    );
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut run = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("SB", &sandbox.server.base)
        .env("SWITCHBOARD_BIN", env!("CARGO_BIN_EXE_switchboard"))
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("bash runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = run.kill();
            panic!("the README's commands did not finish within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "README commands failed:\n{stdout}\n{stderr}");
    // What the section promises the reader sees.
    for shown in [
        "\"state\": \"completed\"",
        "customer-participant-join",
        "\"status\": \"delivered\"",
    ] {
        assert!(stdout.contains(shown), "{shown:?} in:\n{stdout}");
    }
    let audio = std::fs::read(dir.path().join("call.mp3")).expect("the recording was saved");
    assert!(switchboard_twilio_sim::media::mp3_duration_ms(&audio).is_some_and(|ms| ms >= 1000));
}

// ---------------------------------------------------------------------------
// The contract: the simulated Twilio held to Twilio's OpenAPI description

/// Prism's verdict on one request through it, and the answer it checked.
#[derive(Debug, Clone)]
struct Checked {
    method: String,
    path: String,
    request_body: String,
    status: u16,
    body: Value,
    /// Prism's `sl-violations` header: what breaks the spec, request and response.
    violations: Vec<Value>,
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<Checked>>>;

/// Forwards to Prism (in proxy mode, in front of the simulated Twilio) and
/// keeps each verdict.
async fn through_prism(
    axum::extract::State((prism, log)): axum::extract::State<(String, Log)>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut forward = reqwest::Client::new().request(parts.method.clone(), format!("{prism}{target}"));
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.body(body.clone()).send().await.expect("Prism answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let violations = headers
        .get("sl-violations")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<Vec<Value>>(v).ok())
        .unwrap_or_default();
    log.lock().unwrap().push(Checked {
        method: parts.method.to_string(),
        path: target,
        request_body: String::from_utf8_lossy(&body).into_owned(),
        status: status.as_u16(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        violations,
    });
    let mut response = axum::response::Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = status;
    if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type.clone());
    }
    response
}

/// Where the spec, not the sim, is at odds with Twilio: Twilio answers `""`
/// for an unset URL or SID and relative `uri`s (`/2010-04-01/…`), which the
/// spec's `format`/`pattern`/`minLength` refuse; a cleared field is sent
/// empty; and Prism reads a repeated `StatusCallbackEvent` as one string
/// (DESIGN.md); recording media is no route of the spec. Anything else is
/// the sim's (or our client's) fault.
fn spec_gap(violation: &Value, checked: &Checked) -> bool {
    let location: Vec<&str> = violation["location"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let code = violation["code"].as_str().unwrap_or("");
    match location.as_slice() {
        // Recording media is not in the spec (DESIGN.md): only the route is unknown.
        ["request"] => {
            violation["message"] == "Selected route not found"
                && checked.method == "GET"
                && checked.path.contains("/Recordings/")
                && checked.path.ends_with(".mp3")
        }
        ["request", "body", "StatusCallbackEvent"] => code == "type",
        ["request", "body", field] => {
            let form: Vec<(String, String)> = form_urlencoded::parse(checked.request_body.as_bytes())
                .into_owned()
                .collect();
            matches!(code, "format" | "pattern" | "minLength") && form.iter().any(|(k, v)| k == field && v.is_empty())
        }
        ["response", "body", path @ ..] => {
            let value = path
                .iter()
                .try_fold(&checked.body, |value, step| match step.parse::<usize>() {
                    Ok(index) => value.get(index),
                    Err(_) => value.get(*step),
                });
            let text = value.and_then(Value::as_str).unwrap_or("-");
            matches!(code, "format" | "pattern" | "minLength")
                && (text.is_empty() || (code == "format" && text.starts_with("/2010-04-01/")))
        }
        _ => false,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Onboarding, an outbound call with hold, its recording and texts, with
/// every request Switchboard sends and every answer the simulated Twilio
/// gives checked by Prism (proxy mode) against Twilio's OpenAPI description.
#[tokio::test]
async fn every_request_and_answer_of_a_sandbox_session_follows_twilios_spec() {
    let root = switchboard_testkit::repo_root();
    let prism_bin = root.join("node_modules/.bin/prism");
    let spec = root.join("node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json");
    assert!(
        prism_bin.exists() && spec.exists(),
        "Prism and Twilio's OpenAPI description are installed by `npm ci` (scripts/test.sh runs it)"
    );
    let (sim_port, prism_port) = (free_port(), free_port());
    let prism = Command::new(&prism_bin)
        .arg("proxy")
        .arg(&spec)
        .arg(format!("http://127.0.0.1:{sim_port}"))
        .args(["-h", "127.0.0.1", "-p", &prism_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Prism starts");
    let mut prism = KillOnDrop(prism);
    let prism_url = format!("http://127.0.0.1:{prism_port}");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", prism_port)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(90), "Prism did not listen");
        assert!(prism.0.try_wait().unwrap().is_none(), "Prism exited");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let log: Log = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let via = format!("http://{}", listener.local_addr().unwrap());
    let proxy = axum::Router::new()
        .fallback(through_prism)
        .with_state((prism_url, log.clone()));
    tokio::spawn(async move { axum::serve(listener, proxy).await });

    let sim_listen = format!("127.0.0.1:{sim_port}");
    let sandbox = Sandbox::spawn(
        &[
            ("SWITCHBOARD_SANDBOX_TWILIO_LISTEN", &sim_listen),
            ("SWITCHBOARD_SANDBOX_TWILIO_VIA", &via),
        ],
        HS256_SECRET,
    );
    sandbox
        .send(Method::POST, "/sandbox/timers", None, Some(json!({"scale": SCALE})))
        .await;
    let account = sandbox.connect(0, json!({"record": true})).await;
    let number = account["numbers"][0].as_str().unwrap().to_owned();
    let admin = agent_jwt("acme", "alice", "admin");
    sandbox.assign(&admin, &number, &["alice"]).await;
    let voice = sandbox.voice_token(&admin).await;
    let (_, placed) = sandbox.place(&admin, "+15005551020").await;
    let id = placed["callId"].as_str().unwrap().to_owned();
    let (status, _) = sandbox.connect_device(&admin, &voice, &placed).await;
    assert_eq!(status, 201);
    eventually("the customer to answer", || async {
        (sandbox.call(&id, &admin).await["state"] == "in-progress").then_some(())
    })
    .await;
    for hold in [true, false] {
        let (status, body) = sandbox
            .send(
                Method::POST,
                &format!("/calls/{id}/hold"),
                Some(&admin),
                Some(json!({"hold": hold})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    eventually("the recording to be stored", || async {
        let call = sandbox.call(&id, &admin).await;
        call["recordings"]
            .as_object()
            .is_some_and(|r| r.values().any(|r| r["status"] == "stored"))
            .then_some(())
    })
    .await;
    let (status, _) = sandbox
        .send(
            Method::POST,
            "/messages",
            Some(&admin),
            Some(json!({"from": number, "to": CALLER, "body": "Your order is ready"})),
        )
        .await;
    assert_eq!(status, 201);

    let checked = log.lock().unwrap().clone();
    let paths: Vec<String> = checked.iter().map(|c| format!("{} {}", c.method, c.path)).collect();
    for wanted in [
        "/Keys.json",
        "/Applications.json",
        "/IncomingPhoneNumbers/",
        "/Calls.json",
        "/Participants/",
        "/Messages.json",
    ] {
        assert!(
            paths.iter().any(|p| p.contains(wanted)),
            "{wanted} went through Prism: {paths:#?}"
        );
    }
    let broken: Vec<String> = checked
        .iter()
        .flat_map(|c| {
            c.violations
                .iter()
                .filter(|v| !spec_gap(v, c))
                .map(move |v| format!("{} {} ({}): {v}", c.method, c.path, c.status))
        })
        .collect();
    assert!(broken.is_empty(), "what breaks Twilio's spec:\n{}", broken.join("\n"));
}
