//! What the benchmarks (and the sample events' tests) share: the workspace
//! of the sample events (events/README.md) and the live benchmark's many,
//! seeded through the ports, into an embedded data directory or, through the
//! AWS adapters, into a fresh DynamoDB table on moto (the functions' cold
//! starts); the local server as a child process; agents' sign-in tokens; the
//! figures' arithmetic.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use secrecy::SecretString;
use sha2::Digest;
use switchboard::api::Request;
use switchboard::app::App;
use switchboard::ids::{AgentId, CallId, WorkspaceId};
use switchboard::model::calls::{CallSession, Direction};
use switchboard::model::recordings::{Recording, RecordingStatus};
use switchboard::phone::E164;
use switchboard::ports::{Connection, ConnectionStore};
use switchboard::time::Timestamp;
use switchboard::workspace::{ApiKey, PhoneNumber, TwilioAccount, Workspace};
use switchboard_aws::AwsResources;

pub use crate::{HS256_SECRET, PUBLIC_URL, form, sid};

/// Acme's Twilio Auth Token (signs the Twilio sample events).
pub const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
pub const WORKSPACE: &str = "acme";
pub const ACME_NUMBER: &str = "+14155550100";
pub const CUSTOMER: &str = "+14155550123";
/// Alice's outbound call, named by the Twilio sample events.
pub const CALL_ID: &str = "01JDQ4ZK8M3V6X2T9B7C5N1P0R";
/// The customer leg's CallSid in the sample status callback.
pub const CUSTOMER_CALL_SID: &str = "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9";
/// The recording the `recording-copy` sample event copies.
pub const RECORDING_SID: &str = "RE3c9a7f1e5d2b8c4a6f0e1d2c3b4a5968";
/// Alice's live events socket in the WebSocket sample events.
pub const ALICES_SOCKET: &str = "L0SM9cOFvHcCIhw=";

// ---------------------------------------------------------------------------
// Who is seeded

/// A workspace connected to Twilio: the sample events' `acme`, or one of the
/// live benchmark's many (`Tenant::numbered`), each with a Twilio account
/// and Auth Token of its own.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    /// Its Twilio account's Auth Token: what signs its webhooks.
    pub auth_token: String,
}

impl Tenant {
    pub fn acme() -> Self {
        Self {
            id: WORKSPACE.into(),
            auth_token: AUTH_TOKEN.into(),
        }
    }

    /// The `n`-th of many workspaces: `ws-<n>`.
    pub fn numbered(n: u32) -> Self {
        let id = format!("ws-{n:02}");
        Self {
            // 32 hex digits, as Twilio's Auth Tokens.
            auth_token: sid("", &format!("auth-token-of-{id}")),
            id,
        }
    }

    pub fn workspace(&self) -> WorkspaceId {
        WorkspaceId::parse(&self.id).expect("a workspace id")
    }

    pub fn account_sid(&self) -> String {
        sid("AC", &self.id)
    }

    /// Its `k`-th extra outbound call (`seed_calls`): the call id and its
    /// customer leg's CallSid, unique across tenants.
    pub fn call(&self, k: u32) -> (String, String) {
        let seed = format!("{}/call-{k}", self.id);
        let digest = sha2::Sha256::digest(seed.as_bytes());
        let random = u128::from_be_bytes(digest[..16].try_into().unwrap());
        let id = ulid::Ulid::from_parts(1_732_617_055_000, random).to_string();
        (id, sid("CA", &seed))
    }

    /// The form of a call status callback of the customer leg `call_sid`,
    /// as Twilio sends it for this tenant's account.
    pub fn callback_params(&self, call_sid: &str, status: &str, sequence: u32) -> Vec<(&'static str, String)> {
        vec![
            ("AccountSid", self.account_sid()),
            ("ApiVersion", "2010-04-01".into()),
            ("CallSid", call_sid.into()),
            ("CallStatus", status.into()),
            ("CallbackSource", "call-progress-events".into()),
            ("Called", CUSTOMER.into()),
            ("Caller", ACME_NUMBER.into()),
            ("Direction", "outbound-api".into()),
            ("From", ACME_NUMBER.into()),
            ("SequenceNumber", sequence.to_string()),
            ("Timestamp", "Tue, 26 Nov 2024 10:31:02 +0000".into()),
            ("To", CUSTOMER.into()),
        ]
    }

    /// `X-Twilio-Signature` of this tenant's Auth Token for `url` and `params`.
    pub fn sign(&self, url: &str, params: &[(&str, String)]) -> String {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        switchboard::twilio::signature::sign(self.auth_token.as_bytes(), url, &pairs)
    }
}

/// A form POST of `params` to `url` over the network, signed with
/// `auth_token` as Twilio signs its webhooks.
pub fn signed_form_post(
    client: &reqwest::Client,
    url: &str,
    params: &[(&str, String)],
    auth_token: &str,
) -> reqwest::RequestBuilder {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let signature = switchboard::twilio::signature::sign(auth_token.as_bytes(), url, &pairs);
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(form(&pairs))
}

// ---------------------------------------------------------------------------
// The world, through the ports (any adapters)

/// An app on the embedded store in `data_dir`, configured as the sample
/// events expect; `extra` adds or overrides variables.
pub async fn app(data_dir: &Path, extra: &[(&str, &str)]) -> App {
    // Nothing a benchmark runs may leave the machine: an unused loopback port.
    let mut vars = vec![("SWITCHBOARD_TWILIO_API_URL", "http://127.0.0.1:9")];
    vars.extend_from_slice(extra);
    crate::embedded_app(crate::config(data_dir, &vars)).0
}

/// `tenant` connected to Twilio (API key, TwiML App), as onboarding leaves it.
pub async fn seed_tenant(app: &App, tenant: &Tenant) {
    let ws = tenant.workspace();
    let seal = |secret: String| {
        let ws = ws.clone();
        async move { app.secrets.seal(&ws, &SecretString::from(secret)).await.expect("seal") }
    };
    let workspace = Workspace {
        id: ws.clone(),
        twilio: Some(TwilioAccount {
            account_sid: tenant.account_sid().parse().unwrap(),
            auth_token: seal(tenant.auth_token.clone()).await,
            api_key: Some(ApiKey {
                sid: sid("SK", &tenant.id),
                secret: seal(format!("api-key-secret-of-{}", tenant.id)).await,
            }),
            twiml_app_sid: Some(sid("AP", &tenant.id)),
        }),
        settings: Default::default(),
    };
    app.store.put_workspace(&workspace).await.expect("workspace");
}

/// Acme connected to Twilio (API key, TwiML App), as onboarding leaves it.
pub async fn seed_workspace(app: &App) {
    seed_tenant(app, &Tenant::acme()).await;
}

/// Acme as the Twilio sample events presume it: connected, the number that
/// rings alice, alice's outbound call to the customer and a recording of it
/// waiting to be copied.
pub async fn seed(app: &App) {
    let acme = Tenant::acme();
    seed_tenant(app, &acme).await;
    let ws = acme.workspace();
    let number = PhoneNumber {
        number: E164::parse(ACME_NUMBER).unwrap(),
        sid: Some(sid("PN", "acme-main-line")),
        agents: vec![AgentId::parse("alice").unwrap()],
        label: Some("Main line".into()),
    };
    // As onboarding (the account's numbers) then an admin (who rings) leave
    // it: the DynamoDB adapter's `replace_numbers` keeps agents to
    // `update_number`, even for a number it adds.
    app.store
        .replace_numbers(&ws, std::slice::from_ref(&number))
        .await
        .expect("numbers");
    app.store.update_number(&ws, &number).await.expect("alice's number");
    let session = alices_call(&acme, CALL_ID);
    app.store.create_call(&session).await.expect("call");
    let mut recording = Recording::new(RECORDING_SID.parse().unwrap(), RecordingStatus::Pending, seeded_at());
    recording.source = Some("Conference".into());
    recording.channels = Some(2);
    recording.duration_seconds = Some(42);
    app.store
        .put_recording(&ws, &session.id, &recording)
        .await
        .expect("recording");
}

/// `count` more outbound calls of `tenant`'s (`Tenant::call`), as `POST
/// /calls` leaves them. Several at a time: the embedded store commits the
/// writes that wait together.
pub async fn seed_calls(app: &App, tenant: &Tenant, count: u32) {
    futures_util::stream::iter(0..count)
        .for_each_concurrent(32, |k| async move {
            let (id, _) = tenant.call(k);
            app.store.create_call(&alices_call(tenant, &id)).await.expect("call");
        })
        .await;
}

/// When the seeded calls were placed.
fn seeded_at() -> Timestamp {
    Timestamp::parse_rfc2822("Tue, 26 Nov 2024 10:30:55 +0000").unwrap()
}

/// Alice's outbound call `id` from Acme's number to the customer, in
/// `tenant`'s workspace.
fn alices_call(tenant: &Tenant, id: &str) -> CallSession {
    CallSession::new(
        tenant.workspace(),
        Direction::Outbound,
        Some(AgentId::parse("alice").unwrap()),
        ACME_NUMBER.into(),
        CUSTOMER.into(),
        seeded_at(),
    )
    .with_id(CallId::parse(id).unwrap())
}

// ---------------------------------------------------------------------------
// Embedded data directories (the local server)

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Seeds a fresh data directory and closes the store (redb allows one
/// process at a time): a template the benchmarks copy for every run.
/// `full`: everything `seed` adds; otherwise the connected workspace only.
/// `calls`: that many more calls of acme's (`seed_calls`).
pub fn seed_data_dir(data_dir: &Path, public_url: &str, full: bool, calls: u32) {
    block_on(async {
        let app = app(data_dir, &[("SWITCHBOARD_PUBLIC_URL", public_url)]).await;
        if full {
            seed(&app).await;
        } else {
            seed_workspace(&app).await;
        }
        seed_calls(&app, &Tenant::acme(), calls).await;
    });
}

/// Seeds a fresh data directory with `tenants`, each connected to Twilio and
/// with `calls` outbound calls (`Tenant::call`), and closes the store.
pub fn seed_tenants_data_dir(data_dir: &Path, public_url: &str, tenants: &[Tenant], calls: u32) {
    block_on(async {
        let app = app(data_dir, &[("SWITCHBOARD_PUBLIC_URL", public_url)]).await;
        for tenant in tenants {
            seed_tenant(&app, tenant).await;
            seed_calls(&app, tenant, calls).await;
        }
    });
}

// ---------------------------------------------------------------------------
// DynamoDB, KMS, S3 and SQS on moto (the functions' cold starts)

/// The AWS resources a function finds on moto: one KMS key, recordings
/// bucket and copy queue for the whole benchmark, and a table per run
/// (`seed_table`).
pub struct MotoWorld {
    pub sdk: aws_config::SdkConfig,
    pub kms_key_id: String,
    pub bucket: String,
    pub queue_url: String,
}

impl MotoWorld {
    /// Creates the key, the bucket and the queue on moto at `endpoint`.
    pub async fn create(endpoint: &str) -> Self {
        let sdk = crate::moto::sdk_config_for(endpoint).await;
        let key = aws_sdk_kms::Client::new(&sdk)
            .create_key()
            .description("switchboard cold starts")
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating a KMS key on moto at {endpoint}: {e:?}"));
        let kms_key_id = key.key_metadata().expect("key metadata").key_id().to_owned();
        let bucket = crate::moto::unique_name("sb-bench");
        let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(s3)
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating bucket {bucket} on moto: {e:?}"));
        let queue = aws_sdk_sqs::Client::new(&sdk)
            .create_queue()
            .queue_name(crate::moto::unique_name("sb-bench"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating a queue on moto: {e:?}"));
        let queue_url = queue.queue_url().expect("queue URL").to_owned();
        Self {
            sdk,
            kms_key_id,
            bucket,
            queue_url,
        }
    }

    /// Where a function with table `table` points (every optional resource
    /// set: which of them a function gets is its environment's business).
    pub fn resources(&self, table: &str) -> AwsResources {
        AwsResources {
            table: table.into(),
            kms_key_id: self.kms_key_id.clone(),
            recordings_bucket: Some(self.bucket.clone()),
            recording_queue_url: Some(self.queue_url.clone()),
        }
    }

    /// A fresh table holding what `seed` (`full`) or `seed_workspace` puts
    /// in the embedded store, written the same way through the AWS adapters
    /// (the secrets sealed under the KMS key), plus, when `full`, alice's
    /// live events socket of the WebSocket sample events.
    pub async fn seed_table(&self, full: bool) -> String {
        let table = crate::moto::unique_name("sb-bench");
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.sdk);
        switchboard_aws::dynamodb::create_table(&dynamodb, &table)
            .await
            .unwrap_or_else(|e| panic!("creating table {table} on moto: {e}"));
        let resources = self.resources(&table);
        let vars = [
            ("SWITCHBOARD_STORE", "dynamodb"),
            ("SWITCHBOARD_TABLE", table.as_str()),
            ("SWITCHBOARD_KMS_KEY_ID", self.kms_key_id.as_str()),
        ];
        let config = crate::config(Path::new("unused"), &vars);
        let app = App::new(config, switchboard_aws::open(&self.sdk, &resources)).expect("app on moto");
        if full {
            seed(&app).await;
            let socket = Connection {
                id: ALICES_SOCKET.into(),
                workspace: Tenant::acme().workspace(),
                agent: AgentId::parse("alice").unwrap(),
                expires_at: Timestamp::now().plus_seconds(2 * 60 * 60),
            };
            switchboard_aws::table(&self.sdk, &resources)
                .put_connection(&socket)
                .await
                .expect("alice's socket");
        } else {
            seed_workspace(&app).await;
        }
        table
    }

    /// Deletes a table `seed_table` made (moto keeps everything in memory).
    pub async fn drop_table(&self, table: &str) {
        let _ = aws_sdk_dynamodb::Client::new(&self.sdk)
            .delete_table()
            .table_name(table)
            .send()
            .await;
    }
}

// ---------------------------------------------------------------------------
// Requests as Twilio sends them (acme's)

/// The form of a customer-leg call status callback of `CALL_ID`, as Twilio sends it.
pub fn status_callback_params(status: &str, sequence: u32) -> Vec<(&'static str, String)> {
    customer_callback_params(CUSTOMER_CALL_SID, status, sequence)
}

/// The form of a call status callback of acme's customer leg `call_sid`.
pub fn customer_callback_params(call_sid: &str, status: &str, sequence: u32) -> Vec<(&'static str, String)> {
    Tenant::acme().callback_params(call_sid, status, sequence)
}

/// The status callback's path and query (customer leg of `CALL_ID`).
pub fn status_callback_path() -> String {
    customer_callback_path(CALL_ID)
}

/// The status callback path of the customer leg of call `call_id`.
pub fn customer_callback_path(call_id: &str) -> String {
    format!("/twilio/status?callId={call_id}&leg=customer")
}

/// `X-Twilio-Signature` of Acme's Auth Token for `url` and `params`.
pub fn sign(url: &str, params: &[(&str, String)]) -> String {
    Tenant::acme().sign(url, params)
}

/// A signed form POST to `path_and_query`, signed with Acme's Auth Token.
pub fn twilio_post(path_and_query: &str, params: &[(&str, String)]) -> Request {
    crate::signed_post(path_and_query, params, AUTH_TOKEN)
}

/// An agent's sign-in token (HS256 with `HS256_SECRET`), valid for a day:
/// what a browser puts in `?token=` of its live events socket.
pub fn agent_token(workspace: &str, agent: &str) -> String {
    let expires = Timestamp::now().plus_seconds(24 * 60 * 60).unix_seconds();
    let claims = serde_json::json!({"sub": agent, "workspace_id": workspace, "exp": expires});
    crate::harness::jwt_hs256(&claims, HS256_SECRET)
}

// ---------------------------------------------------------------------------
// The local server

/// The release `switchboard` binary serving a data directory on loopback,
/// killed when dropped.
pub struct LocalServer {
    child: Child,
    pub address: String,
}

impl LocalServer {
    /// Starts it on `address` (`free_address`) and waits until it listens.
    /// `rust_log`: its `RUST_LOG`; `log`: where its output goes.
    pub fn start(data_dir: &Path, address: &str, log: &Path, rust_log: &str) -> Self {
        let address = address.to_owned();
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(release_dir().join("switchboard"))
            .arg("--listen")
            .arg(&address)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SWITCHBOARD_PUBLIC_URL", format!("http://{address}"))
            .env("SWITCHBOARD_AUTH_HS256_SECRET", HS256_SECRET)
            .env("SWITCHBOARD_STORE", "embedded")
            .env("SWITCHBOARD_DATA_DIR", data_dir)
            .env("SWITCHBOARD_TWILIO_API_URL", "http://127.0.0.1:9")
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start target/release/switchboard (cargo build --release first)");
        let mut server = Self { child, address };
        server.wait_listening(log);
        server
    }

    fn wait_listening(&mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "the local server did not listen on {}",
                self.address
            );
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the local server exited (log: {})",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URL it checks webhook signatures against.
    pub fn public_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Its resident memory now (`VmRSS`), in kB.
    /// CPU time the server has used so far (user and system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("the local server's /proc stat");
        // Fields after the command name (which may hold spaces): state is
        // field 3, utime 14 and stime 15, in clock ticks (100 a second on Linux).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }

    pub fn rss_kb(&self) -> u64 {
        proc_status_kb(self.child.id(), "VmRSS:").expect("the local server's /proc status")
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a free port.
pub fn free_address() -> String {
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

/// Makes sure this process may hold `needed` open files (sockets), raising
/// its soft `RLIMIT_NOFILE` up to the hard limit with `prlimit` (util-linux:
/// `setrlimit` takes `unsafe`, which the workspace forbids). Processes it
/// starts afterwards, the local server among them, inherit the limit.
pub fn raise_open_files(needed: u64) {
    let (soft, hard) = open_files_limit();
    if soft >= needed {
        return;
    }
    let target = if hard == u64::MAX {
        needed.to_string()
    } else {
        hard.to_string()
    };
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={target}:"))
        .status();
    let (soft, hard) = open_files_limit();
    assert!(
        soft >= needed,
        "this benchmark holds {needed} sockets but may open {soft} files (hard limit {hard}; prlimit: {status:?}): \
         raise the limit (ulimit -n) and run it again"
    );
}

/// This process's soft and hard limits of open files (`u64::MAX`: unlimited).
fn open_files_limit() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let mut figures = line["Max open files".len()..]
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(u64::MAX));
    (figures.next().unwrap(), figures.next().unwrap())
}

// ---------------------------------------------------------------------------
// Files, processes, figures

/// Copies a directory tree (a seeded data directory; the store is closed).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The `p`-th percentile (0 to 100, nearest rank) of `sorted`, which is sorted.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Kilobytes of a `/proc/<pid>/status` line (`VmHWM:`, `VmRSS:`).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// A benchmark's knob: the environment variable `name` if it parses, else `default`.
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// True when run by `cargo bench` (which passes `--bench`); `cargo test
/// --all-targets` runs bench targets without it, as a smoke test.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `target/release`, where `cargo build --release` left the binaries: two
/// levels up from this bench's own executable (`target/release/deps/…`).
pub fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

pub use crate::repo_root;

/// `target/bench`, where every benchmark leaves its figures as JSON.
pub fn out_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHBOARD_BENCH_OUT")
        .map(Into::into)
        .unwrap_or_else(|| repo_root().join("target/bench"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
