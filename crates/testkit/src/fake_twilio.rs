//! A stateful fake of Twilio's REST API 2010-04-01, on `wiremock`.
//!
//! One catch-all `Mock` answers every request through [`Responder`], which
//! reads and writes a shared [`State`]: what a test (or the code under test)
//! creates can be fetched, listed page by page, updated and deleted, as on
//! Twilio. Test controls (`add_number`, `set_number_hooks`, …) change the
//! state directly, the way someone in the Twilio Console would.
//!
//! What it models:
//! - HTTP Basic auth: `AccountSid:AuthToken`, or `KeySid:secret` of an
//!   existing key everywhere but the Keys endpoints (a standard API key cannot
//!   manage keys). Anything else is 401, code 20003. A path naming another
//!   account than the authenticated one is 404, code 20404.
//! - `Accounts/{Sid}.json`, `Keys`, `Applications`, `IncomingPhoneNumbers`,
//!   `Calls`, `Conferences` and their `Participants`, `Messages` (see [`handle`]).
//! - Lists paged as Twilio pages them: `PageSize`, `Page`, `PageToken`,
//!   `next_page_uri` (`null` on the last page).
//! - Twilio's checks on values: URLs absolute `http(s)`, methods `GET`/`POST`,
//!   booleans `true`/`false`, one known event per `StatusCallbackEvent`; a
//!   failed check is 400 with Twilio's error body, never a panic.
//! - Faults ([`Fault`]): an error status, a slow response, or a response lost
//!   after the change was applied.
//!
//! Creates answer 201, updates 200, deletes 204, as Twilio does.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ACCOUNTS: &str = "/2010-04-01/Accounts/";
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// Twilio's error codes the fake answers with.
const AUTHENTICATE: u32 = 20003;
const NOT_FOUND: u32 = 20404;
const METHOD_NOT_ALLOWED: u32 = 20004;
/// The fake's code for a malformed parameter (Twilio's varies by parameter).
const INVALID_PARAMETER: u32 = 20001;
const INVALID_URL: u32 = 21502;
const NO_TO: u32 = 21201;
const NO_URL: u32 = 21205;
const INVALID_APPLICATION_SID: u32 = 21218;
const NO_FROM: u32 = 21603;
const NO_BODY: u32 = 21602;
const NO_MESSAGE_TO: u32 = 21604;
const INVALID_TO: u32 = 21211;
const NOT_OUR_NUMBER: u32 = 21606;
const BODY_TOO_LONG: u32 = 21617;
const MAX_BODY_CHARS: usize = 1600;

const CALL_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];
const BOOLEAN_PARAMS: [&str; 10] = [
    "Hold",
    "Muted",
    "BeepOnExit",
    "EndConferenceOnExit",
    "StartConferenceOnEnter",
    "Coaching",
    "Record",
    "EarlyMedia",
    "VoiceCallerIdLookup",
    "PublicApplicationConnectEnabled",
];

// ---------------------------------------------------------------------------
// The fake and its test controls
// ---------------------------------------------------------------------------

pub struct FakeTwilio {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl FakeTwilio {
    /// A fake serving one account, `account_sid` with `auth_token`.
    pub async fn start(account_sid: &str, auth_token: &str) -> Self {
        let state = Arc::new(Mutex::new(State::new(account_sid, auth_token)));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// The base URL, for `SWITCHBOARD_TWILIO_API_URL`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The account the fake was started with.
    pub fn account_sid(&self) -> String {
        self.lock().primary.clone()
    }

    /// Adds another account, or changes an account's auth token (a rotation).
    pub fn set_account(&self, sid: &str, auth_token: &str) {
        let mut state = self.lock();
        match state.accounts.iter_mut().find(|a| a.sid == sid) {
            Some(account) => account.auth_token = auth_token.to_owned(),
            None => state.accounts.push(AccountCredentials {
                sid: sid.to_owned(),
                auth_token: auth_token.to_owned(),
            }),
        }
    }

    /// An existing API key of the primary account (e.g. one a seeded workspace holds).
    pub fn add_key(&self, sid: &str, secret: &str) {
        let mut state = self.lock();
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
        let mut state = self.lock();
        let sid = state.new_sid("PN");
        state.numbers.push(IncomingNumber::new(&sid, account_sid, e164));
        sid
    }

    /// An application of the primary account, as if made in the Console; its `AP` SID.
    pub fn add_application(&self, friendly_name: &str, voice_url: &str, status_callback: &str) -> String {
        let mut state = self.lock();
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
        let mut state = self.lock();
        let sid = state.new_sid("CF");
        let conference = Conference {
            sid: sid.clone(),
            account_sid: state.primary.clone(),
            friendly_name: friendly_name.to_owned(),
            status: "in-progress".into(),
            participants: Vec::new(),
            updates: Vec::new(),
            date_created: now(),
            date_updated: now(),
        };
        state.conferences.push(conference);
        sid
    }

    /// A call joins a conference. Panics on an unknown conference.
    pub fn add_participant(&self, conference_sid: &str, call_sid: &str) {
        let mut state = self.lock();
        let conference = state
            .conferences
            .iter_mut()
            .find(|c| c.sid == conference_sid)
            .unwrap_or_else(|| panic!("fake Twilio: no conference {conference_sid}"));
        conference.participants.push(Participant::new(call_sid));
    }

    /// A call Twilio started on its own (a browser's leg, an inbound caller),
    /// already `in-progress`; its `CA` SID.
    pub fn add_call(&self, from: &str, to: &str) -> String {
        let mut state = self.lock();
        let call = Call {
            sid: state.new_sid("CA"),
            account_sid: state.primary.clone(),
            to: to.to_owned(),
            from: from.to_owned(),
            status: "in-progress".into(),
            form: Vec::new(),
            updates: Vec::new(),
            date_created: now(),
            date_updated: now(),
        };
        let sid = call.sid.clone();
        state.calls.push(call);
        sid
    }

    /// A call moves on (`ringing`, `in-progress`, …). Panics on an unknown call.
    pub fn set_call_status(&self, sid: &str, status: &str) {
        let mut state = self.lock();
        let call = state
            .calls
            .iter_mut()
            .find(|c| c.sid == sid)
            .unwrap_or_else(|| panic!("fake Twilio: no call {sid}"));
        call.status = status.to_owned();
    }

    /// Pages hold at most `n` items (at least 1), whatever `PageSize` asks.
    pub fn set_page_size_cap(&self, n: usize) {
        self.lock().page_size_cap = Some(n.max(1));
    }

    /// The next matching request(s) fail as `fault` says. Panics if a
    /// `Status` fault's status is not 4xx or 5xx.
    pub fn fail_next(&self, fault: Fault) {
        if let FaultKind::Status(status) = fault.kind {
            assert!(
                (400..=599).contains(&status),
                "fake Twilio: {status} is not an error status"
            );
        }
        self.lock().faults.push(fault);
    }

    pub fn keys(&self) -> Vec<Key> {
        self.lock().keys.clone()
    }

    pub fn applications(&self) -> Vec<Application> {
        self.lock().applications.clone()
    }

    pub fn numbers(&self) -> Vec<IncomingNumber> {
        self.lock().numbers.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn conferences(&self) -> Vec<Conference> {
        self.lock().conferences.clone()
    }

    /// Every text sent through `Messages.json`, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    /// Twilio deems `to` no phone number at all: texts to it are 400, code
    /// 21211 (numbers that look fine to us and not to Twilio's carriers).
    pub fn reject_number(&self, to: &str) {
        self.lock().invalid_numbers.push(to.to_owned());
    }

    /// The form of every call created, in order, repeated names included.
    /// The form of every call placed through `Calls.json` (not those added
    /// with `add_call`, which Twilio started on its own).
    pub fn calls_created(&self) -> Vec<Vec<(String, String)>> {
        self.lock()
            .calls
            .iter()
            .filter(|c| !c.form.is_empty())
            .map(|c| c.form.clone())
            .collect()
    }

    /// Every request received, in order (failed and faulted ones too).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    fn with_number(&self, sid: &str, change: impl FnOnce(&mut IncomingNumber)) {
        let mut state = self.lock();
        let number = state
            .numbers
            .iter_mut()
            .find(|n| n.sid == sid)
            .unwrap_or_else(|| panic!("fake Twilio: no number {sid}"));
        change(number);
        number.date_updated = now();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Faults and recorded requests
// ---------------------------------------------------------------------------

/// The next `times` requests with this method whose path contains
/// `path_contains` fail as `kind` says.
#[derive(Debug, Clone)]
pub struct Fault {
    /// `GET`, `POST`, `DELETE`, or `*` for any.
    pub method: String,
    pub path_contains: String,
    pub kind: FaultKind,
    pub times: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer this status (with Twilio's error body) without touching the state.
    Status(u16),
    /// Handle the request as usual, answer after this delay (for client timeouts).
    Delay(Duration),
    /// Apply the request to the state, then answer 500: a lost response.
    DropAfterApplying,
}

impl Fault {
    /// Fails the next one matching request.
    pub fn new(method: &str, path_contains: &str, kind: FaultKind) -> Self {
        Self {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            kind,
            times: 1,
        }
    }

    /// Fails the next `n` matching requests instead.
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    fn matches(&self, request: &Incoming) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(&request.method))
            && request.path.contains(&self.path_contains)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// As sent, percent-encoded, without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The form-encoded body, repeated names included.
    pub form: Vec<(String, String)>,
    /// The Basic auth user name (an `AC…` or `SK…`), never the password.
    pub username: Option<String>,
}

impl RecordedRequest {
    /// The first value of a form parameter.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    /// Every value of a (repeated) form parameter.
    pub fn form_values(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Resources (the snapshots tests read)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    pub secret: String,
    pub date_created: String,
    pub date_updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    /// `None` until set: Twilio answers `null`.
    pub voice_url: Option<String>,
    pub voice_method: String,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    /// Every other parameter ever sent, by its JSON (snake_case) name.
    pub other: BTreeMap<String, String>,
    pub date_created: String,
    pub date_updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingNumber {
    pub sid: String,
    pub account_sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    /// `""` when unset or cleared.
    pub voice_url: String,
    pub voice_method: String,
    /// `None` when unset or cleared: Twilio answers `null`.
    pub voice_application_sid: Option<String>,
    pub status_callback: String,
    pub status_callback_method: String,
    pub sms_url: String,
    pub sms_method: String,
    /// Every other parameter ever sent, by its JSON (snake_case) name.
    pub other: BTreeMap<String, String>,
    pub date_created: String,
    pub date_updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    /// `queued` when created; `set_call_status` and `Status` updates move it.
    pub status: String,
    /// The create's form, repeated names included.
    pub form: Vec<(String, String)>,
    /// The form of each update, in order.
    pub updates: Vec<Vec<(String, String)>>,
    pub date_created: String,
    pub date_updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    /// `in-progress` or `completed`.
    pub status: String,
    pub participants: Vec<Participant>,
    /// The form of each update, in order.
    pub updates: Vec<Vec<(String, String)>>,
    pub date_created: String,
    pub date_updated: String,
}

/// A text, as `Messages.json` created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    /// Every `MediaUrl`, in order.
    pub media_urls: Vec<String>,
    /// `queued` when created.
    pub status: String,
    pub status_callback: Option<String>,
    /// The create's form, repeated names included.
    pub form: Vec<(String, String)>,
    pub date_created: String,
    pub date_updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub call_sid: String,
    pub hold: bool,
    pub muted: bool,
    pub hold_url: Option<String>,
    /// Every other parameter ever sent, by its JSON (snake_case) name.
    pub other: BTreeMap<String, String>,
    /// The form of each update, in order.
    pub updates: Vec<Vec<(String, String)>>,
}

impl Application {
    fn new(sid: &str, account_sid: &str) -> Self {
        Self {
            sid: sid.to_owned(),
            account_sid: account_sid.to_owned(),
            friendly_name: String::new(),
            voice_url: None,
            voice_method: "POST".into(),
            status_callback: None,
            status_callback_method: "POST".into(),
            other: BTreeMap::new(),
            date_created: now(),
            date_updated: now(),
        }
    }

    fn apply(&mut self, form: &[(String, String)]) {
        for (name, value) in form {
            match name.as_str() {
                "FriendlyName" => self.friendly_name = value.clone(),
                "VoiceUrl" => self.voice_url = Some(value.clone()),
                "VoiceMethod" => self.voice_method = value.to_ascii_uppercase(),
                "StatusCallback" => self.status_callback = Some(value.clone()),
                "StatusCallbackMethod" => self.status_callback_method = value.to_ascii_uppercase(),
                other => {
                    self.other.insert(snake_case(other), value.clone());
                }
            }
        }
        self.date_updated = now();
    }
}

impl IncomingNumber {
    fn new(sid: &str, account_sid: &str, e164: &str) -> Self {
        Self {
            sid: sid.to_owned(),
            account_sid: account_sid.to_owned(),
            phone_number: e164.to_owned(),
            friendly_name: e164.to_owned(),
            voice_url: String::new(),
            voice_method: "POST".into(),
            voice_application_sid: None,
            status_callback: String::new(),
            status_callback_method: "POST".into(),
            sms_url: String::new(),
            sms_method: "POST".into(),
            other: BTreeMap::new(),
            date_created: now(),
            date_updated: now(),
        }
    }

    /// `VoiceApplicationSid` is checked by the caller.
    fn apply(&mut self, form: &[(String, String)]) {
        for (name, value) in form {
            match name.as_str() {
                "FriendlyName" => self.friendly_name = value.clone(),
                "VoiceUrl" => self.voice_url = value.clone(),
                "VoiceMethod" => self.voice_method = value.to_ascii_uppercase(),
                "VoiceApplicationSid" => self.voice_application_sid = Some(value.clone()).filter(|v| !v.is_empty()),
                "StatusCallback" => self.status_callback = value.clone(),
                "StatusCallbackMethod" => self.status_callback_method = value.to_ascii_uppercase(),
                "SmsUrl" => self.sms_url = value.clone(),
                "SmsMethod" => self.sms_method = value.to_ascii_uppercase(),
                other => {
                    self.other.insert(snake_case(other), value.clone());
                }
            }
        }
        self.date_updated = now();
    }
}

impl Participant {
    fn new(call_sid: &str) -> Self {
        Self {
            call_sid: call_sid.to_owned(),
            hold: false,
            muted: false,
            hold_url: None,
            other: BTreeMap::new(),
            updates: Vec::new(),
        }
    }

    /// The booleans were checked by `invalid_value`.
    fn apply(&mut self, form: &[(String, String)]) {
        for (name, value) in form {
            match name.as_str() {
                "Hold" => self.hold = parse_bool(value).unwrap_or(self.hold),
                "Muted" => self.muted = parse_bool(value).unwrap_or(self.muted),
                "HoldUrl" => self.hold_url = Some(value.clone()),
                other => {
                    self.other.insert(snake_case(other), value.clone());
                }
            }
        }
        self.updates.push(form.to_vec());
    }
}

/// What every resource has: an SID, an owner, a JSON form.
trait Resource {
    fn sid(&self) -> &str;
    fn account_sid(&self) -> &str;
    fn json(&self) -> Value;
}

impl Resource for Key {
    fn sid(&self) -> &str {
        &self.sid
    }
    fn account_sid(&self) -> &str {
        &self.account_sid
    }
    /// The secret is in the create's answer only.
    fn json(&self) -> Value {
        json!({
            "sid": self.sid,
            "friendly_name": self.friendly_name,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
        })
    }
}

impl Resource for Application {
    fn sid(&self) -> &str {
        &self.sid
    }
    fn account_sid(&self) -> &str {
        &self.account_sid
    }
    fn json(&self) -> Value {
        let mut body = json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "friendly_name": self.friendly_name,
            "voice_url": self.voice_url,
            "voice_method": self.voice_method,
            "voice_fallback_url": null,
            "voice_fallback_method": "POST",
            "voice_caller_id_lookup": false,
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method,
            "sms_url": null,
            "sms_method": "POST",
            "sms_fallback_url": null,
            "sms_fallback_method": "POST",
            "sms_status_callback": null,
            "message_status_callback": null,
            "public_application_connect_enabled": true,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "Applications", &self.sid),
        });
        overlay(&mut body, &self.other);
        body
    }
}

impl Resource for IncomingNumber {
    fn sid(&self) -> &str {
        &self.sid
    }
    fn account_sid(&self) -> &str {
        &self.account_sid
    }
    fn json(&self) -> Value {
        let mut body = json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "phone_number": self.phone_number,
            "friendly_name": self.friendly_name,
            "voice_url": self.voice_url,
            "voice_method": self.voice_method,
            "voice_fallback_url": "",
            "voice_fallback_method": "POST",
            "voice_caller_id_lookup": false,
            "voice_application_sid": self.voice_application_sid,
            "voice_receive_mode": "voice",
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method,
            "sms_url": self.sms_url,
            "sms_method": self.sms_method,
            "sms_fallback_url": "",
            "sms_fallback_method": "POST",
            "sms_application_sid": "",
            "capabilities": {"voice": true, "sms": true, "mms": true, "fax": false},
            "origin": "twilio",
            "status": "in-use",
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "IncomingPhoneNumbers", &self.sid),
        });
        overlay(&mut body, &self.other);
        body
    }
}

impl Resource for Call {
    fn sid(&self) -> &str {
        &self.sid
    }
    fn account_sid(&self) -> &str {
        &self.account_sid
    }
    fn json(&self) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from,
            "from_formatted": self.from,
            "status": self.status,
            "direction": "outbound-api",
            "parent_call_sid": null,
            "start_time": null,
            "end_time": null,
            "duration": null,
            "price": null,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "Calls", &self.sid),
        })
    }
}

impl Resource for Conference {
    fn sid(&self) -> &str {
        &self.sid
    }
    fn account_sid(&self) -> &str {
        &self.account_sid
    }
    fn json(&self) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "friendly_name": self.friendly_name,
            "status": self.status,
            "region": "us1",
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "Conferences", &self.sid),
        })
    }
}

impl Resource for Message {
    fn sid(&self) -> &str {
        &self.sid
    }
    fn account_sid(&self) -> &str {
        &self.account_sid
    }
    fn json(&self) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "to": self.to,
            "from": self.from,
            "body": self.body,
            "status": self.status,
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": self.media_urls.len().to_string(),
            "messaging_service_sid": null,
            "error_code": null,
            "error_message": null,
            "price": null,
            "price_unit": "USD",
            "date_sent": null,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "Messages", &self.sid),
            "subresource_uris": {
                "media": format!("{ACCOUNTS}{}/Messages/{}/Media.json", self.account_sid, self.sid),
            },
        })
    }
}

impl Participant {
    fn json(&self, conference: &Conference) -> Value {
        json!({
            "account_sid": conference.account_sid,
            "conference_sid": conference.sid,
            "call_sid": self.call_sid,
            "hold": self.hold,
            "muted": self.muted,
            "status": "connected",
            "start_conference_on_enter": true,
            "end_conference_on_exit": true,
            "uri": format!(
                "{ACCOUNTS}{}/Conferences/{}/Participants/{}.json",
                conference.account_sid, conference.sid, self.call_sid
            ),
        })
    }
}

// ---------------------------------------------------------------------------
// State and routing
// ---------------------------------------------------------------------------

struct AccountCredentials {
    sid: String,
    auth_token: String,
}

struct State {
    /// The account of `start`; SIDs are derived from it.
    primary: String,
    accounts: Vec<AccountCredentials>,
    keys: Vec<Key>,
    applications: Vec<Application>,
    numbers: Vec<IncomingNumber>,
    calls: Vec<Call>,
    conferences: Vec<Conference>,
    messages: Vec<Message>,
    /// `To` numbers Twilio refuses (21211).
    invalid_numbers: Vec<String>,
    page_size_cap: Option<usize>,
    faults: Vec<Fault>,
    requests: Vec<RecordedRequest>,
    serial: u64,
}

/// Who a request authenticated as.
struct Principal {
    account: String,
    with_api_key: bool,
}

impl State {
    fn new(account_sid: &str, auth_token: &str) -> Self {
        Self {
            primary: account_sid.to_owned(),
            accounts: vec![AccountCredentials {
                sid: account_sid.to_owned(),
                auth_token: auth_token.to_owned(),
            }],
            keys: Vec::new(),
            applications: Vec::new(),
            numbers: Vec::new(),
            calls: Vec::new(),
            conferences: Vec::new(),
            messages: Vec::new(),
            invalid_numbers: Vec::new(),
            page_size_cap: None,
            faults: Vec::new(),
            requests: Vec::new(),
            serial: 0,
        }
    }

    /// `prefix` + 32 hex digits, distinct within the fake and across fakes
    /// of different accounts, and the same from one run to the next.
    fn new_sid(&mut self, prefix: &str) -> String {
        self.serial += 1;
        let digest = Sha256::digest(format!("{prefix}/{}/{}", self.primary, self.serial));
        format!("{prefix}{}", &hex::encode(digest)[..32])
    }

    /// 32 random hex characters.
    fn new_secret(&mut self) -> String {
        self.serial += 1;
        let [a, b] = [0, 1].map(|n| RandomState::new().hash_one((self.serial, n)));
        format!("{a:016x}{b:016x}")
    }

    fn take_fault(&mut self, request: &Incoming) -> Option<FaultKind> {
        let index = self.faults.iter().position(|f| f.times > 0 && f.matches(request))?;
        let fault = &mut self.faults[index];
        fault.times -= 1;
        let kind = fault.kind;
        if fault.times == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }

    fn authenticate(&self, request: &Incoming) -> Option<Principal> {
        let (user, password) = request.credentials.as_ref()?;
        if let Some(account) = self.accounts.iter().find(|a| &a.sid == user) {
            return (&account.auth_token == password).then(|| Principal {
                account: account.sid.clone(),
                with_api_key: false,
            });
        }
        let key = self.keys.iter().find(|k| &k.sid == user && &k.secret == password)?;
        Some(Principal {
            account: key.account_sid.clone(),
            with_api_key: true,
        })
    }
}

/// A request as the fake reads it.
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    /// Basic auth `(user, password)`, if well formed.
    credentials: Option<(String, String)>,
}

impl Incoming {
    fn read(request: &Request) -> Self {
        let is_form = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let form = if is_form {
            form_urlencoded::parse(&request.body).into_owned().collect()
        } else {
            Vec::new()
        };
        Self {
            method: request.method.as_str().to_owned(),
            path: request.url.path().to_owned(),
            query: request.url.query_pairs().into_owned().collect(),
            form,
            credentials: basic_credentials(request),
        }
    }

    fn recorded(&self) -> RecordedRequest {
        RecordedRequest {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            form: self.form.clone(),
            username: self.credentials.as_ref().map(|(user, _)| user.clone()),
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }
}

fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let header = request.headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let incoming = Incoming::read(request);
        let mut state = lock(&self.0);
        state.requests.push(incoming.recorded());
        match state.take_fault(&incoming) {
            None => handle(&mut state, &incoming),
            Some(FaultKind::Status(status)) => status_error(status),
            Some(FaultKind::Delay(delay)) => handle(&mut state, &incoming).set_delay(delay),
            Some(FaultKind::DropAfterApplying) => {
                handle(&mut state, &incoming);
                status_error(500)
            }
        }
    }
}

/// `/2010-04-01/Accounts/{account}{/rest…}.json`, split.
struct Route<'a> {
    account: &'a str,
    rest: Vec<&'a str>,
}

fn route(path: &str) -> Option<Route<'_>> {
    let tail = path.strip_prefix(ACCOUNTS)?.strip_suffix(".json")?;
    let mut segments = tail.split('/');
    let account = segments.next().filter(|s| !s.is_empty())?;
    let rest: Vec<&str> = segments.collect();
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(Route { account, rest })
}

/// Authenticates, routes and answers one request.
fn handle(state: &mut State, request: &Incoming) -> ResponseTemplate {
    let Some(principal) = state.authenticate(request) else {
        return unauthorized();
    };
    let Some(Route { account, rest }) = route(&request.path) else {
        return not_found(&request.path);
    };
    if account != principal.account {
        return not_found(&request.path);
    }
    if rest.first() == Some(&"Keys") && principal.with_api_key {
        return unauthorized();
    }
    if request.method == "POST"
        && let Some(rejection) = invalid_value(&request.form)
    {
        return rejection;
    }
    let path = request.path.as_str();
    match (request.method.as_str(), rest.as_slice()) {
        ("GET", []) => ok(json!({
            "sid": account,
            "friendly_name": format!("{account} (fake)"),
            "status": "active",
            "type": "Full",
            "owner_account_sid": account,
            "date_created": now(),
            "date_updated": now(),
            "uri": format!("{ACCOUNTS}{account}.json"),
        })),

        ("GET", ["Keys"]) => list(state, request, "keys", &state.keys, account, |_| true),
        ("POST", ["Keys"]) => state.create_key(account, request),
        ("GET", ["Keys", sid]) => fetch(&state.keys, account, sid, path),
        ("POST", ["Keys", sid]) => match find_mut(&mut state.keys, account, sid) {
            Some(key) => {
                if let Some(name) = request.param("FriendlyName") {
                    key.friendly_name = name.to_owned();
                }
                key.date_updated = now();
                ok(key.json())
            }
            None => not_found(path),
        },
        ("DELETE", ["Keys", sid]) => delete(&mut state.keys, account, sid, path),

        ("GET", ["Applications"]) => {
            let name = request.query_param("FriendlyName");
            list(state, request, "applications", &state.applications, account, |app| {
                name.is_none_or(|n| app.friendly_name == n)
            })
        }
        ("POST", ["Applications"]) => {
            let sid = state.new_sid("AP");
            let mut app = Application::new(&sid, account);
            app.apply(&request.form);
            let body = app.json();
            state.applications.push(app);
            created(body)
        }
        ("GET", ["Applications", sid]) => fetch(&state.applications, account, sid, path),
        ("POST", ["Applications", sid]) => match find_mut(&mut state.applications, account, sid) {
            Some(app) => {
                app.apply(&request.form);
                ok(app.json())
            }
            None => not_found(path),
        },
        ("DELETE", ["Applications", sid]) => delete(&mut state.applications, account, sid, path),

        ("GET", ["IncomingPhoneNumbers"]) => {
            let phone = request.query_param("PhoneNumber");
            let name = request.query_param("FriendlyName");
            list(state, request, "incoming_phone_numbers", &state.numbers, account, |n| {
                phone.is_none_or(|p| n.phone_number.contains(p)) && name.is_none_or(|f| n.friendly_name == f)
            })
        }
        ("GET", ["IncomingPhoneNumbers", sid]) => fetch(&state.numbers, account, sid, path),
        ("POST", ["IncomingPhoneNumbers", sid]) => state.update_number(account, sid, request),
        ("DELETE", ["IncomingPhoneNumbers", sid]) => delete(&mut state.numbers, account, sid, path),

        ("GET", ["Calls"]) => list(state, request, "calls", &state.calls, account, |_| true),
        ("POST", ["Calls"]) => state.create_call(account, request),
        ("GET", ["Calls", sid]) => fetch(&state.calls, account, sid, path),
        ("POST", ["Calls", sid]) => state.update_call(account, sid, request),

        ("GET", ["Messages"]) => list(state, request, "messages", &state.messages, account, |_| true),
        ("POST", ["Messages"]) => state.create_message(account, request),
        ("GET", ["Messages", sid]) => fetch(&state.messages, account, sid, path),

        ("GET", ["Conferences", sid]) => fetch(&state.conferences, account, sid, path),
        ("POST", ["Conferences", sid]) => state.update_conference(account, sid, request),
        ("GET" | "POST" | "DELETE", ["Conferences", conference, "Participants", call]) => {
            state.participant(account, conference, call, request)
        }

        (_, rest) if is_resource(rest) => twilio_error(405, METHOD_NOT_ALLOWED, "Method not allowed"),
        _ => not_found(path),
    }
}

/// Whether `rest` names something the fake serves (with another method).
fn is_resource(rest: &[&str]) -> bool {
    matches!(
        rest,
        [] | ["Keys" | "Applications" | "IncomingPhoneNumbers" | "Calls" | "Conferences" | "Messages"]
            | [
                "Keys" | "Applications" | "IncomingPhoneNumbers" | "Calls" | "Conferences" | "Messages",
                _
            ]
            | ["Conferences", _, "Participants"]
            | ["Conferences", _, "Participants", _]
    )
}

impl State {
    fn create_key(&mut self, account: &str, request: &Incoming) -> ResponseTemplate {
        let key = Key {
            sid: self.new_sid("SK"),
            account_sid: account.to_owned(),
            friendly_name: request.param("FriendlyName").unwrap_or_default().to_owned(),
            secret: self.new_secret(),
            date_created: now(),
            date_updated: now(),
        };
        let mut body = key.json();
        body["secret"] = json!(key.secret);
        self.keys.push(key);
        created(body)
    }

    fn update_number(&mut self, account: &str, sid: &str, request: &Incoming) -> ResponseTemplate {
        if let Some(app) = request.param("VoiceApplicationSid").filter(|a| !a.is_empty())
            && find(&self.applications, account, app).is_none()
        {
            return bad_request(
                INVALID_APPLICATION_SID,
                format!(
                    "VoiceApplicationSid {} is not an application of this account",
                    bounded(app)
                ),
            );
        }
        match find_mut(&mut self.numbers, account, sid) {
            Some(number) => {
                number.apply(&request.form);
                ok(number.json())
            }
            None => not_found(&request.path),
        }
    }

    fn create_call(&mut self, account: &str, request: &Incoming) -> ResponseTemplate {
        let Some(to) = request.param("To").filter(|v| !v.is_empty()) else {
            return bad_request(NO_TO, "No 'To' number is specified");
        };
        let Some(from) = request.param("From").filter(|v| !v.is_empty()) else {
            return bad_request(NO_FROM, "A 'From' phone number is required.");
        };
        if !["Url", "Twiml", "ApplicationSid"]
            .iter()
            .any(|p| request.param(p).is_some_and(|v| !v.is_empty()))
        {
            return bad_request(NO_URL, "Url parameter is required.");
        }
        for (name, value) in &request.form {
            if name == "StatusCallbackEvent" && !CALL_EVENTS.contains(&value.as_str()) {
                return bad_request(
                    INVALID_PARAMETER,
                    format!(
                        "StatusCallbackEvent {} is not one of {CALL_EVENTS:?} (send one parameter per event)",
                        bounded(value)
                    ),
                );
            }
        }
        let call = Call {
            sid: self.new_sid("CA"),
            account_sid: account.to_owned(),
            to: to.to_owned(),
            from: from.to_owned(),
            status: "queued".into(),
            form: request.form.clone(),
            updates: Vec::new(),
            date_created: now(),
            date_updated: now(),
        };
        let body = call.json();
        self.calls.push(call);
        created(body)
    }

    /// A text from one of the account's numbers to a valid-looking number:
    /// `SM…` (`MM…` with media), `queued`.
    fn create_message(&mut self, account: &str, request: &Incoming) -> ResponseTemplate {
        let Some(to) = request.param("To").filter(|v| !v.is_empty()) else {
            return bad_request(NO_MESSAGE_TO, "A 'To' phone number is required.");
        };
        let Some(from) = request.param("From").filter(|v| !v.is_empty()) else {
            return bad_request(NO_FROM, "A 'From' phone number is required.");
        };
        let body = request.param("Body").unwrap_or_default();
        let media_urls: Vec<String> = request
            .form
            .iter()
            .filter(|(k, _)| k == "MediaUrl")
            .map(|(_, v)| v.clone())
            .collect();
        if body.is_empty() && media_urls.is_empty() {
            return bad_request(NO_BODY, "Message body is required.");
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return bad_request(
                BODY_TOO_LONG,
                "The concatenated message body exceeds the 1600 character limit.",
            );
        }
        let digits = to.strip_prefix('+').unwrap_or_default();
        let looks_valid = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if !looks_valid || self.invalid_numbers.iter().any(|n| n == to) {
            return bad_request(
                INVALID_TO,
                format!("The 'To' number {} is not a valid phone number.", bounded(to)),
            );
        }
        if !self
            .numbers
            .iter()
            .any(|n| n.account_sid == account && n.phone_number == from)
        {
            return bad_request(
                NOT_OUR_NUMBER,
                format!(
                    "The From phone number {} is not a valid, SMS-capable inbound phone number or short code for your account.",
                    bounded(from)
                ),
            );
        }
        let prefix = if media_urls.is_empty() { "SM" } else { "MM" };
        let message = Message {
            sid: self.new_sid(prefix),
            account_sid: account.to_owned(),
            to: to.to_owned(),
            from: from.to_owned(),
            body: body.to_owned(),
            media_urls,
            status: "queued".into(),
            status_callback: request.param("StatusCallback").map(str::to_owned),
            form: request.form.clone(),
            date_created: now(),
            date_updated: now(),
        };
        let body = message.json();
        self.messages.push(message);
        created(body)
    }

    /// `Status=canceled` hangs up a call that is not yet answered,
    /// `Status=completed` any live call; an ended call stays as it is.
    fn update_call(&mut self, account: &str, sid: &str, request: &Incoming) -> ResponseTemplate {
        let status = request.param("Status");
        if let Some(status) = status.filter(|s| !matches!(*s, "canceled" | "completed")) {
            return bad_request(
                INVALID_PARAMETER,
                format!("Status {} is not canceled or completed", bounded(status)),
            );
        }
        let Some(call) = find_mut(&mut self.calls, account, sid) else {
            return not_found(&request.path);
        };
        let live = matches!(call.status.as_str(), "queued" | "ringing" | "in-progress");
        let unanswered = matches!(call.status.as_str(), "queued" | "ringing");
        match status {
            Some("completed") if live => call.status = "completed".into(),
            Some("canceled") if unanswered => call.status = "canceled".into(),
            _ => {}
        }
        call.updates.push(request.form.clone());
        call.date_updated = now();
        ok(call.json())
    }

    /// `Status=completed` ends the conference and disconnects everyone.
    fn update_conference(&mut self, account: &str, sid: &str, request: &Incoming) -> ResponseTemplate {
        let status = request.param("Status");
        if let Some(status) = status.filter(|s| *s != "completed") {
            return bad_request(
                INVALID_PARAMETER,
                format!("Status {} is not completed", bounded(status)),
            );
        }
        let Some(conference) = find_mut(&mut self.conferences, account, sid) else {
            return not_found(&request.path);
        };
        if status.is_some() {
            conference.status = "completed".into();
            conference.participants.clear();
        }
        conference.updates.push(request.form.clone());
        conference.date_updated = now();
        ok(conference.json())
    }

    fn participant(&mut self, account: &str, conference: &str, call: &str, request: &Incoming) -> ResponseTemplate {
        let Some(conference) = find_mut(&mut self.conferences, account, conference) else {
            return not_found(&request.path);
        };
        let Some(index) = conference.participants.iter().position(|p| p.call_sid == call) else {
            return not_found(&request.path);
        };
        match request.method.as_str() {
            "DELETE" => {
                conference.participants.remove(index);
                no_content()
            }
            "POST" => {
                conference.participants[index].apply(&request.form);
                ok(conference.participants[index].json(conference))
            }
            _ => ok(conference.participants[index].json(conference)),
        }
    }
}

// ---------------------------------------------------------------------------
// Generic resource helpers
// ---------------------------------------------------------------------------

fn find<'a, T: Resource>(items: &'a [T], account: &str, sid: &str) -> Option<&'a T> {
    items.iter().find(|r| r.sid() == sid && r.account_sid() == account)
}

fn find_mut<'a, T: Resource>(items: &'a mut [T], account: &str, sid: &str) -> Option<&'a mut T> {
    items.iter_mut().find(|r| r.sid() == sid && r.account_sid() == account)
}

fn fetch<T: Resource>(items: &[T], account: &str, sid: &str, path: &str) -> ResponseTemplate {
    match find(items, account, sid) {
        Some(resource) => ok(resource.json()),
        None => not_found(path),
    }
}

fn delete<T: Resource>(items: &mut Vec<T>, account: &str, sid: &str, path: &str) -> ResponseTemplate {
    match items.iter().position(|r| r.sid() == sid && r.account_sid() == account) {
        Some(index) => {
            items.remove(index);
            no_content()
        }
        None => not_found(path),
    }
}

/// One page of the account's `items` that pass `keep`, in creation order,
/// with Twilio's paging fields. `PageToken=PA<sid>` starts after that item;
/// without it (or if that item is gone) the page starts at `Page × PageSize`.
fn list<T: Resource>(
    state: &State,
    request: &Incoming,
    list_key: &str,
    items: &[T],
    account: &str,
    keep: impl Fn(&T) -> bool,
) -> ResponseTemplate {
    let size = match request.query_param("PageSize").map(str::parse::<usize>) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
        Some(_) => return bad_request(INVALID_PARAMETER, "PageSize must be an integer from 1 to 1000"),
    };
    let size = state.page_size_cap.map_or(size, |cap| size.min(cap));
    let page = match request.query_param("Page").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request(INVALID_PARAMETER, "Page must be a non-negative integer"),
    };

    let matching: Vec<&T> = items.iter().filter(|r| r.account_sid() == account && keep(r)).collect();
    let after_token = request
        .query_param("PageToken")
        .and_then(|token| token.strip_prefix("PA"))
        .and_then(|sid| matching.iter().position(|r| r.sid() == sid))
        .map(|index| index + 1);
    let start = after_token.unwrap_or(page.saturating_mul(size)).min(matching.len());
    let end = start.saturating_add(size).min(matching.len());
    let chunk = &matching[start..end];

    // Filters carry over to the other pages' URIs.
    let filters: Vec<&(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "PageSize" | "Page" | "PageToken"))
        .collect();
    let page_uri = |page: usize, token: Option<String>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &filters {
            query.append_pair(k, v);
        }
        query.append_pair("PageSize", &size.to_string());
        query.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            query.append_pair("PageToken", &token);
        }
        format!("{}?{}", request.path, query.finish())
    };
    let next_page_uri = match chunk.last() {
        Some(last) if end < matching.len() => Some(page_uri(page + 1, Some(format!("PA{}", last.sid())))),
        _ => None,
    };
    let mut this_query = form_urlencoded::Serializer::new(String::new());
    this_query.extend_pairs(&request.query);

    ok(json!({
        list_key: chunk.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "first_page_uri": page_uri(0, None),
        "next_page_uri": next_page_uri,
        "previous_page_uri": page.checked_sub(1).map(|p| page_uri(p, None)),
        "page": page,
        "page_size": size,
        "start": start,
        "end": end.saturating_sub(1).max(start),
        "uri": format!("{}?{}", request.path, this_query.finish()),
    }))
}

// ---------------------------------------------------------------------------
// Parameter checks
// ---------------------------------------------------------------------------

/// The checks Twilio makes on values whatever the endpoint: the first
/// failure, as Twilio's 400.
fn invalid_value(form: &[(String, String)]) -> Option<ResponseTemplate> {
    form.iter().find_map(|(name, value)| {
        let is_url = name.ends_with("Url") || name.ends_with("StatusCallback");
        let (code, rule) = if is_url && !value.is_empty() && !is_absolute_http_url(value) {
            (INVALID_URL, "an absolute http(s) URL")
        } else if name.ends_with("Method") && !["GET", "POST"].iter().any(|m| value.eq_ignore_ascii_case(m)) {
            (INVALID_PARAMETER, "GET or POST")
        } else if BOOLEAN_PARAMS.contains(&name.as_str()) && parse_bool(value).is_none() {
            (INVALID_PARAMETER, "true or false")
        } else {
            return None;
        };
        Some(bad_request(
            code,
            format!("{name} must be {rule}, not {}", bounded(value)),
        ))
    })
}

fn is_absolute_http_url(value: &str) -> bool {
    reqwest::Url::parse(value)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A client's value, cut short enough to echo in an error.
fn bounded(value: &str) -> String {
    value.chars().take(100).collect()
}

/// `VoiceCallerIdLookup` → `voice_caller_id_lookup`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out
}

/// Writes `fields` over `body`, `true`/`false` as JSON booleans.
fn overlay(body: &mut Value, fields: &BTreeMap<String, String>) {
    for (name, value) in fields {
        body[name.as_str()] = parse_bool(value).map_or_else(|| json!(value), Value::Bool);
    }
}

fn resource_uri(account: &str, collection: &str, sid: &str) -> String {
    format!("{ACCOUNTS}{account}/{collection}/{sid}.json")
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn created(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(body)
}

fn no_content() -> ResponseTemplate {
    ResponseTemplate::new(204)
}

/// Twilio's error body.
fn twilio_error(status: u16, code: u32, message: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message.into(),
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

fn unauthorized() -> ResponseTemplate {
    twilio_error(401, AUTHENTICATE, "Authenticate")
}

fn not_found(path: &str) -> ResponseTemplate {
    twilio_error(
        404,
        NOT_FOUND,
        format!("The requested resource {} was not found", bounded(path)),
    )
}

fn bad_request(code: u32, message: impl Into<String>) -> ResponseTemplate {
    twilio_error(400, code, message)
}

/// An injected failure: 500 → code 20500 "Internal Server Error", and so on.
fn status_error(status: u16) -> ResponseTemplate {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    twilio_error(status, 20_000 + u32::from(status), reason)
}

/// Now, as Twilio writes dates (RFC 2822, GMT).
fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    rfc2822(secs)
}

fn rfc2822(secs: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, time) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}
