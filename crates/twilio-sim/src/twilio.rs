//! The simulated Twilio itself: the account's state, its clock, its fault
//! switches, the calls in flight, and the webhooks it sends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::signature;
use crate::state::{ACCOUNTS, SentWebhook, State, lock};

/// How fast simulated time runs, and how long simulated people take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Real seconds per simulated second: 1.0 is real time, 0.1 ten times
    /// faster. Durations Twilio reports (`CallDuration`,
    /// `RecordingDuration`) are simulated seconds.
    pub scale: f64,
    /// How long a person's phone rings before they answer (simulated).
    pub ring: Duration,
    /// How long a caller speaks into a voicemail (`<Record>`) before
    /// pressing `#` (simulated).
    pub speech: Duration,
    /// The longest any call lasts (simulated): then its party hangs up.
    pub max_call: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            scale: 1.0,
            ring: Duration::from_millis(1500),
            speech: Duration::from_secs(4),
            max_call: Duration::from_secs(4 * 3600),
        }
    }
}

/// Faults the whole account shows (the sandbox's fault switches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// Every REST request answers 401 (code 20003), as for revoked credentials.
    pub credentials_refused: bool,
    /// Every call placed over the Calls API fails (`failed`) right after
    /// `initiated`.
    pub fail_calls: bool,
    /// Webhooks are signed with the wrong key (Switchboard must refuse them).
    pub bad_signatures: bool,
}

/// What a leg in flight is told.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    /// Hang up (`completed`) or stop ringing (`canceled`), from the REST API
    /// or the browser.
    End(String),
    /// Run other TwiML (REST `Url` / `Twiml`).
    Redirect(Program),
    /// The conference the leg is in ended, or the leg was taken out of it.
    ConferenceOver,
    /// The browser accepted, or rejected, the ringing call.
    Answer,
    Reject,
    /// Keys pressed.
    Digits(String),
    /// The other leg of a `<Dial>` hung up.
    BridgeEnded,
}

/// Where a leg's TwiML comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Program {
    Url { url: String, method: String },
    Twiml(String),
}

/// A webhook's answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

pub(crate) struct Twilio {
    state: Mutex<State>,
    pub live: bool,
    timing: Mutex<Timing>,
    switches: Mutex<Switches>,
    /// Shared with the listener: while set, connections are refused.
    pub unreachable: Arc<AtomicBool>,
    http: reqwest::Client,
    /// `http://127.0.0.1:port`, once listening.
    pub base_url: OnceLock<String>,
    legs: Mutex<HashMap<String, mpsc::UnboundedSender<Signal>>>,
    /// Conference recordings running: when they started, how long paused.
    pub recording_clocks: Mutex<HashMap<String, RecordingClock>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordingClock {
    pub started: Instant,
    pub paused_at: Option<Instant>,
    /// Time paused with `PauseBehavior=skip` (not in the audio).
    pub skipped: Duration,
    pub skip_pauses: bool,
}

impl Twilio {
    pub fn new(state: State, live: bool, timing: Timing) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Twilio gives up on a webhook after 15 seconds (error 11205).
            .timeout(Duration::from_secs(15))
            .user_agent("TwilioProxy/1.1")
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            state: Mutex::new(state),
            live,
            timing: Mutex::new(timing),
            switches: Mutex::new(Switches::default()),
            unreachable: Arc::new(AtomicBool::new(false)),
            http,
            base_url: OnceLock::new(),
            legs: Mutex::new(HashMap::new()),
            recording_clocks: Mutex::new(HashMap::new()),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn timing(&self) -> Timing {
        *lock(&self.timing)
    }

    pub fn set_timing(&self, timing: Timing) {
        *lock(&self.timing) = timing;
    }

    pub fn switches(&self) -> Switches {
        *lock(&self.switches)
    }

    pub fn set_switches(&self, switches: Switches) {
        *lock(&self.switches) = switches;
    }

    pub fn set_unreachable(&self, unreachable: bool) {
        self.unreachable.store(unreachable, Ordering::SeqCst);
    }

    pub fn is_unreachable(&self) -> bool {
        self.unreachable.load(Ordering::SeqCst)
    }

    /// The real time `simulated` takes.
    pub fn real(&self, simulated: Duration) -> Duration {
        let scale = self.timing().scale;
        if scale.is_finite() && scale > 0.0 {
            simulated.mul_f64(scale)
        } else {
            simulated
        }
    }

    /// Waits `simulated` time.
    pub async fn sleep(&self, simulated: Duration) {
        tokio::time::sleep(self.real(simulated)).await;
    }

    /// Simulated whole seconds since `start` (rounded).
    pub fn seconds_since(&self, start: Instant) -> u64 {
        self.simulated(start.elapsed())
    }

    pub fn simulated(&self, real: Duration) -> u64 {
        let scale = self.timing().scale;
        let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        (real.as_secs_f64() / scale).round() as u64
    }

    pub fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    /// Where a recording's audio is served (`RecordingUrl`).
    pub fn recording_url(&self, account: &str, recording: &str) -> String {
        format!("{}{ACCOUNTS}{account}/Recordings/{recording}", self.base_url())
    }

    /// A leg in flight: the receiver of its signals.
    pub fn register(&self, sid: &str) -> mpsc::UnboundedReceiver<Signal> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.legs).insert(sid.to_owned(), tx);
        rx
    }

    pub fn unregister(&self, sid: &str) {
        lock(&self.legs).remove(sid);
    }

    /// Tells a leg in flight; false if it is not (any more).
    pub fn signal(&self, sid: &str, signal: Signal) -> bool {
        let legs = lock(&self.legs);
        legs.get(sid).is_some_and(|tx| tx.send(signal).is_ok())
    }

    /// Sends a webhook as Twilio does: signed with the account's Auth Token,
    /// a form POST (or the parameters in the query of a GET). Never retried;
    /// the answer (or the failure) is kept in [`State::webhooks`].
    pub async fn webhook(
        &self,
        account: &str,
        url: &str,
        method: &str,
        params: Vec<(String, String)>,
    ) -> Option<Answer> {
        let Some(token) = self.lock().auth_token(account) else {
            tracing::warn!(%account, "no such account: webhook not sent");
            return None;
        };
        let token = if self.switches().bad_signatures {
            format!("not-{token}")
        } else {
            token
        };
        let get = method.eq_ignore_ascii_case("GET");
        let (target, signed_params) = if get {
            let mut target = url::Url::parse(url).ok()?;
            target.query_pairs_mut().extend_pairs(&params);
            (target.to_string(), Vec::new())
        } else {
            (url.to_owned(), params.clone())
        };
        let signature = signature::sign(&token, &target, &signed_params);
        let request = if get {
            self.http.get(&target)
        } else {
            self.http.post(&target).form(&params)
        };
        let sent = request
            .header("X-Twilio-Signature", signature)
            .header("I-Twilio-Idempotency-Token", crate::state::random_hex(0))
            .send()
            .await;
        let (status, answer) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                (Some(status), Some(Answer { status, body }))
            }
            Err(error) => {
                tracing::warn!(%url, error = %error.without_url(), "a webhook got no answer");
                (None, None)
            }
        };
        let shown = answer.as_ref().map_or_else(
            || "no answer (Twilio error 11200)".to_owned(),
            |a| a.body.chars().take(500).collect(),
        );
        self.lock().record_webhook(SentWebhook {
            method: if get { "GET".into() } else { "POST".into() },
            url: url.to_owned(),
            params,
            status,
            answer: shown,
        });
        answer
    }
}

/// The parameters every request about a call carries.
pub(crate) fn call_params(state: &State, sid: &str) -> Vec<(String, String)> {
    let Some(call) = state.call(sid) else {
        return Vec::new();
    };
    let to = without_query(&call.to);
    let mut params = vec![
        ("AccountSid".to_owned(), call.account_sid.clone()),
        ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
        ("CallSid".to_owned(), call.sid.clone()),
        ("CallStatus".to_owned(), call.status.clone()),
        ("Called".to_owned(), to.clone()),
        ("Caller".to_owned(), call.from.clone()),
        ("Direction".to_owned(), call.direction.clone()),
        ("From".to_owned(), call.from.clone()),
        ("To".to_owned(), to),
    ];
    if let Some(parent) = &call.parent_call_sid {
        params.push(("ParentCallSid".to_owned(), parent.clone()));
    }
    params
}

/// `client:alice?callId=1` → `client:alice`.
pub(crate) fn without_query(address: &str) -> String {
    match address.split_once('?') {
        Some((bare, _)) if address.starts_with("client:") => bare.to_owned(),
        _ => address.to_owned(),
    }
}
