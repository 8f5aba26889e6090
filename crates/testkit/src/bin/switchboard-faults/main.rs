//! The fault campaign (`scripts/faults.sh`, README "Reliability"): the
//! local server on loopback under load while what it depends on fails, and
//! a table of faults injected, requests made, writes acknowledged and lost.
//! It exits non-zero if an acknowledged write is lost, an answer is not one
//! the README documents, or a part could not run.
//!
//! Parts (`SWITCHBOARD_FAULTS_ONLY=kill,disk,aws,twilio,soak` picks some):
//! 1. `kill`: SIGKILL at random moments under mixed load, many times;
//! 2. `disk`: the embedded store's disk full (a small tmpfs in a private
//!    mount namespace), then space back, without a restart;
//! 3. `aws`: DynamoDB, S3, KMS and SQS failing behind a fault proxy in front
//!    of moto;
//! 4. `twilio`: Twilio's REST API failing (the sandbox's fault switches)
//!    under load with call control; no session left half way;
//! 5. `soak`: a million signed callbacks; memory and open files flat.
//!
//! Knobs: `SWITCHBOARD_FAULTS_KILLS` (20), `SWITCHBOARD_FAULTS_SECONDS`
//! (seconds of each load phase, 6), `SWITCHBOARD_FAULTS_SOAK_CALLBACKS`
//! (1000000), `SWITCHBOARD_FAULTS_SEED` (random), `SWITCHBOARD_FAULTS_MOTO_URL`
//! (moto for the `aws` part; scripts/faults.sh starts one), `SWITCHBOARD_FAULTS_OUT`
//! (target/faults).

mod aws;
mod common;
mod disk;
mod kill;
mod ledger;
mod load;
mod soak;
mod twilio;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use common::{Row, knob};

pub struct Knobs {
    pub kills: u32,
    pub phase_seconds: f64,
    pub soak_callbacks: u64,
    pub seed: u64,
    pub moto_url: Option<String>,
    pub out: PathBuf,
}

const PARTS: [&str; 5] = ["kill", "disk", "aws", "twilio", "soak"];

#[tokio::main]
async fn main() -> ExitCode {
    let knobs = Knobs {
        kills: knob("SWITCHBOARD_FAULTS_KILLS", 20),
        phase_seconds: knob("SWITCHBOARD_FAULTS_SECONDS", 6.0),
        soak_callbacks: knob("SWITCHBOARD_FAULTS_SOAK_CALLBACKS", 1_000_000),
        seed: knob("SWITCHBOARD_FAULTS_SEED", fastrand::u64(..1_000_000)),
        moto_url: std::env::var("SWITCHBOARD_FAULTS_MOTO_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        out: std::env::var_os("SWITCHBOARD_FAULTS_OUT").map_or_else(|| PathBuf::from("target/faults"), PathBuf::from),
    };
    let only: Vec<String> = std::env::var("SWITCHBOARD_FAULTS_ONLY")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_else(|| PARTS.iter().map(|p| (*p).to_owned()).collect());
    if let Some(unknown) = only.iter().find(|p| !PARTS.contains(&p.as_str())) {
        eprintln!("faults: unknown part {unknown:?} in SWITCHBOARD_FAULTS_ONLY (parts: {PARTS:?})");
        return ExitCode::FAILURE;
    }
    if let Err(error) = std::fs::create_dir_all(&knobs.out) {
        eprintln!("faults: {}: {error}", knobs.out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("faults: seed {} (SWITCHBOARD_FAULTS_SEED to repeat)", knobs.seed);
    let started = Instant::now();
    let mut rows = Vec::new();
    for part in PARTS.iter().filter(|p| only.iter().any(|o| o == *p)) {
        eprintln!("\n== faults: {part}");
        let row = match *part {
            "kill" => kill::run(&knobs).await,
            "disk" => disk::run(&knobs).await,
            "aws" => aws::run(&knobs).await,
            "twilio" => twilio::run(&knobs).await,
            _ => soak::run(&knobs).await,
        };
        eprintln!(
            "faults: {part}: {} in {:.0} s{}",
            if row.passed() { "passed" } else { "FAILED" },
            row.seconds,
            if row.problems.is_empty() {
                String::new()
            } else {
                format!("\n  {}", row.problems.join("\n  "))
            }
        );
        rows.push(row);
    }
    let total = started.elapsed().as_secs_f64();
    let table = render(&rows, total, knobs.seed);
    println!("{table}");
    let json = serde_json::json!({
        "seed": knobs.seed,
        "seconds": total,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    let _ = std::fs::write(knobs.out.join("summary.md"), &table);
    let _ = std::fs::write(
        knobs.out.join("summary.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
    if rows.iter().all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn render(rows: &[Row], total: f64, seed: u64) -> String {
    let mut table = String::from(
        "| Fault | Injected | Requests | Acknowledged | Lost | Result | Time | Other figures |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} s | {} |\n",
            row.fault,
            row.injected,
            row.requests,
            row.acknowledged,
            row.lost,
            if row.passed() { "pass" } else { "**FAIL**" },
            row.seconds,
            row.figures.replace('|', "/"),
        ));
    }
    table.push_str(&format!("\nWhole campaign: {total:.0} s (seed {seed}).\n"));
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| format!("- {}: {p}", r.fault)))
        .collect();
    if !problems.is_empty() {
        table.push_str("\nProblems:\n");
        table.push_str(&problems.join("\n"));
        table.push('\n');
    }
    table
}
