//! A simulated Twilio account: Twilio's side of everything Switchboard does,
//! written from Twilio's documentation and sharing no code with Switchboard,
//! so that it catches Switchboard's mistakes instead of repeating them.
//!
//! Two modes over one state:
//! - **passive** (the tests' fake): the REST API 2010-04-01 Switchboard uses,
//!   stateful, with Twilio's auth, paging, value checks and error bodies,
//!   injectable faults, and every request recorded. Nothing happens on its
//!   own: tests send the webhooks themselves.
//! - **live** (the sandbox): the same API, and Twilio's behaviour. It asks
//!   Voice URLs for TwiML over HTTP, signed with the account's Auth Token,
//!   runs it (`<Dial><Conference>`, `<Dial><Number|Client>`, `<Say>`,
//!   `<Pause>`, `<Play>`, `<Record>`, `<Hangup>`, `<Redirect>`, `<Reject>`),
//!   runs conferences and recordings, reports call progress, conference
//!   events, recording status (with MP3 audio at the recording's URL) and
//!   text status, and simulates the people at the far end (scripted by
//!   number, see [`numbers`]), callers and browser devices.

pub mod access_token;
mod calls;
mod conference;
mod device;
pub mod media;
mod messages;
pub mod numbers;
mod rest;
pub mod sandbox;
mod server;
pub mod signature;
mod state;
mod twilio;
mod twiml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use device::{DeviceAction, DeviceCall, DeviceError, DeviceOwner};
pub use messages::{PeopleError, Received};
pub use state::{
    Application, Call, Conference, Fault, FaultKind, IncomingNumber, Key, Message, Participant, RecordedRequest,
    Recording, SentWebhook,
};
pub use twilio::{Switches, Timing};

use crate::state::{AccountCredentials, State, now};
use crate::twilio::Twilio;

/// How the simulated Twilio behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The REST API and its state only: tests drive the webhooks.
    Passive,
    /// Twilio's behaviour too: webhooks, calls, conferences, people.
    Live,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Where the REST API listens (port 0: a free one).
    pub listen: SocketAddr,
    pub timing: Timing,
    /// Mixed into every SID: a passive fake leaves it empty (its SIDs are the
    /// same run after run), a sandbox sets a random one (its calls never meet
    /// those of a previous run in Switchboard's store).
    pub sid_salt: String,
}

impl Options {
    pub fn passive() -> Self {
        Self {
            mode: Mode::Passive,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            timing: Timing::default(),
            sid_salt: String::new(),
        }
    }

    pub fn live() -> Self {
        Self {
            mode: Mode::Live,
            sid_salt: state::random_hex(7),
            ..Self::passive()
        }
    }
}

/// The simulated Twilio, serving until dropped.
pub struct Sim {
    twilio: Arc<Twilio>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A sandbox account's credentials and numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub account_sid: String,
    pub auth_token: String,
    pub numbers: Vec<String>,
}

impl Sim {
    /// Serves `account_sid` (the primary account, whose SIDs seed the
    /// others) with `auth_token`.
    pub async fn start(account_sid: &str, auth_token: &str, options: Options) -> std::io::Result<Self> {
        let state = State::new(account_sid, auth_token, &options.sid_salt);
        let twilio = Arc::new(Twilio::new(state, options.mode == Mode::Live, options.timing));
        let (address, server) = server::listen(twilio.clone(), options.listen).await?;
        let _ = twilio.base_url.set(format!("http://{address}"));
        Ok(Self {
            twilio,
            address,
            server,
        })
    }

    /// The base URL, for `SWITCHBOARD_TWILIO_API_URL`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn mode(&self) -> Mode {
        if self.twilio.live { Mode::Live } else { Mode::Passive }
    }

    // -----------------------------------------------------------------------
    // Accounts and the Console's controls
    // -----------------------------------------------------------------------

    /// The account the sim was started with.
    pub fn account_sid(&self) -> String {
        self.twilio.lock().primary.clone()
    }

    /// Adds another account, or changes an account's auth token (a rotation).
    pub fn set_account(&self, sid: &str, auth_token: &str) {
        let mut state = self.twilio.lock();
        match state.accounts.iter_mut().find(|a| a.sid == sid) {
            Some(account) => account.auth_token = auth_token.to_owned(),
            None => state.accounts.push(AccountCredentials {
                sid: sid.to_owned(),
                auth_token: auth_token.to_owned(),
            }),
        }
    }

    /// Every account with its Auth Token and numbers, in the order added.
    pub fn accounts(&self) -> Vec<AccountInfo> {
        let state = self.twilio.lock();
        state
            .accounts
            .iter()
            .map(|a| AccountInfo {
                account_sid: a.sid.clone(),
                auth_token: a.auth_token.clone(),
                numbers: state
                    .numbers
                    .iter()
                    .filter(|n| n.account_sid == a.sid)
                    .map(|n| n.phone_number.clone())
                    .collect(),
            })
            .collect()
    }

    /// An existing API key of the primary account (e.g. one a seeded workspace holds).
    pub fn add_key(&self, sid: &str, secret: &str) {
        let mut state = self.twilio.lock();
        let key = Key {
            sid: sid.to_owned(),
            account_sid: state.primary.clone(),
            friendly_name: String::new(),
            secret: secret.to_owned(),
            date_created: now(),
            date_updated: now(),
        };
        state.keys.push(key);
    }

    /// A phone number of the primary account, with no webhooks; its `PN` SID.
    pub fn add_number(&self, e164: &str) -> String {
        let account = self.account_sid();
        self.add_number_for(&account, e164)
    }

    /// A phone number of `account_sid`, with no webhooks; its `PN` SID.
    pub fn add_number_for(&self, account_sid: &str, e164: &str) -> String {
        let mut state = self.twilio.lock();
        let sid = state.new_sid("PN");
        state.numbers.push(IncomingNumber::new(&sid, account_sid, e164));
        sid
    }

    /// An application of the primary account, as if made in the Console; its `AP` SID.
    pub fn add_application(&self, friendly_name: &str, voice_url: &str, status_callback: &str) -> String {
        let mut state = self.twilio.lock();
        let sid = state.new_sid("AP");
        let mut app = Application::new(&sid, &state.primary);
        app.friendly_name = friendly_name.to_owned();
        app.voice_url = Some(voice_url.to_owned());
        app.status_callback = Some(status_callback.to_owned());
        state.applications.push(app);
        sid
    }

    /// Someone else repoints a number (drift). Panics on an unknown SID.
    pub fn set_number_hooks(&self, sid: &str, voice_url: &str, status_callback: &str, sms_url: &str) {
        self.with_number(sid, |number| {
            number.voice_url = voice_url.to_owned();
            number.status_callback = status_callback.to_owned();
            number.sms_url = sms_url.to_owned();
        });
    }

    /// Someone else points a number at an application (or clears it).
    pub fn set_number_application(&self, sid: &str, application_sid: Option<&str>) {
        self.with_number(sid, |number| {
            number.voice_application_sid = application_sid.map(str::to_owned)
        });
    }

    /// An in-progress conference of the primary account; its `CF` SID.
    pub fn add_conference(&self, friendly_name: &str) -> String {
        let mut state = self.twilio.lock();
        let sid = state.new_sid("CF");
        let conference = Conference::new(
            sid.clone(),
            &state.primary,
            friendly_name,
            "in-progress",
            Default::default(),
        );
        state.conferences.push(conference);
        sid
    }

    /// The conference is being recorded (`record="record-from-start"`).
    /// Panics on an unknown conference.
    pub fn start_recording(&self, conference_sid: &str) {
        let mut state = self.twilio.lock();
        let conference = state
            .conference_mut(conference_sid)
            .unwrap_or_else(|| panic!("simulated Twilio: no conference {conference_sid}"));
        conference.recording = Some("in-progress".into());
    }

    /// A call joins a conference. Panics on an unknown conference.
    pub fn add_participant(&self, conference_sid: &str, call_sid: &str) {
        let mut state = self.twilio.lock();
        let conference = state
            .conference_mut(conference_sid)
            .unwrap_or_else(|| panic!("simulated Twilio: no conference {conference_sid}"));
        conference.participants.push(Participant::new(call_sid));
    }

    /// A call Twilio started on its own (a browser's leg, an inbound caller),
    /// already `in-progress`; its `CA` SID.
    pub fn add_call(&self, from: &str, to: &str) -> String {
        let mut state = self.twilio.lock();
        let sid = state.new_sid("CA");
        let account = state.primary.clone();
        state
            .calls
            .push(Call::new(sid.clone(), &account, from, to, "in-progress", "inbound"));
        sid
    }

    /// A call moves on (`ringing`, `in-progress`, …). Panics on an unknown call.
    pub fn set_call_status(&self, sid: &str, status: &str) {
        let mut state = self.twilio.lock();
        let call = state
            .call_mut(sid)
            .unwrap_or_else(|| panic!("simulated Twilio: no call {sid}"));
        call.status = status.to_owned();
    }

    /// Pages hold at most `n` items (at least 1), whatever `PageSize` asks.
    pub fn set_page_size_cap(&self, n: usize) {
        self.twilio.lock().page_size_cap = Some(n.max(1));
    }

    /// The next matching request(s) fail as `fault` says. Panics if a
    /// `Status` fault's status is not 4xx or 5xx.
    pub fn fail_next(&self, fault: Fault) {
        if let FaultKind::Status(status) = fault.kind {
            assert!(
                (400..=599).contains(&status),
                "simulated Twilio: {status} is not an error status"
            );
        }
        self.twilio.lock().faults.push(fault);
    }

    /// Twilio deems `to` no phone number at all: texts to it are 400, code
    /// 21211 (numbers that look fine to us and not to Twilio's carriers).
    pub fn reject_number(&self, to: &str) {
        self.twilio.lock().invalid_numbers.push(to.to_owned());
    }

    fn with_number(&self, sid: &str, change: impl FnOnce(&mut IncomingNumber)) {
        let mut state = self.twilio.lock();
        let number = state
            .numbers
            .iter_mut()
            .find(|n| n.sid == sid)
            .unwrap_or_else(|| panic!("simulated Twilio: no number {sid}"));
        change(number);
        number.date_updated = now();
    }

    // -----------------------------------------------------------------------
    // What the account holds
    // -----------------------------------------------------------------------

    pub fn keys(&self) -> Vec<Key> {
        self.twilio.lock().keys.clone()
    }

    pub fn applications(&self) -> Vec<Application> {
        self.twilio.lock().applications.clone()
    }

    pub fn numbers(&self) -> Vec<IncomingNumber> {
        self.twilio.lock().numbers.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.twilio.lock().calls.clone()
    }

    pub fn conferences(&self) -> Vec<Conference> {
        self.twilio.lock().conferences.clone()
    }

    /// Every text sent through `Messages.json` (and, live, received), in order.
    pub fn messages(&self) -> Vec<Message> {
        self.twilio.lock().messages.clone()
    }

    pub fn recordings(&self) -> Vec<Recording> {
        self.twilio.lock().recordings.clone()
    }

    /// The form of every call placed through `Calls.json` (not those added
    /// with `add_call`, which Twilio started on its own).
    pub fn calls_created(&self) -> Vec<Vec<(String, String)>> {
        self.twilio
            .lock()
            .calls
            .iter()
            .filter(|c| !c.form.is_empty())
            .map(|c| c.form.clone())
            .collect()
    }

    /// Every request received, in order (failed and faulted ones too).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.twilio.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.twilio.lock().requests.clear();
    }

    /// Every webhook sent (live), with its answer: Twilio's debugger.
    pub fn webhooks(&self) -> Vec<SentWebhook> {
        self.twilio.lock().webhooks.clone()
    }

    // -----------------------------------------------------------------------
    // Time and faults
    // -----------------------------------------------------------------------

    pub fn timing(&self) -> Timing {
        self.twilio.timing()
    }

    pub fn set_timing(&self, timing: Timing) {
        self.twilio.set_timing(timing);
    }

    pub fn switches(&self) -> Switches {
        self.twilio.switches()
    }

    pub fn set_switches(&self, switches: Switches) {
        self.twilio.set_switches(switches);
    }

    /// While set, the REST API cannot be reached: connections are dropped.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.twilio.set_unreachable(unreachable);
    }

    pub fn is_unreachable(&self) -> bool {
        self.twilio.is_unreachable()
    }

    // -----------------------------------------------------------------------
    // Simulated people and devices (live)
    // -----------------------------------------------------------------------

    /// A person calls `to` (a number of one of the accounts) from `from`;
    /// the call's SID. They wait until answered, leave a voicemail if sent
    /// there, or hang up after `hang_up_after` (simulated).
    pub fn place_call(&self, from: &str, to: &str, hang_up_after: Option<Duration>) -> Result<String, PeopleError> {
        device::place_call(&self.twilio, from, to, hang_up_after)
    }

    /// A person texts `to` (a number of one of the accounts) from `from`.
    pub async fn send_text(&self, from: &str, to: &str, body: &str) -> Result<Received, PeopleError> {
        messages::receive(&self.twilio, from, to, body).await
    }

    /// `device.connect({params})` with `token`; `owner`, when given, must
    /// be the token's identity.
    pub fn device_connect(
        &self,
        owner: Option<&DeviceOwner>,
        token: &str,
        params: &[(String, String)],
    ) -> Result<DeviceCall, DeviceError> {
        device::connect(&self.twilio, owner, token, params)
    }

    pub fn device_incoming(&self, owner: &DeviceOwner) -> Vec<DeviceCall> {
        device::incoming(&self.twilio, owner)
    }

    pub fn device_call(&self, owner: &DeviceOwner, call_sid: &str) -> Result<DeviceCall, DeviceError> {
        device::call(&self.twilio, owner, call_sid)
    }

    pub async fn device_act(
        &self,
        owner: &DeviceOwner,
        call_sid: &str,
        action: DeviceAction,
    ) -> Result<DeviceCall, DeviceError> {
        device::act(&self.twilio, owner, call_sid, action).await
    }
}
