//! The local server as a user runs it: the real binary, on a free port, on the
//! embedded store in a temporary directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "switchboard-test-secret-0123456789abcdef";

struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent's sign-in token, as the identity provider would issue it.
fn agent_token(sub: &str, workspace: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "workspace_id": workspace, "exp": 4_102_444_800u64}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn start() -> Server {
    start_in(tempfile::tempdir().unwrap())
}

fn start_in(dir: tempfile::TempDir) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0"])
        .env_clear()
        .env("SWITCHBOARD_AUTH_HS256_SECRET", SECRET)
        .env("SWITCHBOARD_DATA_DIR", dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let address = listening_address(&mut child);
    Server {
        child,
        address,
        _dir: dir,
    }
}

/// The address a server started with `--listen 127.0.0.1:0` reports once it
/// listens (a JSON line on its stdout).
pub fn listening_address(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if std::env::var_os("SWITCHBOARD_TEST_SERVER_LOG").is_some() {
                eprintln!("server: {line}");
            }
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                && json["message"] == "switchboard listening"
            {
                let _ = tx.send(json["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the server did not report its address")
}

#[tokio::test]
async fn serves_the_route_table_and_stops_cleanly_on_interrupt() {
    let mut server = start();
    let base = format!("http://{}", server.address);
    let http = reqwest::Client::new();

    let reply = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(reply.status(), 404);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let reply = http.get(format!("{base}/token")).send().await.unwrap();
    assert_eq!(reply.status(), 405);

    let reply = http.post(format!("{base}/token")).send().await.unwrap();
    assert_eq!(reply.status(), 401);

    // A browser dialer on another origin may call (bearer tokens, no cookies).
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/calls"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let reply = http
        .post(format!("{base}/token"))
        .body(vec![b'x'; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 413);

    // Ctrl-C: the process exits on its own, successfully.
    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "the server did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bad_configuration_is_refused_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0"])
        .env_clear()
        .env("SWITCHBOARD_DATA_DIR", dir.path())
        .env("SWITCHBOARD_AUTH_HS256_SECRET", "too-short")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SWITCHBOARD_AUTH_HS256_SECRET"), "{stderr}");
}

/// A recording stored by the local server's own adapters, then played back by
/// the running binary with `Range`, as a browser's `<audio>` seeks.
#[tokio::test]
async fn local_recordings_play_back_with_range_requests() {
    use secrecy::SecretString;
    use switchboard::ids::{AgentId, WorkspaceId};
    use switchboard::model::calls::{CallSession, Direction};
    use switchboard::model::recordings::{Recording, RecordingStatus};
    use switchboard::ports::RecordingStore;
    use switchboard::ports::SecretBox;
    use switchboard::ports::{CallStore, WorkspaceStore};
    use switchboard::time::Timestamp;
    use switchboard_embedded::EmbeddedStore;
    use switchboard_embedded::LocalRecordings;
    use switchboard_embedded::LocalSecretBox;

    let dir = tempfile::tempdir().unwrap();
    let audio: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let (call, path) = {
        let store = EmbeddedStore::open(&dir.path().join("store")).unwrap();
        let secrets = LocalSecretBox::open_or_create(&dir.path().join("secret.key")).unwrap();
        let ws = WorkspaceId::parse("acme").unwrap();
        let mut workspace = switchboard::workspace::Workspace::new(ws.clone());
        workspace.twilio = Some(switchboard::workspace::TwilioAccount {
            account_sid: format!("AC{}", "1".repeat(32)).parse().unwrap(),
            auth_token: secrets
                .seal(&ws, &SecretString::from("token".to_owned()))
                .await
                .unwrap(),
            api_key: None,
            twiml_app_sid: None,
        });
        store.put_workspace(&workspace).await.unwrap();
        let session = CallSession::new(
            ws.clone(),
            Direction::Inbound,
            Some(AgentId::parse("alice").unwrap()),
            "+1".into(),
            "+2".into(),
            Timestamp::now(),
        );
        store.create_call(&session).await.unwrap();
        let mut recording = Recording {
            sid: format!("RE{}", "2".repeat(32)).parse().unwrap(),
            status: RecordingStatus::Stored,
            source: Some("RecordVerb".into()),
            channels: Some(1),
            duration_seconds: Some(1),
            object_key: None,
            size: Some(audio.len() as u64),
            sha256: None,
            content_type: Some("audio/mpeg".into()),
            failed_attempts: 0,
            last_error: None,
            twilio_deleted: false,
            received_at: Timestamp::now(),
            stored_at: Some(Timestamp::now()),
        };
        let files = LocalRecordings::new(dir.path().join("recordings"));
        let key = recording.key(&ws, &session.id);
        recording.object_key = Some(key.object_key());
        let mut upload = files.begin(&key, "audio/mpeg").await.unwrap();
        upload.write(bytes::Bytes::from(audio.clone())).await.unwrap();
        upload.finish().await.unwrap();
        store.put_recording(&ws, &session.id, &recording).await.unwrap();
        (session.id.to_string(), format!("/calls/{}/recording", session.id))
    };

    let server = start_in(dir);
    let base = format!("http://{}", server.address);
    let token = agent_token("alice", "acme");
    let http = reqwest::Client::new();
    let whole = http
        .get(format!("{base}{path}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "audio/mpeg");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap(), audio);

    let part = http
        .get(format!("{base}{path}"))
        .bearer_auth(&token)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", audio.len())
    );
    assert_eq!(part.bytes().await.unwrap(), audio[100..200]);

    let other = agent_token("mallory", "globex");
    let denied = http
        .get(format!("{base}{path}"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 404, "call {call}");
}

/// Every write the server answered is on disk, even when the process is
/// killed at once (SIGKILL, no shutdown): the embedded store commits writes
/// in groups, and answers none before its group's durable commit.
#[tokio::test]
async fn answered_writes_survive_the_process_being_killed() {
    use switchboard::ids::{AgentId, WorkspaceId};
    use switchboard::model::calls::{CallSession, Direction};
    use switchboard::ports::CallStore;
    use switchboard::time::Timestamp;
    use switchboard_embedded::EmbeddedStore;

    const CALLS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let ws = WorkspaceId::parse("acme").unwrap();
    let ids = {
        let store = EmbeddedStore::open(&store_dir).unwrap();
        let mut ids = Vec::new();
        for _ in 0..CALLS {
            let session = CallSession::new(
                ws.clone(),
                Direction::Outbound,
                Some(AgentId::parse("alice").unwrap()),
                "+14155550100".into(),
                "+14155550123".into(),
                Timestamp::now(),
            );
            store.create_call(&session).await.unwrap();
            ids.push(session.id);
        }
        ids
    };

    let mut server = start_in(dir);
    let base = format!("http://{}", server.address);
    let token = agent_token("alice", "acme");
    let http = reqwest::Client::new();
    // All at once, so that they share durable commits.
    let answers = futures_util::future::join_all(ids.iter().map(|id| {
        http.patch(format!("{base}/calls/{id}"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"notes": format!("notes of {id}")}))
            .send()
    }))
    .await;
    for answer in answers {
        assert_eq!(answer.unwrap().status(), 200);
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let store = EmbeddedStore::open(&store_dir).unwrap();
    for id in &ids {
        let session = store.get_call(&ws, id).await.unwrap().unwrap();
        assert_eq!(
            session.notes.as_deref(),
            Some(format!("notes of {id}").as_str()),
            "call {id}"
        );
    }
}
