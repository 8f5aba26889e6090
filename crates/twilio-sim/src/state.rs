//! The account's resources, as Twilio keeps them, and their JSON forms.
//!
//! Everything lives in one [`State`] behind a mutex, held only for short,
//! synchronous changes (never across an `await`).

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) const ACCOUNTS: &str = "/2010-04-01/Accounts/";

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

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method)) && path.contains(&self.path_contains)
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

/// A webhook the simulated Twilio sent, and what came back (Twilio's
/// debugger, in short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentWebhook {
    pub method: String,
    pub url: String,
    pub params: Vec<(String, String)>,
    /// The HTTP status, or `None` when nothing answered.
    pub status: Option<u16>,
    /// The start of the answer, or why nothing answered.
    pub answer: String,
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
    /// `queued` when created; `set_call_status`, `Status` updates and (live)
    /// the call's progress move it.
    pub status: String,
    /// The create's form, repeated names included.
    pub form: Vec<(String, String)>,
    /// The form of each update, in order.
    pub updates: Vec<Vec<(String, String)>>,
    pub date_created: String,
    pub date_updated: String,
    /// `outbound-api` (Calls API), `inbound` (to a number, or from a
    /// browser), `outbound-dial` (a `<Dial>`'s leg).
    pub direction: String,
    pub parent_call_sid: Option<String>,
    /// Custom parameters: a browser's `connect` params, or those of a
    /// `client:` address (`client:alice?callId=…`) the browser receives.
    pub parameters: Vec<(String, String)>,
    /// What the party on this leg was told (`<Say>`), in order.
    pub heard: Vec<String>,
    /// Digits the party pressed, in order.
    pub digits: String,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Seconds from answer to end, once ended.
    pub duration: Option<u64>,
    /// When it ended (seconds since the epoch).
    pub(crate) ended_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: String,
    /// `init` (waiting), `in-progress` or `completed`.
    pub status: String,
    pub participants: Vec<Participant>,
    /// The form of each update, in order.
    pub updates: Vec<Vec<(String, String)>>,
    /// The conference recording's status as `Recordings/Twilio.CURRENT`
    /// updates left it (`in-progress`, `paused`), once one is recorded.
    pub recording: Option<String>,
    /// The SID of that recording (live mode).
    pub recording_sid: Option<String>,
    pub date_created: String,
    pub date_updated: String,
    /// What the TwiML that created it asked for (live mode).
    pub(crate) hooks: ConferenceHooks,
    /// Conference events sent so far (its `SequenceNumber`).
    pub(crate) sequence: u64,
}

/// The callbacks a conference reports to: the first participant's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConferenceHooks {
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    /// Twilio's TwiML names: `start end join leave hold mute modify`.
    pub events: Vec<String>,
    pub record_from_start: bool,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: String,
    pub recording_events: Vec<String>,
}

/// A text, as `Messages.json` created it (or, live, as it arrived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    /// Every `MediaUrl`, in order.
    pub media_urls: Vec<String>,
    /// `queued` when created; live: `sent`, `delivered` or `failed` after.
    pub status: String,
    pub status_callback: Option<String>,
    /// The create's form, repeated names included.
    pub form: Vec<(String, String)>,
    pub date_created: String,
    pub date_updated: String,
    /// `outbound-api`, `outbound-reply` or `inbound`.
    pub direction: String,
    pub error_code: Option<u32>,
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

/// A recording (live mode): of a conference, or of a `<Record>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub sid: String,
    pub account_sid: String,
    pub call_sid: Option<String>,
    pub conference_sid: Option<String>,
    /// `Conference` or `RecordVerb`.
    pub source: String,
    /// `in-progress`, `paused`, `completed`.
    pub status: String,
    /// Seconds of audio, once completed.
    pub duration: u64,
    pub date_created: String,
    pub date_updated: String,
}

impl Application {
    pub(crate) fn new(sid: &str, account_sid: &str) -> Self {
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

    pub(crate) fn apply(&mut self, form: &[(String, String)]) {
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
    pub(crate) fn new(sid: &str, account_sid: &str, e164: &str) -> Self {
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
    pub(crate) fn apply(&mut self, form: &[(String, String)]) {
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

impl Call {
    pub(crate) fn new(sid: String, account_sid: &str, from: &str, to: &str, status: &str, direction: &str) -> Self {
        Self {
            sid,
            account_sid: account_sid.to_owned(),
            to: to.to_owned(),
            from: from.to_owned(),
            status: status.to_owned(),
            form: Vec::new(),
            updates: Vec::new(),
            date_created: now(),
            date_updated: now(),
            direction: direction.to_owned(),
            parent_call_sid: None,
            parameters: Vec::new(),
            heard: Vec::new(),
            digits: String::new(),
            start_time: None,
            end_time: None,
            duration: None,
            ended_at: None,
        }
    }

    /// Whether the call has ended (Twilio's final statuses).
    pub fn is_over(&self) -> bool {
        matches!(
            self.status.as_str(),
            "completed" | "busy" | "no-answer" | "failed" | "canceled"
        )
    }
}

impl Message {
    /// A text with no media, callback or form (those of a REST create are set after).
    pub(crate) fn new(
        sid: String,
        account_sid: &str,
        from: &str,
        to: &str,
        body: &str,
        status: &str,
        direction: &str,
    ) -> Self {
        Self {
            sid,
            account_sid: account_sid.to_owned(),
            to: to.to_owned(),
            from: from.to_owned(),
            body: body.to_owned(),
            media_urls: Vec::new(),
            status: status.to_owned(),
            status_callback: None,
            form: Vec::new(),
            date_created: now(),
            date_updated: now(),
            direction: direction.to_owned(),
            error_code: None,
        }
    }
}

impl Conference {
    pub(crate) fn new(
        sid: String,
        account_sid: &str,
        friendly_name: &str,
        status: &str,
        hooks: ConferenceHooks,
    ) -> Self {
        Self {
            sid,
            account_sid: account_sid.to_owned(),
            friendly_name: friendly_name.to_owned(),
            status: status.to_owned(),
            participants: Vec::new(),
            updates: Vec::new(),
            recording: None,
            recording_sid: None,
            date_created: now(),
            date_updated: now(),
            hooks,
            sequence: 0,
        }
    }
}

impl Participant {
    pub(crate) fn new(call_sid: &str) -> Self {
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
    pub(crate) fn apply(&mut self, form: &[(String, String)]) {
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

    /// `true` unless set otherwise (a participant joined over TwiML says).
    pub fn end_conference_on_exit(&self) -> bool {
        self.other.get("end_conference_on_exit").is_none_or(|v| v == "true")
    }

    pub fn start_conference_on_enter(&self) -> bool {
        self.other.get("start_conference_on_enter").is_none_or(|v| v == "true")
    }

    pub fn coaching(&self) -> bool {
        self.other.get("coaching").is_some_and(|v| v == "true")
    }

    pub(crate) fn json(&self, conference: &Conference) -> Value {
        json!({
            "account_sid": conference.account_sid,
            "conference_sid": conference.sid,
            "call_sid": self.call_sid,
            "hold": self.hold,
            "muted": self.muted,
            "coaching": self.coaching(),
            "call_sid_to_coach": self.other.get("call_sid_to_coach"),
            "label": self.other.get("label"),
            "status": "connected",
            "start_conference_on_enter": self.start_conference_on_enter(),
            "end_conference_on_exit": self.end_conference_on_exit(),
            "date_created": conference.date_created,
            "date_updated": conference.date_updated,
            "uri": format!(
                "{ACCOUNTS}{}/Conferences/{}/Participants/{}.json",
                conference.account_sid, conference.sid, self.call_sid
            ),
        })
    }
}

/// What every resource has: an SID, an owner, a JSON form.
pub(crate) trait Resource {
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
            "direction": self.direction,
            "parent_call_sid": self.parent_call_sid,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration.map(|d| d.to_string()),
            "price": null,
            "price_unit": "USD",
            "answered_by": null,
            "caller_name": null,
            "forwarded_from": null,
            "group_sid": null,
            "phone_number_sid": null,
            "queue_time": "0",
            "trunk_sid": null,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "Calls", &self.sid),
            "subresource_uris": {
                "recordings": format!("{ACCOUNTS}{}/Calls/{}/Recordings.json", self.account_sid, self.sid),
            },
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
            "reason_conference_ended": null,
            "call_sid_ending_conference": null,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "Conferences", &self.sid),
            "subresource_uris": {
                "participants": format!("{ACCOUNTS}{}/Conferences/{}/Participants.json", self.account_sid, self.sid),
                "recordings": format!("{ACCOUNTS}{}/Conferences/{}/Recordings.json", self.account_sid, self.sid),
            },
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
            "direction": self.direction,
            "num_segments": "1",
            "num_media": self.media_urls.len().to_string(),
            "messaging_service_sid": null,
            "error_code": self.error_code,
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

impl Resource for Recording {
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
            "call_sid": self.call_sid,
            "conference_sid": self.conference_sid,
            "status": self.status,
            "source": self.source,
            "channels": 1,
            "duration": self.duration.to_string(),
            "price": null,
            "price_unit": "USD",
            "error_code": null,
            "encryption_details": null,
            "start_time": self.date_created,
            "date_created": self.date_created,
            "date_updated": self.date_updated,
            "uri": resource_uri(&self.account_sid, "Recordings", &self.sid),
            "media_url": format!("{ACCOUNTS}{}/Recordings/{}", self.account_sid, self.sid),
        })
    }
}

// ---------------------------------------------------------------------------
// The state
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub(crate) struct AccountCredentials {
    pub sid: String,
    pub auth_token: String,
}

pub(crate) struct State {
    /// The account of `start`; SIDs are derived from it.
    pub primary: String,
    /// Mixed into SIDs: empty for a fake whose SIDs repeat run after run, a
    /// random value for a sandbox whose calls must not meet last run's.
    pub salt: String,
    pub accounts: Vec<AccountCredentials>,
    pub keys: Vec<Key>,
    pub applications: Vec<Application>,
    pub numbers: Vec<IncomingNumber>,
    pub calls: Vec<Call>,
    pub conferences: Vec<Conference>,
    pub messages: Vec<Message>,
    pub recordings: Vec<Recording>,
    /// `To` numbers Twilio refuses (21211).
    pub invalid_numbers: Vec<String>,
    pub page_size_cap: Option<usize>,
    pub faults: Vec<Fault>,
    pub requests: Vec<RecordedRequest>,
    pub webhooks: Vec<SentWebhook>,
    pub serial: u64,
}

/// Who a request authenticated as.
pub(crate) struct Principal {
    pub account: String,
    pub with_api_key: bool,
}

/// Webhooks kept for [`State::webhooks`]: enough for a long test, bounded for
/// a sandbox that runs for days.
const KEPT_WEBHOOKS: usize = 2000;
const KEPT_REQUESTS: usize = 5000;

impl State {
    pub fn new(account_sid: &str, auth_token: &str, salt: &str) -> Self {
        Self {
            primary: account_sid.to_owned(),
            salt: salt.to_owned(),
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
            recordings: Vec::new(),
            invalid_numbers: Vec::new(),
            page_size_cap: None,
            faults: Vec::new(),
            requests: Vec::new(),
            webhooks: Vec::new(),
            serial: 0,
        }
    }

    /// `prefix` + 32 hex digits, distinct within the sim and across sims of
    /// different accounts (and salts), and the same from one run to the next.
    pub fn new_sid(&mut self, prefix: &str) -> String {
        self.serial += 1;
        let digest = Sha256::digest(format!("{prefix}/{}/{}/{}", self.primary, self.salt, self.serial));
        format!("{prefix}{}", &hex::encode(digest)[..32])
    }

    /// 32 random hex characters.
    pub fn new_secret(&mut self) -> String {
        self.serial += 1;
        random_hex(self.serial)
    }

    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let index = self
            .faults
            .iter()
            .position(|f| f.times > 0 && f.matches(method, path))?;
        let fault = &mut self.faults[index];
        fault.times -= 1;
        let kind = fault.kind;
        if fault.times == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }

    pub fn authenticate(&self, credentials: Option<&(String, String)>) -> Option<Principal> {
        let (user, password) = credentials?;
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

    pub fn auth_token(&self, account: &str) -> Option<String> {
        self.accounts
            .iter()
            .find(|a| a.sid == account)
            .map(|a| a.auth_token.clone())
    }

    pub fn record_request(&mut self, request: RecordedRequest) {
        if self.requests.len() >= KEPT_REQUESTS {
            self.requests.drain(..KEPT_REQUESTS / 2);
        }
        self.requests.push(request);
    }

    pub fn record_webhook(&mut self, webhook: SentWebhook) {
        if self.webhooks.len() >= KEPT_WEBHOOKS {
            self.webhooks.drain(..KEPT_WEBHOOKS / 2);
        }
        self.webhooks.push(webhook);
    }

    pub fn call(&self, sid: &str) -> Option<&Call> {
        self.calls.iter().find(|c| c.sid == sid)
    }

    pub fn call_mut(&mut self, sid: &str) -> Option<&mut Call> {
        self.calls.iter_mut().find(|c| c.sid == sid)
    }

    pub fn conference_mut(&mut self, sid: &str) -> Option<&mut Conference> {
        self.conferences.iter_mut().find(|c| c.sid == sid)
    }

    /// The number `e164` and the account it belongs to.
    pub fn number(&self, e164: &str) -> Option<&IncomingNumber> {
        self.numbers.iter().find(|n| n.phone_number == e164)
    }
}

/// Locks `mutex`, poisoned or not: every change under the sim's locks is
/// a short, complete assignment, so a panic elsewhere leaves no half-state.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn find<'a, T: Resource>(items: &'a [T], account: &str, sid: &str) -> Option<&'a T> {
    items.iter().find(|r| r.sid() == sid && r.account_sid() == account)
}

pub(crate) fn find_mut<'a, T: Resource>(items: &'a mut [T], account: &str, sid: &str) -> Option<&'a mut T> {
    items.iter_mut().find(|r| r.sid() == sid && r.account_sid() == account)
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// 32 hex characters from the process's random hasher keys.
pub(crate) fn random_hex(seed: u64) -> String {
    let [a, b] = [0, 1].map(|n| RandomState::new().hash_one((seed, n)));
    format!("{a:016x}{b:016x}")
}

pub(crate) fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A client's value, cut short enough to echo in an error.
pub(crate) fn bounded(value: &str) -> String {
    value.chars().take(100).collect()
}

/// `VoiceCallerIdLookup` → `voice_caller_id_lookup`.
pub(crate) fn snake_case(name: &str) -> String {
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

pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The status callback events asked for; `completed` alone when none is
/// (Twilio's default).
pub(crate) fn events_or_completed(events: Vec<String>) -> Vec<String> {
    if events.is_empty() {
        vec!["completed".into()]
    } else {
        events
    }
}

/// A webhook's HTTP method as Twilio reads one: `GET`, else `POST`.
pub(crate) fn webhook_method(value: Option<&str>) -> String {
    match value {
        Some(m) if m.eq_ignore_ascii_case("GET") => "GET".into(),
        _ => "POST".into(),
    }
}

/// Writes `fields` over `body`, `true`/`false` as JSON booleans.
fn overlay(body: &mut Value, fields: &BTreeMap<String, String>) {
    for (name, value) in fields {
        body[name.as_str()] = parse_bool(value).map_or_else(|| json!(value), Value::Bool);
    }
}

pub(crate) fn resource_uri(account: &str, collection: &str, sid: &str) -> String {
    format!("{ACCOUNTS}{account}/{collection}/{sid}.json")
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Now, as Twilio writes dates (RFC 2822, GMT).
pub(crate) fn now() -> String {
    rfc2822(unix_now())
}

pub(crate) fn rfc2822(secs: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc_2822_in_gmt() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
    }

    #[test]
    fn snake_case_reads_twilio_parameter_names() {
        assert_eq!(snake_case("VoiceCallerIdLookup"), "voice_caller_id_lookup");
        assert_eq!(snake_case("CallSidToCoach"), "call_sid_to_coach");
    }
}
