//! Part 4: Twilio's REST API failing in every flow that calls it, under
//! load: the sandbox's fault switches (`POST /sandbox/faults`) turn on and
//! off in turn (every call placed fails; the API unreachable; the
//! credentials refused) while calls are placed, held, transferred to
//! another agent who answers, supervised, muted, paused, hung up, and texts
//! are sent. Every answer must be one the README documents (a 502 naming
//! the step, a 409), and once Twilio is back and everyone hangs up, no
//! session may be left in a middle state.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::Knobs;
use crate::common::{Api, Row, Server, Tally, agent_token, free_address, fresh_dir, run_part, statuses_text};
use crate::ledger::Ledger;
use crate::load::{Load, Mix, People, connect_workspace, sandbox_account};

pub const FAULT: &str = "Twilio's REST API failing (calls, participants, texts, recordings)";

/// The customer answers and hangs up after 60 simulated seconds (3 s here).
const MINUTE_CALL: &str = "+15005551060";

const SWITCHES: [(&str, &str); 3] = [
    ("every call placed fails", r#"{"failCalls": true}"#),
    ("the API unreachable", r#"{"reachable": false}"#),
    ("the credentials refused", r#"{"credentials": "refused"}"#),
];
const HEALED: &str = r#"{"failCalls": false, "reachable": true, "credentials": "ok"}"#;

pub async fn run(knobs: &Knobs) -> Row {
    run_part(FAULT, campaign(knobs)).await
}

async fn campaign(knobs: &Knobs) -> Result<Row, String> {
    let dir = fresh_dir(&knobs.out, "twilio")?;
    let address = free_address();
    let vars = vec![
        ("SWITCHBOARD_DATA_DIR", dir.join("data").display().to_string()),
        // Sessions nobody connected are abandoned soon (read as such).
        ("SWITCHBOARD_CONNECT_WINDOW_SECONDS", "5".to_owned()),
    ];
    let mut server = Server::start(
        Server::command(&address, &["--sandbox"], &vars),
        &address,
        &dir.join("server.log"),
    )
    .await?;
    let api = Api::new(&server.base());
    let account = sandbox_account(&api).await?;
    // Twilio's copy of each recording is deleted once ours is stored: the
    // deletion is one more REST call to fail.
    connect_workspace(&api, &account, json!({"deleteTwilioRecordingAfterCopy": true})).await?;
    api.send(Method::POST, "/sandbox/timers", "", Some(&json!({"scale": 0.05})))
        .await;

    let ledger = Arc::new(Ledger::default());
    let tally = Arc::new(Tally::default());
    let load = Arc::new(
        Load::new(
            api.clone(),
            People::Sandbox { api: api.clone() },
            account.clone(),
            Arc::clone(&ledger),
            Arc::clone(&tally),
            &format!("twilio{}", knobs.seed),
        )
        .calling(MINUTE_CALL),
    );
    let mix = Mix {
        outbound: 3,
        texts_out: 1,
        texts_in: 1,
        voicemails: 1,
        ..Mix::default()
    };
    let running = load.start(mix);
    let controller = Controller {
        api: api.clone(),
        load: Arc::clone(&load),
        bob: agent_token("bob", "agent"),
        sue: agent_token("sue", "supervisor"),
        legs: std::sync::Mutex::new(Vec::new()),
    };
    let controller = Arc::new(controller);
    let controlling: Vec<_> = (0..2)
        .map(|_| {
            let controller = Arc::clone(&controller);
            tokio::spawn(async move { controller.run().await })
        })
        .collect();

    // The switches in turn, each on for a while, with Twilio fine between.
    let until = Instant::now() + Duration::from_secs_f64(knobs.phase_seconds * 3.0);
    let mut windows = 0;
    let mut n = 0;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    while Instant::now() < until {
        let (_, switch) = SWITCHES[n % SWITCHES.len()];
        let on = api
            .send(
                Method::POST,
                "/sandbox/faults",
                "",
                Some(&serde_json::from_str(switch).unwrap_or_default()),
            )
            .await;
        if on.status != 200 {
            return Err(format!("POST /sandbox/faults: {} {}", on.status, on.body));
        }
        windows += 1;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        api.send(
            Method::POST,
            "/sandbox/faults",
            "",
            Some(&serde_json::from_str(HEALED).unwrap_or_default()),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        n += 1;
    }
    load.finish(running).await;
    for task in controlling {
        let _ = task.await;
    }

    // Everyone hangs up; then no session may be left half way.
    let mut legs = load
        .device_legs
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|leg| (api.alice.clone(), leg))
        .collect::<Vec<_>>();
    legs.extend(controller.legs.lock().map(|l| l.clone()).unwrap_or_default());
    for (bearer, leg) in &legs {
        let _ = load.people.hang_up(bearer, leg).await;
    }
    let mut stuck = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in ledger.calls() {
        loop {
            let answer = api.get(&format!("/calls/{id}")).await;
            let call = answer.json();
            let state = call["state"].as_str().unwrap_or_default().to_owned();
            let terminal =
                ["completed", "busy", "no-answer", "failed", "canceled", "abandoned"].contains(&state.as_str());
            // A transfer still under way on a call that is over is half way too.
            let transfer_over =
                !["ringing", "talking"].contains(&call["transfer"]["state"].as_str().unwrap_or_default());
            if terminal && transfer_over {
                break;
            }
            if Instant::now() > deadline {
                stuck.push(describe(&id, &call));
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let verified = ledger.verify(&api).await;
    let recordings = wait_copied(&api, Duration::from_secs(60)).await;
    let stopped = server.stop();

    let mut problems = Vec::new();
    if !stuck.is_empty() {
        problems.push(format!(
            "{} sessions left in a middle state: {:?}",
            stuck.len(),
            stuck.iter().take(5).collect::<Vec<_>>()
        ));
    }
    problems.extend(tally.undocumented_problem());
    if recordings.unfinished > 0 {
        problems.push(format!(
            "{} recordings not copied (or Twilio's copy not deleted) 60 s after Twilio came back",
            recordings.unfinished
        ));
    }
    problems.extend(verified.problem());
    if !stopped {
        problems.push("the server did not stop cleanly".into());
    }
    let (slowest, what) = tally.slowest();
    let actions: Vec<String> = tally
        .all()
        .into_iter()
        .filter(|(name, _)| name.starts_with("POST /calls/{id}/") || name.starts_with("POST /messages"))
        .map(|(name, n)| format!("{} {n}", name.trim_start_matches("POST /calls/{id}/")))
        .collect();
    eprintln!("faults: twilio: answers by route: {}", actions.join(", "));
    let figures = format!(
        "switch windows: {windows} ({}); answers: {}; 502s (Twilio failed, step named): {}; sessions checked: {}, \
         in a middle state: {}; recordings: {} stored and deleted at Twilio after their copy ({} attempts \
         failed on the way){}; by route: {}; slowest {:.2} s ({what}){}",
        SWITCHES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
        statuses_text(&tally.statuses()),
        tally.statuses().get(&502).copied().unwrap_or_default(),
        ledger.calls().len(),
        stuck.len(),
        recordings.done,
        recordings.failed_attempts,
        match recordings.unfinished {
            0 => String::new(),
            n => format!(", {n} UNFINISHED"),
        },
        actions.join(", "),
        slowest.as_secs_f64(),
        tally.undocumented_note(),
    );
    Ok(Row {
        fault: FAULT.into(),
        injected: windows.to_string(),
        requests: tally.get("requests"),
        acknowledged: ledger.acknowledged(),
        lost: verified.lost,
        figures,
        problems,
        seconds: 0.0,
    })
}

fn describe(id: &str, call: &Value) -> String {
    let kinds: Vec<&str> = call["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    format!(
        "{id}: {} (transfer {}), timeline {kinds:?}",
        call["state"], call["transfer"]["state"]
    )
}

/// Call control on the calls with a browser connected, with the other
/// agents' devices answering what rings them.
struct Controller {
    api: Api,
    load: Arc<Load>,
    bob: String,
    sue: String,
    /// Devices' legs answered here (bearer, CallSid), hung up at the end.
    legs: std::sync::Mutex<Vec<(String, String)>>,
}

impl Controller {
    async fn run(&self) {
        let mut step = 0u64;
        while !self.load.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // A call that is connected now.
            let listed = self.api.get("/calls?status=in-progress&limit=20").await;
            let connected: Vec<String> = listed.json()["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["callId"].as_str().map(str::to_owned))
                .collect();
            if connected.is_empty() {
                continue;
            }
            let id = connected[fastrand::usize(..connected.len())].clone();
            step += 1;
            let path = |tail: &str| format!("/calls/{id}{tail}");
            let alice = self.api.alice.clone();
            match step % 7 {
                0 => {
                    for hold in [true, false] {
                        self.act(&alice, &path("/hold"), Some(json!({"hold": hold}))).await;
                    }
                }
                1 => {
                    let started = self
                        .act(
                            &alice,
                            &path("/transfer"),
                            Some(json!({"to": {"agent": "bob"}, "mode": "warm"})),
                        )
                        .await;
                    if started == 202 && self.answer(&self.bob).await {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        self.act(&alice, &path("/transfer/complete"), None).await;
                    }
                }
                2 => {
                    let started = self
                        .act(
                            &alice,
                            &path("/transfer"),
                            Some(json!({"to": {"agent": "bob"}, "mode": "warm"})),
                        )
                        .await;
                    if started == 202 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        self.act(&alice, &path("/transfer/cancel"), None).await;
                    }
                }
                3 => {
                    let started = self
                        .act(&self.sue, &path("/monitor"), Some(json!({"mode": "listen"})))
                        .await;
                    if started == 202 && self.answer(&self.sue).await {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        self.act(&self.sue, &path("/monitor"), Some(json!({"mode": "whisper"})))
                            .await;
                    }
                }
                4 => {
                    self.act(
                        &alice,
                        &path("/participants/customer/mute"),
                        Some(json!({"muted": true})),
                    )
                    .await;
                }
                5 => {
                    for action in ["pause", "resume"] {
                        self.act(&alice, &path("/recording"), Some(json!({"action": action})))
                            .await;
                    }
                }
                _ => {
                    self.act(&alice, &path("/hangup"), None).await;
                }
            }
        }
    }

    async fn act(&self, bearer: &str, path: &str, body: Option<Value>) -> u16 {
        let answer = self.api.send(Method::POST, path, bearer, body.as_ref()).await;
        let what = path.split('/').skip(3).collect::<Vec<_>>().join("/");
        self.load.agent_answer(&format!("POST /calls/{{id}}/{what}"), &answer);
        answer.status
    }

    /// The device of `bearer`'s agent answers what rings it (within 2 s).
    async fn answer(&self, bearer: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let incoming = self
                .api
                .send(Method::GET, "/sandbox/device/incoming", bearer, None)
                .await;
            let ringing: Vec<String> = incoming.json()["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["status"] == "ringing")
                .filter_map(|c| c["callSid"].as_str().map(str::to_owned))
                .collect();
            for sid in ringing {
                let accepted = self
                    .api
                    .send(Method::POST, &format!("/sandbox/device/{sid}/accept"), bearer, None)
                    .await;
                if accepted.status == 200 {
                    if let Ok(mut legs) = self.legs.lock() {
                        legs.push((bearer.to_owned(), sid));
                    }
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// Where the recordings of every call stand.
struct Copied {
    done: u64,
    unfinished: u64,
    failed_attempts: u64,
}

/// Waits until every recording noted on a call is stored and deleted at
/// Twilio (the copy queue retrying what Twilio refused), at most `limit`.
async fn wait_copied(api: &Api, limit: Duration) -> Copied {
    let deadline = Instant::now() + limit;
    loop {
        let mut copied = Copied {
            done: 0,
            unfinished: 0,
            failed_attempts: 0,
        };
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/calls?limit=100&cursor={c}"),
                None => "/calls?limit=100".to_owned(),
            };
            let page = api.get(&path).await.json();
            for call in page["calls"].as_array().into_iter().flatten() {
                for recording in call["recordings"].as_object().into_iter().flatten().map(|(_, r)| r) {
                    copied.failed_attempts += recording["failedAttempts"].as_u64().unwrap_or_default();
                    match (recording["status"].as_str(), recording["twilioDeleted"].as_bool()) {
                        (Some("stored"), Some(true)) => copied.done += 1,
                        (Some("absent" | "failed"), _) => {}
                        _ => copied.unfinished += 1,
                    }
                }
            }
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        if copied.unfinished == 0 || Instant::now() > deadline {
            return copied;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
