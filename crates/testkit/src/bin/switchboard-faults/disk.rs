//! Part 2: the embedded store's disk full. The data directory is a small
//! tmpfs mounted in a private mount namespace (`unshare -m`, as root), held
//! by a process that only sleeps; the server (`--sandbox`) runs inside it
//! (`nsenter`). Under load, a filler file takes every byte left: writes
//! must fail as documented (agent routes 503, callbacks TwiML with 503,
//! voice webhooks TwiML that says something and hangs up), nothing
//! acknowledged may be lost, and once the filler is gone the same process
//! must take writes again (redb refuses everything after an I/O error until
//! the database is reopened: the store does that in place).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::Knobs;
use crate::common::{Api, Row, Server, Tally, free_address, fresh_dir, run_part, statuses_text};
use crate::ledger::Ledger;
use crate::load::{Load, Mix, People, STAYS, connect_workspace, sandbox_account};

pub const FAULT: &str = "embedded store's disk full, then space back";

const TMPFS_SIZE: &str = "64m";

pub async fn run(knobs: &Knobs) -> Row {
    run_part(FAULT, async {
        match campaign(knobs).await {
            Ok(row) => Ok(row),
            Err(Skipped::NotRun(why)) => {
                eprintln!("\n!!!!!!!!\nfaults: the disk-full part DID NOT RUN: {why}\n!!!!!!!!\n");
                Ok(Row::not_run(FAULT, &why))
            }
            Err(Skipped::Failed(why)) => Err(why),
        }
    })
    .await
}

enum Skipped {
    /// The machine cannot do it (not root, no mount namespaces).
    NotRun(String),
    Failed(String),
}

impl From<String> for Skipped {
    fn from(why: String) -> Self {
        Self::Failed(why)
    }
}

/// The process holding the private mount namespace with the tmpfs; killed
/// (and the namespace with it) when dropped.
struct Namespace {
    holder: Child,
    mountpoint: PathBuf,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl Namespace {
    fn create(mountpoint: &Path) -> Result<Self, Skipped> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| Skipped::NotRun(format!("id -u: {e}")))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err(Skipped::NotRun(
                "mounting a tmpfs in a private mount namespace needs root (unshare -m, mount)".into(),
            ));
        }
        std::fs::create_dir_all(mountpoint).map_err(|e| Skipped::Failed(e.to_string()))?;
        let script = format!(
            "mount -t tmpfs -o size={TMPFS_SIZE},mode=0700 switchboard-faults \"$1\" && echo mounted && exec sleep 100000"
        );
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Skipped::NotRun(format!("unshare could not be started: {e}")))?;
        let mut line = String::new();
        let stdout = holder
            .stdout
            .take()
            .ok_or_else(|| Skipped::Failed("no stdout".into()))?;
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let output = holder.wait_with_output().map(|o| o.stderr).unwrap_or_default();
            return Err(Skipped::NotRun(format!(
                "unshare -m / mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output).trim()
            )));
        }
        Ok(Self {
            holder,
            mountpoint: mountpoint.to_owned(),
        })
    }

    /// `path` (under the mountpoint) as this process reaches it: through
    /// the holder's view of the file system.
    fn inside(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap_or(path);
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(relative)
    }

    /// Bytes free on the tmpfs, from `df` in the namespace.
    fn free_bytes(&self) -> Option<u64> {
        let output = Command::new("nsenter")
            .args([
                "-t",
                &self.holder.id().to_string(),
                "-m",
                "--",
                "df",
                "-B1",
                "--output=avail",
            ])
            .arg(&self.mountpoint)
            .output()
            .ok()?;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }
}

async fn campaign(knobs: &Knobs) -> Result<Row, Skipped> {
    let dir = fresh_dir(&knobs.out, "disk")?;
    let mountpoint = dir.join("tmpfs");
    let namespace = Namespace::create(&mountpoint)?;
    let data = mountpoint.join("data");
    let log = dir.join("server.log");

    let address = free_address();
    let holder = namespace.holder.id().to_string();
    let prefix = ["nsenter", "-t", &holder, "-m", "--"];
    let vars = vec![("SWITCHBOARD_DATA_DIR", data.display().to_string())];
    let command = Server::command_via(&prefix, &address, &["--sandbox"], &vars);
    let mut server = Server::start(command, &address, &log).await?;
    let pid = server.pid();
    let api = Api::new(&server.base());
    let account = sandbox_account(&api).await?;
    connect_workspace(&api, &account, json!({})).await?;
    let timers = api
        .send(Method::POST, "/sandbox/timers", "", Some(&json!({"scale": 0.05})))
        .await;
    if timers.status != 200 {
        return Err(format!("POST /sandbox/timers: {} {}", timers.status, timers.body).into());
    }

    let ledger = Arc::new(Ledger::default());
    let phases = [
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    ];
    let people = People::Sandbox { api: api.clone() };
    let phase_time = Duration::from_secs_f64(knobs.phase_seconds);
    let start_phase = |n: usize| {
        let load = Arc::new(Load::new(
            api.clone(),
            people.clone(),
            account.clone(),
            Arc::clone(&ledger),
            Arc::clone(&phases[n]),
            &format!("disk{}-{n}", knobs.seed),
        ));
        let running = load.start(Mix::EVERY_FLOW);
        (load, running)
    };
    let mut problems = Vec::new();

    // 1. Room to write.
    let (load, running) = start_phase(0);
    tokio::time::sleep(phase_time / 2).await;
    load.finish(running).await;

    // 2. Full: a filler takes every byte left, while the load goes on.
    let filler = namespace.inside(&mountpoint.join("filler"));
    let (load, running) = start_phase(1);
    let filled = fill(&filler).map_err(|e| format!("filling the tmpfs: {e}"))?;
    let free_when_full = namespace.free_bytes().unwrap_or_default();
    tokio::time::sleep(phase_time).await;
    let sample_full = sim_webhooks(&api).await;
    load.finish(running).await;
    let full = &phases[1];

    // 3. Space back: the same process takes writes again.
    let _ = std::fs::remove_file(&filler);
    let space_back = Instant::now();
    let recovered = loop {
        let answer = api
            .send_with(
                Method::POST,
                "/calls",
                &api.alice,
                Some(&json!({"to": STAYS})),
                Some(&format!("disk-recovery-{}", space_back.elapsed().as_micros())),
            )
            .await;
        if answer.status == 201 {
            if let Some(id) = answer.json()["callId"].as_str() {
                ledger.call(id);
            }
            break Some(space_back.elapsed());
        }
        if space_back.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (load, running) = start_phase(2);
    tokio::time::sleep(phase_time / 2).await;
    load.finish(running).await;
    let after = &phases[2];
    let same_process = server.pid() == pid && server.rss_and_fds().is_some();

    let verified = ledger.verify(&api).await;
    let stopped = server.stop();
    let reopens = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("open again after a storage failure")
        .count();
    let stranded = match crate::kill::recordings_in_store(&namespace.inside(&data.join("store"))).await {
        Ok(found) => format!(
            "recordings: {} noted, {} still to copy (the worker's backoff), {} with no copy queued{}",
            found.all.len(),
            found.pending,
            found.stranded.len(),
            if found.stranded.is_empty() {
                String::new()
            } else {
                " (their callback was answered 503 after the recording was noted; Twilio does not retry it)".into()
            }
        ),
        Err(error) => format!("recordings not read: {error}"),
    };
    let store_check = match switchboard_embedded::check_store(&namespace.inside(&data.join("store"))) {
        Ok(checked) => format!("store check: {} entries whole", checked.entries),
        Err(error) => {
            problems.push(format!("the store does not check out: {error}"));
            format!("store check FAILED: {error}")
        }
    };
    drop(namespace);

    let refused = full.get("POST /calls 503") + full.get("POST /messages 503");
    if refused == 0 {
        problems.push(format!(
            "the full disk refused no write ({filled} bytes of filler, {free_when_full} left): the fault did not happen"
        ));
    }
    problems.extend(phases.iter().filter_map(|tally| tally.undocumented_problem()));
    if sample_full.undocumented > 0 {
        problems.push(format!(
            "the simulated Twilio's webhooks got undocumented answers: {:?}",
            sample_full.examples
        ));
    }
    match recovered {
        None => problems.push("the server did not take writes again within 30 s of space coming back".into()),
        Some(_) if !same_process => problems.push("the server process changed: it was restarted".into()),
        Some(_) => {}
    }
    let after_refused =
        after.get("POST /calls 503") + after.get("POST /messages 503") + after.get("status callback 503");
    if after_refused > 0 {
        problems.push(format!("{after_refused} writes refused after the store recovered"));
    }
    problems.extend(verified.problem());
    if !stopped {
        problems.push("the server did not stop cleanly".into());
    }

    let requests: u64 = phases.iter().map(|t| t.get("requests")).sum();
    let worst = phases
        .iter()
        .map(|t| t.slowest())
        .max_by_key(|(d, _)| *d)
        .unwrap_or_default();
    let figures = format!(
        "tmpfs {TMPFS_SIZE}; while full: {}; voice webhooks answered with the failure message: {}; \
         simulated Twilio's last {} webhooks: {}; space back to first write: {}; reopened in place {reopens}×, \
         same process: {same_process}; after: {}; {stranded}; {store_check}; slowest {:.2} s ({}){}",
        statuses_text(&full.statuses()),
        full.get("voice webhooks answered with the failure message"),
        sample_full.seen,
        sample_full.statuses,
        recovered.map_or_else(|| "never".to_owned(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0)),
        statuses_text(&after.statuses()),
        worst.0.as_secs_f64(),
        worst.1,
        full.undocumented_note(),
    );
    Ok(Row {
        fault: FAULT.into(),
        injected: format!("1 (full for {:.0} s)", phase_time.as_secs_f64()),
        requests,
        acknowledged: ledger.acknowledged(),
        lost: verified.lost,
        figures,
        problems,
        seconds: 0.0,
    })
}

/// Writes zeros to `path` until the file system refuses: how many bytes.
fn fill(path: &Path) -> std::io::Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => return Ok(written),
            Ok(n) => written += n as u64,
            Err(error) if error.raw_os_error() == Some(28) => return Ok(written),
            Err(error) => return Err(error),
        }
    }
}

/// The sandbox's last webhooks (its debugger): what they were answered.
pub struct Sample {
    pub seen: usize,
    pub statuses: String,
    pub undocumented: usize,
    pub examples: Vec<String>,
}

pub async fn sim_webhooks(api: &Api) -> Sample {
    let answer = api.send(Method::GET, "/sandbox/webhooks?limit=500", "", None).await;
    let body = answer.json();
    let hooks = body["webhooks"].as_array().cloned().unwrap_or_default();
    let mut statuses = std::collections::BTreeMap::new();
    let mut undocumented = 0;
    let mut examples = Vec::new();
    for hook in &hooks {
        let status = hook["status"].as_u64().unwrap_or(0) as u16;
        *statuses.entry(status).or_insert(0u64) += 1;
        let url = hook["url"].as_str().unwrap_or_default();
        let answer = hook["answer"].as_str().unwrap_or_default();
        let voice = url.contains("/twilio/voice/");
        let bad = match status {
            0 => false,
            200 => !answer.contains("<Response"),
            503 => voice || !answer.contains("<Response"),
            s => voice || s >= 500,
        };
        if bad {
            undocumented += 1;
            if examples.len() < 5 {
                examples.push(format!(
                    "{url}: {status} {}",
                    answer.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    Sample {
        seen: hooks.len(),
        statuses: statuses_text(&statuses),
        undocumented,
        examples,
    }
}
