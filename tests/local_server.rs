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

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
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
    // The server logs its bound address as a JSON line once it listens.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                && json["message"] == "switchboard listening"
            {
                let _ = tx.send(json["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server did not report its address");
    Server {
        child,
        address,
        _dir: dir,
    }
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
