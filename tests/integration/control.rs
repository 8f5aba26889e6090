//! Call control end to end: warm and cold transfers, supervisors who listen,
//! whisper and barge, muting one participant, pausing the recording. Twilio is
//! the stateful fake; its webhooks are signed as Twilio signs them, and every
//! REST request these flows make is asserted (and, in twilio_contract.rs, held
//! to Twilio's spec).

use http::Method;
use serde_json::{Value, json};
use switchboard::model::calls::{CallState, LegState, TransferState};
use switchboard_testkit::fake_twilio::{Call, RecordedRequest};
use switchboard_testkit::harness::*;

use crate::calls::{
    AUTH_TOKEN, CUSTOMER, OUR_NUMBER, Outbound, Phone, agent_joins, at, conference_event, connect_agent,
    customer_status, phone,
};

const ALICE: &str = "alice";
const BOB: &str = "bob";

/// An outbound call from alice, connected: both legs in the conference.
pub(crate) struct Connected {
    pub(crate) o: Outbound,
    pub(crate) customer: String,
}

pub(crate) async fn connected(p: &Phone) -> Connected {
    let o = connect_agent(p).await;
    let customer = agent_joins(p, &o).await;
    p.twilio.add_participant(&o.conference_sid, &customer);
    let joined = conference_event(&o, "participant-join", &customer, 2, 5).send(p).await;
    assert_eq!(joined.status(), 200);
    assert_eq!(p.session(&o.call_id).await.state, CallState::InProgress);
    p.twilio.clear_requests();
    Connected { o, customer }
}

fn token(agent: &str, role: &str) -> String {
    agent_jwt("acme", agent, role)
}

async fn post(p: &Phone, agent_token: &str, path: &str, body: Value) -> Reply {
    p.t.call(with_json(with_bearer(request(Method::POST, path), agent_token), &body))
        .await
}

async fn transfer(p: &Phone, c: &Connected, to: Value, mode: &str) -> Reply {
    post(
        p,
        &token(ALICE, "agent"),
        &format!("/calls/{}/transfer", c.o.call_id),
        json!({"to": to, "mode": mode}),
    )
    .await
}

/// The participant updates (`POST …/Participants/{sid}.json`) sent for `sid`.
pub(crate) fn participant_updates(p: &Phone, sid: &str) -> Vec<RecordedRequest> {
    p.twilio
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/Participants/{sid}.json")))
        .collect()
}

fn removed(p: &Phone, sid: &str) -> bool {
    p.twilio
        .requests()
        .iter()
        .any(|r| r.method == "DELETE" && r.path.ends_with(&format!("/Participants/{sid}.json")))
}

fn hung_up(p: &Phone, sid: &str) -> bool {
    p.twilio.requests().iter().any(|r| {
        r.method == "POST" && r.path.ends_with(&format!("/Calls/{sid}.json")) && r.form_value("Status").is_some()
    })
}

fn conference_ended(p: &Phone) -> bool {
    p.twilio.requests().iter().any(|r| {
        r.path.contains("/Conferences/CF")
            && r.path.ends_with(".json")
            && r.form_value("Status") == Some("completed")
            && !r.path.contains("/Participants/")
    })
}

/// The call Switchboard placed to ring `label` in, if any.
pub(crate) fn rung_call(p: &Phone, label: &str) -> Option<Call> {
    p.twilio.calls().into_iter().find(|c| {
        c.form
            .iter()
            .any(|(k, v)| k == "Url" && v.ends_with(&format!("&label={label}")))
    })
}

/// The call Switchboard placed to ring `label` in, and its form.
fn rung(p: &Phone, label: &str) -> (String, Vec<(String, String)>) {
    let call = rung_call(p, label).unwrap_or_else(|| panic!("nobody was rung as {label}"));
    (call.sid, call.form)
}

/// A connected call alice is warm-transferring to bob, whose leg is ringing.
async fn bob_rung_in_a_warm_transfer(p: &Phone) -> (Connected, String) {
    let c = connected(p).await;
    assert_eq!(transfer(p, &c, json!({"agent": BOB}), "warm").await.status(), 202);
    let (bob, _) = rung(p, "transfer-1");
    (c, bob)
}

fn value<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The rung leg answers: Switchboard's join TwiML.
pub(crate) async fn answers(p: &Phone, call_id: &str, label: &str, sid: &str) -> String {
    p.twilio.set_call_status(sid, "in-progress");
    let reply = p
        .hook(
            &format!("/twilio/voice/join?callId={call_id}&label={label}"),
            &[
                ("CallSid", sid),
                ("From", OUR_NUMBER),
                ("To", "client:x"),
                ("CallStatus", "in-progress"),
            ],
        )
        .await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    reply.text()
}

/// The rung leg is in the conference.
pub(crate) async fn joins(p: &Phone, c: &Connected, sid: &str, sequence: u32) {
    p.twilio.add_participant(&c.o.conference_sid, sid);
    let reply = conference_event(&c.o, "participant-join", sid, sequence, 10 + sequence)
        .send(p)
        .await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
}

async fn leaves(p: &Phone, c: &Connected, sid: &str, sequence: u32) {
    let reply = conference_event(&c.o, "participant-leave", sid, sequence, 10 + sequence)
        .send(p)
        .await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
}

/// A call status of a rung leg (`leg=transfer` or `leg=supervisor`).
async fn leg_status(p: &Phone, call_id: &str, leg: &str, label: &str, sid: &str, status: &str) {
    let reply = p
        .hook(
            &format!("/twilio/status?callId={call_id}&leg={leg}&label={label}"),
            &[("CallSid", sid), ("CallStatus", status), ("Timestamp", &at(30))],
        )
        .await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
}

pub(crate) fn kinds(timeline: &[switchboard::model::calls::TimelineEvent]) -> Vec<String> {
    timeline.iter().map(|e| e.kind.clone()).collect()
}

fn flag<'a>(request: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    request.form_value(name)
}

#[tokio::test]
async fn a_warm_transfer_to_an_agent_hands_the_call_over() {
    let p = phone().await;
    let c = connected(&p).await;

    let started = transfer(&p, &c, json!({"agent": BOB}), "warm").await;
    assert_eq!(started.status(), 202, "{}", started.text());
    assert_eq!(started.json()["transfer"]["label"], "transfer-1");
    assert_eq!(started.json()["transfer"]["state"], "ringing");

    // The conference reports the hold, so everyone sees the customer held.
    let held_event = conference_event(&c.o, "participant-hold", &c.customer, 3, 6)
        .send(&p)
        .await;
    assert_eq!(held_event.status(), 200);
    assert!(p.session(&c.o.call_id).await.participants["customer"].held);

    // Alice may now leave without ending the call; the customer waits on hold.
    let alice_updates = participant_updates(&p, &c.o.agent_sid);
    assert_eq!(alice_updates.len(), 1);
    assert_eq!(flag(&alice_updates[0], "EndConferenceOnExit"), Some("false"));
    let held = participant_updates(&p, &c.customer);
    assert_eq!(flag(&held[0], "Hold"), Some("true"));
    // Bob's browser rings like an inbound call, with the callId.
    let (bob, form) = rung(&p, "transfer-1");
    assert!(
        value(&form, "To").starts_with(&format!("client:agent_bob?callId={}", c.o.call_id)),
        "{form:?}"
    );
    assert!(value(&form, "To").ends_with("&kind=transfer"));
    assert!(value(&form, "StatusCallback").ends_with("&leg=transfer&label=transfer-1"));

    // Bob answers and joins: he can talk with alice; nothing ends if he leaves.
    let twiml = answers(&p, &c.o.call_id, "transfer-1", &bob).await;
    assert!(
        twiml.contains(r#"endConferenceOnExit="false""#)
            && twiml.contains(&format!(">sb-{}</Conference>", c.o.call_id)),
        "{twiml}"
    );
    joins(&p, &c, &bob, 3).await;
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Talking);
    assert_eq!(session.participants["transfer-1"].state, LegState::Joined);
    // Talking is not handed over yet: alice is still in.
    assert!(!removed(&p, &c.o.agent_sid));

    p.twilio.clear_requests();
    let done = post(
        &p,
        &token(ALICE, "agent"),
        &format!("/calls/{}/transfer/complete", c.o.call_id),
        json!({}),
    )
    .await;
    assert_eq!(done.status(), 200, "{}", done.text());
    assert_eq!(done.json()["agent"], BOB);
    let bob_updates = participant_updates(&p, &bob);
    assert_eq!(flag(&bob_updates[0], "EndConferenceOnExit"), Some("true"));
    assert_eq!(flag(&participant_updates(&p, &c.customer)[0], "Hold"), Some("false"));
    assert!(removed(&p, &c.o.agent_sid), "alice's leg leaves");
    leaves(&p, &c, &c.o.agent_sid, 4).await;
    assert!(!conference_ended(&p), "alice leaving does not end the call");

    // The call is bob's now: he holds it, alice may not.
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.state, CallState::InProgress);
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some(BOB));
    assert_eq!(session.agent_label.as_deref(), Some("transfer-1"));
    let hold_path = format!("/calls/{}/hold", c.o.call_id);
    let (bob, alice) = (token(BOB, "agent"), token(ALICE, "agent"));
    assert_eq!(post(&p, &bob, &hold_path, json!({"hold": true})).await.status(), 200);
    assert_eq!(post(&p, &alice, &hold_path, json!({"hold": true})).await.status(), 403);
    let bobs =
        p.t.call(with_bearer(
            request(Method::GET, "/calls?agent=bob"),
            &token(BOB, "agent"),
        ))
        .await;
    assert_eq!(bobs.json()["calls"][0]["callId"], c.o.call_id.as_str());

    // The customer hangs up: completed, both agents on the timeline.
    customer_status(&c.o, &c.customer, "completed", 9, 90).send(&p).await;
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.state, CallState::Completed);
    let timeline = p.timeline(&c.o.call_id).await;
    let kinds = kinds(&timeline);
    for kind in ["transfer-started", "transfer-completed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kinds:?}");
    }
    let started = timeline.iter().find(|e| e.kind == "transfer-started").unwrap();
    assert_eq!(started.detail["by"], ALICE);
    assert_eq!(started.detail["to"], BOB);
    let shown =
        p.t.call(with_bearer(
            request(Method::GET, &format!("/calls/{}", c.o.call_id)),
            &token(BOB, "agent"),
        ))
        .await
        .json();
    assert_eq!(shown["participants"]["agent-1"]["agent"], ALICE);
    assert_eq!(shown["participants"]["transfer-1"]["agent"], BOB);
}

#[tokio::test]
async fn a_cold_transfer_to_a_number_hands_over_when_they_answer() {
    let p = phone().await;
    let c = connected(&p).await;
    let target = "+14155550123";
    let started = transfer(&p, &c, json!({"number": target}), "cold").await;
    assert_eq!(started.status(), 202, "{}", started.text());
    assert!(
        participant_updates(&p, &c.customer).is_empty(),
        "no hold in a cold transfer"
    );
    let (leg, form) = rung(&p, "transfer-1");
    assert_eq!(value(&form, "To"), target);
    assert_eq!(
        value(&form, "From"),
        OUR_NUMBER,
        "dialed from the call's number, which alice may use"
    );

    answers(&p, &c.o.call_id, "transfer-1", &leg).await;
    joins(&p, &c, &leg, 3).await;
    // Handed over as soon as they are in: their leaving ends the call, alice's does not.
    assert_eq!(
        flag(&participant_updates(&p, &leg)[0], "EndConferenceOnExit"),
        Some("true")
    );
    assert!(removed(&p, &c.o.agent_sid));
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Completed);
    assert_eq!(session.agent, None, "an outside number is no agent of ours");
    assert_eq!(session.agent_label.as_deref(), Some("transfer-1"));

    // A transfer to an invalid number, or of a finished transfer's call to
    // the same place twice, is refused up front.
    let bad = transfer(&p, &c, json!({"number": "12"}), "cold").await;
    assert_eq!(bad.status(), 400);
    let unknown_mode = transfer(&p, &c, json!({"number": target}), "lukewarm").await;
    assert_eq!(unknown_mode.status(), 400);
}

#[tokio::test]
async fn a_target_who_does_not_answer_fails_the_transfer_and_the_customer_comes_back() {
    let p = phone().await;
    let (c, bob) = bob_rung_in_a_warm_transfer(&p).await;
    p.twilio.clear_requests();
    leg_status(&p, &c.o.call_id, "transfer", "transfer-1", &bob, "no-answer").await;

    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Failed);
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some(ALICE), "still alice's");
    assert_eq!(flag(&participant_updates(&p, &c.customer)[0], "Hold"), Some("false"));
    assert_eq!(
        flag(&participant_updates(&p, &c.o.agent_sid)[0], "EndConferenceOnExit"),
        Some("true"),
        "alice's leaving ends the call again"
    );
    assert!(kinds(&p.timeline(&c.o.call_id).await).contains(&"transfer-failed".to_owned()));
    // A duplicate callback changes nothing more.
    p.twilio.clear_requests();
    leg_status(&p, &c.o.call_id, "transfer", "transfer-1", &bob, "no-answer").await;
    assert!(p.twilio.requests().is_empty());

    // A new transfer may start; it gets the next label.
    let again = transfer(&p, &c, json!({"agent": "carol"}), "cold").await;
    assert_eq!(again.status(), 202, "{}", again.text());
    assert_eq!(again.json()["transfer"]["label"], "transfer-2");
    // And while it is under way, no second one.
    let twice = transfer(&p, &c, json!({"agent": "dave"}), "cold").await;
    assert_eq!(twice.status(), 409);
}

#[tokio::test]
async fn a_canceled_transfer_hangs_up_the_target_and_refuses_a_late_answer() {
    let p = phone().await;
    let (c, bob) = bob_rung_in_a_warm_transfer(&p).await;
    p.twilio.clear_requests();
    let canceled = post(
        &p,
        &token(ALICE, "agent"),
        &format!("/calls/{}/transfer/cancel", c.o.call_id),
        json!({}),
    )
    .await;
    assert_eq!(canceled.status(), 200, "{}", canceled.text());
    assert_eq!(canceled.json()["transfer"]["state"], "canceled");
    assert!(hung_up(&p, &bob), "bob stops ringing");
    assert_eq!(flag(&participant_updates(&p, &c.customer)[0], "Hold"), Some("false"));
    assert_eq!(
        flag(&participant_updates(&p, &c.o.agent_sid)[0], "EndConferenceOnExit"),
        Some("true")
    );
    // Bob's accept arrives anyway: he is told, and never enters.
    let late = answers(&p, &c.o.call_id, "transfer-1", &bob).await;
    assert!(
        late.contains("canceled") && late.contains("<Hangup/>") && !late.contains("<Conference"),
        "{late}"
    );
    // Canceling again is safe (it restores again); there is nothing to complete.
    let path = |step: &str| format!("/calls/{}/transfer/{step}", c.o.call_id);
    let again = post(&p, &token(ALICE, "agent"), &path("cancel"), json!({})).await;
    assert_eq!(again.status(), 200, "{}", again.text());
    let complete = post(&p, &token(ALICE, "agent"), &path("complete"), json!({})).await;
    assert_eq!(complete.status(), 409);
    assert!(kinds(&p.timeline(&c.o.call_id).await).contains(&"transfer-canceled".to_owned()));
}

#[tokio::test]
async fn the_customer_hanging_up_during_a_warm_transfer_ends_everything() {
    let p = phone().await;
    let (c, bob) = bob_rung_in_a_warm_transfer(&p).await;
    // The customer leaves (ending the conference, as their leg says).
    leaves(&p, &c, &c.customer, 3).await;
    conference_event(&c.o, "conference-end", &c.customer, 4, 31)
        .send(&p)
        .await;
    customer_status(&c.o, &c.customer, "completed", 5, 31).send(&p).await;
    assert!(hung_up(&p, &bob), "bob, still ringing, stops");
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.state, CallState::Completed);
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Canceled);
    // Bob answering now is refused.
    let late = answers(&p, &c.o.call_id, "transfer-1", &bob).await;
    assert!(late.contains("<Hangup/>") && !late.contains("<Conference"), "{late}");
}

#[tokio::test]
async fn the_transferring_agent_hanging_up_does_not_drop_the_customer() {
    let p = phone().await;
    let (c, bob) = bob_rung_in_a_warm_transfer(&p).await;
    // Alice hangs up while bob is still ringing.
    leaves(&p, &c, &c.o.agent_sid, 3).await;
    assert!(!conference_ended(&p));
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.state, CallState::InProgress);
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Ringing);
    // Bob joins: with alice gone, the call is his at once.
    p.twilio.clear_requests();
    answers(&p, &c.o.call_id, "transfer-1", &bob).await;
    joins(&p, &c, &bob, 4).await;
    assert_eq!(
        flag(&participant_updates(&p, &bob)[0], "EndConferenceOnExit"),
        Some("true")
    );
    assert_eq!(flag(&participant_updates(&p, &c.customer)[0], "Hold"), Some("false"));
    assert!(!removed(&p, &c.o.agent_sid), "alice is gone already");
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some(BOB));

    // Had bob not answered, nobody would be left for the customer: the call ends.
    let p = phone().await;
    let (c, bob) = bob_rung_in_a_warm_transfer(&p).await;
    leaves(&p, &c, &c.o.agent_sid, 3).await;
    leg_status(&p, &c.o.call_id, "transfer", "transfer-1", &bob, "busy").await;
    assert!(conference_ended(&p), "the customer is not left on hold forever");
}

#[tokio::test]
async fn the_transferring_agent_leaving_while_the_target_talks_hands_over() {
    let p = phone().await;
    let (c, bob) = bob_rung_in_a_warm_transfer(&p).await;
    answers(&p, &c.o.call_id, "transfer-1", &bob).await;
    joins(&p, &c, &bob, 3).await;
    p.twilio.clear_requests();
    leaves(&p, &c, &c.o.agent_sid, 4).await;
    assert_eq!(
        flag(&participant_updates(&p, &bob)[0], "EndConferenceOnExit"),
        Some("true")
    );
    assert_eq!(flag(&participant_updates(&p, &c.customer)[0], "Hold"), Some("false"));
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Completed);
}

#[tokio::test]
async fn only_the_calls_agent_or_an_admin_transfers_and_only_a_connected_call() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    let path = format!("/calls/{}/transfer", o.call_id);
    let body = json!({"to": {"agent": BOB}, "mode": "cold"});
    let not_yet = post(&p, &token(ALICE, "agent"), &path, body.clone()).await;
    assert_eq!(not_yet.status(), 409, "{}", not_yet.text());
    let c = Connected {
        customer: agent_joins(&p, &o).await,
        o,
    };
    conference_event(&c.o, "participant-join", &c.customer, 2, 5)
        .send(&p)
        .await;
    assert_eq!(post(&p, &token(BOB, "agent"), &path, body.clone()).await.status(), 403);
    assert_eq!(
        post(
            &p,
            &token(ALICE, "admin"),
            &path,
            json!({"to": {"agent": ALICE}, "mode": "cold"})
        )
        .await
        .status(),
        400,
        "to herself"
    );
    let foreign = agent_jwt("globex", "root", "admin");
    assert_eq!(post(&p, &foreign, &path, body.clone()).await.status(), 404);
    for bad in [
        json!({"to": {"agent": BOB}}),
        json!({"to": {"agent": BOB, "number": "+14155550123"}, "mode": "cold"}),
        json!({"to": "bob", "mode": "cold"}),
        json!({"to": {"agent": ""}, "mode": "cold"}),
    ] {
        assert_eq!(
            post(&p, &token(ALICE, "agent"), &path, bad.clone()).await.status(),
            400,
            "{bad}"
        );
    }
    assert!(p.twilio.calls_created().len() == 1, "nothing rung for refused requests");
    let admin = post(&p, &token("root", "admin"), &path, body).await;
    assert_eq!(admin.status(), 202, "{}", admin.text());
    assert_eq!(
        p.timeline(&c.o.call_id)
            .await
            .iter()
            .find(|e| e.kind == "transfer-started")
            .unwrap()
            .detail["by"],
        "root"
    );
}

/// A supervisor rung in listening, then whispering, then barging, then gone.
#[tokio::test]
async fn a_supervisor_listens_whispers_and_barges() {
    let p = phone().await;
    let c = connected(&p).await;
    let sue = token("sue", "supervisor");
    let path = format!("/calls/{}/monitor", c.o.call_id);
    let monitor = |mode: &'static str| post(&p, &sue, &path, json!({"mode": mode}));

    let listen = monitor("listen").await;
    assert_eq!(listen.status(), 202, "{}", listen.text());
    assert_eq!(listen.json()["participant"]["label"], "supervisor-1");
    let (leg, form) = rung(&p, "supervisor-1");
    assert!(value(&form, "To").starts_with("client:agent_sue?callId="), "{form:?}");
    assert!(value(&form, "StatusCallback").ends_with("&leg=supervisor&label=supervisor-1"));
    let twiml = answers(&p, &c.o.call_id, "supervisor-1", &leg).await;
    for attribute in [
        r#"muted="true""#,
        r#"endConferenceOnExit="false""#,
        r#"startConferenceOnEnter="false""#,
    ] {
        assert!(twiml.contains(attribute), "{attribute}: {twiml}");
    }
    joins(&p, &c, &leg, 3).await;
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.participants["supervisor-1"].state, LegState::Joined);
    assert_eq!(
        session.agent.as_ref().map(|a| a.as_str()),
        Some(ALICE),
        "a supervisor is never the call's agent"
    );

    p.twilio.clear_requests();
    assert_eq!(monitor("whisper").await.status(), 200);
    let whisper = &participant_updates(&p, &leg)[0];
    assert_eq!(flag(whisper, "Muted"), Some("false"));
    assert_eq!(flag(whisper, "Coaching"), Some("true"));
    assert_eq!(flag(whisper, "CallSidToCoach"), Some(c.o.agent_sid.as_str()));
    p.twilio.clear_requests();
    assert_eq!(monitor("barge").await.status(), 200);
    let barge = &participant_updates(&p, &leg)[0];
    assert_eq!(
        (flag(barge, "Muted"), flag(barge, "Coaching")),
        (Some("false"), Some("false"))
    );
    p.twilio.clear_requests();
    assert_eq!(monitor("listen").await.status(), 200);
    let listen = &participant_updates(&p, &leg)[0];
    assert_eq!(
        (flag(listen, "Muted"), flag(listen, "Coaching")),
        (Some("true"), Some("false"))
    );
    assert_eq!(
        p.twilio.calls_created().len(),
        2,
        "one leg for the supervisor, whatever the modes"
    );

    // Agents may not; another workspace cannot even see the call.
    for agent in [ALICE, BOB] {
        assert_eq!(
            post(&p, &token(agent, "agent"), &path, json!({"mode": "listen"}))
                .await
                .status(),
            403
        );
    }
    let foreign = agent_jwt("globex", "sue", "supervisor");
    assert_eq!(post(&p, &foreign, &path, json!({"mode": "listen"})).await.status(), 404);
    assert_eq!(monitor("eavesdrop").await.status(), 400);

    // The supervisor leaves: only their own leg.
    p.twilio.clear_requests();
    let stop = p.t.call(with_bearer(request(Method::DELETE, &path), &sue)).await;
    assert_eq!(stop.status(), 200, "{}", stop.text());
    assert!(removed(&p, &leg));
    assert!(!removed(&p, &c.o.agent_sid) && !removed(&p, &c.customer));
    let again = p.t.call(with_bearer(request(Method::DELETE, &path), &sue)).await;
    assert_eq!(again.status(), 409);
    let kinds = kinds(&p.timeline(&c.o.call_id).await);
    assert!(
        kinds.contains(&"monitor".to_owned()) && kinds.contains(&"monitor-stopped".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_supervisor_whispering_from_the_start_coaches_the_agent() {
    let p = phone().await;
    let c = connected(&p).await;
    let admin = token("root", "admin");
    let reply = post(
        &p,
        &admin,
        &format!("/calls/{}/monitor", c.o.call_id),
        json!({"mode": "whisper"}),
    )
    .await;
    assert_eq!(reply.status(), 202, "{}", reply.text());
    let (leg, _) = rung(&p, "supervisor-1");
    let twiml = answers(&p, &c.o.call_id, "supervisor-1", &leg).await;
    assert!(twiml.contains(&format!(r#"coach="{}""#, c.o.agent_sid)), "{twiml}");
    assert!(!twiml.contains("muted="), "{twiml}");
    // When the call ends while a supervisor still rings, their phone stops.
    let p = phone().await;
    let c = connected(&p).await;
    post(
        &p,
        &admin,
        &format!("/calls/{}/monitor", c.o.call_id),
        json!({"mode": "barge"}),
    )
    .await;
    let (leg, _) = rung(&p, "supervisor-1");
    conference_event(&c.o, "conference-end", &c.customer, 3, 40)
        .send(&p)
        .await;
    assert!(hung_up(&p, &leg));
}

#[tokio::test]
async fn muting_one_participant_follows_who_may_mute_whom() {
    let p = phone().await;
    let c = connected(&p).await;
    let path = |label: &str| format!("/calls/{}/participants/{label}/mute", c.o.call_id);
    let muted = post(&p, &token(ALICE, "agent"), &path("customer"), json!({"muted": true})).await;
    assert_eq!(muted.status(), 200, "{}", muted.text());
    assert_eq!(flag(&participant_updates(&p, &c.customer)[0], "Muted"), Some("true"));
    assert!(p.session(&c.o.call_id).await.participants["customer"].muted);
    assert_eq!(
        post(&p, &token(ALICE, "agent"), &path("customer"), json!({"muted": false}))
            .await
            .status(),
        200
    );
    assert!(!p.session(&c.o.call_id).await.participants["customer"].muted);

    // Alice may not mute herself through the API (her browser does), nor may bob mute anyone.
    assert_eq!(
        post(&p, &token(ALICE, "agent"), &path("agent-1"), json!({"muted": true}))
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&p, &token(BOB, "agent"), &path("customer"), json!({"muted": true}))
            .await
            .status(),
        403
    );
    // A supervisor may mute the agent.
    p.twilio.clear_requests();
    let by_supervisor = post(
        &p,
        &token("sue", "supervisor"),
        &path("agent-1"),
        json!({"muted": true}),
    )
    .await;
    assert_eq!(by_supervisor.status(), 200, "{}", by_supervisor.text());
    assert_eq!(flag(&participant_updates(&p, &c.o.agent_sid)[0], "Muted"), Some("true"));
    // Labels are ours: anything else is not found.
    for label in ["transfer-9", "CA00000000000000000000000000000000", "customer%2F..%2F"] {
        let reply = post(&p, &token("sue", "supervisor"), &path(label), json!({"muted": true})).await;
        assert_eq!(reply.status(), 404, "{label}");
    }
    assert_eq!(
        post(&p, &token(ALICE, "agent"), &path("customer"), json!({"muted": "yes"}))
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn the_recording_pauses_and_resumes_on_a_recorded_call_only() {
    let p = phone().await;
    // Not recorded: 409.
    let c = connected(&p).await;
    let path = format!("/calls/{}/recording", c.o.call_id);
    let alice = token(ALICE, "agent");
    let refused = post(&p, &alice, &path, json!({"action": "pause"})).await;
    assert_eq!(refused.status(), 409, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "not_recording");

    // A workspace that records.
    let p = phone().await;
    let admin = token("root", "admin");
    let set =
        p.t.call(with_json(
            with_bearer(request(Method::PUT, "/workspace/twilio"), &admin),
            &json!({"accountSid": p.account, "authToken": AUTH_TOKEN, "record": true}),
        ))
        .await;
    assert_eq!(set.status(), 200, "{}", set.text());
    let c = connected(&p).await;
    assert!(
        c.o.agent_twiml.contains(r#"record="record-from-start""#),
        "{}",
        c.o.agent_twiml
    );
    p.twilio.start_recording(&c.o.conference_sid);
    let path = format!("/calls/{}/recording", c.o.call_id);
    let paused = post(&p, &alice, &path, json!({"action": "pause"})).await;
    assert_eq!(paused.status(), 200, "{}", paused.text());
    let recording = |p: &Phone| {
        p.twilio
            .requests()
            .into_iter()
            .filter(|r| {
                r.path.ends_with(&format!(
                    "/Conferences/{}/Recordings/Twilio.CURRENT.json",
                    c.o.conference_sid
                ))
            })
            .collect::<Vec<_>>()
    };
    let sent = recording(&p);
    assert_eq!(flag(&sent[0], "Status"), Some("paused"));
    assert_eq!(
        flag(&sent[0], "PauseBehavior"),
        Some("skip"),
        "the pause is left out, not silence"
    );
    assert_eq!(
        p.twilio
            .conferences()
            .iter()
            .find(|x| x.sid == c.o.conference_sid)
            .unwrap()
            .recording
            .as_deref(),
        Some("paused")
    );
    assert!(p.session(&c.o.call_id).await.recording_paused);
    let resumed = post(&p, &alice, &path, json!({"action": "resume"})).await;
    assert_eq!(resumed.status(), 200);
    assert_eq!(flag(&recording(&p)[1], "Status"), Some("in-progress"));
    assert!(!p.session(&c.o.call_id).await.recording_paused);
    let kinds = kinds(&p.timeline(&c.o.call_id).await);
    assert!(kinds.contains(&"recording-paused".to_owned()) && kinds.contains(&"recording-resumed".to_owned()));
    assert_eq!(
        post(&p, &token(BOB, "agent"), &path, json!({"action": "pause"}))
            .await
            .status(),
        403
    );
    assert_eq!(post(&p, &alice, &path, json!({"action": "stop"})).await.status(), 400);
}

#[tokio::test]
async fn an_inbound_call_is_transferred_like_an_outbound_one() {
    use crate::calls::{call_in, phone_with_three_agents};
    let p = phone_with_three_agents().await;
    let i = call_in(&p).await;
    assert_eq!(p.answer(&i, "agent-2").await.status(), 200);
    let conference = p.twilio.add_conference(&format!("sb-{}", i.call_id));
    let c = Connected {
        o: Outbound {
            call_id: i.call_id.clone(),
            agent_sid: i.leg("agent-2").to_owned(),
            conference_sid: conference.clone(),
            agent_twiml: String::new(),
        },
        customer: i.caller.clone(),
    };
    for sid in [&i.caller, &c.o.agent_sid] {
        joins(&p, &c, sid, 1).await;
    }
    assert_eq!(p.session(&i.call_id).await.state, CallState::InProgress);
    p.twilio.clear_requests();
    let started = post(
        &p,
        &token(BOB, "agent"),
        &format!("/calls/{}/transfer", i.call_id),
        json!({"to": {"agent": "carol"}, "mode": "cold"}),
    )
    .await;
    assert_eq!(started.status(), 202, "{}", started.text());
    let (carol, form) = rung(&p, "transfer-1");
    assert_eq!(
        value(&form, "From"),
        crate::calls::CALLER,
        "carol's browser shows the caller"
    );
    assert_eq!(
        flag(&participant_updates(&p, &c.o.agent_sid)[0], "EndConferenceOnExit"),
        Some("false")
    );
    answers(&p, &i.call_id, "transfer-1", &carol).await;
    joins(&p, &c, &carol, 5).await;
    assert!(removed(&p, &c.o.agent_sid));
    let session = p.session(&i.call_id).await;
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some("carol"));
    let _ = CUSTOMER;
}
