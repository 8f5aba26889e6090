//! Cold start of every Lambda function: its release binary started under the
//! loopback Lambda Runtime API emulator (`switchboard_testkit::emulator`)
//! with its own sample event (events/<function>/), timed from process start
//! to the response posted back, with the process's peak RSS (`VmHWM`, read
//! while it waits for its next event). The same for a Node.js function that
//! loads Twilio's helper library (bench/node/cold_start.js) and mints a token.
//!
//! Store: a function runs on DynamoDB only, so each runs against moto
//! (`SWITCHBOARD_TEST_MOTO_URL`: DynamoDB, KMS, S3, SQS) as its AWS, with
//! the variables infra/template.yaml gives it. Every run gets a fresh table
//! holding the sample events' world (`MotoWorld::seed_table`), so a function
//! that changes it (`outbound-call` creates a session, `clear` forgets the
//! credentials) finds the same world, and answers the same, every time. The
//! sockets' Management API is a stub in this process that answers 200.
//!
//! moto is much slower than DynamoDB (Python, one request at a time for
//! DynamoDB), so a cold start here carries its round trips. Each function's
//! first run, not timed, goes through a proxy that counts the AWS requests
//! its first event makes (N); moto's median `GetItem` from this process on a
//! warm connection is measured too, and the report gives each cold start
//! both raw and minus N × that median (the budget is checked on the latter;
//! bench/report.py).
//!
//! `cargo bench --bench cold_start` after `cargo build --release`
//! (`scripts/bench.sh` does both). Figures: `target/bench/cold_start.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, Method, StatusCode, header};
use serde_json::{Value, json};
use switchboard::routes;
use switchboard_testkit::bench::*;
use switchboard_testkit::emulator::Emulator;
use switchboard_testkit::moto;

/// Functions whose sample event needs no number, call or recording: their
/// events (events/README.md) presume a connected workspace only.
const CONNECTED_ONLY: &[&str] = &["clear", "token", "configure", "calls", "messages"];
/// `GetItem`s that make moto's median latency (after 5 not counted).
const GET_ITEMS: usize = 50;

fn main() {
    if !benchmarking() {
        // `cargo test --all-targets`: check the emulator hands out an event.
        let emulator = Emulator::start(b"{}".to_vec());
        drop(emulator);
        println!("cold_start: run by scripts/bench.sh (cargo bench), not as a test");
        return;
    }
    let runs: usize = knob("SWITCHBOARD_BENCH_COLD_RUNS", 21);
    let logs = out_dir().join("cold_start");
    std::fs::create_dir_all(&logs).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let moto_url = moto::moto_url();
    let aws = Aws {
        world: runtime.block_on(MotoWorld::create(&moto_url)),
        proxy: runtime.block_on(CountingProxy::start(&moto_url)),
        sockets: runtime.block_on(SocketsStub::start()),
        moto_url,
    };
    let get_item_ms = runtime.block_on(moto_get_item_ms(&aws.world));
    println!("moto GetItem from this process: {get_item_ms:.2} ms median of {GET_ITEMS}");

    let mut results = serde_json::Map::new();
    let mut failed = false;
    for function in routes::functions() {
        match bench_function(&runtime, &aws, function, runs, &logs) {
            Ok(mut summary) => {
                let requests = summary["aws_requests"].as_u64().unwrap_or(0);
                let moto_ms = requests as f64 * get_item_ms;
                summary["moto_ms"] = json!(moto_ms);
                summary["median_minus_moto_ms"] = json!(summary["median_ms"].as_f64().unwrap() - moto_ms);
                print_function(function, &summary);
                results.insert(function.to_owned(), summary);
            }
            Err(error) => {
                eprintln!("cold_start: {function}: {error}");
                failed = true;
            }
        }
    }

    let node = bench_node(runs, &logs);
    failed |= node.is_none();
    let report = json!({
        "runs": runs,
        "moto_get_item_ms": get_item_ms,
        "moto_get_items": GET_ITEMS,
        "functions": results,
        "node": node,
        "failed": failed,
    });
    let path = out_dir().join("cold_start.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("cold_start: figures in {}", path.display());
    if failed {
        std::process::exit(1);
    }
}

/// What the functions talk to: moto with the shared resources, the
/// counting proxy in front of it, the sockets' stub.
struct Aws {
    world: MotoWorld,
    moto_url: String,
    proxy: CountingProxy,
    sockets: SocketsStub,
}

/// `runs` cold starts of `function` (after one not timed, which counts its
/// AWS requests), summarised.
fn bench_function(
    runtime: &tokio::runtime::Runtime,
    aws: &Aws,
    function: &str,
    runs: usize,
    logs: &Path,
) -> Result<Value, String> {
    let binary = release_dir().join(function);
    assert!(
        binary.exists(),
        "{} missing: run `cargo build --release --workspace --bins` first",
        binary.display()
    );
    let (event_name, event) = sample_event(function)?;
    let log = logs.join(format!("{function}.log"));
    let mut samples = Vec::new();
    let mut operations = Vec::new();
    // The first run, not timed, also brings the binary into the page cache.
    for run in 0..=runs {
        let table = runtime.block_on(aws.world.seed_table(!CONNECTED_ONLY.contains(&function)));
        let counted = run == 0;
        let endpoint = if counted { &aws.proxy.url } else { &aws.moto_url };
        let command = lambda_command(&binary, function, aws, &table, endpoint);
        aws.proxy.take();
        aws.sockets.posts.store(0, Ordering::SeqCst);
        let sample = measure(command, &event, &log, true);
        runtime.block_on(aws.world.drop_table(&table));
        let mut sample = sample.map_err(|e| format!("{e} (log: {})", log.display()))?;
        sample.outcome = outcome(&sample.outcome, aws.sockets.posts.load(Ordering::SeqCst));
        if counted {
            operations = aws.proxy.take();
        } else {
            samples.push(sample);
        }
    }
    let mut summary = summarize(&samples).ok_or("no sample")?;
    summary["event"] = json!(event_name);
    summary["aws_requests"] = json!(operations.len());
    summary["aws_operations"] = json!(operations.iter().map(|(op, _)| op).collect::<Vec<_>>());
    // A cross-check of N × GetItem: what moto took for these very requests,
    // on the counting run (timed at the proxy).
    summary["moto_observed_ms"] = json!(operations.iter().map(|(_, ms)| ms).sum::<f64>());
    Ok(summary)
}

fn print_function(function: &str, summary: &Value) {
    println!(
        "cold start {function:<20} {:>7.2} ms median ({:>6.2} ms minus {} moto round trips; moto took {:.1} ms for them \
         once), peak RSS {:>6.1} MiB (max), {} ({})",
        summary["median_ms"].as_f64().unwrap(),
        summary["median_minus_moto_ms"].as_f64().unwrap(),
        summary["aws_requests"],
        summary["moto_observed_ms"].as_f64().unwrap(),
        summary["peak_rss_kb_max"].as_f64().unwrap() / 1024.0,
        summary["outcome"].as_str().unwrap_or(""),
        summary["event"].as_str().unwrap_or(""),
    );
}

/// The function's process as Lambda starts it: the runtime's variables,
/// Switchboard's as infra/template.yaml sets them, and the AWS SDK's (region,
/// credentials) aimed at `endpoint`: moto, or the counting proxy before it.
fn lambda_command(binary: &Path, function: &str, aws: &Aws, table: &str, endpoint: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("SWITCHBOARD_PUBLIC_URL", PUBLIC_URL)
        .env("SWITCHBOARD_AUTH_HS256_SECRET", HS256_SECRET)
        .env("SWITCHBOARD_STORE", "dynamodb")
        .env("SWITCHBOARD_TABLE", table)
        .env("SWITCHBOARD_KMS_KEY_ID", &aws.world.kms_key_id)
        .env("RUST_LOG", "info");
    for (name, value) in function_env(function, aws) {
        command.env(name, value);
    }
    command
}

/// The variables only some functions get (infra/template.yaml).
fn function_env(function: &str, aws: &Aws) -> Vec<(&'static str, String)> {
    let world = &aws.world;
    match function {
        "calls" | "recording-copy" => vec![("SWITCHBOARD_RECORDINGS_BUCKET", world.bucket.clone())],
        "recording-callback" => vec![("SWITCHBOARD_RECORDING_QUEUE_URL", world.queue_url.clone())],
        "token" => vec![
            ("SWITCHBOARD_TOKEN_TTL_SECONDS", "3600".into()),
            (
                "SWITCHBOARD_EVENTS_URL",
                "wss://k7m2p9q4r1.execute-api.eu-west-1.amazonaws.com/live".into(),
            ),
        ],
        "events-default" | "events-fanout" => vec![("SWITCHBOARD_EVENTS_ENDPOINT", aws.sockets.url.clone())],
        _ => vec![],
    }
}

/// The function's sample event: the first file of events/<function>/ in
/// name order, skipping the variants that are refused (a signed-out request,
/// a bad token): the accepted path is the one that does the work.
fn sample_event(function: &str) -> Result<(String, Vec<u8>), String> {
    const REFUSED: &[&str] = &["signed-out", "bad-token"];
    let dir = repo_root().join("events").join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("no sample event: {}: {e}", dir.display()))?
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let file = files
        .iter()
        .find(|p| !REFUSED.iter().any(|r| p.to_string_lossy().contains(r)))
        .or(files.first())
        .ok_or_else(|| format!("no sample event in {}", dir.display()))?;
    let name = format!("{function}/{}", file.file_name().unwrap().to_string_lossy());
    Ok((name, std::fs::read(file).unwrap()))
}

struct Sample {
    millis: f64,
    peak_rss_kb: u64,
    /// The response as posted, until `outcome` says what it means.
    outcome: String,
}

/// Starts `command` against a fresh emulator serving `event`; the time from
/// spawn to the posted response, and the peak RSS once it has answered.
fn measure(mut command: Command, event: &[u8], log: &Path, twilio_api: bool) -> Result<Sample, String> {
    let emulator = Emulator::start(event.to_vec());
    command.env("AWS_LAMBDA_RUNTIME_API", emulator.addr.to_string());
    if twilio_api {
        command.env("SWITCHBOARD_TWILIO_API_URL", format!("http://{}", emulator.addr));
    }
    let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let posted = emulator.wait(Duration::from_secs(20));
    let peak = proc_status_kb(child.id(), "VmHWM:");
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    let posted = posted.ok_or_else(|| format!("no response within 20 s (exit: {exited:?})"))?;
    if !posted.path.ends_with("/response") {
        return Err(format!(
            "the function reported an error on {}: {}",
            posted.path, posted.body
        ));
    }
    if let Some(status) = exited {
        return Err(format!("exited ({status}) instead of waiting for the next event"));
    }
    Ok(Sample {
        millis: (posted.at - started).as_secs_f64() * 1000.0,
        peak_rss_kb: peak.ok_or("no /proc status")?,
        outcome: posted.body,
    })
}

/// What a response means: `HTTP 200` for an API Gateway response (WebSocket
/// routes included), `0 of the batch failed` for an SQS batch, and for the
/// stream's fan-out, which answers `null`, how many sockets it posted to.
fn outcome(body: &str, socket_posts: usize) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return "unparsed response".into();
    };
    if let Some(status) = value.get("statusCode").and_then(Value::as_u64) {
        // A refusal names its error code (`{"error": {"code", …}}`).
        let body = value["body"]
            .as_str()
            .and_then(|b| serde_json::from_str::<Value>(b).ok());
        return match body.as_ref().and_then(|b| b["error"]["code"].as_str()) {
            Some(code) if status >= 400 => format!("HTTP {status} ({code})"),
            _ => format!("HTTP {status}"),
        };
    }
    if let Some(failures) = value.get("batchItemFailures").and_then(Value::as_array) {
        return format!("{} of the batch failed", failures.len());
    }
    if value.is_null() {
        return format!("posted to {socket_posts} socket(s)");
    }
    "response".into()
}

fn summarize(samples: &[Sample]) -> Option<Value> {
    if samples.is_empty() {
        return None;
    }
    let mut millis: Vec<f64> = samples.iter().map(|s| s.millis).collect();
    let mut rss: Vec<f64> = samples.iter().map(|s| s.peak_rss_kb as f64).collect();
    let min = millis.iter().cloned().fold(f64::INFINITY, f64::min);
    let max_rss = rss.iter().cloned().fold(0.0, f64::max);
    let ok = samples.iter().all(|s| s.outcome == samples[0].outcome);
    Some(json!({
        "median_ms": median(&mut millis),
        "min_ms": min,
        "samples_ms": samples.iter().map(|s| (s.millis * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        "peak_rss_kb_median": median(&mut rss),
        "peak_rss_kb_max": max_rss,
        "outcome": if ok { samples[0].outcome.clone() } else { "mixed outcomes".into() },
    }))
}

/// Node.js with Twilio's helper library, the same way (no store, no AWS).
fn bench_node(runs: usize, logs: &Path) -> Option<Value> {
    let node_dir = repo_root().join("bench/node");
    let (_, token_event) = sample_event("token").expect("the token function's event");
    let mut samples = Vec::new();
    let log = logs.join("node.log");
    for run in 0..=runs {
        let mut command = Command::new("node");
        command
            .current_dir(&node_dir)
            .arg("cold_start.js")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_NAME", "token")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
        match measure(command, &token_event, &log, false) {
            Ok(mut sample) if run > 0 => {
                sample.outcome = outcome(&sample.outcome, 0);
                samples.push(sample);
            }
            Ok(_) => {}
            Err(error) => {
                eprintln!("cold_start: node: {error} (log: {})", log.display());
                return None;
            }
        }
    }
    let node = summarize(&samples)?;
    println!(
        "cold start {:<20} {:>7.2} ms median, peak RSS {:>6.1} MiB (max), {}",
        "node (twilio, token)",
        node["median_ms"].as_f64().unwrap(),
        node["peak_rss_kb_max"].as_f64().unwrap() / 1024.0,
        node["outcome"].as_str().unwrap_or("")
    );
    Some(node)
}

// ---------------------------------------------------------------------------
// moto's share

/// moto's own latency: the median of `GET_ITEMS` `GetItem`s of alice's call
/// from this process, on a warm connection.
async fn moto_get_item_ms(world: &MotoWorld) -> f64 {
    let table = world.seed_table(true).await;
    let client = aws_sdk_dynamodb::Client::new(&world.sdk);
    let key = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.into());
    let mut millis = Vec::new();
    for n in 0..GET_ITEMS + 5 {
        let started = Instant::now();
        let item = client
            .get_item()
            .table_name(&table)
            .key("pk", key(&format!("WS#{WORKSPACE}")))
            .key("sk", key(&format!("CALL#{CALL_ID}")))
            .send()
            .await
            .expect("GetItem on moto");
        assert!(item.item.is_some(), "alice's call is in the table");
        if n >= 5 {
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    world.drop_table(&table).await;
    median(&mut millis)
}

/// A pass-through to moto that notes every request it forwards (the AWS
/// operation, from `X-Amz-Target`, or the S3 method): each function's first,
/// untimed run goes through it, so N is what one first event costs in
/// round trips. The timed runs talk to moto directly.
struct CountingProxy {
    url: String,
    state: Arc<Forwarding>,
}

struct Forwarding {
    upstream: String,
    client: reqwest::Client,
    /// Each request forwarded: its operation, and the milliseconds moto took.
    seen: Mutex<Vec<(String, f64)>>,
}

impl CountingProxy {
    async fn start(upstream: &str) -> Self {
        let state = Arc::new(Forwarding {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            seen: Mutex::default(),
        });
        let router = axum::Router::new().fallback(forward).with_state(state.clone());
        let url = serve(router).await;
        Self { url, state }
    }

    /// The requests forwarded since the last call.
    fn take(&self) -> Vec<(String, f64)> {
        std::mem::take(&mut *self.state.seen.lock().unwrap())
    }
}

/// Serves `router` on a free loopback port in the background; its URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn forward(State(proxy): State<Arc<Forwarding>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let operation = match parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        // `DynamoDB_20120810.GetItem`, `TrentService.Decrypt`, `AmazonSQS.SendMessage`
        Some(target) => target.to_owned(),
        None => format!("S3 {}", parts.method),
    };
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let started = Instant::now();
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    proxy.seen.lock().unwrap().push((operation, millis));
    response.body(axum::body::Body::from(body)).unwrap()
}

/// Headers each side of the proxy sets for its own connection.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
    ]
    .contains(name)
}

/// API Gateway's Management API as the functions that post to sockets use
/// it: 200 to every `POST` (a frame) and `DELETE` (a close) of
/// `/@connections/{id}`, the posts counted.
struct SocketsStub {
    url: String,
    posts: Arc<AtomicUsize>,
}

impl SocketsStub {
    async fn start() -> Self {
        let posts = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new().fallback(socket_call).with_state(posts.clone());
        // The stage's path, as SWITCHBOARD_EVENTS_ENDPOINT has it.
        let url = format!("{}/live", serve(router).await);
        Self { url, posts }
    }
}

async fn socket_call(State(posts): State<Arc<AtomicUsize>>, method: Method, uri: http::Uri) -> StatusCode {
    if !uri.path().contains("/@connections/") {
        return StatusCode::NOT_FOUND;
    }
    match method {
        Method::POST => {
            posts.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK
        }
        Method::DELETE => StatusCode::NO_CONTENT,
        _ => StatusCode::METHOD_NOT_ALLOWED,
    }
}
