//! Calls end to end through the route table, with Twilio played by a stateful
//! fake and every webhook signed as Twilio signs it.

use std::sync::Arc;

use http::Method;
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard::ids::{CallId, WorkspaceId};
use switchboard::model::calls::{CallSession, CallState};
use switchboard::time::Timestamp;
use switchboard_testkit::fake_twilio::FakeTwilio;
use switchboard_testkit::harness::*;

pub(crate) const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
pub(crate) const OUR_NUMBER: &str = "+14155550100";
pub(crate) const CUSTOMER: &str = "+14155550199";
pub(crate) const ALICE: &str = "client:agent_alice";

pub(crate) struct Phone {
    pub(crate) t: TestApp,
    pub(crate) twilio: FakeTwilio,
    pub(crate) account: String,
}

/// A workspace connected through onboarding, with one number that rings alice.
pub(crate) async fn phone() -> Phone {
    let account = account("acme").to_string();
    let twilio = FakeTwilio::start(&account, AUTH_TOKEN).await;
    twilio.add_number(OUR_NUMBER);
    let t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())]).await;
    let admin = agent_jwt("acme", "root", "admin");
    let configured = t
        .call(with_json(
            with_bearer(request(Method::PUT, "/workspace/twilio"), &admin),
            &json!({"accountSid": account, "authToken": AUTH_TOKEN}),
        ))
        .await;
    assert_eq!(configured.status(), 200, "{}", configured.text());
    let assigned = t
        .call(with_json(
            with_bearer(request(Method::PUT, "/workspace/numbers/%2B14155550100"), &admin),
            &json!({"agents": ["alice"]}),
        ))
        .await;
    assert_eq!(assigned.status(), 200, "{}", assigned.text());
    twilio.clear_requests();
    Phone { t, twilio, account }
}

impl Phone {
    /// A webhook from this account, signed with its auth token.
    pub(crate) async fn hook(&self, path_and_query: &str, params: &[(&str, &str)]) -> Reply {
        let mut all = params.to_vec();
        all.push(("AccountSid", &self.account));
        self.t.call(twilio_post(path_and_query, &all, AUTH_TOKEN)).await
    }

    pub(crate) async fn place(&self, key: Option<&str>) -> Reply {
        let mut request = with_json(
            with_bearer(request(Method::POST, "/calls"), &agent_jwt("acme", "alice", "agent")),
            &json!({"to": CUSTOMER}),
        );
        if let Some(key) = key {
            request.headers.insert("idempotency-key", key.parse().unwrap());
        }
        self.t.call(request).await
    }

    pub(crate) async fn session(&self, id: &str) -> CallSession {
        let ws = WorkspaceId::parse("acme").unwrap();
        self.t
            .app
            .store
            .get_call(&ws, &CallId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    pub(crate) async fn sessions(&self) -> usize {
        let ws = WorkspaceId::parse("acme").unwrap();
        let query = switchboard::ports::CallQuery {
            limit: 100,
            ..Default::default()
        };
        self.t.app.store.list_calls(&ws, &query).await.unwrap().items.len()
    }

    pub(crate) async fn timeline(&self, id: &str) -> Vec<switchboard::model::calls::TimelineEvent> {
        let ws = WorkspaceId::parse("acme").unwrap();
        self.t
            .app
            .store
            .timeline(&ws, &CallId::parse(id).unwrap())
            .await
            .unwrap()
    }

    pub(crate) fn dials(&self) -> Vec<Vec<(String, String)>> {
        self.twilio.calls_created()
    }
}

/// `Timestamp` values Twilio would send, `seconds` after a fixed start.
pub(crate) fn at(seconds: u32) -> String {
    let t = Timestamp::from_unix_seconds(1_700_000_000 + i64::from(seconds)).unwrap();
    // RFC 2822, as Twilio formats it.
    let parsed = time::OffsetDateTime::parse(&t.rfc3339(), &time::format_description::well_known::Rfc3339).unwrap();
    parsed.format(&time::format_description::well_known::Rfc2822).unwrap()
}

pub(crate) struct Outbound {
    pub(crate) call_id: String,
    pub(crate) agent_sid: String,
    pub(crate) conference_sid: String,
    /// The TwiML the agent's leg got.
    pub(crate) agent_twiml: String,
}

/// `POST /calls`, the browser connecting, and the agent joining the conference.
pub(crate) async fn connect_agent(p: &Phone) -> Outbound {
    let placed = p.place(None).await;
    assert_eq!(placed.status(), 201, "{}", placed.text());
    let call_id = placed.json()["callId"].as_str().unwrap().to_owned();
    let agent_sid = p.twilio.add_call(ALICE, "");
    let twiml = p
        .hook(
            "/twilio/voice/agent",
            &[
                ("CallSid", &agent_sid),
                ("From", ALICE),
                ("To", ""),
                ("callId", &call_id),
            ],
        )
        .await;
    assert_eq!(twiml.status(), 200, "{}", twiml.text());
    let xml = twiml.text();
    assert!(xml.contains(&format!(">sb-{call_id}</Conference>")), "{xml}");
    assert!(xml.contains(r#"startConferenceOnEnter="true""#) && xml.contains(r#"endConferenceOnExit="true""#));
    assert!(
        xml.contains(r#"statusCallbackEvent="start end join leave hold""#),
        "{xml}"
    );
    let conference_sid = p.twilio.add_conference(&format!("sb-{call_id}"));
    p.twilio.add_participant(&conference_sid, &agent_sid);
    assert!(p.dials().is_empty(), "nobody is dialed before the agent is in the room");
    Outbound {
        call_id,
        agent_sid,
        conference_sid,
        agent_twiml: xml,
    }
}

pub(crate) fn conference_event(
    o: &Outbound,
    event: &'static str,
    call_sid: &str,
    sequence: u32,
    seconds: u32,
) -> Event {
    Event {
        path: format!("/twilio/status?callId={}", o.call_id),
        params: vec![
            ("StatusCallbackEvent", event.to_owned()),
            ("CallSid", call_sid.to_owned()),
            ("ConferenceSid", o.conference_sid.clone()),
            ("FriendlyName", format!("sb-{}", o.call_id)),
            ("SequenceNumber", sequence.to_string()),
            ("Timestamp", at(seconds)),
        ],
    }
}

pub(crate) fn customer_status(
    o: &Outbound,
    customer_sid: &str,
    status: &'static str,
    sequence: u32,
    seconds: u32,
) -> Event {
    let mut params = vec![
        ("CallSid", customer_sid.to_owned()),
        ("CallStatus", status.to_owned()),
        ("SequenceNumber", sequence.to_string()),
        ("Timestamp", at(seconds)),
        ("From", OUR_NUMBER.to_owned()),
        ("To", CUSTOMER.to_owned()),
        ("Direction", "outbound-api".to_owned()),
    ];
    if status == "completed" {
        params.push(("CallDuration", "60".to_owned()));
    }
    Event {
        path: format!("/twilio/status?callId={}&leg=customer", o.call_id),
        params,
    }
}

/// The agent's leg ending, reported by the TwiML App's status callback (no callId).
fn agent_completed(o: &Outbound, seconds: u32) -> Event {
    Event {
        path: "/twilio/status".into(),
        params: vec![
            ("CallSid", o.agent_sid.clone()),
            ("CallStatus", "completed".to_owned()),
            ("SequenceNumber", "3".to_owned()),
            ("Timestamp", at(seconds)),
            ("From", ALICE.to_owned()),
        ],
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) path: String,
    pub(crate) params: Vec<(&'static str, String)>,
}

impl Event {
    pub(crate) async fn send(&self, p: &Phone) -> Reply {
        let params: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        p.hook(&self.path, &params).await
    }
}

/// The agent joins; the customer is dialed; returns the customer's CallSid.
pub(crate) async fn agent_joins(p: &Phone, o: &Outbound) -> String {
    let join = conference_event(o, "participant-join", &o.agent_sid, 1, 0)
        .send(p)
        .await;
    assert_eq!(join.status(), 200, "{}", join.text());
    let dials = p.dials();
    assert_eq!(dials.len(), 1, "the customer is dialed once");
    p.twilio.calls().into_iter().find(|c| c.to == CUSTOMER).unwrap().sid
}

#[tokio::test]
async fn an_outbound_call_connects_both_ways_and_keeps_a_true_record() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    assert!(!o.agent_twiml.contains("record="), "the workspace does not record");
    let customer = agent_joins(&p, &o).await;

    let dial = &p.dials()[0];
    let value = |name: &str| dial.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(value("To"), Some(CUSTOMER));
    assert_eq!(value("From"), Some(OUR_NUMBER), "alice's number is her caller ID");
    assert_eq!(
        value("Url"),
        Some(&*format!("{PUBLIC_URL}/twilio/voice/customer?callId={}", o.call_id))
    );
    assert_eq!(
        value("StatusCallback"),
        Some(&*format!(
            "{PUBLIC_URL}/twilio/status?callId={}&leg=customer",
            o.call_id
        ))
    );
    let events: Vec<&str> = dial
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);

    // The customer answers: their TwiML puts them in the same room.
    let twiml = p
        .hook(
            &format!("/twilio/voice/customer?callId={}", o.call_id),
            &[("CallSid", &customer), ("CallStatus", "in-progress")],
        )
        .await;
    assert!(
        twiml.text().contains(&format!(">sb-{}</Conference>", o.call_id)),
        "{}",
        twiml.text()
    );
    assert!(twiml.text().contains(r#"endConferenceOnExit="true""#));

    for event in [
        customer_status(&o, &customer, "initiated", 0, 1),
        customer_status(&o, &customer, "ringing", 1, 2),
        customer_status(&o, &customer, "in-progress", 2, 5),
        conference_event(&o, "participant-join", &customer, 2, 5),
        conference_event(&o, "participant-leave", &customer, 3, 65),
        customer_status(&o, &customer, "completed", 3, 65),
        conference_event(&o, "conference-end", "", 4, 66),
        agent_completed(&o, 66),
    ] {
        let reply = event.send(&p).await;
        assert_eq!(reply.status(), 200, "{event:?}: {}", reply.text());
    }

    let session = p.session(&o.call_id).await;
    assert_eq!(session.state, CallState::Completed);
    assert_eq!(session.duration_seconds, Some(60));
    assert_eq!(
        session.customer_call_sid.as_ref().map(|s| s.to_string()),
        Some(customer.clone())
    );
    assert_eq!(
        session.conference_sid.as_ref().map(|s| s.to_string()),
        Some(o.conference_sid.clone())
    );
    let reached: Vec<CallState> = session.reached.keys().copied().collect();
    assert_eq!(
        reached,
        [
            CallState::Created,
            CallState::Dialing,
            CallState::Ringing,
            CallState::InProgress,
            CallState::Completed
        ]
    );
    assert_eq!(
        session.reached[&CallState::InProgress].rfc3339(),
        "2023-11-14T22:13:25.000Z"
    );
    assert_eq!(p.dials().len(), 1, "still one call to the customer");

    // The log and the call, with its timeline.
    let alice = agent_jwt("acme", "alice", "agent");
    let log = p.t.call(with_bearer(request(Method::GET, "/calls"), &alice)).await;
    assert_eq!(log.json()["calls"][0]["callId"], o.call_id.as_str());
    assert_eq!(log.json()["calls"][0]["state"], "completed");
    let one =
        p.t.call(with_bearer(
            request(Method::GET, &format!("/calls/{}", o.call_id)),
            &alice,
        ))
        .await;
    let timeline = one.json()["timeline"].as_array().unwrap().clone();
    assert_eq!(timeline.len(), 9, "{timeline:?}");
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "customer-completed" && e["detail"]["CallDuration"] == "60")
    );

    // Notes and disposition.
    let patched =
        p.t.call(with_json(
            with_bearer(request(Method::PATCH, &format!("/calls/{}", o.call_id)), &alice),
            &json!({"notes": "wants a callback", "disposition": "follow-up"}),
        ))
        .await;
    assert_eq!(patched.status(), 200, "{}", patched.text());
    assert_eq!(patched.json()["notes"], "wants a callback");
    assert_eq!(p.session(&o.call_id).await.disposition.as_deref(), Some("follow-up"));
}

#[tokio::test]
async fn hold_and_hangup_act_on_the_conference() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    let customer = agent_joins(&p, &o).await;
    p.twilio.add_participant(&o.conference_sid, &customer);
    let alice = agent_jwt("acme", "alice", "agent");
    let hold = |on: bool| {
        with_json(
            with_bearer(request(Method::POST, &format!("/calls/{}/hold", o.call_id)), &alice),
            &json!({"hold": on}),
        )
    };
    // Not yet connected: nothing to hold.
    assert_eq!(p.t.call(hold(true)).await.status(), 409);

    conference_event(&o, "participant-join", &customer, 2, 5).send(&p).await;
    let held = p.t.call(hold(true)).await;
    assert_eq!(held.status(), 200, "{}", held.text());
    let participant = p.twilio.conferences()[0]
        .participants
        .iter()
        .find(|x| x.call_sid == customer)
        .cloned()
        .unwrap();
    assert!(participant.hold);
    assert!(participant.hold_url.as_deref().is_some_and(|u| u.ends_with(".mp3")));
    assert_eq!(p.t.call(hold(false)).await.status(), 200);
    assert!(
        !p.twilio.conferences()[0]
            .participants
            .iter()
            .find(|x| x.call_sid == customer)
            .unwrap()
            .hold
    );

    // Another agent may not touch alice's call; bob of another workspace cannot even see it.
    let bob = agent_jwt("acme", "bob", "agent");
    let foreign =
        p.t.call(with_json(
            with_bearer(request(Method::POST, &format!("/calls/{}/hold", o.call_id)), &bob),
            &json!({"hold": true}),
        ))
        .await;
    assert_eq!(foreign.status(), 403);
    let other = agent_jwt("globex", "alice", "admin");
    for (method, path) in [
        (Method::GET, format!("/calls/{}", o.call_id)),
        (Method::POST, format!("/calls/{}/hangup", o.call_id)),
    ] {
        assert_eq!(
            p.t.call(with_bearer(request(method, &path), &other)).await.status(),
            404
        );
    }

    let hung =
        p.t.call(with_bearer(
            request(Method::POST, &format!("/calls/{}/hangup", o.call_id)),
            &alice,
        ))
        .await;
    assert_eq!(hung.status(), 202, "{}", hung.text());
    assert_eq!(p.twilio.conferences()[0].status, "completed");
}

#[tokio::test]
async fn a_customer_who_does_not_answer_ends_the_call_with_a_word_to_the_agent() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    let customer = agent_joins(&p, &o).await;
    for event in [
        customer_status(&o, &customer, "initiated", 0, 1),
        customer_status(&o, &customer, "ringing", 1, 2),
        customer_status(&o, &customer, "no-answer", 2, 32),
    ] {
        assert_eq!(event.send(&p).await.status(), 200);
    }
    let session = p.session(&o.call_id).await;
    assert_eq!(session.state, CallState::NoAnswer);
    assert_eq!(session.end_reason.as_deref(), Some("the customer did not answer"));
    // The agent's leg was redirected out of the conference with a message.
    let agent_leg = p.twilio.calls().into_iter().find(|c| c.sid == o.agent_sid).unwrap();
    let twiml = agent_leg
        .updates
        .iter()
        .flatten()
        .find(|(k, _)| k == "Twiml")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        twiml.contains("There was no answer") && twiml.contains("<Hangup/>"),
        "{twiml}"
    );
    // A duplicate does not tell them twice; a late ringing changes nothing.
    customer_status(&o, &customer, "no-answer", 2, 32).send(&p).await;
    customer_status(&o, &customer, "in-progress", 2, 33).send(&p).await;
    let agent_leg = p.twilio.calls().into_iter().find(|c| c.sid == o.agent_sid).unwrap();
    assert_eq!(agent_leg.updates.len(), 1);
    assert_eq!(p.session(&o.call_id).await.state, CallState::NoAnswer);
}

#[tokio::test]
async fn an_agent_who_leaves_before_joining_means_the_customer_is_never_dialed() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    // The browser drops before the conference join is reported.
    assert_eq!(agent_completed(&o, 3).send(&p).await.status(), 200);
    let session = p.session(&o.call_id).await;
    assert_eq!(session.state, CallState::Abandoned);
    // A join that arrives late dials nobody.
    conference_event(&o, "participant-join", &o.agent_sid, 1, 0)
        .send(&p)
        .await;
    assert!(p.dials().is_empty());
    assert_eq!(p.session(&o.call_id).await.state, CallState::Abandoned);
}

#[tokio::test]
async fn an_agent_who_never_connects_leaves_an_abandoned_session() {
    let p = phone().await;
    // A session created long ago whose browser never connected.
    let ws = WorkspaceId::parse("acme").unwrap();
    let mut stale = CallSession::new(
        ws.clone(),
        switchboard::model::calls::Direction::Outbound,
        Some(switchboard::ids::AgentId::parse("alice").unwrap()),
        OUR_NUMBER.into(),
        CUSTOMER.into(),
        Timestamp::from_unix_seconds(Timestamp::now().unix_seconds() - 600).unwrap(),
    );
    stale.reached.clear();
    p.t.app.store.create_call(&stale).await.unwrap();
    let id = stale.id.to_string();
    let alice = agent_jwt("acme", "alice", "agent");
    let got =
        p.t.call(with_bearer(request(Method::GET, &format!("/calls/{id}")), &alice))
            .await;
    assert_eq!(got.json()["state"], "abandoned");
    assert_eq!(got.json()["endReason"], "the agent never joined");
    // Connecting now is refused, and nobody is dialed.
    let agent_sid = p.twilio.add_call(ALICE, "");
    let twiml = p
        .hook(
            "/twilio/voice/agent",
            &[("CallSid", &agent_sid), ("From", ALICE), ("callId", &id)],
        )
        .await;
    assert!(twiml.text().contains("<Hangup/>"), "{}", twiml.text());
    assert!(p.dials().is_empty());
}

#[tokio::test]
async fn a_quickstart_dialer_that_only_sends_to_works_unchanged() {
    let p = phone().await;
    let agent_sid = p.twilio.add_call(ALICE, CUSTOMER);
    let params = [("CallSid", agent_sid.as_str()), ("From", ALICE), ("To", CUSTOMER)];
    let first = p.hook("/twilio/voice/agent", &params).await;
    assert!(first.text().contains("<Conference"), "{}", first.text());
    // Twilio asking twice for the same leg makes one session.
    let again = p.hook("/twilio/voice/agent", &params).await;
    assert_eq!(first.text(), again.text());
    assert_eq!(p.sessions().await, 1);
    let bad = p
        .hook(
            "/twilio/voice/agent",
            &[("CallSid", &agent_sid), ("From", ALICE), ("To", "12")],
        )
        .await;
    assert!(bad.text().contains("<Hangup/>"));
}

pub(crate) const CALLER: &str = "+14155550177";

/// The number rings alice, bob and carol.
pub(crate) async fn phone_with_three_agents() -> Phone {
    let p = phone().await;
    let admin = agent_jwt("acme", "root", "admin");
    let assigned =
        p.t.call(with_json(
            with_bearer(request(Method::PUT, "/workspace/numbers/%2B14155550100"), &admin),
            &json!({"agents": ["alice", "bob", "carol"]}),
        ))
        .await;
    assert_eq!(assigned.status(), 200);
    p
}

pub(crate) struct Inbound {
    pub(crate) call_id: String,
    pub(crate) caller: String,
    /// The agents' legs by label (`agent-1` alice, `agent-2` bob, `agent-3` carol).
    pub(crate) legs: Vec<(String, String)>,
}

impl Inbound {
    pub(crate) fn leg(&self, label: &str) -> &str {
        &self.legs.iter().find(|(l, _)| l == label).unwrap().1
    }
}

/// A call to the number: the caller waits, the agents ring.
pub(crate) async fn call_in(p: &Phone) -> Inbound {
    let caller = p.twilio.add_call(CALLER, OUR_NUMBER);
    let ring = p
        .hook(
            "/twilio/voice/inbound",
            &[
                ("CallSid", &caller),
                ("From", CALLER),
                ("To", OUR_NUMBER),
                ("Direction", "inbound"),
            ],
        )
        .await;
    assert_eq!(ring.status(), 200);
    let xml = ring.text();
    assert!(
        xml.contains(r#"<Conference startConferenceOnEnter="false" endConferenceOnExit="true""#),
        "the caller waits in the call's conference: {xml}"
    );
    assert!(
        !xml.contains("<Client"),
        "no agent is dialed from the caller's leg: {xml}"
    );
    let rung = p.dials();
    let legs: Vec<(String, String)> = p
        .twilio
        .calls()
        .iter()
        .filter(|c| c.to.starts_with("client:"))
        .map(|c| {
            let url = c.form.iter().find(|(k, _)| k == "Url").unwrap().1.clone();
            let label = url.split("label=").nth(1).unwrap().to_owned();
            (label, c.sid.clone())
        })
        .collect();
    assert_eq!(rung.len(), legs.len());
    let call_id = p.session_of(&caller).await;
    Inbound { call_id, caller, legs }
}

impl Phone {
    /// The session a leg belongs to.
    pub(crate) async fn session_of(&self, call_sid: &str) -> String {
        let ws = WorkspaceId::parse("acme").unwrap();
        let sid = switchboard::ids::CallSid::parse(call_sid).unwrap();
        self.t
            .app
            .store
            .call_by_sid(&ws, &sid)
            .await
            .unwrap()
            .unwrap()
            .to_string()
    }

    pub(crate) async fn answer(&self, i: &Inbound, label: &str) -> Reply {
        self.hook(
            &format!("/twilio/voice/answer?callId={}&label={label}", i.call_id),
            &[("CallSid", i.leg(label)), ("From", OUR_NUMBER), ("To", "client:x")],
        )
        .await
    }

    pub(crate) async fn agent_leg_status(&self, i: &Inbound, label: &str, status: &str, second: u32) -> Reply {
        self.hook(
            &format!("/twilio/status?callId={}&leg=agent&label={label}", i.call_id),
            &[
                ("CallSid", i.leg(label)),
                ("CallStatus", status),
                ("Timestamp", &at(second)),
            ],
        )
        .await
    }

    /// The legs Switchboard stopped ringing (`Status=canceled`).
    pub(crate) fn canceled(&self) -> Vec<String> {
        self.twilio
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.form_value("Status") == Some("canceled"))
            .map(|r| r.path.rsplit('/').next().unwrap().trim_end_matches(".json").to_owned())
            .collect()
    }

    /// Redirects of a call to other TwiML (`Url=`): the caller sent to voicemail.
    pub(crate) fn redirects(&self) -> Vec<(String, String)> {
        self.twilio
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains("/Calls/") && r.form_value("Url").is_some())
            .map(|r| {
                (
                    r.path.rsplit('/').next().unwrap().trim_end_matches(".json").to_owned(),
                    r.form_value("Url").unwrap().to_owned(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn an_inbound_call_rings_every_agent_and_the_first_to_answer_wins() {
    let p = phone_with_three_agents().await;
    let i = call_in(&p).await;

    // Every agent of the number rung in the browser, with who is calling.
    let dials = p.dials();
    assert_eq!(dials.len(), 3, "{dials:?}");
    let value = |form: &Vec<(String, String)>, name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut to: Vec<String> = dials.iter().map(|form| value(form, "To")).collect();
    to.sort();
    for (n, agent) in ["alice", "bob", "carol"].iter().enumerate() {
        assert_eq!(
            to[n],
            format!(
                "client:agent_{agent}?callId={}&from=%2B14155550177&kind=inbound",
                i.call_id
            )
        );
    }
    for form in &dials {
        assert_eq!(value(form, "Timeout"), "20", "the default ring time");
        assert!(value(form, "Url").contains("/twilio/voice/answer?callId="));
        assert!(value(form, "StatusCallback").contains("&leg=agent&label=agent-"));
        assert_eq!(value(form, "From"), CALLER, "the browser shows the caller");
    }
    let session = p.session(&i.call_id).await;
    assert_eq!(session.participants.len(), 4, "the caller and three agents");

    // Bob (agent-2) answers first: he joins and starts the conference, the
    // other two stop ringing at once.
    let bob = p.answer(&i, "agent-2").await;
    let xml = bob.text();
    assert!(
        xml.contains(r#"<Conference startConferenceOnEnter="true" endConferenceOnExit="true""#),
        "{xml}"
    );
    let mut canceled = p.canceled();
    canceled.sort();
    let mut others = vec![i.leg("agent-1").to_owned(), i.leg("agent-3").to_owned()];
    others.sort();
    assert_eq!(canceled, others, "alice's and carol's browsers stop ringing");
    // Alice's accept arrives late: she is told, and never enters.
    let late = p.answer(&i, "agent-1").await;
    assert!(late.text().contains("Another agent has answered") && late.text().contains("<Hangup/>"));
    assert!(!late.text().contains("<Conference"));

    // The conference's events drive the session.
    let conference = p.twilio.add_conference(&format!("sb-{}", i.call_id));
    let join = |call_sid: &str, seq: &str, second: u32| {
        vec![
            ("ConferenceSid", conference.clone()),
            ("StatusCallbackEvent", "participant-join".to_owned()),
            ("CallSid", call_sid.to_owned()),
            ("SequenceNumber", seq.to_owned()),
            ("Timestamp", at(second)),
        ]
    };
    for params in [join(&i.caller, "1", 1), join(i.leg("agent-2"), "2", 5)] {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = p.hook(&format!("/twilio/status?callId={}", i.call_id), &params).await;
        assert_eq!(reply.status(), 200);
    }
    let session = p.session(&i.call_id).await;
    assert_eq!(session.state, CallState::InProgress);
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some("bob"));
    assert_eq!(session.answered_by.as_deref(), Some("agent-2"));
    assert_eq!(
        session.participants["agent-1"].state,
        switchboard::model::calls::LegState::Refused
    );

    // Hold and unhold work on the inbound call, as on an outbound one.
    p.twilio.add_participant(&conference, &i.caller);
    let bob_token = agent_jwt("acme", "bob", "agent");
    for on in [true, false] {
        let reply =
            p.t.call(with_json(
                with_bearer(request(Method::POST, &format!("/calls/{}/hold", i.call_id)), &bob_token),
                &json!({"hold": on}),
            ))
            .await;
        assert_eq!(reply.status(), 200, "{}", reply.text());
        let held = p.twilio.conferences()[0]
            .participants
            .iter()
            .find(|x| x.call_sid == i.caller)
            .unwrap()
            .hold;
        assert_eq!(held, on);
    }

    // The caller hangs up: completed, with the answering agent.
    p.hook(
        "/twilio/status",
        &[
            ("CallSid", &i.caller),
            ("CallStatus", "completed"),
            ("CallDuration", "90"),
            ("Timestamp", &at(94)),
        ],
    )
    .await;
    let session = p.session(&i.call_id).await;
    assert_eq!(session.state, CallState::Completed);
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some("bob"));
    assert_eq!(session.duration_seconds, Some(90));
    assert!(p.redirects().is_empty(), "nobody went to voicemail");
}

#[tokio::test]
async fn the_workspaces_ring_time_and_wait_music_are_used() {
    let p = phone_with_three_agents().await;
    let admin = agent_jwt("acme", "root", "admin");
    let set =
        p.t.call(with_json(
            with_bearer(request(Method::PUT, "/workspace/twilio"), &admin),
            &json!({"accountSid": p.account, "authToken": AUTH_TOKEN, "ringSeconds": 12, "waitUrl": "https://music.example.com/hold.mp3"}),
        ))
        .await;
    assert_eq!(set.status(), 200, "{}", set.text());
    p.twilio.clear_requests();
    let caller = p.twilio.add_call(CALLER, OUR_NUMBER);
    let ring = p
        .hook(
            "/twilio/voice/inbound",
            &[("CallSid", &caller), ("From", CALLER), ("To", OUR_NUMBER)],
        )
        .await;
    assert!(
        ring.text().contains(r#"waitUrl="https://music.example.com/hold.mp3""#),
        "{}",
        ring.text()
    );
    let timeouts: Vec<String> = p
        .dials()
        .iter()
        .map(|form| form.iter().find(|(k, _)| k == "Timeout").unwrap().1.clone())
        .collect();
    assert_eq!(timeouts, ["12", "12", "12"]);
}

/// Two agents accept in the same instant (real parallel requests): exactly
/// one joins; the other is told it was taken; nothing is written twice.
/// Only a leg rung for an agent answers: a signed answer naming the
/// caller's label (or any other) is told no, and changes nothing.
#[tokio::test]
async fn only_an_agent_leg_can_answer() {
    let p = phone_with_three_agents().await;
    let i = call_in(&p).await;
    let before = p.session(&i.call_id).await;
    for label in ["customer", "supervisor-1", "nobody"] {
        let reply = p
            .hook(
                &format!("/twilio/voice/answer?callId={}&label={label}", i.call_id),
                &[("CallSid", "CA0123456789abcdef0123456789abcdef"), ("From", OUR_NUMBER)],
            )
            .await;
        assert_eq!(reply.status(), 200);
        assert!(
            reply.text().contains("<Hangup/>") && !reply.text().contains("<Conference"),
            "{label}: {}",
            reply.text()
        );
    }
    assert_eq!(p.session(&i.call_id).await, before, "nothing changed");
    assert!(p.canceled().is_empty(), "no agent stopped ringing");
    // The agents can still answer.
    assert!(p.answer(&i, "agent-1").await.text().contains("<Conference"));
}

#[tokio::test]
async fn two_agents_answering_at_once_one_joins() {
    let p = Arc::new(phone_with_three_agents().await);
    let i = Arc::new(call_in(&p).await);
    let answer = |label: &'static str| {
        let (p, i) = (p.clone(), i.clone());
        tokio::spawn(async move { p.answer(&i, label).await.text() })
    };
    let (first, second) = tokio::join!(answer("agent-1"), answer("agent-3"));
    let replies = [first.unwrap(), second.unwrap()];
    let joined = replies.iter().filter(|x| x.contains("<Conference")).count();
    let refused = replies
        .iter()
        .filter(|x| x.contains("Another agent has answered"))
        .count();
    assert_eq!((joined, refused), (1, 1), "{replies:?}");
    let session = p.session(&i.call_id).await;
    let winner = session.answered_by.clone().unwrap();
    assert_eq!(
        session.agent_call_sid.as_ref().map(|s| s.as_str()),
        Some(i.leg(&winner)),
        "the call's agent leg is the winner's"
    );
    // Bob's browser, still ringing, is stopped. (The loser's leg may be sent
    // a cancel too, if the winner looked before the loser's accept landed:
    // Twilio ignores a cancel of an answered call, and its TwiML hangs up.)
    let canceled = p.canceled();
    assert!(canceled.contains(&i.leg("agent-2").to_owned()), "{canceled:?}");
    assert!(
        !canceled.contains(&i.leg(&winner).to_owned()),
        "never the winner: {canceled:?}"
    );
}

#[tokio::test]
async fn nobody_answering_sends_the_caller_to_voicemail_exactly_once() {
    let p = phone_with_three_agents().await;
    let i = call_in(&p).await;
    for (label, status) in [("agent-1", "no-answer"), ("agent-2", "busy")] {
        assert_eq!(p.agent_leg_status(&i, label, status, 20).await.status(), 200);
        assert!(p.redirects().is_empty(), "{label}: another agent still rings");
    }
    assert_eq!(p.agent_leg_status(&i, "agent-3", "no-answer", 20).await.status(), 200);
    let redirects = p.redirects();
    assert_eq!(redirects.len(), 1, "{redirects:?}");
    assert_eq!(redirects[0].0, i.caller, "the caller leaves the waiting room");
    assert!(
        redirects[0]
            .1
            .contains(&format!("/twilio/voice/voicemail?callId={}", i.call_id))
    );
    // Duplicates and a late accept change nothing.
    p.agent_leg_status(&i, "agent-3", "no-answer", 21).await;
    let late = p.answer(&i, "agent-2").await;
    assert!(late.text().contains("<Hangup/>") && !late.text().contains("<Conference"));
    assert_eq!(p.redirects().len(), 1);

    // Twilio fetches the voicemail TwiML: a message with a recording callback.
    let voicemail = p
        .hook(
            &format!("/twilio/voice/voicemail?callId={}", i.call_id),
            &[("CallSid", &i.caller)],
        )
        .await;
    let xml = voicemail.text();
    assert!(
        xml.contains("<Record") && xml.contains(&format!("/twilio/recording?callId={}", i.call_id)),
        "{xml}"
    );
    p.hook(
        "/twilio/status",
        &[
            ("CallSid", &i.caller),
            ("CallStatus", "completed"),
            ("CallDuration", "30"),
            ("Timestamp", &at(60)),
        ],
    )
    .await;
    let session = p.session(&i.call_id).await;
    assert_eq!(session.state, CallState::NoAnswer, "a missed call, with its voicemail");
    assert_eq!(session.duration_seconds, Some(30));
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_waiting_stops_the_ringing() {
    let p = phone_with_three_agents().await;
    let i = call_in(&p).await;
    p.hook(
        "/twilio/status",
        &[
            ("CallSid", &i.caller),
            ("CallStatus", "completed"),
            ("CallDuration", "7"),
            ("Timestamp", &at(7)),
        ],
    )
    .await;
    let session = p.session(&i.call_id).await;
    assert_eq!(session.state, CallState::Canceled);
    assert!(
        session
            .end_reason
            .as_deref()
            .is_some_and(|r| r.contains("hung up after waiting")),
        "{:?}",
        session.end_reason
    );
    let mut canceled = p.canceled();
    canceled.sort();
    let mut legs: Vec<String> = i.legs.iter().map(|(_, sid)| sid.clone()).collect();
    legs.sort();
    assert_eq!(canceled, legs, "every agent stops ringing");
    // An accept that raced the hang-up is refused.
    let late = p.answer(&i, "agent-1").await;
    assert!(late.text().contains("<Hangup/>") && !late.text().contains("<Conference"));
    assert!(p.redirects().is_empty(), "no voicemail for a caller who left");
}

#[tokio::test]
async fn calls_to_unknown_numbers_get_a_polite_goodbye() {
    let p = phone().await;
    let caller = p.twilio.add_call("+14155550177", "+14155550999");
    let reply = p
        .hook(
            "/twilio/voice/inbound",
            &[("CallSid", &caller), ("From", "+14155550177"), ("To", "+14155550999")],
        )
        .await;
    assert_eq!(reply.status(), 200);
    assert!(reply.text().contains("not in service") && reply.text().contains("<Hangup/>"));
    assert_eq!(p.sessions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_identical_requests_make_one_session_and_one_call() {
    let p = Arc::new(phone().await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.place(Some("same-key")).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status(), 201, "{}", reply.text());
        ids.insert(reply.json()["callId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one session for one key");
    assert_eq!(p.sessions().await, 1);
    let call_id = ids.into_iter().next().unwrap();

    // The same key for another number is refused.
    let mut other = with_json(
        with_bearer(request(Method::POST, "/calls"), &agent_jwt("acme", "alice", "agent")),
        &json!({"to": "+14155550123"}),
    );
    other.headers.insert("idempotency-key", "same-key".parse().unwrap());
    assert_eq!(p.t.call(other).await.status(), 409);

    // Twenty deliveries of the agent's join, at once: one call to the customer.
    let agent_sid = p.twilio.add_call(ALICE, "");
    p.hook(
        "/twilio/voice/agent",
        &[("CallSid", &agent_sid), ("From", ALICE), ("callId", &call_id)],
    )
    .await;
    let o = Outbound {
        call_id,
        agent_sid,
        conference_sid: p.twilio.add_conference("room"),
        agent_twiml: String::new(),
    };
    let join = Arc::new(conference_event(&o, "participant-join", &o.agent_sid, 1, 0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (p, join) = (p.clone(), join.clone());
            tokio::spawn(async move { join.send(&p).await.status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(p.dials().len(), 1);
}

/// Agent ids may contain `:`: `alice` with key `x:k9` and `alice:x` with key
/// `k9` are two agents' two requests, so two sessions.
#[tokio::test]
async fn idempotency_keys_of_two_agents_do_not_collide() {
    let p = phone().await;
    let admin = agent_jwt("acme", "root", "admin");
    let assigned =
        p.t.call(with_json(
            with_bearer(request(Method::PUT, "/workspace/numbers/%2B14155550100"), &admin),
            &json!({"agents": ["alice", "alice:x"]}),
        ))
        .await;
    assert_eq!(assigned.status(), 200, "{}", assigned.text());
    let place = |agent: &str, key: &str| {
        let mut request = with_json(
            with_bearer(request(Method::POST, "/calls"), &agent_jwt("acme", agent, "agent")),
            &json!({"to": CUSTOMER}),
        );
        request.headers.insert("idempotency-key", key.parse().unwrap());
        let t = &p.t;
        async move {
            let reply = t.call(request).await;
            assert_eq!(reply.status(), 201, "{}", reply.text());
            reply.json()["callId"].as_str().unwrap().to_owned()
        }
    };
    let alices = place("alice", "x:k9").await;
    let other = place("alice:x", "k9").await;
    assert_ne!(alices, other, "two agents' keys are two requests");
    assert_eq!(p.sessions().await, 2);
    assert_eq!(p.session(&alices).await.agent.unwrap().as_str(), "alice");
    assert_eq!(p.session(&other).await.agent.unwrap().as_str(), "alice:x");
    // Each agent's retry still finds its own session.
    assert_eq!(place("alice", "x:k9").await, alices);
    assert_eq!(place("alice:x", "k9").await, other);
    assert_eq!(p.sessions().await, 2);
}

#[tokio::test]
async fn post_calls_checks_numbers_and_caller_ids() {
    let p = phone().await;
    let call = |token: String, body: Value| {
        let t = &p.t;
        async move {
            t.call(with_json(with_bearer(request(Method::POST, "/calls"), &token), &body))
                .await
        }
    };
    let alice = agent_jwt("acme", "alice", "agent");
    assert_eq!(call(alice.clone(), json!({"to": "555-0199"})).await.status(), 400);
    assert_eq!(call(alice.clone(), json!({"to": "+1415"})).await.status(), 400);
    assert_eq!(call(alice.clone(), json!({})).await.status(), 400);
    // A number that is not the workspace's, or not alice's to use.
    assert_eq!(
        call(alice.clone(), json!({"to": CUSTOMER, "from": "+14155550188"}))
            .await
            .status(),
        403
    );
    let bob = agent_jwt("acme", "bob", "agent");
    assert_eq!(
        call(bob.clone(), json!({"to": CUSTOMER, "from": OUR_NUMBER}))
            .await
            .status(),
        403
    );
    // Bob has no number and the workspace no caller ID: told what to do.
    let reply = call(bob, json!({"to": CUSTOMER})).await;
    assert_eq!(reply.status(), 409);
    assert_eq!(reply.error_code(), "no_caller_id");
    let ok = call(alice, json!({"to": CUSTOMER, "from": OUR_NUMBER})).await;
    assert_eq!(ok.status(), 201, "{}", ok.text());
    assert_eq!(ok.json()["connectParams"]["callId"], ok.json()["callId"]);
}

#[tokio::test]
async fn bad_webhooks_are_refused_and_write_nothing() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    let before = p.timeline(&o.call_id).await.len();
    let status = format!("/twilio/status?callId={}", o.call_id);

    // Wrong signature (signed with another token) and an unknown account.
    let forged =
        p.t.call(twilio_post(
            &status,
            &[("AccountSid", &p.account), ("CallStatus", "completed")],
            "wrong",
        ))
        .await;
    assert_eq!(forged.status(), 403);
    let stranger = account("stranger").to_string();
    let unknown =
        p.t.call(twilio_post(
            &status,
            &[("AccountSid", &stranger), ("CallStatus", "completed")],
            AUTH_TOKEN,
        ))
        .await;
    assert_eq!(unknown.status(), 403);
    let voice =
        p.t.call(twilio_post(
            "/twilio/voice/agent",
            &[("AccountSid", &p.account), ("From", ALICE)],
            "wrong",
        ))
        .await;
    assert_eq!(voice.status(), 403);
    assert!(
        voice.text().contains("<Response>"),
        "voice webhooks answer TwiML even then"
    );

    // Garbage parameters: a 4xx with valid TwiML, never a 5xx.
    for params in [
        vec![("Foo", "bar")],
        vec![("CallSid", "CA-not-a-sid"), ("CallStatus", "ringing")],
    ] {
        let reply = p.hook(&status, &params).await;
        assert_eq!(reply.status(), 400, "{params:?}");
        assert!(reply.text().starts_with("<?xml"));
    }
    // A status or event Twilio may add later is acknowledged (a refused
    // callback is never sent again), and changes nothing.
    for params in [
        vec![("CallStatus", "teleported")],
        vec![("StatusCallbackEvent", "party-time")],
    ] {
        let reply = p.hook(&status, &params).await;
        assert_eq!(reply.status(), 200, "{params:?}");
        assert_eq!(reply.text(), "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
    }
    let bad_id = p
        .hook("/twilio/status?callId=nope", &[("CallStatus", "completed")])
        .await;
    assert_eq!(bad_id.status(), 400);
    let unknown_session = p
        .hook(
            &format!("/twilio/status?callId={}", CallId::generate()),
            &[("CallStatus", "completed")],
        )
        .await;
    assert_eq!(unknown_session.status(), 404);
    // Voice webhooks about unknown sessions say goodbye in TwiML, with 200.
    for path in [
        format!("/twilio/voice/customer?callId={}", CallId::generate()),
        "/twilio/voice/customer".to_owned(),
        format!("/twilio/voice/voicemail?callId={}", CallId::generate()),
    ] {
        let reply = p.hook(&path, &[("CallSid", &o.agent_sid)]).await;
        assert_eq!(reply.status(), 200, "{path}");
        assert!(
            reply.text().contains("<Say>") && reply.text().contains("<Hangup/>"),
            "{path}: {}",
            reply.text()
        );
    }
    let stolen = p
        .hook(
            "/twilio/voice/agent",
            &[
                ("CallSid", &o.agent_sid),
                ("From", "client:agent_mallory"),
                ("callId", &o.call_id),
            ],
        )
        .await;
    assert!(stolen.text().contains("<Hangup/>"), "another agent's call is refused");

    assert_eq!(p.timeline(&o.call_id).await.len(), before, "nothing was written");
    assert_eq!(p.session(&o.call_id).await.state, CallState::Created);
    assert!(p.dials().is_empty());
}

/// What must not depend on delivery order: the session without ids and times
/// generated by the run itself.
fn essence(session: &CallSession, timeline: &[switchboard::model::calls::TimelineEvent]) -> Value {
    let mut reached = serde_json::to_value(&session.reached).unwrap();
    reached.as_object_mut().unwrap().remove("created");
    let events: Vec<Value> = timeline
        .iter()
        .map(|e| json!([e.at.rfc3339(), e.kind, e.detail]))
        .collect();
    json!({
        "state": session.state,
        "reached": reached,
        "duration": session.duration_seconds,
        "endReason": session.end_reason,
        "conference": session.conference_sid.is_some(),
        "timeline": events,
    })
}

/// Plays one call's callbacks in `order` (indices into the scripted list, with
/// repeats for duplicates) and returns the final essence.
async fn replay(scenario: Scenario, order: &[usize]) -> Value {
    let p = phone().await;
    let o = connect_agent(&p).await;
    let customer = agent_joins(&p, &o).await;
    let events = scenario.events(&o, &customer);
    for &i in order {
        let reply = events[i % events.len()].send(&p).await;
        assert_eq!(reply.status(), 200, "{}", reply.text());
    }
    assert_eq!(p.dials().len(), 1, "one call to the customer whatever the order");
    essence(&p.session(&o.call_id).await, &p.timeline(&o.call_id).await)
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Answered,
    NoAnswer,
}

impl Scenario {
    fn events(self, o: &Outbound, customer: &str) -> Vec<Event> {
        match self {
            Self::Answered => vec![
                conference_event(o, "participant-join", &o.agent_sid, 1, 0),
                customer_status(o, customer, "initiated", 0, 1),
                customer_status(o, customer, "ringing", 1, 2),
                customer_status(o, customer, "in-progress", 2, 5),
                conference_event(o, "participant-join", customer, 2, 6),
                conference_event(o, "participant-leave", customer, 3, 65),
                customer_status(o, customer, "completed", 3, 65),
                conference_event(o, "participant-leave", &o.agent_sid, 4, 65),
                conference_event(o, "conference-end", "", 5, 66),
                agent_completed(o, 66),
            ],
            Self::NoAnswer => vec![
                conference_event(o, "participant-join", &o.agent_sid, 1, 0),
                customer_status(o, customer, "initiated", 0, 1),
                customer_status(o, customer, "ringing", 1, 2),
                customer_status(o, customer, "no-answer", 2, 32),
                conference_event(o, "participant-leave", &o.agent_sid, 2, 33),
                conference_event(o, "conference-end", "", 3, 33),
                agent_completed(o, 34),
            ],
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Answered => 10,
            Self::NoAnswer => 7,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Callbacks in any order, with duplicates, leave the same final session
    /// as the same callbacks in order.
    #[test]
    fn callbacks_in_any_order_with_duplicates_reach_the_same_session(
        answered in any::<bool>(),
        shuffled in Just((0..10usize).collect::<Vec<_>>()).prop_shuffle(),
        duplicates in prop::collection::vec(0..10usize, 0..8),
    ) {
        let scenario = if answered { Scenario::Answered } else { Scenario::NoAnswer };
        let n = scenario.len();
        let mut order: Vec<usize> = shuffled.into_iter().filter(|i| *i < n).collect();
        for (k, d) in duplicates.into_iter().enumerate() {
            order.insert((k * 3) % (order.len() + 1), d % n);
        }
        let rt = runtime();
        let in_order = rt.block_on(replay(scenario, &(0..n).collect::<Vec<_>>()));
        let shuffled = rt.block_on(replay(scenario, &order));
        prop_assert_eq!(in_order, shuffled, "order {:?}", order);
    }
}

/// One inbound call nobody answers, its callbacks played in `order` (indices
/// into the list below, repeats for duplicates), then a late accept: how
/// many times the caller was sent to voicemail, and what the session says.
async fn replay_inbound_unanswered(order: &[usize]) -> (usize, Value) {
    let p = phone_with_three_agents().await;
    let i = call_in(&p).await;
    let conference = format!("CF{}", "a".repeat(32));
    let events: Vec<Event> = vec![
        agent_status_event(&i, "agent-1", "no-answer", 20),
        agent_status_event(&i, "agent-2", "busy", 3),
        agent_status_event(&i, "agent-3", "no-answer", 20),
        agent_status_event(&i, "agent-1", "ringing", 1),
        Event {
            path: format!("/twilio/status?callId={}", i.call_id),
            params: vec![
                ("ConferenceSid", conference.clone()),
                ("StatusCallbackEvent", "participant-join".into()),
                ("CallSid", i.caller.clone()),
                ("SequenceNumber", "1".into()),
                ("Timestamp", at(0)),
            ],
        },
        Event {
            path: format!("/twilio/status?callId={}", i.call_id),
            params: vec![
                ("ConferenceSid", conference),
                ("StatusCallbackEvent", "conference-start".into()),
                ("SequenceNumber", "0".into()),
                ("Timestamp", at(0)),
            ],
        },
    ];
    for &n in order {
        let reply = events[n % events.len()].send(&p).await;
        assert_eq!(reply.status(), 200, "{}", reply.text());
    }
    // An accept after the ring time is over: refused, whatever came before.
    let late = p.answer(&i, "agent-3").await;
    assert!(
        !late.text().contains("<Conference"),
        "a late accept never enters: {}",
        late.text()
    );
    let session = p.session(&i.call_id).await;
    let mut states: Vec<(String, String)> = session
        .participants
        .values()
        .map(|x| {
            (
                x.label.clone(),
                serde_json::to_value(x.state).unwrap().as_str().unwrap().to_owned(),
            )
        })
        .collect();
    states.sort();
    let essence = json!({
        "state": session.state,
        "answeredBy": session.answered_by,
        "participants": states,
        "voicemailClaimed": session.steps.contains_key("to-voicemail"),
    });
    (p.redirects().len(), essence)
}

fn agent_status_event(i: &Inbound, label: &str, status: &str, second: u32) -> Event {
    Event {
        path: format!("/twilio/status?callId={}&leg=agent&label={label}", i.call_id),
        params: vec![
            ("CallSid", i.leg(label).to_owned()),
            ("CallStatus", status.to_owned()),
            ("Timestamp", at(second)),
        ],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, .. ProptestConfig::default() })]

    /// The ring timeouts, stray progress and the conference's events of an
    /// inbound call nobody answers, in any order with duplicates, then a late
    /// accept: the caller goes to voicemail exactly once, the accept is
    /// refused, and the session ends the same as in order.
    #[test]
    fn nobody_answering_goes_to_voicemail_once_in_any_order(
        shuffled in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
        duplicates in prop::collection::vec(0..6usize, 0..5),
    ) {
        let mut order = shuffled;
        for (k, d) in duplicates.into_iter().enumerate() {
            order.insert((k * 2) % (order.len() + 1), d);
        }
        let rt = runtime();
        let (in_order_redirects, in_order) = rt.block_on(replay_inbound_unanswered(&(0..6).collect::<Vec<_>>()));
        let (redirects, shuffled) = rt.block_on(replay_inbound_unanswered(&order));
        prop_assert_eq!(in_order_redirects, 1);
        prop_assert_eq!(redirects, 1, "order {:?}", order);
        prop_assert_eq!(in_order, shuffled, "order {:?}", order);
    }
}
