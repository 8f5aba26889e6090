//! Calls in flight (live mode): each leg is a task that rings its party,
//! asks for TwiML over HTTP as Twilio does and runs it verb by verb, reports
//! its progress to its status callback, and ends.
//!
//! The party on a leg is simulated: a person at a phone number (scripted by
//! the number, see `numbers`), a browser `Device` (driven by the device API),
//! or a caller placed with the people API.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::conference::{self, Callback, Outcome};
use crate::numbers::Script;
use crate::state::{Recording, events_or_completed, first, now, unix_now, webhook_method};
use crate::twilio::{Program, Signal, Twilio, call_params};
use crate::twiml::{self, Node};

/// Who is at the far end of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Party {
    /// A person at a phone number, scripted by the number.
    Phone(Script),
    /// A browser: it answers, rejects and hangs up when the device API says.
    Browser,
    /// A person calling one of the account's numbers: waits as long as it
    /// takes (or hangs up after `hang_up_after`), speaks into voicemail.
    Caller { hang_up_after: Option<Duration> },
}

/// How a leg starts.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    /// Twilio asks for TwiML at once: a call to a number, a browser's
    /// connect. `extra` goes with the first request (custom parameters).
    Answer {
        program: Program,
        extra: Vec<(String, String)>,
    },
    /// The party's phone rings first, for at most `timeout`; on answer the
    /// leg runs `then` (a Calls API leg), or is bridged to its parent (a
    /// `<Dial>` leg, `then: None`).
    Ring { timeout: Duration, then: Option<Program> },
}

/// Where a leg reports its progress: `initiated ringing answered completed`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub url: Option<String>,
    pub method: String,
    pub events: Vec<String>,
}

impl Progress {
    /// From a Calls API create's form: `StatusCallbackEvent` defaults to
    /// `completed`.
    pub fn from_form(form: &[(String, String)]) -> Self {
        let events: Vec<String> = form
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            .map(|(_, v)| v.clone())
            .collect();
        Self {
            url: first(form, "StatusCallback")
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
            method: webhook_method(first(form, "StatusCallbackMethod")),
            events: events_or_completed(events),
        }
    }

    /// A number's or an application's status callback: `completed` only.
    pub fn completed_only(url: &str, method_name: &str) -> Self {
        Self {
            url: Some(url.to_owned()).filter(|u| !u.is_empty()),
            method: webhook_method(Some(method_name)),
            events: vec!["completed".into()],
        }
    }
}

/// What a `<Dial>` leg tells its parent.
#[derive(Debug, Clone)]
enum DialNews {
    Answered(String),
    Ended { sid: String, status: String },
}

/// Starts a leg already in the state: its signals are registered at once,
/// so none sent right after is lost.
pub(crate) fn start(twilio: &Arc<Twilio>, sid: &str, start: Start, party: Party, progress: Progress) {
    spawn(twilio, sid, start, party, progress, None);
}

fn spawn(
    twilio: &Arc<Twilio>,
    sid: &str,
    start: Start,
    party: Party,
    progress: Progress,
    parent: Option<mpsc::UnboundedSender<DialNews>>,
) {
    let rx = twilio.register(sid);
    let account = twilio
        .lock()
        .call(sid)
        .map(|c| c.account_sid.clone())
        .unwrap_or_default();
    let mut leg = Leg {
        twilio: twilio.clone(),
        sid: sid.to_owned(),
        account,
        rx,
        party,
        progress,
        sequence: 0,
        started: Instant::now(),
        answered_at: None,
        document: None,
        parent,
    };
    tokio::spawn(async move {
        let status = leg.run(start).await;
        leg.finish(&status).await;
    });
}

/// Starts the leg of a call created over the Calls API (an `Effect`).
pub(crate) fn placed(twilio: &Arc<Twilio>, sid: &str) {
    let (form, to, account) = {
        let state = twilio.lock();
        let Some(call) = state.call(sid) else { return };
        (call.form.clone(), call.to.clone(), call.account_sid.clone())
    };
    let then = program_in(&form).unwrap_or_else(|| {
        let app = first(&form, "ApplicationSid").unwrap_or_default();
        let state = twilio.lock();
        match state
            .applications
            .iter()
            .find(|a| a.sid == app && a.account_sid == account)
        {
            Some(app) => Program::Url {
                url: app.voice_url.clone().unwrap_or_default(),
                method: app.voice_method.clone(),
            },
            None => Program::Twiml("<Response><Hangup/></Response>".into()),
        }
    });
    let timeout = first(&form, "Timeout")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(60)
        .clamp(5, 600);
    let party = party_at(&to);
    start(
        twilio,
        sid,
        Start::Ring {
            timeout: Duration::from_secs(timeout),
            then: Some(then),
        },
        party,
        Progress::from_form(&form),
    );
}

/// Who answers a call to `to`.
pub(crate) fn party_at(to: &str) -> Party {
    if to.starts_with("client:") {
        Party::Browser
    } else {
        Party::Phone(Script::for_number(to))
    }
}

/// What stopped a wait.
#[derive(Debug)]
enum Interrupt {
    Timeout,
    /// The party hung up.
    PartyGone,
    End(String),
    Redirect(Program),
    ConferenceOver,
    Answer,
    Reject,
    Digits(String),
    BridgeEnded,
}

/// Where the TwiML goes next.
enum Flow {
    Next,
    Goto(Program, Vec<(String, String)>),
    Hangup,
    Ended(String),
}

struct Leg {
    twilio: Arc<Twilio>,
    sid: String,
    account: String,
    rx: mpsc::UnboundedReceiver<Signal>,
    party: Party,
    progress: Progress,
    sequence: u64,
    started: Instant,
    answered_at: Option<Instant>,
    /// The document running, for `<Record>`'s default action.
    document: Option<Program>,
    /// A `<Dial>` leg's parent, told when this leg answers or ends.
    parent: Option<mpsc::UnboundedSender<DialNews>>,
}

impl Leg {
    /// Runs the leg to its end; its final status.
    async fn run(&mut self, start: Start) -> String {
        match start {
            Start::Answer { program, extra } => self.run_program(program, extra).await,
            Start::Ring { timeout, then } => {
                self.set_status("initiated");
                self.progress_event("initiated").await;
                if let Some(ended) = self.ring(timeout).await {
                    return ended;
                }
                self.answer().await;
                if let Some(parent) = &self.parent {
                    let _ = parent.send(DialNews::Answered(self.sid.clone()));
                }
                match then {
                    Some(program) => self.run_program(program, Vec::new()).await,
                    None => self.bridged().await,
                }
            }
        }
    }

    /// Rings the party; `None` once answered, else the final status.
    async fn ring(&mut self, timeout: Duration) -> Option<String> {
        if self.twilio.switches().fail_calls {
            self.twilio.sleep(Duration::from_millis(300)).await;
            return Some("failed".into());
        }
        let answer_after = match self.party {
            Party::Phone(Script::Fails) => {
                self.twilio.sleep(Duration::from_millis(500)).await;
                return Some("failed".into());
            }
            Party::Phone(Script::Busy) => {
                self.twilio.sleep(Duration::from_millis(500)).await;
                return Some("busy".into());
            }
            Party::Phone(Script::NoAnswer) | Party::Browser => None,
            Party::Phone(Script::Answers { ring, .. }) => Some(ring.unwrap_or(self.twilio.timing().ring)),
            Party::Caller { .. } => Some(Duration::ZERO),
        };
        self.set_status("ringing");
        self.progress_event("ringing").await;
        let give_up = Instant::now() + self.twilio.real(timeout);
        let answer_at = answer_after.map(|d| Instant::now() + self.twilio.real(d));
        loop {
            let deadline = match answer_at {
                Some(at) if at < give_up => at,
                _ => give_up,
            };
            match self.next(Some(deadline)).await {
                Interrupt::Timeout if answer_at.is_some_and(|at| at < give_up) => return None,
                Interrupt::Timeout => return Some("no-answer".into()),
                Interrupt::Answer if self.party == Party::Browser => return None,
                Interrupt::Reject if self.party == Party::Browser => return Some("busy".into()),
                Interrupt::End(status) => return Some(unanswered(&status)),
                Interrupt::PartyGone => return Some("canceled".into()),
                _ => continue,
            }
        }
    }

    /// The party answered (or the TwiML answered an inbound call).
    async fn answer(&mut self) {
        if self.answered_at.is_some() {
            return;
        }
        self.answered_at = Some(Instant::now());
        {
            let mut state = self.twilio.lock();
            if let Some(call) = state.call_mut(&self.sid).filter(|c| !c.is_over()) {
                call.status = "in-progress".into();
                call.start_time = Some(now());
                call.date_updated = now();
            }
        }
        self.progress_event("answered").await;
    }

    /// A `<Dial>` leg, answered: up until either side hangs up.
    async fn bridged(&mut self) -> String {
        loop {
            match self.next(None).await {
                Interrupt::End(status) => return status,
                Interrupt::PartyGone | Interrupt::BridgeEnded => return "completed".into(),
                _ => continue,
            }
        }
    }

    /// Fetches and runs TwiML until the call ends; its final status.
    async fn run_program(&mut self, mut program: Program, mut extra: Vec<(String, String)>) -> String {
        loop {
            let verbs = match self.fetch(&program, std::mem::take(&mut extra)).await {
                Some(verbs) => verbs,
                None => {
                    // Twilio's answer to a webhook that failed (11200) or
                    // TwiML it cannot read (12100).
                    self.hear("We are sorry, an application error has occurred. Goodbye.");
                    return "completed".into();
                }
            };
            self.document = Some(program.clone());
            match self.run_verbs(&verbs).await {
                Flow::Goto(next, params) => {
                    program = next;
                    extra = params;
                }
                Flow::Next | Flow::Hangup => return "completed".into(),
                Flow::Ended(status) => return status,
            }
        }
    }

    async fn fetch(&mut self, program: &Program, extra: Vec<(String, String)>) -> Option<Vec<Node>> {
        let document = match program {
            Program::Twiml(twiml) => twiml.clone(),
            Program::Url { url, method } => {
                if url.is_empty() {
                    return None;
                }
                let mut params = call_params(&self.twilio.lock(), &self.sid);
                params.extend(extra);
                let answer = self.twilio.webhook(&self.account, url, method, params).await?;
                if !(200..300).contains(&answer.status) {
                    return None;
                }
                answer.body
            }
        };
        match twiml::parse(&document) {
            Ok(verbs) => Some(verbs),
            Err(error) => {
                tracing::warn!(call = %self.sid, %error, "TwiML Twilio cannot run (12100)");
                None
            }
        }
    }

    async fn run_verbs(&mut self, verbs: &[Node]) -> Flow {
        for verb in verbs {
            if verb.name != "Reject" {
                // Any verb but <Reject> answers an inbound call.
                self.answer().await;
            }
            let flow = match verb.name.as_str() {
                "Say" => {
                    self.hear(verb.trimmed_text());
                    let words = verb.trimmed_text().split_whitespace().count() as u64;
                    self.pause(Duration::from_millis((words * 400).clamp(1000, 30_000)))
                        .await
                }
                "Play" => {
                    self.pause(Duration::from_secs(2 * verb.number("loop", 1).clamp(1, 5)))
                        .await
                }
                "Pause" => self.pause(Duration::from_secs(verb.number("length", 1))).await,
                "Hangup" => Flow::Hangup,
                "Reject" => Flow::Ended("busy".into()),
                "Redirect" => Flow::Goto(
                    Program::Url {
                        url: verb.trimmed_text().to_owned(),
                        method: verb.method("method"),
                    },
                    Vec::new(),
                ),
                "Record" => self.record(verb).await,
                "Dial" => self.dial(verb).await,
                other => {
                    tracing::warn!(call = %self.sid, verb = %other, "a verb the sandbox does not run: skipped");
                    Flow::Next
                }
            };
            match flow {
                Flow::Next => {}
                other => return other,
            }
        }
        Flow::Next
    }

    /// Waits `length` while something is played or said.
    async fn pause(&mut self, length: Duration) -> Flow {
        let until = Instant::now() + self.twilio.real(length);
        loop {
            match self.next(Some(until)).await {
                Interrupt::Timeout => return Flow::Next,
                Interrupt::End(status) => return Flow::Ended(status),
                Interrupt::PartyGone => return Flow::Ended("completed".into()),
                Interrupt::Redirect(program) => return Flow::Goto(program, Vec::new()),
                _ => continue,
            }
        }
    }

    /// `<Record>`: a person speaks for the sim's speech time and presses
    /// `#`; a browser records until a finishing key or `timeout` of silence.
    async fn record(&mut self, verb: &Node) -> Flow {
        let max_length = Duration::from_secs(verb.number("maxLength", 3600).max(1));
        let silence = Duration::from_secs(verb.number("timeout", 5).max(1));
        let finish_keys = verb.attr("finishOnKey").unwrap_or("1234567890*#").to_owned();
        let speaks = match self.party {
            Party::Browser => None,
            _ => Some(self.twilio.timing().speech.min(max_length)),
        };
        let started = Instant::now();
        let until = started + self.twilio.real(speaks.unwrap_or(silence.min(max_length)));
        let mut digits = String::new();
        let mut ended: Option<String> = None;
        loop {
            match self.next(Some(until)).await {
                Interrupt::Timeout => {
                    if speaks.is_some() && finish_keys.contains('#') {
                        digits.push('#');
                        self.press("#");
                    }
                    break;
                }
                Interrupt::Digits(pressed) => {
                    if let Some(key) = pressed.chars().find(|c| finish_keys.contains(*c)) {
                        digits.push(key);
                        break;
                    }
                }
                Interrupt::End(status) => {
                    ended = Some(status);
                    break;
                }
                Interrupt::PartyGone => {
                    ended = Some("completed".into());
                    break;
                }
                Interrupt::Redirect(program) => return Flow::Goto(program, Vec::new()),
                _ => continue,
            }
        }
        let duration = self.twilio.seconds_since(started.into_std()).max(1);
        let recording_sid = {
            let mut state = self.twilio.lock();
            let sid = state.new_sid("RE");
            state.recordings.push(Recording {
                sid: sid.clone(),
                account_sid: self.account.clone(),
                call_sid: Some(self.sid.clone()),
                conference_sid: None,
                source: "RecordVerb".into(),
                status: "completed".into(),
                duration,
                date_created: now(),
                date_updated: now(),
            });
            sid
        };
        let events = events_or_completed(verb.list("recordingStatusCallbackEvent"));
        if let Some(url) = verb.attr("recordingStatusCallback")
            && events.iter().any(|e| e == "completed")
        {
            let params = conference::recording_params(
                &self.twilio,
                &self.account,
                &recording_sid,
                Some(&self.sid),
                None,
                duration,
                "RecordVerb",
            );
            conference::deliver(
                &self.twilio,
                Outcome {
                    now: Vec::new(),
                    later: vec![Callback {
                        account: self.account.clone(),
                        url: url.to_owned(),
                        method: verb.method("recordingStatusCallbackMethod"),
                        params,
                    }],
                },
            )
            .await;
        }
        let result = vec![
            (
                "RecordingUrl".to_owned(),
                self.twilio.recording_url(&self.account, &recording_sid),
            ),
            ("RecordingSid".to_owned(), recording_sid),
            ("RecordingDuration".to_owned(), duration.to_string()),
            (
                "Digits".to_owned(),
                if ended.is_some() { "hangup".into() } else { digits },
            ),
        ];
        let action = match verb.attr("action") {
            Some(url) => Some(Program::Url {
                url: url.to_owned(),
                method: verb.method("method"),
            }),
            // Twilio's default action: the document itself, asked again.
            None => self.document.clone().filter(|d| matches!(d, Program::Url { .. })),
        };
        match (ended, action) {
            (Some(status), Some(Program::Url { url, method })) => {
                // The caller hung up: the action is requested all the same,
                // its TwiML goes unheard.
                let mut params = call_params(&self.twilio.lock(), &self.sid);
                params.extend(result);
                self.twilio.webhook(&self.account, &url, &method, params).await;
                Flow::Ended(status)
            }
            (Some(status), _) => Flow::Ended(status),
            (None, Some(action)) => Flow::Goto(action, result),
            (None, None) => Flow::Next,
        }
    }

    async fn dial(&mut self, verb: &Node) -> Flow {
        let nouns: Vec<Node> = if verb.children.is_empty() && !verb.trimmed_text().is_empty() {
            vec![Node {
                name: "Number".into(),
                text: verb.trimmed_text().to_owned(),
                ..Node::default()
            }]
        } else {
            verb.children.clone()
        };
        let (status, dialed, seconds, flow) = match nouns.iter().find(|n| n.name == "Conference") {
            Some(conference) => self.conference(conference).await,
            None => self.dial_parties(verb, &nouns).await,
        };
        if let Some(flow) = flow {
            return flow;
        }
        match verb.attr("action") {
            Some(url) => {
                let mut params = vec![("DialCallStatus".to_owned(), status)];
                if let Some(sid) = dialed {
                    params.push(("DialCallSid".to_owned(), sid));
                    params.push(("DialCallDuration".to_owned(), seconds.to_string()));
                }
                Flow::Goto(
                    Program::Url {
                        url: url.to_owned(),
                        method: verb.method("method"),
                    },
                    params,
                )
            }
            None => Flow::Next,
        }
    }

    /// `<Dial><Conference>`: in until the conference ends or the leg leaves.
    /// (`DialCallStatus`, no dialed leg, 0, or the flow if the leg ended.)
    async fn conference(&mut self, noun: &Node) -> (String, Option<String>, u64, Option<Flow>) {
        let (conference, outcome) = conference::join(&self.twilio, &self.sid, noun);
        conference::deliver(&self.twilio, outcome).await;
        let cap = Instant::now() + self.twilio.real(self.twilio.timing().max_call);
        let (reason, flow) = loop {
            match self.next(Some(cap)).await {
                Interrupt::ConferenceOver => return ("completed".into(), None, 0, None),
                Interrupt::End(status) => break ("participant_hung_up", Flow::Ended(status)),
                Interrupt::PartyGone | Interrupt::Timeout => {
                    break ("participant_hung_up", Flow::Ended("completed".into()));
                }
                Interrupt::Redirect(program) => break ("participant_updated_via_api", Flow::Goto(program, Vec::new())),
                _ => continue,
            }
        };
        let outcome = conference::leave(&self.twilio, &conference, &self.sid, reason);
        conference::deliver(&self.twilio, outcome).await;
        ("completed".into(), None, 0, Some(flow))
    }

    /// `<Dial>` to numbers and browsers: all ring, the first to answer is
    /// bridged, the others stop ringing.
    async fn dial_parties(&mut self, verb: &Node, nouns: &[Node]) -> (String, Option<String>, u64, Option<Flow>) {
        let timeout = Duration::from_secs(verb.number("timeout", 30).clamp(5, 600));
        let caller_id = {
            let state = self.twilio.lock();
            let from = state.call(&self.sid).map(|c| c.from.clone()).unwrap_or_default();
            verb.attr("callerId").map(str::to_owned).unwrap_or(from)
        };
        let (news_tx, mut news) = mpsc::unbounded_channel();
        let mut children = Vec::new();
        for noun in nouns {
            let to = match noun.name.as_str() {
                "Client" => {
                    let identity = noun
                        .children
                        .iter()
                        .find(|c| c.name == "Identity")
                        .map_or_else(|| noun.trimmed_text().to_owned(), |i| i.trimmed_text().to_owned());
                    format!("client:{identity}")
                }
                _ => noun.trimmed_text().to_owned(),
            };
            if to.is_empty() || to == "client:" {
                continue;
            }
            let parameters: Vec<(String, String)> = noun
                .children
                .iter()
                .filter(|c| c.name == "Parameter")
                .filter_map(|p| {
                    Some((
                        p.attr("name")?.to_owned(),
                        p.attr("value").unwrap_or_default().to_owned(),
                    ))
                })
                .collect();
            let sid = {
                let mut state = self.twilio.lock();
                let sid = state.new_sid("CA");
                let mut call =
                    crate::state::Call::new(sid.clone(), &self.account, &caller_id, &to, "queued", "outbound-dial");
                call.parent_call_sid = Some(self.sid.clone());
                call.parameters = parameters;
                state.calls.push(call);
                sid
            };
            let progress = Progress {
                url: noun.attr("statusCallback").map(str::to_owned),
                method: noun.method("statusCallbackMethod"),
                events: events_or_completed(noun.list("statusCallbackEvent")),
            };
            spawn(
                &self.twilio,
                &sid,
                Start::Ring { timeout, then: None },
                party_at(&to),
                progress,
                Some(news_tx.clone()),
            );
            children.push(sid);
        }
        drop(news_tx);
        if children.is_empty() {
            return ("failed".into(), None, 0, None);
        }
        // Ringing: the first answer wins.
        let mut last_status = "no-answer".to_owned();
        let mut ended = 0;
        let answered = loop {
            tokio::select! {
                item = news.recv() => match item {
                    Some(DialNews::Answered(sid)) => break Some(sid),
                    Some(DialNews::Ended { status, .. }) => {
                        last_status = status;
                        ended += 1;
                        if ended == children.len() {
                            break None;
                        }
                    }
                    None => break None,
                },
                interrupt = self.next(None) => match interrupt {
                    Interrupt::End(status) => {
                        for child in &children {
                            self.twilio.signal(child, Signal::End("canceled".into()));
                        }
                        return ("canceled".into(), None, 0, Some(Flow::Ended(status)));
                    }
                    Interrupt::PartyGone => {
                        for child in &children {
                            self.twilio.signal(child, Signal::End("canceled".into()));
                        }
                        return ("canceled".into(), None, 0, Some(Flow::Ended("completed".into())));
                    }
                    _ => continue,
                },
            }
        };
        let Some(answered) = answered else {
            return (last_status, None, 0, None);
        };
        for child in children.iter().filter(|c| **c != answered) {
            self.twilio.signal(child, Signal::End("canceled".into()));
        }
        let bridged_at = Instant::now();
        loop {
            tokio::select! {
                item = news.recv() => match item {
                    Some(DialNews::Ended { sid, .. }) if sid == answered => break,
                    None => break,
                    _ => {}
                },
                interrupt = self.next(None) => match interrupt {
                    Interrupt::End(status) => {
                        self.twilio.signal(&answered, Signal::BridgeEnded);
                        let seconds = self.twilio.seconds_since(bridged_at.into_std());
                        return ("completed".into(), Some(answered), seconds, Some(Flow::Ended(status)));
                    }
                    Interrupt::PartyGone => {
                        self.twilio.signal(&answered, Signal::BridgeEnded);
                        let seconds = self.twilio.seconds_since(bridged_at.into_std());
                        return ("completed".into(), Some(answered), seconds, Some(Flow::Ended("completed".into())));
                    }
                    Interrupt::Redirect(program) => {
                        self.twilio.signal(&answered, Signal::BridgeEnded);
                        return ("completed".into(), Some(answered), 0, Some(Flow::Goto(program, Vec::new())));
                    }
                    _ => continue,
                },
            }
        }
        let seconds = self.twilio.seconds_since(bridged_at.into_std());
        ("completed".into(), Some(answered), seconds, None)
    }

    /// Waits for a signal, the party hanging up, or `deadline`.
    async fn next(&mut self, deadline: Option<Instant>) -> Interrupt {
        let party = self.party_deadline();
        let sleep_until = |at: Option<Instant>| async move {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep_until(deadline) => Interrupt::Timeout,
            _ = sleep_until(party) => Interrupt::PartyGone,
            signal = self.rx.recv() => match signal {
                Some(Signal::End(status)) => Interrupt::End(status),
                Some(Signal::Redirect(program)) => Interrupt::Redirect(program),
                Some(Signal::ConferenceOver) => Interrupt::ConferenceOver,
                Some(Signal::Answer) => Interrupt::Answer,
                Some(Signal::Reject) => Interrupt::Reject,
                Some(Signal::BridgeEnded) => Interrupt::BridgeEnded,
                Some(Signal::Digits(digits)) => {
                    self.press(&digits);
                    Interrupt::Digits(digits)
                }
                None => Interrupt::End("completed".into()),
            },
        }
    }

    /// When the party hangs up on their own, if they do.
    fn party_deadline(&self) -> Option<Instant> {
        match self.party {
            Party::Phone(Script::Answers {
                hang_up_after: Some(after),
                ..
            }) => Some(self.answered_at? + self.twilio.real(after)),
            Party::Caller {
                hang_up_after: Some(after),
            } => Some(self.started + self.twilio.real(after)),
            _ => None,
        }
    }

    fn hear(&self, text: &str) {
        if let Some(call) = self.twilio.lock().call_mut(&self.sid) {
            call.heard.push(text.to_owned());
        }
    }

    fn press(&self, digits: &str) {
        if let Some(call) = self.twilio.lock().call_mut(&self.sid) {
            call.digits.push_str(digits);
        }
    }

    fn set_status(&self, status: &str) {
        if let Some(call) = self.twilio.lock().call_mut(&self.sid).filter(|c| !c.is_over()) {
            call.status = status.to_owned();
            call.date_updated = now();
        }
    }

    /// A progress callback, if the leg asked for this event.
    async fn progress_event(&mut self, event: &str) {
        let Some(url) = self.progress.url.clone() else { return };
        if !self.progress.events.iter().any(|e| e == event) {
            return;
        }
        self.sequence += 1;
        let mut params = call_params(&self.twilio.lock(), &self.sid);
        params.extend([
            ("CallbackSource".to_owned(), "call-progress-events".to_owned()),
            ("SequenceNumber".to_owned(), (self.sequence - 1).to_string()),
            ("Timestamp".to_owned(), now()),
        ]);
        if event == "completed" {
            let (duration, sip) = {
                let state = self.twilio.lock();
                let call = state.call(&self.sid);
                let status = call.map(|c| c.status.clone()).unwrap_or_default();
                let sip = match status.as_str() {
                    "busy" => "486",
                    "no-answer" => "487",
                    "canceled" => "487",
                    "failed" => "503",
                    _ => "200",
                };
                (call.and_then(|c| c.duration).unwrap_or(0), sip)
            };
            params.extend([
                ("CallDuration".to_owned(), duration.to_string()),
                ("Duration".to_owned(), duration.div_ceil(60).to_string()),
                ("SipResponseCode".to_owned(), sip.to_owned()),
            ]);
        }
        self.twilio
            .webhook(&self.account, &url, &self.progress.method, params)
            .await;
    }

    /// The leg is over: its final state, its parent told, its last callback.
    async fn finish(&mut self, status: &str) {
        let duration = self
            .answered_at
            .map_or(0, |at| self.twilio.seconds_since(at.into_std()));
        {
            let mut state = self.twilio.lock();
            if let Some(call) = state.call_mut(&self.sid) {
                // A REST `Status=` said how it ends, unless it was answered
                // meanwhile; otherwise the leg says.
                let status = match (call.status.as_str(), self.answered_at) {
                    ("canceled", None) => "canceled",
                    ("completed", Some(_)) => "completed",
                    _ if self.answered_at.is_some() && status == "canceled" => "completed",
                    _ => status,
                };
                call.status = status.to_owned();
                call.end_time = Some(now());
                call.ended_at = Some(unix_now());
                call.duration = Some(duration);
                call.date_updated = now();
            }
        }
        self.twilio.unregister(&self.sid);
        let final_status = self
            .twilio
            .lock()
            .call(&self.sid)
            .map(|c| c.status.clone())
            .unwrap_or_else(|| status.to_owned());
        if let Some(parent) = self.parent.take() {
            let _ = parent.send(DialNews::Ended {
                sid: self.sid.clone(),
                status: final_status,
            });
        }
        self.progress_event("completed").await;
    }
}

/// How a call that was never answered ends when told to end.
fn unanswered(status: &str) -> String {
    match status {
        "completed" | "canceled" => "canceled".into(),
        other => other.to_owned(),
    }
}

/// Applies a REST redirect (`Url`/`Twiml`) to a leg in flight.
pub(crate) fn redirected(twilio: &Twilio, sid: &str, form: &[(String, String)]) {
    if let Some(program) = program_in(form) {
        twilio.signal(sid, Signal::Redirect(program));
    }
}

/// The TwiML a Calls API form names: `Twiml` first, else `Url` (with `Method`).
fn program_in(form: &[(String, String)]) -> Option<Program> {
    match (first(form, "Twiml"), first(form, "Url")) {
        (Some(twiml), _) => Some(Program::Twiml(twiml.to_owned())),
        (None, Some(url)) => Some(Program::Url {
            url: url.to_owned(),
            method: webhook_method(first(form, "Method")),
        }),
        (None, None) => None,
    }
}
