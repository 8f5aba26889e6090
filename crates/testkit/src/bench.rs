//! What the benchmarks (and the sample events' tests) share: the workspace
//! of the sample events (events/README.md), seeded through the store ports
//! into an embedded data directory.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use switchboard::api::Request;
use switchboard::app::App;
use switchboard::ids::{AgentId, CallId, WorkspaceId};
use switchboard::model::calls::{CallSession, Direction};
use switchboard::model::recordings::{Recording, RecordingStatus};
use switchboard::phone::E164;
use switchboard::time::Timestamp;
use switchboard::workspace::{ApiKey, PhoneNumber, TwilioAccount, Workspace};

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

/// An app on the embedded store in `data_dir`, configured as the sample
/// events expect; `extra` adds or overrides variables.
pub async fn app(data_dir: &Path, extra: &[(&str, &str)]) -> App {
    // Nothing a benchmark runs may leave the machine: an unused loopback port.
    let mut vars = vec![("SWITCHBOARD_TWILIO_API_URL", "http://127.0.0.1:9")];
    vars.extend_from_slice(extra);
    crate::embedded_app(crate::config(data_dir, &vars)).0
}

/// Acme connected to Twilio (API key, TwiML App), as onboarding leaves it.
pub async fn seed_workspace(app: &App) {
    let ws = WorkspaceId::parse(WORKSPACE).unwrap();
    let seal = |secret: &str| {
        let secret = SecretString::from(secret.to_owned());
        let ws = ws.clone();
        async move { app.secrets.seal(&ws, &secret).await.expect("seal") }
    };
    let workspace = Workspace {
        id: ws.clone(),
        twilio: Some(TwilioAccount {
            account_sid: sid("AC", WORKSPACE),
            auth_token: seal(AUTH_TOKEN).await,
            api_key: Some(ApiKey {
                sid: sid("SK", WORKSPACE),
                secret: seal("api-key-secret-of-acme").await,
            }),
            twiml_app_sid: Some(sid("AP", WORKSPACE)),
        }),
        settings: Default::default(),
    };
    app.store.put_workspace(&workspace).await.expect("workspace");
}

/// Acme as the Twilio sample events presume it: connected, the number that
/// rings alice, alice's outbound call to the customer and a recording of it
/// waiting to be copied.
pub async fn seed(app: &App) {
    seed_workspace(app).await;
    let ws = WorkspaceId::parse(WORKSPACE).unwrap();
    let number = PhoneNumber {
        number: E164::parse(ACME_NUMBER).unwrap(),
        sid: Some(sid("PN", "acme-main-line")),
        agents: vec![AgentId::parse("alice").unwrap()],
        label: Some("Main line".into()),
    };
    app.store.replace_numbers(&ws, &[number]).await.expect("numbers");
    let created = seeded_at();
    let session = alices_call(CALL_ID);
    app.store.create_call(&session).await.expect("call");
    let mut recording = Recording::new(RECORDING_SID.parse().unwrap(), RecordingStatus::Pending, created);
    recording.source = Some("Conference".into());
    recording.channels = Some(2);
    recording.duration_seconds = Some(42);
    app.store
        .put_recording(&ws, &session.id, &recording)
        .await
        .expect("recording");
}

/// Seeds a fresh data directory and closes the store (redb allows one
/// process at a time): a template the benchmarks copy for every run.
/// `full`: everything `seed` adds; otherwise the connected workspace only.
/// `calls`: that many more calls (`seed_calls`).
pub fn seed_data_dir(data_dir: &Path, public_url: &str, full: bool, calls: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = app(data_dir, &[("SWITCHBOARD_PUBLIC_URL", public_url)]).await;
        if full {
            seed(&app).await;
        } else {
            seed_workspace(&app).await;
        }
        seed_calls(&app, calls).await;
    });
}

/// The form of a customer-leg call status callback of `CALL_ID`, as Twilio sends it.
pub fn status_callback_params(status: &str, sequence: u32) -> Vec<(&'static str, String)> {
    customer_callback_params(CUSTOMER_CALL_SID, status, sequence)
}

/// The form of a call status callback of the customer leg `call_sid`.
pub fn customer_callback_params(call_sid: &str, status: &str, sequence: u32) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", sid::<String>("AC", WORKSPACE)),
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

/// The status callback's path and query (customer leg of `CALL_ID`).
pub fn status_callback_path() -> String {
    customer_callback_path(CALL_ID)
}

/// The status callback path of the customer leg of call `call_id`.
pub fn customer_callback_path(call_id: &str) -> String {
    format!("/twilio/status?callId={call_id}&leg=customer")
}

/// The `n`-th of the extra outbound calls `seed_calls` adds: its call id and
/// its customer leg's CallSid.
pub fn extra_call(n: u32) -> (String, String) {
    let id = ulid::Ulid::from_parts(1_732_617_055_000, u128::from(n)).to_string();
    (id, sid("CA", &format!("customer-{n}")))
}

/// When the seeded calls were placed.
fn seeded_at() -> Timestamp {
    Timestamp::parse_rfc2822("Tue, 26 Nov 2024 10:30:55 +0000").unwrap()
}

/// Alice's outbound call `id` from Acme's number to the customer.
fn alices_call(id: &str) -> CallSession {
    CallSession::new(
        WorkspaceId::parse(WORKSPACE).unwrap(),
        Direction::Outbound,
        Some(AgentId::parse("alice").unwrap()),
        ACME_NUMBER.into(),
        CUSTOMER.into(),
        seeded_at(),
    )
    .with_id(CallId::parse(id).unwrap())
}

/// `count` more outbound calls of alice's, as `POST /calls` leaves them.
pub async fn seed_calls(app: &App, count: u32) {
    for n in 0..count {
        let (id, _) = extra_call(n);
        let session = alices_call(&id);
        app.store.create_call(&session).await.expect("call");
    }
}

/// `X-Twilio-Signature` of Acme's Auth Token for `url` and `params`.
pub fn sign(url: &str, params: &[(&str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    switchboard::twilio::signature::sign(AUTH_TOKEN.as_bytes(), url, &pairs)
}

/// A signed form POST to `path_and_query`, signed with Acme's Auth Token.
pub fn twilio_post(path_and_query: &str, params: &[(&str, String)]) -> Request {
    crate::signed_post(path_and_query, params, AUTH_TOKEN)
}

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

/// Kilobytes of a `/proc/<pid>/status` line (`VmHWM:`, `VmRSS:`).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
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
