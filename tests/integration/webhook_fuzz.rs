//! Every `/twilio/...` route of the route table, fed random and hostile
//! requests that carry a valid signature (only the Auth Token's holder can
//! send them, but Twilio's own bodies vary, and a bug must not turn into a
//! 500 that Twilio plays as "an application error").
//!
//! Bodies mix Twilio's parameters (real SIDs of the fixture's calls and texts,
//! or well-formed strangers, or garbage) with unknown and repeated names,
//! huge values, bad percent-encodings and invalid UTF-8, and leave required
//! ones out; query strings name real, unknown and garbage call ids and
//! labels. For every request:
//! - never a 5xx, never a panic;
//! - the answer is well-formed XML whose root is `<Response>` (TwiML: voice
//!   routes say something and hang up when they refuse; callbacks answer an
//!   empty document with a status);
//! - a refused request (a 4xx, or the route table's voice refusal: a 200
//!   that says goodbye) leaves the store as it was: sessions, timelines,
//!   texts, numbers and the workspace, and no change is published on the
//!   store's change feed.
//!
//! The routes are read from `switchboard::routes::ROUTES`, so a new webhook
//! is fuzzed without a line here. `PROPTEST_CASES` sets the cases per route
//! (256 by default).

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderValue, Method, header};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use quick_xml::events::Event;
use serde_json::json;
use switchboard::api::MAX_BODY_BYTES;
use switchboard::ids::{CallId, WorkspaceId};
use switchboard::ports::{CallQuery, ChangeFeed, MessageQuery};
use switchboard::routes::{Handler, ROUTES, Route};
use switchboard::twilio::signature;
use switchboard::twilio::webhooks::Params;
use switchboard_testkit::PUBLIC_URL;
use switchboard_testkit::fake_twilio::FakeTwilio;
use switchboard_testkit::harness::*;
use tokio::sync::broadcast::error::TryRecvError;

use crate::calls::{AUTH_TOKEN, CUSTOMER, OUR_NUMBER, Phone, phone};

const CALLER: &str = "+14155550177";
/// Cases per route: about a second and a half for all of them in a debug
/// build on two cores.
const DEFAULT_CASES: u32 = 256;

// ---------------------------------------------------------------------------
// The fixture: a workspace connected through onboarding, with an outbound
// call, an inbound call ringing alice, and a text sent, so that fuzzed
// requests can name real things and reach past the lookups.

struct Fixture {
    t: TestApp,
    _twilio: FakeTwilio,
    known: Known,
}

/// What a request may name that the fixture holds.
#[derive(Clone, Debug)]
struct Known {
    account: String,
    call_ids: Vec<String>,
    call_sids: Vec<String>,
    conference_sids: Vec<String>,
    labels: Vec<String>,
    message_sids: Vec<String>,
}

async fn fixture() -> Fixture {
    let Phone { t, twilio, account } = phone().await;
    let alice = agent_jwt("acme", "alice", "agent");

    // An outbound call, its browser leg connected.
    let placed = t
        .call(with_json(
            with_bearer(request(Method::POST, "/calls"), &alice),
            &json!({"to": CUSTOMER}),
        ))
        .await;
    assert_eq!(placed.status(), 201, "{}", placed.text());
    let outbound = placed.json()["callId"].as_str().unwrap().to_owned();
    let agent_leg = twilio.add_call("client:agent_alice", "");
    let joined = t
        .call(twilio_post(
            "/twilio/voice/agent",
            &[
                ("AccountSid", account.as_str()),
                ("CallSid", &agent_leg),
                ("From", "client:agent_alice"),
                ("callId", &outbound),
            ],
            AUTH_TOKEN,
        ))
        .await;
    assert!(joined.text().contains("<Conference"), "{}", joined.text());

    // An inbound call, ringing alice.
    let caller_leg = twilio.add_call(CALLER, OUR_NUMBER);
    let rung = t
        .call(twilio_post(
            "/twilio/voice/inbound",
            &[
                ("AccountSid", account.as_str()),
                ("CallSid", &caller_leg),
                ("From", CALLER),
                ("To", OUR_NUMBER),
            ],
            AUTH_TOKEN,
        ))
        .await;
    assert!(rung.text().contains("<Conference"), "{}", rung.text());

    // A text sent, so delivery callbacks have a real MessageSid.
    let sent = t
        .call(with_json(
            with_bearer(request(Method::POST, "/messages"), &alice),
            &json!({"to": CUSTOMER, "from": OUR_NUMBER, "body": "hello"}),
        ))
        .await;
    assert_eq!(sent.status(), 201, "{}", sent.text());

    let ws = WorkspaceId::parse("acme").unwrap();
    let sessions = t
        .app
        .store
        .list_calls(
            &ws,
            &CallQuery {
                limit: 100,
                ..CallQuery::default()
            },
        )
        .await
        .unwrap()
        .items;
    let mut known = Known {
        account,
        call_ids: Vec::new(),
        call_sids: vec![agent_leg, caller_leg],
        conference_sids: vec![twilio.add_conference("room")],
        labels: vec!["customer".into(), "agent".into()],
        message_sids: Vec::new(),
    };
    for session in &sessions {
        known.call_ids.push(session.id.to_string());
        for participant in session.participants.values() {
            known.labels.push(participant.label.clone());
            known
                .call_sids
                .extend(participant.call_sid.iter().map(ToString::to_string));
        }
    }
    let messages = t
        .app
        .store
        .list_messages(
            &ws,
            &MessageQuery {
                limit: 100,
                ..MessageQuery::default()
            },
        )
        .await
        .unwrap()
        .items;
    known.message_sids = messages.iter().map(|m| m.sid.to_string()).collect();
    known.call_sids.sort();
    known.call_sids.dedup();
    known.labels.sort();
    known.labels.dedup();
    assert_eq!(known.call_ids.len(), 2, "{known:?}");
    assert_eq!(known.message_sids.len(), 1, "{known:?}");
    Fixture {
        t,
        _twilio: twilio,
        known,
    }
}

// ---------------------------------------------------------------------------
// What the store holds, to tell that a refused request wrote nothing.

#[derive(Debug, PartialEq)]
struct Snapshot {
    workspace: String,
    numbers: String,
    /// Each session with its timeline, by id.
    calls: BTreeMap<String, (String, String)>,
    messages: BTreeMap<String, String>,
}

async fn snapshot(t: &TestApp) -> Snapshot {
    let store = &t.app.store;
    let ws = WorkspaceId::parse("acme").unwrap();
    let mut calls = BTreeMap::new();
    let mut query = CallQuery {
        limit: 100,
        ..CallQuery::default()
    };
    loop {
        let page = store.list_calls(&ws, &query).await.unwrap();
        for session in page.items {
            let timeline = store.timeline(&ws, &session.id).await.unwrap();
            calls.insert(
                session.id.to_string(),
                (format!("{session:?}"), format!("{timeline:?}")),
            );
        }
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    let mut messages = BTreeMap::new();
    let mut query = MessageQuery {
        limit: 100,
        ..MessageQuery::default()
    };
    loop {
        let page = store.list_messages(&ws, &query).await.unwrap();
        for message in page.items {
            messages.insert(message.sid.to_string(), format!("{message:?}"));
        }
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    Snapshot {
        workspace: format!("{:?}", store.get_workspace(&ws).await.unwrap()),
        numbers: format!("{:?}", store.list_numbers(&ws).await.unwrap()),
        calls,
        messages,
    }
}

/// What changed between two snapshots, in a few lines.
fn differences(before: &Snapshot, after: &Snapshot) -> String {
    let mut out = Vec::new();
    if before.workspace != after.workspace {
        out.push("the workspace changed".to_owned());
    }
    if before.numbers != after.numbers {
        out.push("the numbers changed".to_owned());
    }
    for (id, after_call) in &after.calls {
        match before.calls.get(id) {
            None => out.push(format!("a new session {id}")),
            Some(before_call) if before_call.0 != after_call.0 => out.push(format!(
                "session {id} changed:\n  before {}\n  after  {}",
                before_call.0, after_call.0
            )),
            Some(before_call) if before_call.1 != after_call.1 => {
                out.push(format!("session {id}'s timeline changed: {}", after_call.1))
            }
            Some(_) => {}
        }
    }
    for (sid, message) in &after.messages {
        if before.messages.get(sid) != Some(message) {
            out.push(format!("text {sid} is new or changed: {message}"));
        }
    }
    let gone = before
        .calls
        .keys()
        .filter(|id| !after.calls.contains_key(*id))
        .chain(before.messages.keys().filter(|sid| !after.messages.contains_key(*sid)));
    out.extend(gone.map(|key| format!("{key} is gone")));
    out.join("\n")
}

// ---------------------------------------------------------------------------
// The requests.

/// One `name=value` of a body or a query string.
#[derive(Clone, Debug)]
enum Part {
    /// Encoded as a form encodes it.
    Pair(String, String),
    /// Sent as is: bad percent-encodings, invalid UTF-8, stray `=` and `&`.
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
enum AccountChoice {
    /// `AccountSid` of the fixture's account, first in the body.
    Ours,
    /// None at all.
    Missing,
    /// Another, or a garbage, account first; ours after it.
    OtherFirst(String),
}

#[derive(Clone, Debug)]
struct Case {
    account: AccountChoice,
    body: Vec<Part>,
    query: Option<Vec<Part>>,
    content_type: Option<&'static str>,
    /// A signature made with another token (the gate must refuse it).
    wrong_signature: bool,
}

impl Case {
    fn body_bytes(&self, account: &str) -> Vec<u8> {
        let mut parts = Vec::new();
        match &self.account {
            AccountChoice::Ours => parts.push(encode_pair("AccountSid", account)),
            AccountChoice::Missing => {}
            AccountChoice::OtherFirst(other) => parts.push(encode_pair("AccountSid", other)),
        }
        parts.extend(self.body.iter().map(encode));
        if let AccountChoice::OtherFirst(_) = self.account {
            parts.push(encode_pair("AccountSid", account));
        }
        parts.join(&b'&')
    }

    /// Whether the gate can verify it: signed with the account's token, for
    /// the account it names first, as a form.
    fn verifiable(&self) -> bool {
        !self.wrong_signature && matches!(self.account, AccountChoice::Ours) && self.is_form()
    }

    fn is_form(&self) -> bool {
        self.content_type.is_some_and(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    }

    fn query_string(&self) -> Option<String> {
        let parts: Vec<Vec<u8>> = self.query.as_ref()?.iter().map(encode).collect();
        // A URL is ASCII: raw parts are generated that way.
        Some(String::from_utf8(parts.join(&b'&')).expect("an ASCII query"))
    }

    /// The request as Twilio would send it to `path`, signed for the URL it
    /// requested and the parameters the body holds (however they decode).
    fn request(&self, path: &str, account: &str) -> switchboard::api::Request {
        let body = self.body_bytes(account);
        let path_and_query = match self.query_string() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let url = format!("{PUBLIC_URL}{path_and_query}");
        let token = if self.wrong_signature {
            "not-the-auth-token"
        } else {
            AUTH_TOKEN
        };
        let signature = if self.is_form() {
            let params = Params::parse_form(&body);
            let pairs: Vec<(&str, &str)> = params.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            signature::sign(token.as_bytes(), &url, &pairs)
        } else {
            signature::sign(token.as_bytes(), &url, &[])
        };
        let mut request = switchboard::api::Request::new(Method::POST, &path_and_query);
        if let Some(content_type) = self.content_type {
            request
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        request
            .headers
            .insert("x-twilio-signature", HeaderValue::from_str(&signature).unwrap());
        request.body = Bytes::from(body);
        request
    }
}

fn encode(part: &Part) -> Vec<u8> {
    match part {
        Part::Pair(name, value) => encode_pair(name, value),
        Part::Raw(raw) => raw.clone(),
    }
}

fn encode_pair(name: &str, value: &str) -> Vec<u8> {
    let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{name}={value}").into_bytes()
}

/// A Twilio-shaped SID with a random tail.
fn any_sid(prefix: &'static str) -> impl Strategy<Value = String> {
    "[0-9a-f]{32}".prop_map(move |tail| format!("{prefix}{tail}"))
}

/// Values that are not what Twilio sends.
fn hostile_value() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        "[ -~]{1,40}",
        ".{1,24}",
        "[\\x00-\\x1f\\x7f]{1,8}",
        // Huge: a single value near the body limit's share.
        (1usize..16_000, "[a-zA-Z0-9%&=+<>\"' ]").prop_map(|(n, c)| c.repeat(n)),
        select(vec![
            "CA",
            "CA123",
            "AC<script>",
            "client:",
            "client:agent_",
            "+",
            "+1",
            "null",
            "-1",
            "1e309",
            "9999999999999999999999",
            "NaN",
            "]]>",
            "<Response/>",
            "&amp;",
            "\u{feff}",
            "\u{fffd}",
            "\u{10ffff}",
            "Mon, 32 Foo 2025 25:61:61 +9999",
            "../../etc/passwd",
            "%00",
            "%",
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

/// A value for Twilio's parameter `name`: mostly plausible, sometimes hostile.
fn value_for(name: &'static str, known: &Known) -> BoxedStrategy<String> {
    prop_oneof![4 => plausible_for(name, known), 1 => hostile_value()].boxed()
}

/// A value Twilio could send as `name`: the fixture's own SIDs, or
/// well-formed strangers, and Twilio's words (some it may add one day).
fn plausible_for(name: &'static str, known: &Known) -> BoxedStrategy<String> {
    match name {
        "CallSid" | "ParentCallSid" => prop_oneof![select(known.call_sids.clone()), any_sid("CA")].boxed(),
        "ConferenceSid" => prop_oneof![select(known.conference_sids.clone()), any_sid("CF")].boxed(),
        "RecordingSid" => any_sid("RE").boxed(),
        "MessageSid" | "SmsSid" | "SmsMessageSid" => {
            prop_oneof![select(known.message_sids.clone()), any_sid("SM"), any_sid("MM")].boxed()
        }
        "From" | "To" | "Caller" | "Called" | "callerId" => select(vec![
            OUR_NUMBER,
            CUSTOMER,
            CALLER,
            "client:agent_alice",
            "client:agent_bob",
            "client:agent_root",
            "anonymous",
            "+14155550101",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "CallStatus" | "DialCallStatus" => select(vec![
            "queued",
            "initiated",
            "ringing",
            "in-progress",
            "answered",
            "completed",
            "busy",
            "no-answer",
            "failed",
            "canceled",
            "teleported",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "StatusCallbackEvent" => select(vec![
            "conference-start",
            "conference-end",
            "participant-join",
            "participant-leave",
            "participant-hold",
            "participant-unhold",
            "participant-mute",
            "participant-modify",
            "announcement-end",
            "participant-dance",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "RecordingStatus" => select(vec!["in-progress", "completed", "absent", "failed", "paused"])
            .prop_map(str::to_owned)
            .boxed(),
        "MessageStatus" | "SmsStatus" => select(vec![
            "accepted",
            "queued",
            "sending",
            "sent",
            "delivered",
            "undelivered",
            "failed",
            "received",
            "read",
            "teleported",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "Timestamp" => select(vec![
            "Tue, 14 Nov 2023 22:13:20 +0000",
            "Tue, 14 Nov 2023 22:13:21 +0000",
            "Wed, 01 Jan 2025 00:00:00 +0000",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "callId" => select(known.call_ids.clone()).boxed(),
        "Hold" | "Muted" | "Coaching" | "EndConferenceOnExit" => {
            select(vec!["true", "false"]).prop_map(str::to_owned).boxed()
        }
        "Body" => ".{0,200}".boxed(),
        "MediaUrl0" => Just("https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME".to_owned()).boxed(),
        _ => "[0-9]{1,4}".boxed(),
    }
}

/// Every parameter name a Twilio webhook of ours carries, and some it may.
const TWILIO_NAMES: &[&str] = &[
    "CallSid",
    "ParentCallSid",
    "From",
    "To",
    "Caller",
    "Called",
    "callerId",
    "callId",
    "CallStatus",
    "DialCallStatus",
    "Direction",
    "ApiVersion",
    "StatusCallbackEvent",
    "ConferenceSid",
    "FriendlyName",
    "CallDuration",
    "SequenceNumber",
    "Timestamp",
    "SipResponseCode",
    "ErrorCode",
    "Hold",
    "Muted",
    "Coaching",
    "EndConferenceOnExit",
    "RecordingSid",
    "RecordingStatus",
    "RecordingSource",
    "RecordingChannels",
    "RecordingDuration",
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "MessageStatus",
    "SmsStatus",
    "Body",
    "NumMedia",
    "MediaUrl0",
];

/// Bytes no form encoder makes: bad escapes, invalid UTF-8 (decoded and
/// raw), stray separators, names spelled with escapes.
const RAW_PARTS: &[&[u8]] = &[
    b"%ZZ=1",
    b"CallSid=%C3%28",
    b"From=%FF%FE",
    b"To=%E2%82",
    b"To=\xff\xfe",
    b"%=%",
    b"=",
    b"==",
    b"",
    b"&",
    b"Body=%F0%9F%98",
    b"Body=\xf0\x9f\x98",
    b"CallStatus=%63ompleted",
    b"Call%53id=CA00000000000000000000000000000000",
    b"AccountSid",
    b"a=b=c",
    b"+=+",
    b"%00=%00",
];

fn raw_part() -> BoxedStrategy<Part> {
    prop_oneof![
        select(RAW_PARTS.to_vec()).prop_map(|raw| Part::Raw(raw.to_vec())),
        prop::collection::vec(any::<u8>(), 1..48).prop_map(Part::Raw),
    ]
    .boxed()
}

fn body_part(known: &Known) -> BoxedStrategy<Part> {
    let known_pairs: Vec<BoxedStrategy<Part>> = TWILIO_NAMES
        .iter()
        .map(|&name| {
            value_for(name, known)
                .prop_map(move |v| Part::Pair(name.to_owned(), v))
                .boxed()
        })
        .collect();
    let known_pair = select((0..known_pairs.len()).collect::<Vec<_>>())
        .prop_flat_map(move |i| known_pairs[i].clone())
        .boxed();
    prop_oneof![
        6 => known_pair,
        // Names Twilio never sends, or not like this.
        1 => ("[A-Za-z][A-Za-z0-9_]{0,15}", hostile_value()).prop_map(|(n, v)| Part::Pair(n, v)),
        1 => (".{0,12}", ".{0,12}").prop_map(|(n, v)| Part::Pair(n, v)),
        1 => raw_part(),
    ]
    .boxed()
}

/// Query parts as our callback URLs carry them, and others. URLs are ASCII,
/// so raw parts are printable ASCII (bad escapes included).
fn query_part(known: &Known) -> BoxedStrategy<Part> {
    let call_id = prop_oneof![
        3 => select(known.call_ids.clone()),
        1 => Just(CallId::generate().to_string()),
        1 => hostile_value(),
    ];
    let label = prop_oneof![
        3 => select(known.labels.clone()),
        1 => "[a-z]{1,8}-[0-9]{1,3}",
        1 => hostile_value(),
    ];
    prop_oneof![
        4 => call_id.prop_map(|v| Part::Pair("callId".into(), v)),
        2 => label.prop_map(|v| Part::Pair("label".into(), v)),
        1 => select(vec!["agent", "customer", "other", ""]).prop_map(|v| Part::Pair("leg".into(), v.into())),
        1 => select(vec!["done", "record", ""]).prop_map(|v| Part::Pair("step".into(), v.into())),
        1 => select(vec!["inbound", "outbound", "transfer", "monitor"]).prop_map(|v| Part::Pair("kind".into(), v.into())),
        1 => ("[A-Za-z]{1,10}", hostile_value()).prop_map(|(n, v)| Part::Pair(n, v)),
        1 => "[!-\"$-~]{0,24}".prop_map(|raw| Part::Raw(raw.into_bytes())),
        1 => select(vec!["callId=%ZZ", "callId=%E2%82", "label=%FF", "callId", "=&=", "callId=01J&callId=%00"])
            .prop_map(|raw| Part::Raw(raw.as_bytes().to_vec())),
    ]
    .boxed()
}

/// The parameters a webhook of ours is about (the others are read from
/// these), each there or not.
const CORE_NAMES: &[&str] = &[
    "CallSid",
    "From",
    "To",
    "CallStatus",
    "StatusCallbackEvent",
    "ConferenceSid",
    "Timestamp",
    "SequenceNumber",
    "RecordingSid",
    "RecordingStatus",
    "MessageSid",
    "MessageStatus",
    "Body",
    "callId",
];

/// A body Twilio could send (the core parameters, plausible values), with a
/// few hostile parts mixed in anywhere; the other half of the cases are
/// hostile throughout.
fn body(known: &Known) -> BoxedStrategy<Vec<Part>> {
    let core: Vec<BoxedStrategy<Option<Part>>> = CORE_NAMES
        .iter()
        .map(|&name| {
            prop::option::weighted(0.7, plausible_for(name, known))
                .prop_map(move |v| v.map(|v| Part::Pair(name.to_owned(), v)))
                .boxed()
        })
        .collect();
    let plausible = (core, prop::collection::vec(body_part(known), 0..4))
        .prop_map(|(core, noise)| core.into_iter().flatten().chain(noise).collect::<Vec<_>>())
        .prop_shuffle();
    let hostile = prop::collection::vec(body_part(known), 0..24);
    prop_oneof![plausible, hostile].boxed()
}

fn case(known: &Known) -> impl Strategy<Value = Case> {
    let account = prop_oneof![
        16 => Just(AccountChoice::Ours),
        1 => Just(AccountChoice::Missing),
        // Non-empty: an empty value counts as absent, and ours would come first.
        1 => prop_oneof![any_sid("AC"), hostile_value()]
            .prop_filter("a value", |v| !v.is_empty())
            .prop_map(AccountChoice::OtherFirst),
    ];
    let content_type = prop_oneof![
        16 => Just(Some("application/x-www-form-urlencoded")),
        1 => Just(Some("application/x-www-form-urlencoded; charset=utf-8")),
        1 => Just(Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8")),
        1 => select(vec![
            None,
            Some("application/json"),
            Some("text/plain"),
            Some("application/x-www-form-urlencodedXYZ"),
        ]),
    ];
    (
        account,
        body(known),
        prop::option::weighted(0.8, prop::collection::vec(query_part(known), 0..6)),
        content_type,
        prop::bool::weighted(0.05),
    )
        .prop_map(|(account, body, query, content_type, wrong_signature)| Case {
            account,
            body,
            query,
            content_type,
            wrong_signature,
        })
}

// ---------------------------------------------------------------------------
// The answer.

/// The element names directly under a TwiML document's `<Response>` root,
/// or what is wrong with the document.
fn twiml_verbs(xml: &str) -> Result<Vec<String>, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut verbs = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed at {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(start) => {
                element(&start, depth, &mut roots, &mut verbs)?;
                depth += 1;
            }
            Event::Empty(start) => element(&start, depth, &mut roots, &mut verbs)?,
            Event::End(_) => depth = depth.checked_sub(1).ok_or("an end tag with no start")?,
            Event::Text(text) => {
                let raw = text.into_inner();
                if depth == 0 && !raw.trim().is_empty() {
                    return Err(format!("text outside the root: {raw:?}"));
                }
                legal_xml_chars(&raw)?;
            }
            Event::GeneralRef(reference) => {
                let legal = match reference.resolve_char_ref() {
                    Ok(Some(c)) => legal_xml_char(c),
                    Ok(None) => matches!(&*reference.into_inner(), "amp" | "lt" | "gt" | "quot" | "apos"),
                    Err(_) => false,
                };
                if !legal {
                    return Err("an undefined entity or an illegal character reference".into());
                }
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Decl(_) => {}
            Event::DocType(_) => return Err("a DOCTYPE in TwiML".into()),
            Event::Eof => break,
        }
    }
    match (roots, depth) {
        (1, 0) => Ok(verbs),
        (0, _) => Err("no root element".into()),
        (_, 0) => Err("more than one root element".into()),
        _ => Err("unclosed elements".into()),
    }
}

/// Checks an element's attributes; counts the root, and notes the verbs.
fn element(
    start: &quick_xml::events::BytesStart<'_>,
    depth: usize,
    roots: &mut usize,
    verbs: &mut Vec<String>,
) -> Result<(), String> {
    let name = start.name().0.to_owned();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| format!("a bad attribute on <{name}>: {e}"))?;
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("a bad attribute value on <{name}>: {e}"))?;
        legal_xml_chars(&value)?;
    }
    match depth {
        0 if name != "Response" => Err(format!("the root is <{name}>, not <Response>")),
        0 => {
            *roots += 1;
            Ok(())
        }
        1 => {
            verbs.push(name);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn legal_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

fn legal_xml_chars(text: &str) -> Result<(), String> {
    match text.chars().find(|&c| !legal_xml_char(c)) {
        Some(c) => Err(format!("the character {c:?} is not allowed in XML")),
        None => Ok(()),
    }
}

/// What the route table says when it refuses a voice webhook (`voice_error`
/// in shared/src/routes.rs): 200 and a short goodbye, since Twilio would
/// play any other status as "an application error". Kept in step by
/// `voice_refusals_are_recognised` below.
const VOICE_REFUSALS: &[&str] = &["this call could not be found", "this call could not be completed"];
/// ...and what it says when a voice webhook fails on our side: a 5xx in
/// all but its status.
const VOICE_FAILURE: &str = "we are having trouble connecting your call";

/// How a case was answered.
enum Outcome {
    /// 403: not verifiable.
    Forbidden,
    /// 413: over the body limit.
    TooLarge,
    /// A 4xx, or the voice refusal.
    Refused,
    Accepted,
}

/// Per route: how its cases were answered.
#[derive(Default, Debug)]
struct Tally {
    cases: u32,
    forbidden: u32,
    too_large: u32,
    refused: u32,
    accepted: u32,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        self.cases += 1;
        match outcome {
            Outcome::Forbidden => self.forbidden += 1,
            Outcome::TooLarge => self.too_large += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Accepted => self.accepted += 1,
        }
    }
}

/// Sends `case` to `route` and checks the answer and the store.
async fn check(fx: &Fixture, route: &Route, case: &Case) -> Result<Outcome, TestCaseError> {
    let voice = matches!(route.handler, Handler::TwilioVoice(_));
    let request = case.request(route.path, &fx.known.account);
    let body_len = request.body.len();
    let before = snapshot(&fx.t).await;
    let mut changes = fx.t.queue.subscribe();
    let reply = fx.t.call(request).await;
    let status = reply.status();
    let text = reply.text();

    prop_assert!(status < 500, "{} answered {status}: {text}", route.path);
    let refused = if body_len > MAX_BODY_BYTES {
        // Refused before any handler (and by the local server before the
        // router): Twilio never sends bodies this large.
        prop_assert_eq!(status, 413);
        true
    } else {
        let content_type = reply.header("content-type").unwrap_or_default();
        prop_assert!(
            content_type.starts_with("text/xml"),
            "{} answered {status} as {content_type:?}: {text}",
            route.path
        );
        let verbs = twiml_verbs(&text).map_err(|e| TestCaseError::fail(format!("{}: {e}: {text}", route.path)))?;
        if voice {
            prop_assert!(
                status == 200 || status == 403,
                "a voice route answers 200 (or 403 unsigned): {} answered {status}",
                route.path
            );
        }
        prop_assert!(
            !(voice && text.contains(VOICE_FAILURE)),
            "{} failed (its voice answer for a 5xx): {text}",
            route.path
        );
        let voice_refusal = voice && VOICE_REFUSALS.iter().any(|words| text.contains(words));
        if voice_refusal {
            prop_assert!(
                verbs.iter().all(|v| v == "Say" || v == "Hangup"),
                "{} refused with more than a goodbye: {text}",
                route.path
            );
        }
        status >= 400 || voice_refusal
    };
    if !case.verifiable() && body_len <= MAX_BODY_BYTES {
        prop_assert_eq!(
            status,
            403,
            "{} let an unverifiable request through: {}",
            route.path,
            text
        );
    }
    if refused {
        let after = snapshot(&fx.t).await;
        prop_assert!(
            before == after,
            "{} refused ({status}: {text}) but wrote:\n{}",
            route.path,
            differences(&before, &after)
        );
        prop_assert!(
            matches!(changes.try_recv(), Err(TryRecvError::Empty)),
            "{} refused ({status}) but published a change",
            route.path
        );
    }
    Ok(match status {
        403 => Outcome::Forbidden,
        413 => Outcome::TooLarge,
        _ if refused => Outcome::Refused,
        _ => Outcome::Accepted,
    })
}

fn cases_per_route() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Fuzzes every Twilio route `wanted` picks, each on a fresh fixture.
fn fuzz_routes(wanted: fn(&Handler) -> bool) {
    let routes: Vec<&Route> = ROUTES
        .iter()
        .filter(|r| r.handler.is_twilio() && wanted(&r.handler))
        .collect();
    assert!(!routes.is_empty(), "no route to fuzz");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    for route in routes {
        let fx = rt.block_on(fixture());
        let tally = RefCell::new(Tally::default());
        let config = Config {
            cases: cases_per_route(),
            failure_persistence: None,
            max_shrink_iters: 512,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let outcome = runner.run(&case(&fx.known), |case| {
            let outcome = rt.block_on(check(&fx, route, &case))?;
            tally.borrow_mut().count(&outcome);
            Ok(())
        });
        if let Err(failure) = outcome {
            panic!("{} {}: {failure}", route.method, route.path);
        }
        let tally = tally.into_inner();
        eprintln!("fuzzed {} {}: {tally:?}", route.method, route.path);
        // The signature must let most cases through (about a fifth are
        // meant to be refused by the gate), or the gate is all that was
        // fuzzed. Too few cases say nothing either way.
        let through = tally.cases - tally.forbidden;
        assert!(
            tally.cases < 32 || through * 2 >= tally.cases,
            "{}: only {through} of {} cases passed the signature check",
            route.path,
            tally.cases
        );
    }
    eprintln!("fuzzing took {:?}", started.elapsed());
}

#[test]
fn voice_webhooks_answer_twiml_to_anything_signed() {
    fuzz_routes(|handler| matches!(handler, Handler::TwilioVoice(_)));
}

#[test]
fn callbacks_answer_twiml_to_anything_signed() {
    fuzz_routes(|handler| matches!(handler, Handler::TwilioCallback(_)));
}

/// The refusals the fuzzing counts on are recognised: if the route table's
/// words change, this fails rather than the fuzzing checking less.
#[test]
fn voice_refusals_are_recognised() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fx = fixture().await;
        let sid = fx.known.call_sids[0].clone();
        for (path, expected) in [
            ("/twilio/voice/customer?callId=garbage", VOICE_REFUSALS[1]),
            (
                &*format!("/twilio/voice/customer?callId={}", CallId::generate()),
                VOICE_REFUSALS[0],
            ),
        ] {
            let reply =
                fx.t.call(twilio_post(
                    path,
                    &[("AccountSid", fx.known.account.as_str()), ("CallSid", &sid)],
                    AUTH_TOKEN,
                ))
                .await;
            assert_eq!(reply.status(), 200, "{path}");
            assert!(reply.text().contains(expected), "{path}: {}", reply.text());
        }
    });
}

/// The XML check itself, on documents it must refuse and accept.
#[test]
fn the_twiml_check_refuses_what_twilio_would_not_parse() {
    let ok = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>a &amp; b</Say><Hangup/></Response>"#;
    assert_eq!(twiml_verbs(ok).unwrap(), vec!["Say", "Hangup"]);
    assert_eq!(twiml_verbs("<Response/>").unwrap(), Vec::<String>::new());
    for bad in [
        "",
        "<Response>",
        "<Response></Respons>",
        "<Response/><Response/>",
        "<Reply/>",
        "<Response><Say>a & b</Say></Response>",
        "<Response><Say>&nbsp;</Say></Response>",
        "<Response><Say>\u{1}</Say></Response>",
        "<Response><Say>&#1;</Say></Response>",
        r#"<Response><Dial action="a"b"/></Response>"#,
        r#"<Response><Dial a="1" a="2"/></Response>"#,
        "text<Response/>",
        r#"{"error":{"code":"bad_request"}}"#,
    ] {
        assert!(twiml_verbs(bad).is_err(), "{bad:?} passed");
    }
}
