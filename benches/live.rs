//! Live events on the local server (`GET /events`), with the clients in this
//! process and the release `switchboard` binary serving ten workspaces, each
//! connected to Twilio (its own account and Auth Token) with outbound calls:
//!
//! - latency: `SWITCHBOARD_BENCH_LIVE_SOCKETS` sockets (1,000) spread over
//!   the workspaces, while signed status callbacks arrive at a steady
//!   `SWITCHBOARD_BENCH_LIVE_RATE` (200 a second) for
//!   `SWITCHBOARD_BENCH_LIVE_SECONDS` (30, after 2 s of warm-up). Each
//!   callback moves one call a step (`initiated`, `ringing`, `in-progress`,
//!   round robin over every call, so a call's next step comes a round
//!   later), so each makes a change, a frame on every socket of its
//!   workspace (a call's first also notes its leg: one frame more). Timed
//!   per callback: from just before it is sent to its frame (its call, the
//!   state it moved to) arriving on one chosen socket of the workspace (the
//!   probe); every other socket is read too, and must read as many frames as
//!   its probe. A callback whose frame never came is lost.
//! - memory: `SWITCHBOARD_BENCH_IDLE_SOCKETS` (10,000) idle sockets held by a
//!   fresh server: its `VmRSS` before and with them, and after each has
//!   answered one ping.
//!
//! `cargo bench --bench live` after `cargo build --release`
//! (`scripts/bench.sh` does both). Figures: `target/bench/live.json`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_testkit::bench::*;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const WORKSPACES: u32 = 10;
/// The customer leg's progress, one callback a step: the status Twilio
/// sends, and the call's state it moves to (what the frame says).
const PROGRESS: [(&str, &str); 3] = [
    ("initiated", "dialing"),
    ("ringing", "ringing"),
    ("in-progress", "in-progress"),
];
const WARM_UP_SECONDS: u64 = 2;
/// How long frames may still arrive after the last callback.
const DRAIN: Duration = Duration::from_secs(2);
/// What the server is given to settle before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);
/// Sockets opening at once.
const CONNECTING: usize = 64;

struct Knobs {
    seconds: u64,
    rate: u64,
    sockets: u64,
    idle: u64,
}

fn main() {
    if !benchmarking() {
        println!("live: run by scripts/bench.sh (cargo bench), not as a test");
        return;
    }
    let knobs = Knobs {
        seconds: knob("SWITCHBOARD_BENCH_LIVE_SECONDS", 30),
        rate: knob("SWITCHBOARD_BENCH_LIVE_RATE", 200),
        // At least one a workspace: each workspace's first socket is its probe.
        sockets: knob("SWITCHBOARD_BENCH_LIVE_SOCKETS", 1_000).max(u64::from(WORKSPACES)),
        idle: knob("SWITCHBOARD_BENCH_IDLE_SOCKETS", 10_000),
    };
    // Both ends of every socket are open files: the clients here, the
    // server's in its process (which inherits this limit).
    raise_open_files(knobs.sockets.max(knobs.idle) + 1_024);
    let out = out_dir().join("live");
    std::fs::create_dir_all(&out).unwrap();

    let tenants: Vec<Tenant> = (0..WORKSPACES).map(Tenant::numbered).collect();
    let callbacks = (WARM_UP_SECONDS + knobs.seconds) * knobs.rate;
    let calls = callbacks.div_ceil(PROGRESS.len() as u64 * u64::from(WORKSPACES)) as u32;
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    seed_tenants_data_dir(&data, PUBLIC_URL, &tenants, calls);

    let memory = idle_memory(&knobs, &data, &out, &tenants);
    let latency = event_latency(&knobs, &data, &out, &Plan { tenants, calls });
    let report = json!({ "workspaces": WORKSPACES, "latency": latency, "idle": memory });
    let path = out_dir().join("live.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("live: figures in {}", path.display());
    if latency["http_errors"].as_u64() != Some(0) {
        eprintln!("live: callbacks were not answered 200 (target/bench/live/server-latency.log)");
        std::process::exit(1);
    }
}

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// The `i`-th socket's URL: signed in as agent `i` of workspace `i mod 10`.
fn socket_url(address: &str, tenants: &[Tenant], i: u64) -> String {
    let tenant = &tenants[(i % tenants.len() as u64) as usize];
    format!(
        "ws://{address}/events?token={}",
        agent_token(&tenant.id, &format!("agent-{i}"))
    )
}

/// Opens a socket per URL, `CONNECTING` at a time. Small buffers: the
/// defaults (128 KiB each way) times 10,000 would be this process's
/// gigabytes, for frames of a few hundred bytes.
async fn connect_all(urls: Vec<String>) -> Vec<Socket> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    futures_util::stream::iter(urls)
        .map(|url| async move {
            let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                .await
                .expect("a live events socket");
            socket
        })
        .buffer_unordered(CONNECTING)
        .collect()
        .await
}

// ---------------------------------------------------------------------------
// Memory: idle sockets

/// The server's resident memory idle, then holding `knobs.idle` idle
/// sockets, then after each has answered a ping.
fn idle_memory(knobs: &Knobs, data: &Path, out: &Path, tenants: &[Tenant]) -> Value {
    let server = LocalServer::start(data, &free_address(), &out.join("server-idle.log"), "info");
    std::thread::sleep(SETTLE);
    let idle_kb = server.rss_kb();
    let clients = runtime(2);
    let urls = (0..knobs.idle)
        .map(|i| socket_url(&server.address, tenants, i))
        .collect();
    let started = Instant::now();
    let mut sockets = clients.block_on(connect_all(urls));
    let connect_seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let held_kb = server.rss_kb();
    let pongs = clients.block_on(ping_all(&mut sockets));
    let pinged_kb = server.rss_kb();
    drop(server);
    drop(sockets);

    let growth_mb = (held_kb as f64 - idle_kb as f64) * 1024.0 / 1e6;
    println!(
        "live events, {} idle sockets (opened in {connect_seconds:.1} s): server RSS {:.1} → {:.1} MB, \
         +{growth_mb:.1} MB ({:.1} KiB a socket); after a ping each ({pongs} pongs): {:.1} MB",
        knobs.idle,
        idle_kb as f64 * 1024.0 / 1e6,
        held_kb as f64 * 1024.0 / 1e6,
        (held_kb as f64 - idle_kb as f64) / knobs.idle.max(1) as f64,
        pinged_kb as f64 * 1024.0 / 1e6,
    );
    json!({
        "sockets": knobs.idle,
        "connect_seconds": connect_seconds,
        "server_rss_idle_kb": idle_kb,
        "server_rss_kb": held_kb,
        "growth_mb": growth_mb,
        "per_socket_kb": (held_kb as f64 - idle_kb as f64) / knobs.idle.max(1) as f64,
        "pongs": pongs,
        "server_rss_after_ping_kb": pinged_kb,
    })
}

/// Pings every socket; how many answered `{"type":"pong"}` within 10 s.
async fn ping_all(sockets: &mut [Socket]) -> usize {
    futures_util::stream::iter(sockets.iter_mut())
        .map(ping)
        .buffer_unordered(256)
        .filter(|answered| std::future::ready(*answered))
        .count()
        .await
}

async fn ping(socket: &mut Socket) -> bool {
    if socket.send(Message::text(r#"{"action":"ping"}"#)).await.is_err() {
        return false;
    }
    let pong = async {
        while let Some(Ok(message)) = socket.next().await {
            if message.to_text().is_ok_and(|text| text.contains(r#""pong""#)) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(10), pong)
        .await
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Latency: callbacks in, frames out

/// Which callbacks are sent: round robin over every call of every
/// workspace, each call one step further each round.
struct Plan {
    tenants: Vec<Tenant>,
    /// Calls per workspace.
    calls: u32,
}

/// The `index`-th callback of the plan.
struct Callback {
    index: u64,
    tenant: usize,
    call_id: String,
    call_sid: String,
    status: &'static str,
    /// The state the call moves to: what its frame must say.
    state: &'static str,
    sequence: u32,
}

impl Plan {
    fn callback(&self, index: u64) -> Callback {
        let workspaces = self.tenants.len() as u64;
        let round_size = workspaces * u64::from(self.calls);
        let step = (index / round_size) as usize;
        let call = index % round_size;
        let tenant = (call % workspaces) as usize;
        let (call_id, call_sid) = self.tenants[tenant].call((call / workspaces) as u32);
        let (status, state) = PROGRESS[step];
        Callback {
            index,
            tenant,
            call_id,
            call_sid,
            status,
            state,
            sequence: step as u32 + 1,
        }
    }
}

/// What the probes saw of the callbacks.
#[derive(Default)]
struct Record {
    /// Callbacks sent whose frame has not come yet, by call id.
    pending: HashMap<String, Pending>,
    /// The first measured callback (the ones before are the warm-up).
    first_measured: u64,
    /// Per measured callback, the milliseconds from sending to its frame.
    latencies: Vec<Option<f64>>,
    /// Per measured callback, the milliseconds from sending to its answer:
    /// how much of the latency is the webhook's own (a durable write).
    answers: Vec<f64>,
    /// Frames that matched no callback waiting (a callback may make more
    /// than one change: the first of a call's also notes its leg).
    stray: u64,
    /// Frames each workspace's probe read: what every other socket of the
    /// workspace should read too.
    frames: Vec<u64>,
}

struct Pending {
    index: u64,
    state: &'static str,
    sent: Instant,
}

impl Record {
    fn sent(&mut self, callback: &Callback, at: Instant) {
        let pending = Pending {
            index: callback.index,
            state: callback.state,
            sent: at,
        };
        self.pending.insert(callback.call_id.clone(), pending);
    }

    fn answered(&mut self, callback: &Callback, sent: Instant) {
        if callback.index >= self.first_measured {
            self.answers.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
    }

    fn arrived(&mut self, text: &str, at: Instant) {
        let frame: Value = serde_json::from_str(text).unwrap_or_default();
        let call_id = frame["data"]["callId"].as_str().unwrap_or_default();
        let waiting = self.pending.get(call_id);
        if frame["type"] != "call" || waiting.is_none_or(|p| frame["data"]["state"] != p.state) {
            self.stray += 1;
            return;
        }
        let pending = self.pending.remove(call_id).unwrap();
        if let Some(offset) = pending.index.checked_sub(self.first_measured) {
            self.latencies[offset as usize] = Some((at - pending.sent).as_secs_f64() * 1000.0);
        }
    }
}

/// Counters shared by the socket readers and the sender.
#[derive(Default)]
struct Counters {
    /// Frames read by the sockets that are not probes.
    frames: AtomicU64,
    /// Sockets the server closed (or broke) during the run.
    closed: AtomicU64,
    http_errors: AtomicU64,
}

fn event_latency(knobs: &Knobs, data: &Path, out: &Path, plan: &Plan) -> Value {
    let server = LocalServer::start(data, &free_address(), &out.join("server-latency.log"), "info");
    let warm_up = WARM_UP_SECONDS * knobs.rate;
    let measured = knobs.seconds * knobs.rate;
    let record = Arc::new(Mutex::new(Record {
        first_measured: warm_up,
        latencies: vec![None; measured as usize],
        frames: vec![0; plan.tenants.len()],
        ..Record::default()
    }));
    let counters = Arc::new(Counters::default());

    // The probes (socket i of workspace i, i < 10) on a runtime of their
    // own, so their frames do not queue behind the other sockets' reads.
    let probes = runtime(1);
    let clients = runtime(2);
    let workspaces = u64::from(WORKSPACES);
    let urls = |range: std::ops::Range<u64>| range.map(|i| socket_url(&server.address, &plan.tenants, i)).collect();
    let probe_sockets = probes.block_on(connect_all(urls(0..workspaces.min(knobs.sockets))));
    for (workspace, socket) in probe_sockets.into_iter().enumerate() {
        probes.spawn(probe(socket, workspace, record.clone(), counters.clone()));
    }
    for socket in clients.block_on(connect_all(urls(workspaces.min(knobs.sockets)..knobs.sockets))) {
        clients.spawn(drain(socket, counters.clone()));
    }

    let sending = Sending {
        client: reqwest::Client::new(),
        public_url: server.public_url(),
        record: record.clone(),
        counters: counters.clone(),
    };
    let seconds = clients.block_on(sending.run(plan, warm_up + measured, knobs.rate, warm_up));
    std::thread::sleep(DRAIN);

    let frames = counters.frames.load(Ordering::SeqCst);
    let closed = counters.closed.load(Ordering::SeqCst);
    drop(server);
    let record = record.lock().unwrap();
    let expected_frames = expected_frames(&record.frames, knobs.sockets);
    summarize(knobs, &record, seconds, &counters, frames, expected_frames, closed)
}

/// Frames the sockets that are not probes should have read: as many as
/// their workspace's probe, each.
fn expected_frames(probed: &[u64], sockets: u64) -> u64 {
    let workspaces = probed.len() as u64;
    let others = |w: u64| (sockets / workspaces + u64::from(w < sockets % workspaces)).saturating_sub(1);
    (0..workspaces).map(|w| probed[w as usize] * others(w)).sum()
}

fn summarize(
    knobs: &Knobs,
    record: &Record,
    seconds: f64,
    counters: &Counters,
    frames: u64,
    expected_frames: u64,
    closed: u64,
) -> Value {
    let mut latencies: Vec<f64> = record.latencies.iter().flatten().copied().collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let sent = record.latencies.len();
    let lost = sent - latencies.len();
    let http_errors = counters.http_errors.load(Ordering::SeqCst);
    let mut answers = record.answers.clone();
    answers.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rate = sent as f64 / seconds;
    println!(
        "live events, {} sockets, {rate:.0} callbacks/s for {seconds:.1} s: callback to frame median {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms (callback answered: median {:.2} ms, p99 {:.2} ms); {lost} of {sent} lost; \
         {http_errors} callbacks not answered 200; \
         {frames} of {expected_frames} frames read by the other sockets ({} frames on the probes besides the callbacks'); \
         {closed} sockets closed",
        knobs.sockets,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        percentile(&answers, 50.0),
        percentile(&answers, 99.0),
        record.stray,
    );
    json!({
        "sockets": knobs.sockets,
        "rate_per_second": knobs.rate,
        "achieved_per_second": rate,
        "seconds": seconds,
        "warm_up_seconds": WARM_UP_SECONDS,
        "callbacks": sent,
        "received": latencies.len(),
        "lost": lost,
        "median_ms": percentile(&latencies, 50.0),
        "p90_ms": percentile(&latencies, 90.0),
        "p99_ms": percentile(&latencies, 99.0),
        "max_ms": latencies.last(),
        "http_errors": http_errors,
        "answer_median_ms": percentile(&answers, 50.0),
        "answer_p99_ms": percentile(&answers, 99.0),
        "frames_read": frames,
        "frames_expected": expected_frames,
        "stray_frames": record.stray,
        "sockets_closed": closed,
    })
}

/// A probe: notes when each frame arrives, first thing.
async fn probe(mut socket: Socket, workspace: usize, record: Arc<Mutex<Record>>, counters: Arc<Counters>) {
    while let Some(Ok(message)) = socket.next().await {
        let at = Instant::now();
        match message {
            Message::Text(text) => {
                let mut record = record.lock().unwrap();
                record.frames[workspace] += 1;
                record.arrived(&text, at);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    counters.closed.fetch_add(1, Ordering::SeqCst);
}

/// Any other socket: reads and counts its frames, as a browser would take them.
async fn drain(mut socket: Socket, counters: Arc<Counters>) {
    while let Some(Ok(message)) = socket.next().await {
        match message {
            Message::Text(_) => {
                counters.frames.fetch_add(1, Ordering::Relaxed);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    counters.closed.fetch_add(1, Ordering::SeqCst);
}

/// The callbacks' sender: a steady ticker, each callback its own task over
/// the client's few pooled connections, so a slow answer never delays the
/// next callback.
struct Sending {
    client: reqwest::Client,
    public_url: String,
    record: Arc<Mutex<Record>>,
    counters: Arc<Counters>,
}

impl Sending {
    /// Sends `count` callbacks at `rate` a second; the seconds the measured
    /// ones (from `first_measured` on) took to send.
    async fn run(&self, plan: &Plan, count: u64, rate: u64, first_measured: u64) -> f64 {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let mut tasks = tokio::task::JoinSet::new();
        let mut measuring_since = Instant::now();
        for index in 0..count {
            ticker.tick().await;
            if index == first_measured {
                measuring_since = Instant::now();
            }
            tasks.spawn(self.send(plan, plan.callback(index)));
        }
        // Through the end of the last one's tick.
        let seconds = measuring_since.elapsed().as_secs_f64() + 1.0 / rate as f64;
        while tasks.join_next().await.is_some() {}
        seconds
    }

    /// One signed callback, timed from just before it is sent.
    fn send(&self, plan: &Plan, callback: Callback) -> impl Future<Output = ()> + Send + 'static {
        let tenant = &plan.tenants[callback.tenant];
        let path = customer_callback_path(&callback.call_id);
        let params = tenant.callback_params(&callback.call_sid, callback.status, callback.sequence);
        let url = format!("{}{path}", self.public_url);
        let request = signed_form_post(&self.client, &url, &params, &tenant.auth_token);
        let (record, counters) = (self.record.clone(), self.counters.clone());
        async move {
            let sent = Instant::now();
            record.lock().unwrap().sent(&callback, sent);
            let answered = match request.send().await {
                Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            if !answered {
                counters.http_errors.fetch_add(1, Ordering::SeqCst);
            }
            record.lock().unwrap().answered(&callback, sent);
        }
    }
}
