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
//! `cargo bench --bench load` after `cargo build --release` (`scripts/bench.sh`
//! does both). Figures: `target/bench/load.json`.

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_testkit::bench::*;

/// Calls the callbacks are spread over, and callbacks per call: more
/// distinct requests than a run sends (10 s at well over 10,000 a second).
const CALLS: u32 = 400;
const CALLBACKS_PER_CALL: u32 = 500;
/// Where in the list the measured run starts (the warm-up starts at 0).
const RUN_STARTS_AT: u32 = 40_000;

fn main() {
    if !benchmarking() {
        println!("load: run by scripts/bench.sh (cargo bench), not as a test");
        return;
    }
    let seconds: u64 = env_or("SWITCHBOARD_BENCH_LOAD_SECONDS", 10);
    let connections: u64 = env_or("SWITCHBOARD_BENCH_LOAD_CONNECTIONS", 32);
    let threads: u64 = env_or("SWITCHBOARD_BENCH_LOAD_THREADS", 2);
    let out = out_dir().join("load");
    std::fs::create_dir_all(&out).unwrap();

    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    let public_url = format!("http://{address}");
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    seed_data_dir(&data, &public_url, true, CALLS);

    // The requests, one per line (path, form, signature), signed for the URL
    // the server checks against; sequence-major, so calls interleave.
    let mut lines = String::new();
    for sequence in 1..=CALLBACKS_PER_CALL {
        let status = ["initiated", "ringing", "in-progress"][(sequence.min(3) - 1) as usize];
        for n in 0..CALLS {
            let (call_id, call_sid) = extra_call(n);
            let path = customer_callback_path(&call_id);
            let params = customer_callback_params(&call_sid, status, sequence);
            let signature = sign(&format!("{public_url}{path}"), &params);
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

    let log = std::fs::File::create(out.join("server.log")).unwrap();
    let mut server = Command::new(release_dir().join("switchboard"))
        .arg("--listen")
        .arg(&address)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SWITCHBOARD_PUBLIC_URL", &public_url)
        .env("SWITCHBOARD_AUTH_HS256_SECRET", HS256_SECRET)
        .env("SWITCHBOARD_STORE", "embedded")
        .env("SWITCHBOARD_DATA_DIR", &data)
        .env("SWITCHBOARD_TWILIO_API_URL", "http://127.0.0.1:9")
        .env(
            "RUST_LOG",
            std::env::var("SWITCHBOARD_BENCH_LOAD_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start target/release/switchboard (cargo build --release first)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the local server did not listen on {address}"
        );
        assert!(
            server.try_wait().unwrap().is_none(),
            "the local server exited (target/bench/load/server.log)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let wrk = |seconds: u64, start: u32| -> Value {
        let output = Command::new("wrk")
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{seconds}s"))
            .arg("--timeout")
            .arg("5s")
            .arg("-s")
            .arg(&script)
            .arg(format!("{public_url}/"))
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
    };
    // A short pass first (pools and caches warm), then the measured run on
    // requests the warm-up did not send.
    let warm = wrk(2, 0);
    let run = wrk(seconds, RUN_STARTS_AT);
    let _ = server.kill();
    let _ = server.wait();

    let requests = run["requests"].as_f64().unwrap();
    let per_second = requests / (run["duration_us"].as_f64().unwrap() / 1e6);
    let errors: u64 = ["non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts"]
        .iter()
        .map(|k| run[*k].as_u64().unwrap_or(0) + warm[*k].as_u64().unwrap_or(0))
        .sum();
    let report = json!({
        "seconds": seconds,
        "connections": connections,
        "threads": threads,
        "requests": requests,
        "per_second": per_second,
        "p50_ms": run["p50_us"].as_f64().unwrap() / 1000.0,
        "p90_ms": run["p90_us"].as_f64().unwrap() / 1000.0,
        "p99_ms": run["p99_us"].as_f64().unwrap() / 1000.0,
        "max_ms": run["max_us"].as_f64().unwrap() / 1000.0,
        "errors": errors,
        "wrk": run,
        "warm_up": warm,
    });
    println!(
        "local server: {per_second:.0} signed status callbacks/s, p50 {:.2} ms, p99 {:.2} ms, {errors} errors ({connections} connections, {seconds} s)",
        report["p50_ms"].as_f64().unwrap(),
        report["p99_ms"].as_f64().unwrap()
    );
    let path = out_dir().join("load.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("load: figures in {}", path.display());
    if errors > 0 {
        eprintln!("load: {errors} requests were not answered 2xx (target/bench/load/server.log)");
        std::process::exit(1);
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
