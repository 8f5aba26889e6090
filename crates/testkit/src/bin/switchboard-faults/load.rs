//! Mixed load on one workspace: real calls through the simulated browser
//! (the simulated Twilio then calls every webhook), sessions whose customer
//! leg the driver reports itself with signed status callbacks, texts out
//! and in, voicemails (recordings to copy), signed voice and SMS webhooks.
//! Every answer is counted and checked against what the README documents;
//! every acknowledged write goes into the ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_twilio_sim::{DeviceAction, DeviceOwner, Sim};

use crate::common::{Answer, Api, Tally, sid};
use crate::ledger::Ledger;

/// The person at the other end of an outbound call answers and hangs up
/// after 2 simulated seconds (README "Who answers").
pub const SHORT_CALL: &str = "+15005551002";
/// Answers and stays on the line until hung up.
pub const STAYS: &str = "+15005550001";
/// A customer who texts and is texted.
pub const TEXTER: &str = "+15005550001";

/// The simulated Twilio: in this process (it outlives the server's
/// crashes, as Twilio does), or the sandbox's, over its routes.
#[derive(Clone)]
pub enum People {
    Sim { sim: Arc<Sim>, owner: DeviceOwner },
    Sandbox { api: Api },
}

impl People {
    /// `device.connect({params})`: the browser's leg; its CallSid.
    pub async fn connect(&self, bearer: &str, voice_token: &str, params: &Value) -> Result<String, String> {
        match self {
            Self::Sim { sim, owner } => {
                let params: Vec<(String, String)> = params
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                sim.device_connect(Some(owner), voice_token, &params)
                    .map(|call| call.call_sid)
                    .map_err(|e| e.to_string())
            }
            Self::Sandbox { api } => {
                let body = json!({"token": voice_token, "params": params});
                let answer = api
                    .send(Method::POST, "/sandbox/device/connect", bearer, Some(&body))
                    .await;
                match answer.status {
                    201 => Ok(answer.json()["callSid"].as_str().unwrap_or_default().to_owned()),
                    _ => Err(format!("{} {}", answer.status, answer.body)),
                }
            }
        }
    }

    /// A person texts `to`: the message's sid and the SMS webhook's status.
    pub async fn text_in(&self, from: &str, to: &str, body: &str) -> Result<(String, Option<u16>), String> {
        match self {
            Self::Sim { sim, .. } => sim
                .send_text(from, to, body)
                .await
                .map(|r| (r.message_sid, r.webhook_status))
                .map_err(|e| e.to_string()),
            Self::Sandbox { api } => {
                let text = json!({"from": from, "to": to, "body": body});
                let answer = api.send(Method::POST, "/sandbox/messages", "", Some(&text)).await;
                match answer.status {
                    201 => {
                        let body = answer.json();
                        let status = body["webhookStatus"].as_u64().and_then(|s| u16::try_from(s).ok());
                        Ok((body["messageSid"].as_str().unwrap_or_default().to_owned(), status))
                    }
                    _ => Err(format!("{} {}", answer.status, answer.body)),
                }
            }
        }
    }

    /// A person calls `to` (and, nobody answering, leaves a voicemail).
    pub async fn call_in(&self, from: &str, to: &str) -> Result<String, String> {
        match self {
            Self::Sim { sim, .. } => sim.place_call(from, to, None).map_err(|e| e.to_string()),
            Self::Sandbox { api } => {
                let call = json!({"from": from, "to": to});
                let answer = api.send(Method::POST, "/sandbox/calls", "", Some(&call)).await;
                match answer.status {
                    201 => Ok(answer.json()["callSid"].as_str().unwrap_or_default().to_owned()),
                    _ => Err(format!("{} {}", answer.status, answer.body)),
                }
            }
        }
    }

    /// The browser hangs up one of its calls.
    pub async fn hang_up(&self, bearer: &str, call_sid: &str) -> Result<(), String> {
        match self {
            Self::Sim { sim, owner } => sim
                .device_act(owner, call_sid, DeviceAction::HangUp)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Self::Sandbox { api } => {
                let answer = api
                    .send(
                        Method::POST,
                        &format!("/sandbox/device/{call_sid}/hangup"),
                        bearer,
                        None,
                    )
                    .await;
                match answer.status {
                    200 | 409 | 404 => Ok(()),
                    _ => Err(format!("{} {}", answer.status, answer.body)),
                }
            }
        }
    }
}

/// The Twilio account connected to the workspace.
#[derive(Clone)]
pub struct Account {
    pub sid: String,
    pub auth_token: String,
    /// Rings alice; she calls and texts from it.
    pub agent_number: String,
    /// Rings nobody: callers leave a voicemail.
    pub voicemail_number: String,
}

/// The sandbox's first account (`GET /sandbox/accounts`): alice calls
/// and texts from its first number; its second rings nobody.
pub async fn sandbox_account(api: &Api) -> Result<Account, String> {
    let accounts = api.send(Method::GET, "/sandbox/accounts", "", None).await;
    let first = &accounts.json()["accounts"][0];
    let text = |value: &Value| value.as_str().map(str::to_owned);
    match (
        text(&first["accountSid"]),
        text(&first["authToken"]),
        text(&first["numbers"][0]),
        text(&first["numbers"][1]),
    ) {
        (Some(sid), Some(auth_token), Some(agent_number), Some(voicemail_number)) => Ok(Account {
            sid,
            auth_token,
            agent_number,
            voicemail_number,
        }),
        _ => Err(format!("GET /sandbox/accounts: {} {}", accounts.status, accounts.body)),
    }
}

/// Connects `account` to the workspace (recording calls) and assigns alice
/// her number.
/// `settings` are more of the workspace's settings (README "Onboarding").
pub async fn connect_workspace(api: &Api, account: &Account, settings: Value) -> Result<(), String> {
    let mut body = json!({"accountSid": account.sid, "authToken": account.auth_token, "record": true});
    for (name, value) in settings.as_object().into_iter().flatten() {
        body[name] = value.clone();
    }
    let mut last = String::new();
    for _ in 0..20 {
        let answer = api
            .send(Method::PUT, "/workspace/twilio", &api.admin, Some(&body))
            .await;
        if answer.status == 200 {
            let number = account.agent_number.replace('+', "%2B");
            let agents = json!({"agents": ["alice"]});
            let assigned = api
                .send(
                    Method::PUT,
                    &format!("/workspace/numbers/{number}"),
                    &api.admin,
                    Some(&agents),
                )
                .await;
            if assigned.status == 200 {
                return Ok(());
            }
            last = format!("assigning alice's number: {} {}", assigned.status, assigned.body);
        } else {
            last = format!("PUT /workspace/twilio: {} {}", answer.status, answer.body);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(last)
}

/// Which actors run, and how many of each.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mix {
    pub outbound: usize,
    pub callbacks: usize,
    pub texts_out: usize,
    pub texts_in: usize,
    pub voicemails: usize,
    pub signed_voice: usize,
    pub signed_sms: usize,
    /// Holds and hang-ups of connected calls over the API (Twilio REST).
    pub control: usize,
}

impl Mix {
    /// Every flow on the sandbox's Twilio, no call control: the load of the
    /// disk and AWS parts.
    pub const EVERY_FLOW: Self = Self {
        outbound: 2,
        callbacks: 2,
        texts_out: 1,
        texts_in: 1,
        voicemails: 1,
        signed_voice: 1,
        signed_sms: 1,
        control: 0,
    };
}

pub struct Load {
    pub api: Api,
    pub people: People,
    pub account: Account,
    pub ledger: Arc<Ledger>,
    pub tally: Arc<Tally>,
    pub stop: Arc<AtomicBool>,
    /// Distinguishes this run's keys and SIDs from an earlier one's.
    pub run: String,
    serial: AtomicU64,
    /// The browser's legs of the real calls, for hanging up at the end.
    pub device_legs: std::sync::Mutex<Vec<String>>,
    /// Sessions with a connected browser, for call control.
    pub live_calls: std::sync::Mutex<Vec<String>>,
    /// Whom the browser calls.
    customer: &'static str,
}

impl Load {
    pub fn new(api: Api, people: People, account: Account, ledger: Arc<Ledger>, tally: Arc<Tally>, run: &str) -> Self {
        Self {
            api,
            people,
            account,
            ledger,
            tally,
            stop: Arc::new(AtomicBool::new(false)),
            run: run.to_owned(),
            serial: AtomicU64::new(0),
            device_legs: std::sync::Mutex::new(Vec::new()),
            live_calls: std::sync::Mutex::new(Vec::new()),
            customer: SHORT_CALL,
        }
    }

    /// The browser calls `customer` (README "Who answers").
    pub fn calling(mut self, customer: &'static str) -> Self {
        self.customer = customer;
        self
    }

    fn next(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs the mix on a task of its own until `finish`.
    pub fn start(self: &Arc<Self>, mix: Mix) -> tokio::task::JoinHandle<()> {
        let load = Arc::clone(self);
        tokio::spawn(async move { load.run(mix).await })
    }

    /// Stops the load `start` began, and waits for its actors to end.
    pub async fn finish(&self, running: tokio::task::JoinHandle<()>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = running.await;
    }

    /// Runs the mix until `stop` is set.
    pub async fn run(self: &Arc<Self>, mix: Mix) {
        let mut tasks = Vec::new();
        let spawn = |tasks: &mut Vec<tokio::task::JoinHandle<()>>, n: usize, f: fn(Arc<Load>) -> Actor| {
            for _ in 0..n {
                tasks.push(tokio::spawn(f(Arc::clone(self))));
            }
        };
        spawn(&mut tasks, mix.outbound, |l| {
            Box::pin(async move { l.outbound().await })
        });
        spawn(&mut tasks, mix.callbacks, |l| {
            Box::pin(async move { l.callbacks().await })
        });
        spawn(&mut tasks, mix.texts_out, |l| {
            Box::pin(async move { l.texts_out().await })
        });
        spawn(&mut tasks, mix.texts_in, |l| {
            Box::pin(async move { l.texts_in().await })
        });
        spawn(&mut tasks, mix.voicemails, |l| {
            Box::pin(async move { l.voicemails().await })
        });
        spawn(&mut tasks, mix.signed_voice, |l| {
            Box::pin(async move { l.signed_voice().await })
        });
        spawn(&mut tasks, mix.signed_sms, |l| {
            Box::pin(async move { l.signed_sms().await })
        });
        spawn(&mut tasks, mix.control, |l| Box::pin(async move { l.control().await }));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// An agent route's answer: 2xx, a documented 4xx, 502 (Twilio) or 503
    /// (storage) are as documented; a 500, or anything else, is not.
    pub fn agent_answer(&self, what: &str, answer: &Answer) {
        self.tally.answer(what, answer);
        let documented = matches!(answer.status, 0 | 200..=299 | 400 | 403 | 404 | 409 | 502 | 503)
            && (answer.status == 0 || answer.ok() || answer.json()["error"]["code"].is_string());
        if !documented {
            self.undocumented(what, answer);
        }
    }

    /// A callback's answer: TwiML, 200 or an error status (503 while the
    /// store is unavailable), never a 500.
    pub fn callback_answer(&self, what: &str, answer: &Answer) {
        self.tally.answer(what, answer);
        let twiml = answer.body.contains("<Response");
        let documented = answer.status == 0 || (matches!(answer.status, 200 | 400 | 404 | 503) && twiml);
        if !documented {
            self.undocumented(what, answer);
        }
    }

    /// A voice webhook's answer: always 200 TwiML (a failure says something
    /// short and hangs up).
    pub fn voice_answer(&self, what: &str, answer: &Answer) {
        self.tally.answer(what, answer);
        let documented = answer.status == 0 || (answer.status == 200 && answer.body.contains("<Response"));
        if !documented {
            self.undocumented(what, answer);
        }
        if answer.status == 200 && answer.body.contains("<Hangup") && answer.body.contains("trouble") {
            self.tally.add("voice webhooks answered with the failure message", 1);
        }
    }

    fn undocumented(&self, what: &str, answer: &Answer) {
        self.tally.add("undocumented answers", 1);
        self.tally.example(format!(
            "{what}: {} {}",
            answer.status,
            answer.body.chars().take(200).collect::<String>()
        ));
    }

    /// `POST /calls` with an idempotency key; the call id if acknowledged.
    async fn create_call(&self, to: &str) -> Option<(String, Value)> {
        let key = format!("{}-call-{}", self.run, self.next());
        let body = json!({"to": to});
        let answer = self
            .api
            .send_with(Method::POST, "/calls", &self.api.alice, Some(&body), Some(&key))
            .await;
        self.agent_answer("POST /calls", &answer);
        if answer.status != 201 {
            return None;
        }
        let placed = answer.json();
        let id = placed["callId"].as_str()?.to_owned();
        self.ledger.call(&id);
        Some((id, placed))
    }

    async fn voice_token(&self) -> Option<String> {
        let answer = self.api.send(Method::POST, "/token", &self.api.alice, None).await;
        self.agent_answer("POST /token", &answer);
        answer.json()["token"].as_str().map(str::to_owned)
    }

    async fn pause(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Calls placed from alice's browser to a customer who answers and
    /// hangs up: the simulated Twilio drives every webhook, and the
    /// conference is recorded.
    async fn outbound(self: Arc<Self>) {
        let mut token: Option<String> = None;
        while !self.stopped() {
            if token.is_none() {
                token = self.voice_token().await;
                if token.is_none() {
                    self.pause(200).await;
                    continue;
                }
            }
            let Some((id, placed)) = self.create_call(self.customer).await else {
                self.pause(100).await;
                continue;
            };
            let voice = token.clone().unwrap_or_default();
            match self
                .people
                .connect(&self.api.alice, &voice, &placed["connectParams"])
                .await
            {
                Ok(leg) => {
                    self.tally.add("browser connects", 1);
                    self.device_legs
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(leg);
                    self.live_calls
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(id);
                }
                Err(error) => {
                    self.tally.add("browser connects refused", 1);
                    if error.contains("expired") {
                        token = None;
                    }
                }
            }
            self.pause(150).await;
        }
    }

    /// Sessions whose customer leg the driver itself reports: each callback
    /// new (its sequence number), so each writes a timeline event.
    async fn callbacks(self: Arc<Self>) {
        while !self.stopped() {
            let Some((id, _)) = self.create_call(STAYS).await else {
                self.pause(100).await;
                continue;
            };
            let call_sid = sid("CA", &format!("{}-{id}", self.run));
            let path = format!("/twilio/status?callId={id}&leg=customer");
            for sequence in 1..=60u32 {
                if self.stopped() {
                    return;
                }
                let status = if sequence == 1 { "initiated" } else { "ringing" };
                let params = vec![
                    ("AccountSid", self.account.sid.clone()),
                    ("ApiVersion", "2010-04-01".to_owned()),
                    ("CallSid", call_sid.clone()),
                    ("CallStatus", status.to_owned()),
                    ("Direction", "outbound-api".to_owned()),
                    ("From", self.account.agent_number.clone()),
                    ("SequenceNumber", sequence.to_string()),
                    ("To", STAYS.to_owned()),
                ];
                let answer = self.api.webhook(&path, &params, &self.account.auth_token).await;
                self.callback_answer("status callback", &answer);
                if answer.status == 200 {
                    self.ledger.event(&id, &format!("call:{call_sid}:{status}:{sequence}"));
                }
            }
        }
    }

    async fn texts_out(self: Arc<Self>) {
        while !self.stopped() {
            let n = self.next();
            let key = format!("{}-text-{n}", self.run);
            let body =
                json!({"to": TEXTER, "from": self.account.agent_number, "body": format!("Your order {n} is ready")});
            let answer = self
                .api
                .send_with(Method::POST, "/messages", &self.api.alice, Some(&body), Some(&key))
                .await;
            self.agent_answer("POST /messages", &answer);
            if answer.status == 201
                && let Some(sid) = answer.json()["sid"].as_str()
            {
                self.ledger.message(sid);
            }
            self.pause(50).await;
        }
    }

    async fn texts_in(self: Arc<Self>) {
        while !self.stopped() {
            let n = self.next();
            let from = format!("+1500555{:04}", 2000 + n % 1000);
            match self
                .people
                .text_in(&from, &self.account.agent_number, &format!("Is order {n} ready?"))
                .await
            {
                Ok((sid, Some(status))) => {
                    self.tally.add("requests", 1);
                    self.tally.add(&format!("SMS webhook (simulated Twilio) {status}"), 1);
                    if status == 200 {
                        self.tally.add("acknowledged", 1);
                        self.ledger.message(&sid);
                    }
                }
                Ok((_, None)) => self.tally.add("SMS webhook (simulated Twilio) no answer", 1),
                Err(error) => {
                    self.tally.add("texts in refused by the simulator", 1);
                    self.tally.example(format!("text in: {error}"));
                }
            }
            self.pause(50).await;
        }
    }

    /// Callers to the number nobody answers: each leaves a voicemail.
    async fn voicemails(self: Arc<Self>) {
        while !self.stopped() {
            let n = self.next();
            let from = format!("+1500555{:04}", 3000 + n % 1000);
            match self.people.call_in(&from, &self.account.voicemail_number).await {
                Ok(_) => self.tally.add("voicemail callers", 1),
                Err(error) => self.tally.example(format!("call in: {error}")),
            }
            self.pause(400).await;
        }
    }

    /// The number's Voice URL, signed by the driver: TwiML whatever happens.
    async fn signed_voice(self: Arc<Self>) {
        while !self.stopped() {
            let n = self.next();
            let params = vec![
                ("AccountSid", self.account.sid.clone()),
                ("CallSid", sid("CA", &format!("{}-voice-{n}", self.run))),
                ("CallStatus", "ringing".to_owned()),
                ("Direction", "inbound".to_owned()),
                ("From", format!("+1500555{:04}", 4000 + n % 1000)),
                ("To", self.account.voicemail_number.clone()),
            ];
            let answer = self
                .api
                .webhook("/twilio/voice/inbound", &params, &self.account.auth_token)
                .await;
            self.voice_answer("voice webhook", &answer);
            self.pause(50).await;
        }
    }

    /// The number's SMS URL, signed by the driver.
    async fn signed_sms(self: Arc<Self>) {
        while !self.stopped() {
            let n = self.next();
            let message_sid = sid("SM", &format!("{}-sms-{n}", self.run));
            let params = vec![
                ("AccountSid", self.account.sid.clone()),
                ("Body", format!("Text {n}")),
                ("From", format!("+1500555{:04}", 5000 + n % 1000)),
                ("MessageSid", message_sid.clone()),
                ("NumMedia", "0".to_owned()),
                ("To", self.account.agent_number.clone()),
            ];
            let answer = self.api.webhook("/twilio/sms", &params, &self.account.auth_token).await;
            self.callback_answer("SMS webhook", &answer);
            if answer.status == 200 {
                self.ledger.message(&message_sid);
            }
            self.pause(50).await;
        }
    }

    /// Holds and hang-ups of calls with a browser connected.
    async fn control(self: Arc<Self>) {
        while !self.stopped() {
            self.pause(300).await;
            let id = {
                let live = self
                    .live_calls
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if live.is_empty() {
                    continue;
                }
                live[self.next() as usize % live.len()].clone()
            };
            for hold in [true, false] {
                let answer = self
                    .api
                    .send(
                        Method::POST,
                        &format!("/calls/{id}/hold"),
                        &self.api.alice,
                        Some(&json!({"hold": hold})),
                    )
                    .await;
                self.agent_answer("POST /calls/{id}/hold", &answer);
            }
            if self.next().is_multiple_of(3) {
                let answer = self
                    .api
                    .send(Method::POST, &format!("/calls/{id}/hangup"), &self.api.alice, None)
                    .await;
                self.agent_answer("POST /calls/{id}/hangup", &answer);
            }
        }
    }
}

type Actor = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
