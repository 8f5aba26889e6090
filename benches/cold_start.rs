//! Cold start of every Lambda function: its release binary started under the
//! loopback Lambda Runtime API emulator (`common/emulator.rs`) with its own
//! sample event (events/<function>/), timed from process start to the
//! response posted back, with the process's peak RSS (`VmHWM`, read while it
//! waits for its next event). The same for a Node.js function that loads
//! Twilio's helper library (bench/node/cold_start.js) and mints a token.
//!
//! Store: the embedded one, on a copy of a seeded data directory per run, so
//! the figure is the function's own start-up and first request, not an
//! emulator's latency (see README, "Performance").
//!
//! `cargo bench --bench cold_start` after `cargo build --release`
//! (`scripts/bench.sh` does both). Figures: `target/bench/cold_start.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::routes;
use switchboard_testkit::bench::*;
use switchboard_testkit::emulator::Emulator;

/// Functions whose sample event needs no number, call or recording: their
/// events (events/README.md) presume a connected workspace only.
const CONNECTED_ONLY: &[&str] = &["clear", "token", "configure", "calls", "messages"];

fn main() {
    if !benchmarking() {
        // `cargo test --all-targets`: check the emulator hands out an event.
        let emulator = Emulator::start(b"{}".to_vec());
        drop(emulator);
        println!("cold_start: run by scripts/bench.sh (cargo bench), not as a test");
        return;
    }
    let runs: usize = std::env::var("SWITCHBOARD_BENCH_COLD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let release = release_dir();
    let scratch = tempfile::tempdir().unwrap();
    let logs = out_dir().join("cold_start");
    std::fs::create_dir_all(&logs).unwrap();

    // Two templates, as tests/lambda_events.rs sets up per event.
    let full = scratch.path().join("template-full");
    seed_data_dir(&full, PUBLIC_URL, true, 0);
    let connected = scratch.path().join("template-connected");
    seed_data_dir(&connected, PUBLIC_URL, false, 0);

    let mut functions: Vec<&str> = routes::functions();
    functions.extend(routes::WORKERS.iter().map(|(name, _)| *name));

    let mut results = serde_json::Map::new();
    let mut failed = false;
    for function in &functions {
        let binary = release.join(function);
        assert!(
            binary.exists(),
            "{} missing: run `cargo build --release --workspace --bins` first",
            binary.display()
        );
        let (event_name, event) = sample_event(function);
        let template = if CONNECTED_ONLY.contains(function) {
            &connected
        } else {
            &full
        };
        let mut samples = Vec::new();
        // One run first, not counted: the binary into the page cache.
        for run in 0..=runs {
            let data = scratch.path().join(format!("{function}-{run}"));
            copy_dir(template, &data);
            let log = logs.join(format!("{function}.log"));
            let mut command = Command::new(&binary);
            command
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("AWS_LAMBDA_FUNCTION_NAME", function)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
                .env("SWITCHBOARD_PUBLIC_URL", PUBLIC_URL)
                .env("SWITCHBOARD_AUTH_HS256_SECRET", HS256_SECRET)
                .env("SWITCHBOARD_STORE", "embedded")
                .env("SWITCHBOARD_DATA_DIR", &data)
                .env("RUST_LOG", "info");
            let sample = measure(command, &event, &log, true);
            let _ = std::fs::remove_dir_all(&data);
            match sample {
                Ok(sample) if run > 0 => samples.push(sample),
                Ok(_) => {}
                Err(error) => {
                    eprintln!("cold_start: {function}: {error} (log: {})", log.display());
                    failed = true;
                    break;
                }
            }
        }
        if let Some(summary) = summarize(&samples) {
            println!(
                "cold start {function:<20} {:>7.2} ms median, peak RSS {:>6.1} MiB (max), {} ({event_name})",
                summary["median_ms"].as_f64().unwrap(),
                summary["peak_rss_kb_max"].as_f64().unwrap() / 1024.0,
                summary["outcome"].as_str().unwrap_or("")
            );
            let mut summary = summary;
            summary["event"] = json!(event_name);
            results.insert((*function).to_owned(), summary);
        }
    }

    // Node.js with Twilio's helper library, the same way.
    let node_dir = repo_root().join("bench/node");
    let (_, token_event) = sample_event("token");
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
            Ok(sample) if run > 0 => samples.push(sample),
            Ok(_) => {}
            Err(error) => {
                eprintln!("cold_start: node: {error} (log: {})", log.display());
                failed = true;
                break;
            }
        }
    }
    let node = summarize(&samples);
    if let Some(node) = &node {
        println!(
            "cold start {:<20} {:>7.2} ms median, peak RSS {:>6.1} MiB (max), {}",
            "node (twilio, token)",
            node["median_ms"].as_f64().unwrap(),
            node["peak_rss_kb_max"].as_f64().unwrap() / 1024.0,
            node["outcome"].as_str().unwrap_or("")
        );
    }

    let report = json!({ "runs": runs, "functions": results, "node": node, "failed": failed });
    let path = out_dir().join("cold_start.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("cold_start: figures in {}", path.display());
    if failed {
        std::process::exit(1);
    }
}

/// The function's sample event: the first file of events/<function>/ in
/// name order, skipping a signed-out variant (the signed-in path is the one
/// that does the work).
fn sample_event(function: &str) -> (String, Vec<u8>) {
    let dir = repo_root().join("events").join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let file = files
        .iter()
        .find(|p| !p.to_string_lossy().contains("signed-out"))
        .or(files.first())
        .unwrap_or_else(|| panic!("no event in {}", dir.display()));
    let name = format!("{function}/{}", file.file_name().unwrap().to_string_lossy());
    (name, std::fs::read(file).unwrap())
}

struct Sample {
    millis: f64,
    peak_rss_kb: u64,
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
    let started = std::time::Instant::now();
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
        outcome: outcome(&posted.body),
    })
}

/// `HTTP 200` for an API Gateway response, `0 failed` for an SQS batch.
fn outcome(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return "unparsed response".into();
    };
    if let Some(status) = value.get("statusCode").and_then(Value::as_u64) {
        return format!("HTTP {status}");
    }
    if let Some(failures) = value.get("batchItemFailures").and_then(Value::as_array) {
        return format!("{} of the batch failed", failures.len());
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
