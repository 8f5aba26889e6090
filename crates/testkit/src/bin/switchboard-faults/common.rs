//! What every part of the campaign shares: the release server as a child
//! process, agents' tokens, webhooks signed as Twilio signs them, counters
//! and the table's rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_testkit::harness::{HS256_SECRET, jwt_hs256};

/// The workspace every part connects.
pub const WORKSPACE: &str = "acme";

/// `target/release`, where this binary and the server are.
pub fn release_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

pub use switchboard_testkit::bench::{free_address, knob};

/// `out/part`, emptied of an earlier run's files; absolute, as the server
/// may run in another mount namespace.
pub fn fresh_dir(out: &Path, part: &str) -> Result<PathBuf, String> {
    let dir = std::path::absolute(out.join(part)).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// A sign-in token of `agent` in the workspace, valid for a day.
pub fn agent_token(agent: &str, role: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = json!({"sub": agent, "workspace_id": WORKSPACE, "role": role, "iat": now, "exp": now + 86_400});
    jwt_hs256(&claims, HS256_SECRET)
}

/// The local server, started from the release binary and killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub address: String,
    pub log: PathBuf,
}

impl Server {
    /// The `switchboard` release binary (`SWITCHBOARD_FAULTS_SERVER` overrides);
    /// absolute, as `nsenter` starts it from another working directory.
    pub fn binary() -> PathBuf {
        let binary = std::env::var_os("SWITCHBOARD_FAULTS_SERVER")
            .map_or_else(|| release_dir().join("switchboard"), PathBuf::from);
        std::path::absolute(&binary).unwrap_or(binary)
    }

    /// The command that serves on `address` with `vars` (and nothing else
    /// from this environment but `PATH`).
    pub fn command(address: &str, args: &[&str], vars: &[(&str, String)]) -> Command {
        Self::command_via(&[], address, args, vars)
    }

    /// The same, run through `prefix` (`nsenter -t PID -m --`).
    pub fn command_via(prefix: &[&str], address: &str, args: &[&str], vars: &[(&str, String)]) -> Command {
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(Self::binary());
                command
            }
            None => Command::new(Self::binary()),
        };
        command
            .arg("--listen")
            .arg(address)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SWITCHBOARD_AUTH_HS256_SECRET", HS256_SECRET)
            .env("SWITCHBOARD_PUBLIC_URL", format!("http://{address}"))
            .env("RUST_LOG", "warn");
        for (name, value) in vars {
            command.env(name, value);
        }
        command
    }

    /// Runs `command` (logging to `log`, appended) and waits until it answers
    /// `GET /health`.
    pub async fn start(mut command: Command, address: &str, log: &Path) -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", Self::binary().display()))?;
        let mut server = Self {
            child: Some(child),
            address: address.to_owned(),
            log: log.to_owned(),
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = http.get(format!("{}/health", self.base())).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "the server exited ({status}) before it listened; see {}",
                    self.log.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("the server did not answer in 30 s; see {}", self.log.display()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after 20 s).
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    pub fn rss_and_fds(&self) -> Option<(u64, u64)> {
        rss_and_fds(self.pid())
    }
}

/// Resident memory (kB) and open files of process `pid`, from `/proc`.
pub fn rss_and_fds(pid: u32) -> Option<(u64, u64)> {
    let rss = switchboard_testkit::bench::proc_status_kb(pid, "VmRSS:")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server's API as agents and Twilio reach it.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: String,
    pub alice: String,
}

/// One answer: its status (0: no answer at all), body, and how long it took.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub took: Duration,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .pool_max_idle_per_host(64)
                .build()
                .expect("an HTTP client"),
            admin: agent_token("root", "admin"),
            alice: agent_token("alice", "admin"),
        }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, bearer: &str, body: Option<&Value>) -> Answer {
        self.send_with(method, path, bearer, body, None).await
    }

    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let started = Instant::now();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        answer(request, started).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, &self.alice, None).await
    }

    /// A form POST to `path_and_query`, signed with `auth_token` for this
    /// server's URL, as Twilio sends it.
    pub async fn webhook(&self, path_and_query: &str, params: &[(&str, String)], auth_token: &str) -> Answer {
        let url = format!("{}{path_and_query}", self.base);
        let request = switchboard_testkit::bench::signed_form_post(&self.http, &url, params, auth_token);
        answer(request, Instant::now()).await
    }
}

async fn answer(request: reqwest::RequestBuilder, started: Instant) -> Answer {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Answer {
                status,
                body,
                took: started.elapsed(),
            }
        }
        Err(error) => Answer {
            status: 0,
            body: error.without_url().to_string(),
            took: started.elapsed(),
        },
    }
}

/// A Twilio-shaped SID from a counter (unique within a run).
pub fn sid(prefix: &str, seed: &str) -> String {
    switchboard_testkit::sid::<String>(prefix, seed)
}

/// Counters by name, and the slowest answer seen, shared by a part's tasks.
#[derive(Default)]
pub struct Tally {
    counts: Mutex<BTreeMap<String, u64>>,
    slowest: Mutex<(Duration, String)>,
    /// A few examples of what went wrong, for the report.
    examples: Mutex<Vec<String>>,
}

impl Tally {
    pub fn add(&self, name: &str, n: u64) {
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default() += n;
    }

    pub fn get(&self, name: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .copied()
            .unwrap_or_default()
    }

    /// Counts one answer of `what`: requests, acknowledged (2xx) and its status.
    pub fn answer(&self, what: &str, answer: &Answer) {
        self.add("requests", 1);
        self.add(&format!("{what} {}", answer.status), 1);
        if answer.ok() {
            self.add("acknowledged", 1);
        }
        let mut slowest = self.slowest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if answer.took > slowest.0 && answer.status != 0 {
            *slowest = (answer.took, what.to_owned());
        }
    }

    pub fn slowest(&self) -> (Duration, String) {
        self.slowest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn example(&self, text: String) {
        let mut examples = self.examples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if examples.len() < 8 {
            examples.push(text);
        }
    }

    pub fn examples(&self) -> Vec<String> {
        self.examples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `status → count` over every answer, e.g. `200: 812, 503: 40`.
    pub fn statuses(&self) -> BTreeMap<u16, u64> {
        let mut statuses = BTreeMap::new();
        for (name, n) in self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            if let Some(status) = name.rsplit(' ').next().and_then(|s| s.parse::<u16>().ok())
                && name.contains(' ')
            {
                *statuses.entry(status).or_default() += n;
            }
        }
        statuses
    }

    /// The report's note of answers the README does not document (empty
    /// when there were none).
    pub fn undocumented_note(&self) -> String {
        match self.get("undocumented answers") {
            0 => String::new(),
            n => format!("; {n} UNDOCUMENTED answers"),
        }
    }

    /// The problem to report when any answer was undocumented.
    pub fn undocumented_problem(&self) -> Option<String> {
        (self.get("undocumented answers") > 0).then(|| format!("undocumented answers: {:?}", self.examples()))
    }

    pub fn all(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// One row of the campaign's table.
#[derive(Debug, Clone)]
pub struct Row {
    pub fault: String,
    /// How many times the fault was injected (or `NOT RUN`).
    pub injected: String,
    pub requests: u64,
    pub acknowledged: u64,
    pub lost: u64,
    /// The other figures: worst answer time, statuses, recovery, memory.
    pub figures: String,
    /// Why it failed (empty when it passed).
    pub problems: Vec<String>,
    pub seconds: f64,
}

impl Row {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "fault": self.fault, "injected": self.injected, "requests": self.requests,
            "acknowledged": self.acknowledged, "lost": self.lost, "figures": self.figures,
            "passed": self.passed(), "problems": self.problems, "seconds": self.seconds,
        })
    }

    pub fn not_run(fault: &str, why: &str) -> Self {
        Self {
            fault: fault.to_owned(),
            injected: "NOT RUN".to_owned(),
            requests: 0,
            acknowledged: 0,
            lost: 0,
            figures: why.to_owned(),
            problems: vec![format!("NOT RUN: {why}")],
            seconds: 0.0,
        }
    }

    /// The part started but could not finish.
    pub fn failed_to_run(fault: &str, why: &str) -> Self {
        Self {
            injected: "failed to run".to_owned(),
            ..Self::not_run(fault, why)
        }
    }
}

/// Runs one part, timed; an error is a row that says it failed to run.
pub async fn run_part(fault: &str, part: impl Future<Output = Result<Row, String>>) -> Row {
    let started = Instant::now();
    let mut row = part.await.unwrap_or_else(|why| Row::failed_to_run(fault, &why));
    row.seconds = started.elapsed().as_secs_f64();
    row
}

/// `200: 812, 503: 40` (0 is "no answer").
pub fn statuses_text(statuses: &BTreeMap<u16, u64>) -> String {
    statuses
        .iter()
        .map(|(status, n)| match status {
            0 => format!("no answer: {n}"),
            s => format!("{s}: {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
