//! The local server under load on loopback: signed status callbacks per
//! second and their p99 latency, measured by `wrk` (Debian's package) with a
//! Lua script that cycles through pre-signed requests.
//!
//! The release `switchboard` binary serves a seeded data directory with
//! `CALLS` outbound calls; the requests are call progress callbacks of their
//! customer legs (`initiated`, `ringing`, `in-progress`, then more with
//! fresh sequence numbers), each signed as Twilio signs it and each new to
//! the server: every one writes a timeline event (a durable commit), and the
//! first of each status moves its call. `wrk`'s threads take turns through
//! them, and the measured run starts past the warm-up's, so no request is
//! sent twice while there are fresh ones left. Every one must be answered
//! 200; any other status fails the run.
//!
//! In `SWITCHBOARD_BENCH_LOAD_PAIRS` (3) pairs of runs, each on a fresh copy
//! of the data and a fresh server: with no live events socket connected
//! (the figures as before live events), then with
//! `SWITCHBOARD_BENCH_LOAD_SOCKETS` (1,000) connected and idle, spread over
//! ten workspaces, acme's among them. Each side is reported by its median
//! run. Alternating on the same disk, the two sides compare better than one
//! run with an older figure (runs a day apart differed by 30%, README
//! "Performance"), and better than one pair (one pair measured 90% and
//! another 110% the same morning). Each run also takes the server's CPU
//! time per callback (user and system, `/proc/<pid>/stat`): on two shared
//! cores, runs of the very same server differ by up to 23% in throughput
//! and by about a tenth in CPU time a callback, so that is the figure that
//! says what holding the sockets costs, and the one the budget compares.
//! The measured run's callbacks change no call's state (the warm-up's moved
//! them all), so once the warm-up's frames have all arrived the sockets get
//! no frame while it runs (counted: `frames_during_run`): what they cost is
//! being held.
//!
//! `cargo bench --bench load` after `cargo build --release` (`scripts/bench.sh`
//! does both). Figures: `target/bench/load.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_testkit::bench::*;

/// Calls the callbacks are spread over, and callbacks per call: more
/// distinct requests than a run sends (10 s at well over 10,000 a second).
const CALLS: u32 = 400;
const CALLBACKS_PER_CALL: u32 = 500;
/// Where in the list the measured run starts (the warm-up starts at 0).
const RUN_STARTS_AT: u32 = 40_000;
/// The workspaces the idle sockets are signed in to.
const SOCKET_WORKSPACES: u32 = 10;

struct Knobs {
    seconds: u64,
    connections: u64,
    threads: u64,
    sockets: u64,
    /// Runs with no socket and with idle sockets, alternating.
    pairs: u64,
    rust_log: String,
}

fn main() {
    if !benchmarking() {
        println!("load: run by scripts/bench.sh (cargo bench), not as a test");
        return;
    }
    let knobs = Knobs {
        seconds: knob("SWITCHBOARD_BENCH_LOAD_SECONDS", 10),
        connections: knob("SWITCHBOARD_BENCH_LOAD_CONNECTIONS", 32),
        threads: knob("SWITCHBOARD_BENCH_LOAD_THREADS", 2),
        sockets: knob("SWITCHBOARD_BENCH_LOAD_SOCKETS", 1_000),
        pairs: knob("SWITCHBOARD_BENCH_LOAD_PAIRS", 3).max(1),
        rust_log: knob("SWITCHBOARD_BENCH_LOAD_LOG", "info".to_owned()),
    };
    raise_open_files(knobs.sockets + 1_024);
    let out = out_dir().join("load");
    std::fs::create_dir_all(&out).unwrap();

    // Both servers listen on this address: the requests are signed for it.
    let address = free_address();
    let scratch = tempfile::tempdir().unwrap();
    let template = scratch.path().join("template");
    seed_data_dir(&template, &format!("http://{address}"), true, CALLS);
    let script = write_wrk_script(&out, &address, knobs.threads);

    // Alternating runs, so a slow stretch of the shared disk or CPU lands on
    // both sides; each side is reported by its median run.
    let mut none = Vec::new();
    let mut idle = Vec::new();
    for pair in 0..knobs.pairs {
        none.push(run(&knobs, &script, &address, &template, 0, pair));
        if knobs.sockets > 0 {
            idle.push(run(&knobs, &script, &address, &template, knobs.sockets, pair));
        }
    }
    let errors: u64 = none.iter().chain(&idle).map(|r| r["errors"].as_u64().unwrap()).sum();
    let none_cpu = median(&mut figures(&none, "server_cpu_us"));
    let none_runs = figures(&none, "per_second");
    let mut report = median_run(none);
    report["runs_per_second"] = json!(none_runs);
    report["server_cpu_us_median"] = json!(none_cpu);
    if !idle.is_empty() {
        let idle_cpu = median(&mut figures(&idle, "server_cpu_us"));
        let idle_runs = figures(&idle, "per_second");
        let mut idle = median_run(idle);
        idle["runs_per_second"] = json!(idle_runs);
        idle["server_cpu_us_median"] = json!(idle_cpu);
        report["idle_vs_none"] = json!(idle["per_second"].as_f64().unwrap() / report["per_second"].as_f64().unwrap());
        report["idle_cpu_vs_none"] = json!(idle_cpu / none_cpu);
        report["with_idle_sockets"] = idle;
    }
    let path = out_dir().join("load.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("load: figures in {}", path.display());
    if errors > 0 {
        eprintln!("load: {errors} requests were not answered 2xx (target/bench/load/server*.log)");
        std::process::exit(1);
    }
}

fn figures(runs: &[Value], key: &str) -> Vec<f64> {
    runs.iter().map(|r| r[key].as_f64().unwrap()).collect()
}

/// The run with the median throughput (the lower middle one of an even count).
fn median_run(mut runs: Vec<Value>) -> Value {
    runs.sort_by(|a, b| {
        a["per_second"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["per_second"].as_f64().unwrap())
    });
    runs.swap_remove((runs.len() - 1) / 2)
}

/// The requests, one per line (path, form, signature), signed for the URL
/// the server checks against; sequence-major, so calls interleave. And the
/// Lua script that has `wrk` send them and print its figures as JSON.
fn write_wrk_script(out: &Path, address: &str, threads: u64) -> PathBuf {
    let public_url = format!("http://{address}");
    let acme = Tenant::acme();
    let mut lines = String::new();
    for sequence in 1..=CALLBACKS_PER_CALL {
        let status = ["initiated", "ringing", "in-progress"][(sequence.min(3) - 1) as usize];
        for n in 0..CALLS {
            let (call_id, call_sid) = acme.call(n);
            let path = customer_callback_path(&call_id);
            let params = acme.callback_params(&call_sid, status, sequence);
            let signature = acme.sign(&format!("{public_url}{path}"), &params);
            let _ = writeln!(lines, "{path}\t{}\t{signature}", form(&params));
        }
    }
    let requests = out.join("status_callbacks.txt");
    std::fs::write(&requests, lines).unwrap();
    let mut lua = format!(
        r#"local requests = {{}}
for line in io.lines({requests:?}) do
  local path, body, signature = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
  requests[#requests + 1] = {{ path, body, signature }}
end
local threads = {threads}
local next_id = 0
setup = function(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
-- Thread `id` sends requests start + id, start + id + threads, ...
init = function(args)
  i = tonumber(args[1] or "0") + id
end
request = function()
  local r = requests[i % #requests + 1]
  i = i + threads
  return wrk.format("POST", r[1], {{
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = r[3],
  }}, r[2])
end
"#
    );
    let _ = write!(
        lua,
        r#"
done = function(summary, latency, requests)
  io.write(string.format(
    "WRK_JSON {{\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d," ..
    "\"non_2xx\":%d,\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"timeouts\":%d}}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"#
    );
    let script = out.join("status_callbacks.lua");
    std::fs::write(&script, lua).unwrap();
    script
}

/// One measurement: a fresh copy of the data, a fresh server, `sockets`
/// idle live events sockets held open, a warm-up pass, the measured run.
fn run(knobs: &Knobs, script: &Path, address: &str, template: &Path, sockets: u64, pair: u64) -> Value {
    let scratch = template.with_file_name(format!("data-{sockets}-{pair}"));
    copy_dir(template, &scratch);
    let log = out_dir()
        .join("load")
        .join(format!("server-{sockets}-sockets-{pair}.log"));
    let server = LocalServer::start(&scratch, address, &log, &knobs.rust_log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let held = runtime.block_on(hold_sockets(address, sockets));

    // A short pass first (pools and caches warm), then the measured run on
    // requests the warm-up did not send.
    let warm = wrk(knobs, script, address, 2, 0);
    let frames_before = settled(&held.frames);
    let cpu_before = server.cpu_seconds();
    let measured = wrk(knobs, script, address, knobs.seconds, RUN_STARTS_AT);
    let cpu_seconds = server.cpu_seconds() - cpu_before;
    let frames = held.frames.load(Ordering::SeqCst) - frames_before;
    let closed = held.closed.load(Ordering::SeqCst);

    drop(server);
    drop(runtime);
    let mut summary = summarize(knobs, sockets, &warm, &measured, closed);
    summary["server_cpu_us"] = json!(cpu_seconds * 1e6 / summary["requests"].as_f64().unwrap());
    summary["frames_during_run"] = json!(frames);
    summary
}

fn summarize(knobs: &Knobs, sockets: u64, warm: &Value, run: &Value, closed: u64) -> Value {
    let requests = run["requests"].as_f64().unwrap();
    let per_second = requests / (run["duration_us"].as_f64().unwrap() / 1e6);
    let errors: u64 = ["non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts"]
        .iter()
        .map(|k| run[*k].as_u64().unwrap_or(0) + warm[*k].as_u64().unwrap_or(0))
        .sum();
    let ms = |key: &str| run[key].as_f64().unwrap() / 1000.0;
    println!(
        "local server, {sockets} idle sockets: {per_second:.0} signed status callbacks/s, p50 {:.2} ms, p99 {:.2} ms, \
         {errors} errors ({} connections, {} s){}",
        ms("p50_us"),
        ms("p99_us"),
        knobs.connections,
        knobs.seconds,
        if closed > 0 {
            format!("; {closed} sockets closed by the server")
        } else {
            String::new()
        }
    );
    json!({
        "seconds": knobs.seconds,
        "connections": knobs.connections,
        "threads": knobs.threads,
        "sockets": sockets,
        "sockets_closed": closed,
        "requests": requests,
        "per_second": per_second,
        "p50_ms": ms("p50_us"),
        "p90_ms": ms("p90_us"),
        "p99_ms": ms("p99_us"),
        "max_ms": ms("max_us"),
        "errors": errors,
        "wrk": run,
        "warm_up": warm,
    })
}

fn wrk(knobs: &Knobs, script: &Path, address: &str, seconds: u64, start: u32) -> Value {
    let output = Command::new("wrk")
        .arg(format!("-t{}", knobs.threads))
        .arg(format!("-c{}", knobs.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(script)
        .arg(format!("http://{address}/"))
        .arg("--")
        .arg(start.to_string())
        .output()
        .expect("wrk (apt-get install wrk; scripts/bench.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK_JSON "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no figures: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}

/// The count once it has stopped moving for a quarter of a second (at most
/// five seconds): the warm-up's last changes are still being fanned out to
/// the sockets when `wrk` returns.
fn settled(count: &AtomicU64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut last = count.load(Ordering::SeqCst);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let now = count.load(Ordering::SeqCst);
        if now == last || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Sockets held open on the runtime that connected them.
struct Held {
    /// How many the server closed (or broke) while they were held.
    closed: Arc<AtomicU64>,
    /// Frames they received, all together.
    frames: Arc<AtomicU64>,
}

/// `count` live events sockets, signed in round robin to acme and nine
/// other workspaces, each read (and its frames dropped) until it closes.
async fn hold_sockets(address: &str, count: u64) -> Held {
    let closed = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let workspaces: Vec<String> = std::iter::once(WORKSPACE.to_owned())
        .chain((1..SOCKET_WORKSPACES).map(|n| Tenant::numbered(n).id))
        .collect();
    let urls: Vec<String> = (0..count)
        .map(|i| {
            let workspace = &workspaces[(i % u64::from(SOCKET_WORKSPACES)) as usize];
            format!(
                "ws://{address}/events?token={}",
                agent_token(workspace, &format!("agent-{i}"))
            )
        })
        .collect();
    let sockets: Vec<_> = futures_util::stream::iter(urls)
        .map(|url| async move { tokio_tungstenite::connect_async(url).await })
        .buffer_unordered(50)
        .collect()
        .await;
    for socket in sockets {
        let (mut socket, _) = socket.expect("a live events socket");
        let (closed, frames) = (closed.clone(), frames.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if message.is_close() {
                    break;
                }
                frames.fetch_add(1, Ordering::Relaxed);
            }
            closed.fetch_add(1, Ordering::SeqCst);
        });
    }
    Held { closed, frames }
}
