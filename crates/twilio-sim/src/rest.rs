//! Twilio's REST API 2010-04-01, the part Switchboard uses.
//!
//! What it models:
//! - HTTP Basic auth: `AccountSid:AuthToken`, or `KeySid:secret` of an
//!   existing key everywhere but the Keys endpoints (a standard API key cannot
//!   manage keys). Anything else is 401, code 20003. A path naming another
//!   account than the authenticated one is 404, code 20404.
//! - `Accounts/{Sid}.json`, `Keys`, `Applications`, `IncomingPhoneNumbers`,
//!   `Calls`, `Conferences` and their `Participants` and current recording,
//!   `Messages`, `Recordings` and their media (see [`handle`]).
//! - Lists paged as Twilio pages them: `PageSize`, `Page`, `PageToken`,
//!   `next_page_uri` (`null` on the last page).
//! - Twilio's checks on values: URLs absolute `http(s)`, methods `GET`/`POST`,
//!   booleans `true`/`false`, one known event per `StatusCallbackEvent`; a
//!   failed check is 400 with Twilio's error body, never a panic.
//!
//! Creates answer 201, updates 200, deletes 204, as Twilio does. Requests only
//! change the state here; what Twilio does next (ring a call, end a
//! conference for everyone in it) is returned as [`Effect`]s, which the live
//! mode carries out and the passive mode ignores.

use base64::Engine;
use serde_json::{Value, json};

use crate::media;
use crate::state::{
    ACCOUNTS, Application, Call, Key, Message, Participant, Principal, Resource, State, bounded, find, find_mut, first,
    now, parse_bool,
};

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// Twilio's error codes the sim answers with.
const AUTHENTICATE: u32 = 20003;
const NOT_FOUND: u32 = 20404;
const METHOD_NOT_ALLOWED: u32 = 20004;
/// The sim's code for a malformed parameter (Twilio's varies by parameter).
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

pub(crate) const CALL_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];
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

/// A request as the sim reads it.
pub(crate) struct Incoming {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    /// Basic auth `(user, password)`, if well formed.
    pub credentials: Option<(String, String)>,
}

impl Incoming {
    pub fn read(method: &http::Method, uri: &http::Uri, headers: &http::HeaderMap, body: &[u8]) -> Self {
        let is_form = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let form = if is_form {
            form_urlencoded::parse(body).into_owned().collect()
        } else {
            Vec::new()
        };
        Self {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
            form,
            credentials: basic_credentials(headers),
        }
    }

    pub fn recorded(&self) -> crate::state::RecordedRequest {
        crate::state::RecordedRequest {
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

fn basic_credentials(headers: &http::HeaderMap) -> Option<(String, String)> {
    let header = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// An answer: its status and body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: ReplyBody,
}

#[derive(Debug, Clone)]
pub(crate) enum ReplyBody {
    Json(Value),
    Empty,
    Audio {
        content_type: &'static str,
        bytes: bytes::Bytes,
    },
}

/// What Twilio does after a request changed the state (live mode).
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// A call was placed: ring it.
    CallCreated(String),
    /// `Status=completed|canceled` on a live call.
    CallEnded { sid: String, status: String },
    /// `Url` or `Twiml`: the call runs other TwiML.
    CallRedirected { sid: String, form: Vec<(String, String)> },
    /// `Status=completed`: everyone in it leaves.
    ConferenceEnded {
        sid: String,
        participants: Vec<Participant>,
    },
    /// Hold, mute or coaching changed.
    ParticipantUpdated {
        conference: String,
        before: Participant,
        after: Participant,
    },
    /// Kicked out of the conference.
    ParticipantRemoved {
        conference: String,
        participant: Participant,
    },
    /// `Recordings/Twilio.CURRENT` paused or resumed; `skip`: paused time
    /// is left out of the audio (`PauseBehavior=skip`).
    ConferenceRecording {
        conference: String,
        status: String,
        skip: bool,
    },
    /// A text was sent: deliver it.
    MessageCreated(String),
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

/// `/2010-04-01/Accounts/{account}/Recordings/{sid}[.mp3|.wav]`: the audio.
fn media_route(path: &str) -> Option<(&str, &str, &'static str)> {
    let tail = path.strip_prefix(ACCOUNTS)?;
    let (account, rest) = tail.split_once("/Recordings/")?;
    let (sid, format) = match rest.rsplit_once('.') {
        Some((sid, "mp3")) => (sid, "audio/mpeg"),
        Some((sid, "wav")) => (sid, "audio/x-wav"),
        Some(_) => return None,
        None => (rest, "audio/x-wav"),
    };
    (!account.is_empty() && !sid.is_empty() && !sid.contains('/')).then_some((account, sid, format))
}

/// Authenticates, routes and answers one request.
pub(crate) fn handle(state: &mut State, request: &Incoming) -> (Reply, Vec<Effect>) {
    let mut effects = Vec::new();
    let reply = answer(state, request, &mut effects);
    (reply, effects)
}

fn answer(state: &mut State, request: &Incoming, effects: &mut Vec<Effect>) -> Reply {
    let principal = state.authenticate(request.credentials.as_ref());
    if request.method == "GET"
        && let Some((account, sid, content_type)) = media_route(&request.path)
    {
        // Recording media is public unless the account says otherwise
        // (Twilio's default); wrong credentials are refused all the same.
        return match &principal {
            None if request.credentials.is_some() => unauthorized(),
            Some(principal) if principal.account != account => not_found(&request.path),
            _ => recording_media(state, account, sid, content_type, &request.path),
        };
    }
    let Some(principal) = principal else {
        return unauthorized();
    };
    let Some(Route { account, rest }) = route(&request.path) else {
        return not_found(&request.path);
    };
    if account != principal.account {
        return not_found(&request.path);
    }
    dispatch(state, request, &principal, account, &rest, effects)
}

fn dispatch(
    state: &mut State,
    request: &Incoming,
    principal: &Principal,
    account: &str,
    rest: &[&str],
    effects: &mut Vec<Effect>,
) -> Reply {
    if rest.first() == Some(&"Keys") && principal.with_api_key {
        return unauthorized();
    }
    if request.method == "POST"
        && let Some(rejection) = invalid_value(&request.form)
    {
        return rejection;
    }
    let path = request.path.as_str();
    match (request.method.as_str(), rest) {
        ("GET", []) => ok(json!({
            "sid": account,
            "friendly_name": format!("{account} (simulated)"),
            "status": "active",
            "type": "Full",
            "owner_account_sid": account,
            "auth_token": null,
            "date_created": now(),
            "date_updated": now(),
            "uri": format!("{ACCOUNTS}{account}.json"),
            "subresource_uris": {
                "calls": format!("{ACCOUNTS}{account}/Calls.json"),
                "conferences": format!("{ACCOUNTS}{account}/Conferences.json"),
                "incoming_phone_numbers": format!("{ACCOUNTS}{account}/IncomingPhoneNumbers.json"),
                "messages": format!("{ACCOUNTS}{account}/Messages.json"),
                "recordings": format!("{ACCOUNTS}{account}/Recordings.json"),
                "applications": format!("{ACCOUNTS}{account}/Applications.json"),
                "keys": format!("{ACCOUNTS}{account}/Keys.json"),
            },
        })),

        ("GET", ["Keys"]) => list(state, request, "keys", &state.keys, account, |_| true),
        ("POST", ["Keys"]) => create_key(state, account, request),
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
        ("POST", ["IncomingPhoneNumbers", sid]) => update_number(state, account, sid, request),
        ("DELETE", ["IncomingPhoneNumbers", sid]) => delete(&mut state.numbers, account, sid, path),

        ("GET", ["Calls"]) => {
            let status = request.query_param("Status");
            let to = request.query_param("To");
            list(state, request, "calls", &state.calls, account, |c| {
                status.is_none_or(|s| c.status == s) && to.is_none_or(|t| c.to == t)
            })
        }
        ("POST", ["Calls"]) => create_call(state, account, request, effects),
        ("GET", ["Calls", sid]) => fetch(&state.calls, account, sid, path),
        ("POST", ["Calls", sid]) => update_call(state, account, sid, request, effects),

        ("GET", ["Messages"]) => list(state, request, "messages", &state.messages, account, |_| true),
        ("POST", ["Messages"]) => create_message(state, account, request, effects),
        ("GET", ["Messages", sid]) => fetch(&state.messages, account, sid, path),

        ("GET", ["Conferences"]) => {
            let name = request.query_param("FriendlyName");
            let status = request.query_param("Status");
            list(state, request, "conferences", &state.conferences, account, |c| {
                name.is_none_or(|n| c.friendly_name == n) && status.is_none_or(|s| c.status == s)
            })
        }
        ("GET", ["Conferences", sid]) => fetch(&state.conferences, account, sid, path),
        ("POST", ["Conferences", sid]) => update_conference(state, account, sid, request, effects),
        ("GET", ["Conferences", conference, "Participants"]) => match find(&state.conferences, account, conference) {
            Some(conference) => {
                let page: Vec<Value> = conference.participants.iter().map(|p| p.json(conference)).collect();
                ok(json!({
                    "participants": page,
                    "first_page_uri": path,
                    "next_page_uri": null,
                    "previous_page_uri": null,
                    "page": 0,
                    "page_size": DEFAULT_PAGE_SIZE,
                    "start": 0,
                    "end": page.len().saturating_sub(1),
                    "uri": path,
                }))
            }
            None => not_found(path),
        },
        ("GET" | "POST" | "DELETE", ["Conferences", conference, "Participants", call]) => {
            participant(state, account, conference, call, request, effects)
        }
        ("POST", ["Conferences", conference, "Recordings", "Twilio.CURRENT"]) => {
            update_conference_recording(state, account, conference, request, effects)
        }

        ("GET", ["Recordings"]) => {
            let call = request.query_param("CallSid");
            let conference = request.query_param("ConferenceSid");
            list(state, request, "recordings", &state.recordings, account, |r| {
                call.is_none_or(|c| r.call_sid.as_deref() == Some(c))
                    && conference.is_none_or(|c| r.conference_sid.as_deref() == Some(c))
            })
        }
        ("GET", ["Recordings", sid]) => fetch(&state.recordings, account, sid, path),
        ("DELETE", ["Recordings", sid]) => delete(&mut state.recordings, account, sid, path),

        (_, rest) if is_resource(rest) => twilio_error(405, METHOD_NOT_ALLOWED, "Method not allowed"),
        _ => not_found(path),
    }
}

/// Whether `rest` names something the sim serves (with another method).
fn is_resource(rest: &[&str]) -> bool {
    const COLLECTIONS: [&str; 7] = [
        "Keys",
        "Applications",
        "IncomingPhoneNumbers",
        "Calls",
        "Conferences",
        "Messages",
        "Recordings",
    ];
    match rest {
        [] => true,
        [collection] | [collection, _] => COLLECTIONS.contains(collection),
        ["Conferences", _, "Participants"]
        | ["Conferences", _, "Participants", _]
        | ["Conferences", _, "Recordings", _] => true,
        _ => false,
    }
}

fn recording_media(state: &State, account: &str, sid: &str, content_type: &'static str, path: &str) -> Reply {
    match find(&state.recordings, account, sid) {
        Some(recording) if recording.status == "completed" => {
            let bytes = if content_type == "audio/mpeg" {
                media::mp3(recording.duration)
            } else {
                media::wav(recording.duration)
            };
            Reply {
                status: 200,
                body: ReplyBody::Audio {
                    content_type,
                    bytes: bytes.into(),
                },
            }
        }
        _ => not_found(path),
    }
}

fn create_key(state: &mut State, account: &str, request: &Incoming) -> Reply {
    let key = Key {
        sid: state.new_sid("SK"),
        account_sid: account.to_owned(),
        friendly_name: request.param("FriendlyName").unwrap_or_default().to_owned(),
        secret: state.new_secret(),
        date_created: now(),
        date_updated: now(),
    };
    let mut body = key.json();
    body["secret"] = json!(key.secret);
    state.keys.push(key);
    created(body)
}

fn update_number(state: &mut State, account: &str, sid: &str, request: &Incoming) -> Reply {
    if let Some(app) = request.param("VoiceApplicationSid").filter(|a| !a.is_empty())
        && find(&state.applications, account, app).is_none()
    {
        return bad_request(
            INVALID_APPLICATION_SID,
            format!(
                "VoiceApplicationSid {} is not an application of this account",
                bounded(app)
            ),
        );
    }
    match find_mut(&mut state.numbers, account, sid) {
        Some(number) => {
            number.apply(&request.form);
            ok(number.json())
        }
        None => not_found(&request.path),
    }
}

fn create_call(state: &mut State, account: &str, request: &Incoming, effects: &mut Vec<Effect>) -> Reply {
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
    if let Some(timeout) = request.param("Timeout")
        && timeout.parse::<u32>().is_err()
    {
        return bad_request(
            INVALID_PARAMETER,
            format!("Timeout {} is not a number of seconds", bounded(timeout)),
        );
    }
    let sid = state.new_sid("CA");
    let mut call = Call::new(sid.clone(), account, from, to, "queued", "outbound-api");
    call.form = request.form.clone();
    call.parameters = client_parameters(to);
    let body = call.json();
    state.calls.push(call);
    effects.push(Effect::CallCreated(sid));
    created(body)
}

/// The custom parameters of a `client:alice?callId=1&kind=inbound` address.
pub(crate) fn client_parameters(to: &str) -> Vec<(String, String)> {
    match to.strip_prefix("client:").and_then(|rest| rest.split_once('?')) {
        Some((_, query)) => form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
        None => Vec::new(),
    }
}

/// A text from one of the account's numbers to a valid-looking number:
/// `SM…` (`MM…` with media), `queued`.
fn create_message(state: &mut State, account: &str, request: &Incoming, effects: &mut Vec<Effect>) -> Reply {
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
    if !looks_valid || state.invalid_numbers.iter().any(|n| n == to) {
        return bad_request(
            INVALID_TO,
            format!("The 'To' number {} is not a valid phone number.", bounded(to)),
        );
    }
    if !state
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
    let mut message = Message::new(state.new_sid(prefix), account, from, to, body, "queued", "outbound-api");
    message.media_urls = media_urls;
    message.status_callback = request.param("StatusCallback").map(str::to_owned);
    message.form = request.form.clone();
    let body = message.json();
    effects.push(Effect::MessageCreated(message.sid.clone()));
    state.messages.push(message);
    created(body)
}

/// `Status=canceled` hangs up a call that is not yet answered,
/// `Status=completed` any live call; an ended call stays as it is. `Url` or
/// `Twiml` make a live call run other TwiML.
fn update_call(state: &mut State, account: &str, sid: &str, request: &Incoming, effects: &mut Vec<Effect>) -> Reply {
    let status = request.param("Status");
    if let Some(status) = status.filter(|s| !matches!(*s, "canceled" | "completed")) {
        return bad_request(
            INVALID_PARAMETER,
            format!("Status {} is not canceled or completed", bounded(status)),
        );
    }
    let Some(call) = find_mut(&mut state.calls, account, sid) else {
        return not_found(&request.path);
    };
    let live = matches!(call.status.as_str(), "queued" | "initiated" | "ringing" | "in-progress");
    let unanswered = matches!(call.status.as_str(), "queued" | "initiated" | "ringing");
    match status {
        Some("completed") if live => {
            call.status = "completed".into();
            effects.push(Effect::CallEnded {
                sid: sid.to_owned(),
                status: "completed".into(),
            });
        }
        Some("canceled") if unanswered => {
            call.status = "canceled".into();
            effects.push(Effect::CallEnded {
                sid: sid.to_owned(),
                status: "canceled".into(),
            });
        }
        None if live && (request.param("Url").is_some() || request.param("Twiml").is_some()) => {
            effects.push(Effect::CallRedirected {
                sid: sid.to_owned(),
                form: request.form.clone(),
            });
        }
        _ => {}
    }
    call.updates.push(request.form.clone());
    call.date_updated = now();
    ok(call.json())
}

/// `Status=completed` ends the conference and disconnects everyone.
fn update_conference(
    state: &mut State,
    account: &str,
    sid: &str,
    request: &Incoming,
    effects: &mut Vec<Effect>,
) -> Reply {
    let status = request.param("Status");
    if let Some(status) = status.filter(|s| *s != "completed") {
        return bad_request(
            INVALID_PARAMETER,
            format!("Status {} is not completed", bounded(status)),
        );
    }
    let Some(conference) = find_mut(&mut state.conferences, account, sid) else {
        return not_found(&request.path);
    };
    if status.is_some() && conference.status != "completed" {
        conference.status = "completed".into();
        let participants = std::mem::take(&mut conference.participants);
        effects.push(Effect::ConferenceEnded {
            sid: sid.to_owned(),
            participants,
        });
    }
    conference.updates.push(request.form.clone());
    conference.date_updated = now();
    ok(conference.json())
}

/// `Status=paused|in-progress|stopped` of the conference's current
/// recording; 404 when it is not being recorded (Twilio's 21220 family
/// answers 404 for "no active recording").
fn update_conference_recording(
    state: &mut State,
    account: &str,
    sid: &str,
    request: &Incoming,
    effects: &mut Vec<Effect>,
) -> Reply {
    let status = request.param("Status").unwrap_or_default().to_owned();
    if !matches!(status.as_str(), "paused" | "in-progress" | "stopped") {
        return bad_request(
            INVALID_PARAMETER,
            format!("Status {} is not paused, in-progress or stopped", bounded(&status)),
        );
    }
    if let Some(behavior) = request
        .param("PauseBehavior")
        .filter(|b| !matches!(*b, "skip" | "silence"))
    {
        return bad_request(
            INVALID_PARAMETER,
            format!("PauseBehavior {} is not skip or silence", bounded(behavior)),
        );
    }
    let Some(conference) = find_mut(&mut state.conferences, account, sid) else {
        return not_found(&request.path);
    };
    let Some(recording) = conference
        .recording
        .as_mut()
        .filter(|_| conference.status == "in-progress")
    else {
        return not_found(&request.path);
    };
    *recording = status.clone();
    conference.updates.push(request.form.clone());
    let recording_sid = conference
        .recording_sid
        .clone()
        .unwrap_or_else(|| format!("RE{}", &conference.sid[2..]));
    effects.push(Effect::ConferenceRecording {
        conference: conference.sid.clone(),
        status: status.clone(),
        skip: request.param("PauseBehavior") == Some("skip"),
    });
    ok(json!({
        "account_sid": conference.account_sid,
        "api_version": "2010-04-01",
        "call_sid": null,
        "conference_sid": conference.sid,
        "sid": recording_sid,
        "status": status,
        "channels": 1,
        "source": "Conference",
        "date_created": conference.date_created,
        "date_updated": now(),
        "uri": format!("{ACCOUNTS}{}/Conferences/{}/Recordings/{recording_sid}.json", conference.account_sid, conference.sid),
    }))
}

fn participant(
    state: &mut State,
    account: &str,
    conference: &str,
    call: &str,
    request: &Incoming,
    effects: &mut Vec<Effect>,
) -> Reply {
    let Some(conference) = find_mut(&mut state.conferences, account, conference) else {
        return not_found(&request.path);
    };
    // A participant is named by its CallSid or its label.
    let Some(index) = conference
        .participants
        .iter()
        .position(|p| p.call_sid == call || p.other.get("label").is_some_and(|l| l == call))
    else {
        return not_found(&request.path);
    };
    match request.method.as_str() {
        "DELETE" => {
            let participant = conference.participants.remove(index);
            effects.push(Effect::ParticipantRemoved {
                conference: conference.sid.clone(),
                participant,
            });
            no_content()
        }
        "POST" => {
            let before = conference.participants[index].clone();
            conference.participants[index].apply(&request.form);
            conference.date_updated = now();
            effects.push(Effect::ParticipantUpdated {
                conference: conference.sid.clone(),
                before,
                after: conference.participants[index].clone(),
            });
            ok(conference.participants[index].json(conference))
        }
        _ => ok(conference.participants[index].json(conference)),
    }
}

// ---------------------------------------------------------------------------
// Generic resource helpers
// ---------------------------------------------------------------------------

fn fetch<T: Resource>(items: &[T], account: &str, sid: &str, path: &str) -> Reply {
    match find(items, account, sid) {
        Some(resource) => ok(resource.json()),
        None => not_found(path),
    }
}

fn delete<T: Resource>(items: &mut Vec<T>, account: &str, sid: &str, path: &str) -> Reply {
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
) -> Reply {
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
fn invalid_value(form: &[(String, String)]) -> Option<Reply> {
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

pub(crate) fn is_absolute_http_url(value: &str) -> bool {
    url::Url::parse(value)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: ReplyBody::Json(body),
    }
}

fn created(body: Value) -> Reply {
    Reply {
        status: 201,
        body: ReplyBody::Json(body),
    }
}

fn no_content() -> Reply {
    Reply {
        status: 204,
        body: ReplyBody::Empty,
    }
}

/// Twilio's error body.
pub(crate) fn twilio_error(status: u16, code: u32, message: impl Into<String>) -> Reply {
    Reply {
        status,
        body: ReplyBody::Json(json!({
            "code": code,
            "message": message.into(),
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        })),
    }
}

pub(crate) fn unauthorized() -> Reply {
    twilio_error(401, AUTHENTICATE, "Authenticate")
}

fn not_found(path: &str) -> Reply {
    twilio_error(
        404,
        NOT_FOUND,
        format!("The requested resource {} was not found", bounded(path)),
    )
}

fn bad_request(code: u32, message: impl Into<String>) -> Reply {
    twilio_error(400, code, message)
}

/// An injected failure: 500 → code 20500 "Internal Server Error", and so on.
pub(crate) fn status_error(status: u16) -> Reply {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    twilio_error(status, 20_000 + u32::from(status), reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_paths_name_the_format() {
        let path = "/2010-04-01/Accounts/AC1/Recordings/RE1.mp3";
        assert_eq!(media_route(path), Some(("AC1", "RE1", "audio/mpeg")));
        assert_eq!(
            media_route("/2010-04-01/Accounts/AC1/Recordings/RE1"),
            Some(("AC1", "RE1", "audio/x-wav"))
        );
        assert_eq!(media_route("/2010-04-01/Accounts/AC1/Recordings/RE1.json"), None);
        assert_eq!(media_route("/2010-04-01/Accounts/AC1/Recordings/a/b.mp3"), None);
    }

    /// Recording media is public, but wrong credentials or another
    /// account's are refused as for any other resource.
    #[test]
    fn recording_media_needs_no_credentials_but_refuses_wrong_ones() {
        let mut state = State::new("AC1", "token1", "");
        state.accounts.push(crate::state::AccountCredentials {
            sid: "AC2".into(),
            auth_token: "token2".into(),
        });
        state.recordings.push(crate::state::Recording {
            sid: "RE1".into(),
            account_sid: "AC1".into(),
            call_sid: None,
            conference_sid: None,
            source: "RecordVerb".into(),
            status: "completed".into(),
            duration: 1,
            date_created: now(),
            date_updated: now(),
        });
        let status = |state: &mut State, credentials: Option<(&str, &str)>| {
            let request = Incoming {
                method: "GET".into(),
                path: "/2010-04-01/Accounts/AC1/Recordings/RE1.mp3".into(),
                query: Vec::new(),
                form: Vec::new(),
                credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            };
            handle(state, &request).0.status
        };
        assert_eq!(status(&mut state, None), 200);
        assert_eq!(status(&mut state, Some(("AC1", "token1"))), 200);
        assert_eq!(status(&mut state, Some(("AC1", "wrong"))), 401);
        assert_eq!(status(&mut state, Some(("AC2", "token2"))), 404);
    }

    #[test]
    fn client_addresses_carry_parameters() {
        assert_eq!(
            client_parameters("client:agent_alice?callId=01J&from=%2B14155550100&kind=inbound"),
            [
                ("callId".to_owned(), "01J".to_owned()),
                ("from".to_owned(), "+14155550100".to_owned()),
                ("kind".to_owned(), "inbound".to_owned())
            ]
        );
        assert!(client_parameters("+14155550100").is_empty());
    }
}
