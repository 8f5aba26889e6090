//! Part 1: the local server killed (SIGKILL) at random moments under mixed
//! load, again and again, on the embedded store. After each restart every
//! write it acknowledged must be there; at the end the recording copy queue
//! has resumed and copied every acknowledged recording exactly once, and the
//! store reads back whole.
//!
//! The simulated Twilio (the sandbox's, `switchboard-twilio-sim`, live) runs
//! in this process rather than inside the server (`--sandbox`): Twilio does
//! not die when Switchboard does, and the recordings still to be copied
//! after a crash must still be there to download.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest;
use switchboard_twilio_sim::{DeviceOwner, Fault, FaultKind, Options, Sim, Timing};

use crate::Knobs;
use crate::common::{Api, Row, Server, Tally, free_address, fresh_dir, run_part, sid, statuses_text};
use crate::ledger::Ledger;
use crate::load::{Account, Load, Mix, People, connect_workspace};

pub const FAULT: &str = "SIGKILL of the local server under mixed load";

/// Simulated time runs this much faster (a 2 s call takes 100 ms).
const SCALE: f64 = 0.05;

pub async fn run(knobs: &Knobs) -> Row {
    run_part(FAULT, campaign(knobs)).await
}

async fn campaign(knobs: &Knobs) -> Result<Row, String> {
    let dir = fresh_dir(&knobs.out, "kill")?;
    let data = dir.join("data");
    let log = dir.join("server.log");

    let account = Account {
        sid: sid("AC", "faults-kill"),
        auth_token: sid("", "faults-kill-auth-token"),
        agent_number: "+14155550111".into(),
        voicemail_number: "+14155550112".into(),
    };
    let options = Options {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Options::live()
    };
    let sim = Arc::new(
        Sim::start(&account.sid, &account.auth_token, options)
            .await
            .map_err(|e| format!("the simulated Twilio could not listen: {e}"))?,
    );
    sim.add_number_for(&account.sid, &account.agent_number);
    sim.add_number_for(&account.sid, &account.voicemail_number);
    sim.set_timing(Timing {
        scale: SCALE,
        ..Timing::default()
    });
    let people = People::Sim {
        sim: Arc::clone(&sim),
        owner: DeviceOwner {
            account_sid: account.sid.clone(),
            identity: "agent_alice".into(),
        },
    };

    // The same address every time: the simulated Twilio keeps calling it.
    let address = free_address();
    let vars = vec![
        ("SWITCHBOARD_DATA_DIR", data.display().to_string()),
        ("SWITCHBOARD_TWILIO_API_URL", sim.uri()),
    ];
    let command = || Server::command(&address, &[], &vars);
    let mut server = Server::start(command(), &address, &log).await?;
    let api = Api::new(&server.base());
    connect_workspace(&api, &account, json!({})).await?;

    let ledger = Arc::new(Ledger::default());
    let tally = Arc::new(Tally::default());
    let mix = Mix {
        outbound: 3,
        control: 1,
        ..Mix::EVERY_FLOW
    };
    let mut rng = fastrand::Rng::with_seed(knobs.seed);
    let mut problems = Vec::new();
    let mut lost = 0;
    let mut seen_webhooks = 0;
    let mut restarts = Vec::new();
    let mut pending_at_a_crash = BTreeSet::new();
    for cycle in 0..knobs.kills {
        let load = Arc::new(Load::new(
            api.clone(),
            people.clone(),
            account.clone(),
            Arc::clone(&ledger),
            Arc::clone(&tally),
            &format!("kill{}-{cycle}", knobs.seed),
        ));
        // The next recording download is slow: a copy is under way
        // when the kill comes, and must be finished after the restart.
        sim.fail_next(Fault::new(
            "GET",
            "/Recordings/",
            FaultKind::Delay(Duration::from_secs(2)),
        ));
        let running = load.start(mix);
        tokio::time::sleep(Duration::from_millis(rng.u64(300..=2_500))).await;
        server.kill();
        load.finish(running).await;
        let restarted = Instant::now();
        server = Server::start(command(), &address, &log).await?;
        restarts.push(restarted.elapsed());
        seen_webhooks = note_webhooks(&sim, &ledger, &tally, seen_webhooks);
        // Copies the crash interrupted or left waiting: the queue must
        // finish them after the restart.
        let acknowledged = ledger.recordings();
        for (call, entries) in read_recording_entries(&api, &acknowledged).await {
            for (sid, entry) in entries {
                if entry["status"] != "stored" && acknowledged.get(&call).is_some_and(|s| s.contains(&sid)) {
                    pending_at_a_crash.insert(format!("{call}/{sid}"));
                }
            }
        }
        let verified = ledger.verify(&api).await;
        lost += verified.lost;
        if let Some(problem) = verified.problem() {
            problems.push(format!("after kill {}: {problem}", cycle + 1));
        }
        eprintln!(
            "faults: kill {}/{}: {} acknowledged so far, {} lost",
            cycle + 1,
            knobs.kills,
            ledger.acknowledged(),
            verified.lost
        );
    }

    // The copy queue resumes: every acknowledged recording gets stored.
    seen_webhooks = note_webhooks(&sim, &ledger, &tally, seen_webhooks);
    let recordings = ledger.recordings();
    let pending = wait_stored(&api, &recordings, Duration::from_secs(90)).await;
    let _ = note_webhooks(&sim, &ledger, &tally, seen_webhooks);
    let verified = ledger.verify(&api).await;
    lost += verified.lost;
    if let Some(problem) = verified.problem() {
        problems.push(format!("at the end: {problem}"));
    }
    if !pending.is_empty() {
        problems.push(format!(
            "{} acknowledged recordings never stored: {:?}",
            pending.len(),
            pending.iter().take(5).collect::<Vec<_>>()
        ));
    }
    let sessions = read_recording_entries(&api, &recordings).await;
    let stopped_cleanly = server.stop();
    if !stopped_cleanly {
        problems.push("the server did not stop cleanly on SIGTERM".into());
    }

    // Nothing corrupt: redb's check, every value decoded, every index entry
    // pointing at something.
    let store_check = match switchboard_embedded::check_store(&data.join("store")) {
        Ok(checked) => format!("store check: {} entries whole", checked.entries),
        Err(error) => {
            problems.push(format!("the store does not check out: {error}"));
            format!("store check FAILED: {error}")
        }
    };
    let files = RecordingFiles::scan(&data.join("recordings"));
    let in_store = match recordings_in_store(&data.join("store")).await {
        Ok(found) => found,
        Err(error) => {
            problems.push(format!("the store could not be listed: {error}"));
            StoredRecordings::default()
        }
    };
    if !in_store.stranded.is_empty() {
        problems.push(format!(
            "{} recordings noted on their session with no copy queued (never copied): {:?}",
            in_store.stranded.len(),
            in_store.stranded.iter().take(5).collect::<Vec<_>>()
        ));
    }
    let copies = check_copies(&sim, &sessions, &in_store.all, &files, &mut problems);
    let resumed = pending_at_a_crash.iter().filter(|key| !pending.contains(*key)).count();

    let (slowest, what) = tally.slowest();
    let figures = format!(
        "{} kills, restart to first answer {:.0}–{:.0} ms; {copies}; copies waiting at a crash and finished after \
         the restart: {resumed} of {}; {store_check}; answers: {}; slowest {:.2} s ({what}){}",
        knobs.kills,
        restarts.iter().min().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        restarts.iter().max().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        pending_at_a_crash.len(),
        statuses_text(&tally.statuses()),
        slowest.as_secs_f64(),
        tally.undocumented_note(),
    );
    problems.extend(tally.undocumented_problem());
    Ok(Row {
        fault: FAULT.into(),
        injected: knobs.kills.to_string(),
        requests: tally.get("requests"),
        acknowledged: ledger.acknowledged(),
        lost,
        figures,
        problems,
        seconds: 0.0,
    })
}

/// Adds what the simulated Twilio's webhooks had acknowledged (answered
/// 200) to the ledger: timeline events of status callbacks that name their
/// call, recordings. Returns how many webhooks it has looked at.
fn note_webhooks(sim: &Sim, ledger: &Ledger, tally: &Tally, from: usize) -> usize {
    let webhooks = sim.webhooks();
    for hook in webhooks.iter().skip(from) {
        tally.add("requests", 1);
        match hook.status {
            Some(status) => tally.add(&format!("webhook (simulated Twilio) {status}"), 1),
            None => tally.add("webhook (simulated Twilio) 0", 1),
        }
        if hook.status.is_some_and(|s| (200..300).contains(&s)) {
            tally.add("acknowledged", 1);
        }
        let Ok(url) = reqwest::Url::parse(&hook.url) else {
            continue;
        };
        let voice = url.path().starts_with("/twilio/voice/");
        let undocumented = match hook.status {
            None => false,
            Some(200) => !hook.answer.contains("<Response"),
            Some(status) => voice || status >= 500 && status != 503,
        };
        if undocumented {
            tally.add("undocumented answers", 1);
            tally.example(format!(
                "{} {}: {:?} {}",
                hook.method,
                url.path(),
                hook.status,
                hook.answer
            ));
        }
        if hook.status != Some(200) {
            continue;
        }
        let Some(call) = url
            .query_pairs()
            .find(|(k, _)| k == "callId")
            .map(|(_, v)| v.into_owned())
        else {
            continue;
        };
        let param = |name: &str| {
            hook.params
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        match url.path() {
            "/twilio/status" => {
                let event = param("StatusCallbackEvent");
                let status = param("CallStatus");
                let (call_sid, sequence) = (param("CallSid"), param("SequenceNumber"));
                if [
                    "participant-join",
                    "participant-leave",
                    "conference-start",
                    "conference-end",
                ]
                .contains(&event)
                {
                    ledger.event(&call, &format!("conference:{event}:{call_sid}:{sequence}"));
                } else if event.is_empty() && known_call_status(status) {
                    ledger.event(&call, &format!("call:{call_sid}:{status}:{sequence}"));
                }
            }
            "/twilio/recording" if param("RecordingStatus") == "completed" => {
                ledger.recording(&call, param("RecordingSid"));
            }
            _ => {}
        }
    }
    webhooks.len()
}

/// One of Twilio's call statuses the server knows (`CallStatus`).
fn known_call_status(status: &str) -> bool {
    use switchboard::twilio::webhooks::{CallStatus, Unknown};
    serde_json::from_value::<CallStatus>(serde_json::Value::from(status)).is_ok_and(|s| s.unknown().is_none())
}

/// The recordings the sessions of the workspace note, read from the store
/// itself (the server stopped): every sid, and those still to copy that no
/// queued job will ever copy (stranded).
#[derive(Default)]
pub struct StoredRecordings {
    pub all: BTreeSet<String>,
    pub pending: usize,
    pub stranded: Vec<String>,
}

pub async fn recordings_in_store(store_dir: &Path) -> Result<StoredRecordings, String> {
    use switchboard::model::recordings::RecordingStatus;
    use switchboard::ports::{CallQuery, CallStore};
    let store = switchboard_embedded::EmbeddedStore::open(store_dir).map_err(|e| e.to_string())?;
    let workspace = switchboard::ids::WorkspaceId::parse(crate::common::WORKSPACE).map_err(|e| e.to_string())?;
    let queued: BTreeSet<(String, String)> = store
        .queued_jobs()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(_, q)| (q.job.call.to_string(), q.job.recording.to_string()))
        .collect();
    let mut found = StoredRecordings::default();
    let mut cursor = None;
    loop {
        let query = CallQuery {
            limit: 1000,
            cursor,
            ..CallQuery::default()
        };
        let page = store.list_calls(&workspace, &query).await.map_err(|e| e.to_string())?;
        for session in &page.items {
            for (sid, recording) in &session.recordings {
                found.all.insert(sid.clone());
                if recording.status == RecordingStatus::Pending {
                    found.pending += 1;
                    if !queued.contains(&(session.id.to_string(), sid.clone())) {
                        found.stranded.push(format!("{}/{sid}", session.id));
                    }
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}

/// Waits until every recording in `wanted` is stored on its session;
/// returns the ones that are not.
pub async fn wait_stored(api: &Api, wanted: &BTreeMap<String, BTreeSet<String>>, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let entries = read_recording_entries(api, wanted).await;
        let pending: Vec<String> = wanted
            .iter()
            .flat_map(|(call, sids)| sids.iter().map(move |s| (call, s)))
            .filter(|(call, sid)| {
                entries
                    .get(*call)
                    .and_then(|r| r.get(*sid))
                    .is_none_or(|entry| entry["status"] != "stored")
            })
            .map(|(call, sid)| format!("{call}/{sid}"))
            .collect();
        if pending.is_empty() || Instant::now() > deadline {
            return pending;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The recording entries of the calls in `wanted`, by call and sid.
pub async fn read_recording_entries(
    api: &Api,
    wanted: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, BTreeMap<String, serde_json::Value>> {
    let mut entries = BTreeMap::new();
    for call in wanted.keys() {
        let answer = api.get(&format!("/calls/{call}")).await;
        if answer.status != 200 {
            continue;
        }
        let body = answer.json();
        let mut by_sid = BTreeMap::new();
        if let Some(map) = body["recordings"].as_object() {
            for (key, entry) in map {
                let sid = entry["sid"].as_str().unwrap_or(key).to_owned();
                by_sid.insert(sid, entry.clone());
            }
        }
        entries.insert(call.clone(), by_sid);
    }
    entries
}

/// The recording files under a data directory's `recordings/`.
#[derive(Default)]
pub struct RecordingFiles {
    /// By RecordingSid: (path, size, SHA-256 hex).
    pub stored: BTreeMap<String, Vec<(String, u64, String)>>,
    /// Half-written uploads left behind (a crash mid-copy).
    pub partial: usize,
}

impl RecordingFiles {
    pub fn scan(dir: &Path) -> Self {
        let mut files = Self::default();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    stack.push(path);
                } else if name.starts_with('.') {
                    files.partial += 1;
                } else if let Some(stem) = name.strip_suffix(".mp3").or_else(|| name.strip_suffix(".wav")) {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    let sha = hex::encode(sha2::Sha256::digest(&bytes));
                    files.stored.entry(stem.to_owned()).or_default().push((
                        path.display().to_string(),
                        bytes.len() as u64,
                        sha,
                    ));
                }
            }
        }
        files
    }
}

/// Every acknowledged recording stored once, its file what Twilio served
/// (size and SHA-256 of the simulated Twilio's audio), its entry saying the
/// same; no file nobody recorded. Returns the figures.
fn check_copies(
    sim: &Sim,
    sessions: &BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    all_recorded: &BTreeSet<String>,
    files: &RecordingFiles,
    problems: &mut Vec<String>,
) -> String {
    let durations: BTreeMap<String, u64> = sim.recordings().into_iter().map(|r| (r.sid, r.duration)).collect();
    let mut downloads: BTreeMap<String, usize> = BTreeMap::new();
    for request in sim.requests() {
        if request.method == "GET"
            && let Some(name) = request.path.rsplit('/').next()
            && let Some(sid) = name.strip_suffix(".mp3")
        {
            *downloads.entry(sid.to_owned()).or_default() += 1;
        }
    }
    let mut stored = 0;
    let mut recorded: BTreeSet<String> = BTreeSet::new();
    for (call, entries) in sessions {
        for (sid, entry) in entries {
            recorded.insert(sid.clone());
            if entry["status"] != "stored" {
                continue;
            }
            stored += 1;
            let Some(copies) = files.stored.get(sid) else {
                problems.push(format!("recording {sid} of call {call} is stored but has no file"));
                continue;
            };
            if copies.len() != 1 {
                problems.push(format!("recording {sid} has {} files", copies.len()));
            }
            let expected = switchboard_twilio_sim::media::mp3(durations.get(sid).copied().unwrap_or_default());
            let expected_sha = hex::encode(sha2::Sha256::digest(&expected));
            for (path, size, sha) in copies {
                if *sha != expected_sha || *size != expected.len() as u64 {
                    problems.push(format!(
                        "{path}: {size} bytes, not the {} Twilio served",
                        expected.len()
                    ));
                }
                if entry["sha256"].as_str() != Some(sha.as_str()) {
                    problems.push(format!("recording {sid}: the entry's SHA-256 is not its file's"));
                }
            }
        }
    }
    let orphans: Vec<&String> = files
        .stored
        .keys()
        .filter(|sid| !recorded.contains(*sid) && !all_recorded.contains(*sid))
        .collect();
    if !orphans.is_empty() {
        problems.push(format!("files no session records: {orphans:?}"));
    }
    let again = downloads.values().filter(|n| **n > 1).count();
    format!(
        "recordings: {stored} stored, each once (downloaded again after a crash: {again}; \
         half-written files left by crashes: {})",
        files.partial
    )
}
