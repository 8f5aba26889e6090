//! Failures of what Switchboard depends on, one at a time, deterministic:
//! Twilio's REST API refusing each step of each flow that calls it (the
//! documented outcome, and never a session stuck half way), and DynamoDB,
//! KMS and SQS failing behind a fault proxy in front of moto (bounded
//! retries, then a clear 503, nothing half-written, an answer in time).
//! `scripts/faults.sh` runs the same faults under load, with crashes and a
//! full disk besides (README "Reliability").
//!
//! Texts and recordings have their Twilio failures tested beside the rest
//! of their behaviour: `sms.rs` (`twilio_refusing_the_number_is_400_…`,
//! `a_claimed_key_whose_outcome_is_unknown_never_sends_again`) and
//! `recordings.rs` (`twilio_errors_store_nothing_…`,
//! `a_failed_delete_of_twilios_copy_is_retried_…`).

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use switchboard::model::calls::{CallState, LegState, MonitorMode, TransferState};
use switchboard_testkit::fake_twilio::{Fault, FaultKind};
use switchboard_testkit::harness::*;

use crate::calls::{
    CUSTOMER, OUR_NUMBER, Phone, call_in, conference_event, connect_agent, customer_status, phone,
    phone_with_three_agents,
};
use crate::control::{Connected, answers, connected, joins, kinds, participant_updates, rung_call};

const ALICE: &str = "alice";
const BOB: &str = "bob";

/// Twilio answering 500 to the next request to `path`. Creates are never
/// retried; updates, reads and deletes are retried twice (`shared/src/
/// twilio/rest.rs`), so `refuses` fails all three attempts.
fn fails(method: &str, path: &str) -> Fault {
    Fault::new(method, path, FaultKind::Status(500))
}

fn refuses(method: &str, path: &str) -> Fault {
    fails(method, path).times(3)
}

async fn post(p: &Phone, agent: &str, role: &str, path: &str, body: Value) -> Reply {
    let token = agent_jwt("acme", agent, role);
    p.t.call(with_json(with_bearer(request(Method::POST, path), &token), &body))
        .await
}

async fn act(p: &Phone, c: &Connected, step: &str, body: Value) -> Reply {
    post(p, ALICE, "agent", &format!("/calls/{}/{step}", c.o.call_id), body).await
}

/// The last value `name` was set to for participant `sid`, over REST.
fn last_set(p: &Phone, sid: &str, name: &str) -> Option<String> {
    participant_updates(p, sid)
        .iter()
        .rev()
        .find_map(|r| r.form_value(name).map(str::to_owned))
}

/// The call placed to ring `label` in, if any.
fn rung(p: &Phone, label: &str) -> Option<String> {
    rung_call(p, label).map(|c| c.sid)
}

/// The rung leg answers and joins the conference.
async fn answers_and_joins(p: &Phone, c: &Connected, label: &str, sid: &str, sequence: u32) {
    answers(p, &c.o.call_id, label, sid).await;
    joins(p, c, sid, sequence).await;
}

// ---------------------------------------------------------------------------
// Outbound calls

#[tokio::test]
async fn a_customer_who_cannot_be_dialed_ends_the_call_failed_and_the_agent_is_told() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    p.twilio.fail_next(fails("POST", "/Calls.json"));
    let join = conference_event(&o, "participant-join", &o.agent_sid, 1, 0)
        .send(&p)
        .await;
    assert_eq!(join.status(), 200, "the callback is acknowledged: {}", join.text());

    let session = p.session(&o.call_id).await;
    assert_eq!(session.state, CallState::Failed);
    assert!(
        session
            .end_reason
            .as_deref()
            .is_some_and(|r| r.contains("could not be placed")),
        "{:?}",
        session.end_reason
    );
    let told = p
        .twilio
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with(&format!("/Calls/{}.json", o.agent_sid)))
        .expect("the agent's leg is redirected to a message");
    assert!(told.form_value("Twiml").is_some_and(|t| t.contains("<Say")), "{told:?}");
    // A duplicate join dials nobody: the customer was never reached, and
    // never will be.
    conference_event(&o, "participant-join", &o.agent_sid, 1, 0)
        .send(&p)
        .await;
    assert!(p.dials().is_empty(), "{:?}", p.dials());
    assert_eq!(p.session(&o.call_id).await.state, CallState::Failed);
}

#[tokio::test]
async fn a_customer_dialed_though_twilios_answer_was_lost_is_sent_away_not_into_an_empty_room() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    p.twilio
        .fail_next(Fault::new("POST", "/Calls.json", FaultKind::DropAfterApplying));
    let join = conference_event(&o, "participant-join", &o.agent_sid, 1, 0)
        .send(&p)
        .await;
    assert_eq!(join.status(), 200);
    assert_eq!(p.session(&o.call_id).await.state, CallState::Failed);
    // Twilio did place it: when the customer answers, they are told and
    // hung up on, and the session stays as it ended.
    let placed = p.twilio.calls().into_iter().find(|c| c.to == CUSTOMER).unwrap();
    let twiml = p
        .hook(
            &format!("/twilio/voice/customer?callId={}", o.call_id),
            &[("CallSid", &placed.sid), ("From", OUR_NUMBER), ("To", CUSTOMER)],
        )
        .await;
    assert!(
        twiml.text().contains("<Hangup/>") && !twiml.text().contains("<Conference"),
        "{}",
        twiml.text()
    );
    customer_status(&o, &placed.sid, "in-progress", 2, 3).send(&p).await;
    assert_eq!(p.session(&o.call_id).await.state, CallState::Failed);
}

#[tokio::test]
async fn telling_the_agent_may_fail_too_and_the_session_still_ends() {
    let p = phone().await;
    let o = connect_agent(&p).await;
    // The dial (never retried) and the three attempts to tell the agent.
    p.twilio.fail_next(fails("POST", "/Calls").times(4));
    conference_event(&o, "participant-join", &o.agent_sid, 1, 0)
        .send(&p)
        .await;
    assert_eq!(p.session(&o.call_id).await.state, CallState::Failed);
    // The agent hangs up on their own: nothing changes, nothing fails.
    let left = conference_event(&o, "participant-leave", &o.agent_sid, 2, 9)
        .send(&p)
        .await;
    assert_eq!(left.status(), 200, "{}", left.text());
    assert_eq!(p.session(&o.call_id).await.state, CallState::Failed);
}

#[tokio::test]
async fn hold_refused_by_twilio_is_a_502_that_changes_nothing_and_can_be_retried() {
    let p = phone().await;
    let c = connected(&p).await;
    p.twilio
        .fail_next(refuses("POST", &format!("/Participants/{}.json", c.customer)));
    let refused = act(&p, &c, "hold", json!({"hold": true})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());
    assert_eq!(refused.error_code(), "upstream_error");
    assert!(!kinds(&p.timeline(&c.o.call_id).await).contains(&"customer-held".to_owned()));
    let held = act(&p, &c, "hold", json!({"hold": true})).await;
    assert_eq!(held.status(), 200, "{}", held.text());
    assert!(kinds(&p.timeline(&c.o.call_id).await).contains(&"customer-held".to_owned()));
}

#[tokio::test]
async fn a_hangup_twilio_refuses_is_a_502_and_a_retry_ends_the_call() {
    let p = phone().await;
    let c = connected(&p).await;
    let conference = format!("/Conferences/{}.json", c.o.conference_sid);
    p.twilio.fail_next(refuses("POST", &conference));
    let refused = act(&p, &c, "hangup", json!({})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());
    assert_eq!(p.session(&c.o.call_id).await.state, CallState::InProgress);
    let ended = act(&p, &c, "hangup", json!({})).await;
    assert_eq!(ended.status(), 202, "{}", ended.text());
    assert!(
        p.twilio
            .requests()
            .iter()
            .any(|r| r.path.ends_with(&conference) && r.form_value("Status") == Some("completed"))
    );
}

#[tokio::test]
async fn mute_and_recording_pause_refused_by_twilio_change_nothing() {
    let p = phone().await;
    let c = connected(&p).await;
    p.twilio
        .fail_next(refuses("POST", &format!("/Participants/{}.json", c.customer)));
    let path = format!("/calls/{}/participants/customer/mute", c.o.call_id);
    let refused = post(&p, ALICE, "agent", &path, json!({"muted": true})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());
    assert!(!p.session(&c.o.call_id).await.participants["customer"].muted);
    let muted = post(&p, ALICE, "agent", &path, json!({"muted": true})).await;
    assert_eq!(muted.status(), 200, "{}", muted.text());
    assert!(p.session(&c.o.call_id).await.participants["customer"].muted);
}

// ---------------------------------------------------------------------------
// Transfers

#[tokio::test]
async fn a_transfer_whose_target_cannot_be_rung_fails_and_the_customer_comes_back() {
    let p = phone().await;
    let c = connected(&p).await;
    p.twilio.fail_next(fails("POST", "/Calls.json"));
    let refused = act(&p, &c, "transfer", json!({"to": {"agent": BOB}, "mode": "warm"})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());

    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Failed);
    assert_eq!(session.participants["transfer-1"].state, LegState::Failed);
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some(ALICE));
    assert_eq!(session.state, CallState::InProgress);
    // The customer was held for it, and is not any more; alice's leaving
    // ends the call again.
    assert_eq!(last_set(&p, &c.customer, "Hold").as_deref(), Some("false"));
    assert_eq!(
        last_set(&p, &c.o.agent_sid, "EndConferenceOnExit").as_deref(),
        Some("true")
    );
    assert!(kinds(&p.timeline(&c.o.call_id).await).contains(&"transfer-failed".to_owned()));
    // And a new transfer can start.
    let again = act(&p, &c, "transfer", json!({"to": {"agent": BOB}, "mode": "warm"})).await;
    assert_eq!(again.status(), 202, "{}", again.text());
    assert_eq!(again.json()["transfer"]["label"], "transfer-2");
}

#[tokio::test]
async fn a_transfer_refused_at_its_first_step_rings_nobody_and_leaves_the_call_as_it_was() {
    let p = phone().await;
    let c = connected(&p).await;
    p.twilio
        .fail_next(refuses("POST", &format!("/Participants/{}.json", c.o.agent_sid)));
    let refused = act(&p, &c, "transfer", json!({"to": {"agent": BOB}, "mode": "warm"})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());
    assert!(rung(&p, "transfer-1").is_none(), "nobody is rung");
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Failed);
    assert_ne!(last_set(&p, &c.customer, "Hold").as_deref(), Some("true"));
    assert_ne!(
        last_set(&p, &c.o.agent_sid, "EndConferenceOnExit").as_deref(),
        Some("false"),
        "alice's leaving still ends the call"
    );
}

#[tokio::test]
async fn completing_a_transfer_twilio_refuses_keeps_it_under_way_and_a_retry_hands_over() {
    let p = phone().await;
    let c = connected(&p).await;
    let started = act(&p, &c, "transfer", json!({"to": {"agent": BOB}, "mode": "warm"})).await;
    assert_eq!(started.status(), 202, "{}", started.text());
    let bob = rung(&p, "transfer-1").unwrap();
    answers_and_joins(&p, &c, "transfer-1", &bob, 3).await;
    assert_eq!(
        p.session(&c.o.call_id).await.transfer.unwrap().state,
        TransferState::Talking
    );

    p.twilio
        .fail_next(refuses("POST", &format!("/Participants/{}.json", c.customer)));
    let refused = act(&p, &c, "transfer/complete", json!({})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Talking);
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some(ALICE));

    let done = act(&p, &c, "transfer/complete", json!({})).await;
    assert_eq!(done.status(), 200, "{}", done.text());
    let session = p.session(&c.o.call_id).await;
    assert_eq!(session.transfer.as_ref().unwrap().state, TransferState::Completed);
    assert_eq!(session.agent.as_ref().map(|a| a.as_str()), Some(BOB));
    assert_eq!(last_set(&p, &c.customer, "Hold").as_deref(), Some("false"));
}

/// Found by the fault campaign: a cancel whose hang-up Twilio refused used
/// to answer 502 with the transfer already canceled and the call not
/// restored, a retry being 409: the customer stayed on hold.
#[tokio::test]
async fn canceling_a_transfer_twilio_refuses_still_brings_the_customer_back() {
    let p = phone().await;
    let c = connected(&p).await;
    let started = act(&p, &c, "transfer", json!({"to": {"agent": BOB}, "mode": "warm"})).await;
    assert_eq!(started.status(), 202, "{}", started.text());
    let bob = rung(&p, "transfer-1").unwrap();
    p.twilio.fail_next(refuses("POST", &format!("/Calls/{bob}.json")));
    let refused = act(&p, &c, "transfer/cancel", json!({})).await;
    if refused.status() == 502 {
        // Then a retry must finish the job.
        let retried = act(&p, &c, "transfer/cancel", json!({})).await;
        assert_eq!(retried.status(), 200, "{}", retried.text());
    } else {
        assert_eq!(refused.status(), 200, "{}", refused.text());
    }
    assert_eq!(last_set(&p, &c.customer, "Hold").as_deref(), Some("false"));
    assert_eq!(
        last_set(&p, &c.o.agent_sid, "EndConferenceOnExit").as_deref(),
        Some("true")
    );
}

// ---------------------------------------------------------------------------
// Supervisors

#[tokio::test]
async fn a_supervisor_who_cannot_be_rung_gets_a_502_and_can_try_again() {
    let p = phone().await;
    let c = connected(&p).await;
    let path = format!("/calls/{}/monitor", c.o.call_id);
    p.twilio.fail_next(fails("POST", "/Calls.json"));
    let refused = post(&p, "sue", "supervisor", &path, json!({"mode": "listen"})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());
    assert_eq!(
        p.session(&c.o.call_id).await.participants["supervisor-1"].state,
        LegState::Failed
    );
    let again = post(&p, "sue", "supervisor", &path, json!({"mode": "listen"})).await;
    assert_eq!(again.status(), 202, "{}", again.text());
    assert_eq!(again.json()["participant"]["label"], "supervisor-2");
    assert!(rung(&p, "supervisor-2").is_some());
}

/// Found by the fault campaign: the new mode used to be stored before
/// Twilio was asked, so a refused change left the session saying `whisper`
/// while the supervisor still only listened.
#[tokio::test]
async fn a_mode_change_twilio_refuses_keeps_the_mode_that_is_in_effect() {
    let p = phone().await;
    let c = connected(&p).await;
    let path = format!("/calls/{}/monitor", c.o.call_id);
    let listen = post(&p, "sue", "supervisor", &path, json!({"mode": "listen"})).await;
    assert_eq!(listen.status(), 202, "{}", listen.text());
    let leg = rung(&p, "supervisor-1").unwrap();
    answers_and_joins(&p, &c, "supervisor-1", &leg, 3).await;

    p.twilio
        .fail_next(refuses("POST", &format!("/Participants/{leg}.json")));
    let refused = post(&p, "sue", "supervisor", &path, json!({"mode": "whisper"})).await;
    assert_eq!(refused.status(), 502, "{}", refused.text());
    assert_eq!(
        p.session(&c.o.call_id).await.participants["supervisor-1"].monitor,
        Some(MonitorMode::Listen),
        "what Twilio does is what the session says"
    );
    let whisper = post(&p, "sue", "supervisor", &path, json!({"mode": "whisper"})).await;
    assert_eq!(whisper.status(), 200, "{}", whisper.text());
    assert_eq!(last_set(&p, &leg, "Coaching").as_deref(), Some("true"));
}

// ---------------------------------------------------------------------------
// Inbound calls

#[tokio::test]
async fn when_no_agent_can_be_rung_the_caller_goes_straight_to_voicemail() {
    let p = phone_with_three_agents().await;
    p.twilio.fail_next(fails("POST", "/Calls.json").times(3));
    let caller = p.twilio.add_call(crate::calls::CALLER, OUR_NUMBER);
    let answer = p
        .hook(
            "/twilio/voice/inbound",
            &[
                ("CallSid", &caller),
                ("From", crate::calls::CALLER),
                ("To", OUR_NUMBER),
                ("Direction", "inbound"),
            ],
        )
        .await;
    assert_eq!(answer.status(), 200);
    let xml = answer.text();
    assert!(xml.contains("<Record") && !xml.contains("<Conference"), "{xml}");
    let call_id = p.session_of(&caller).await;
    let session = p.session(&call_id).await;
    for label in ["agent-1", "agent-2", "agent-3"] {
        assert_eq!(session.participants[label].state, LegState::Failed, "{label}");
    }
}

#[tokio::test]
async fn an_agent_who_cannot_be_rung_does_not_keep_the_caller_from_the_others() {
    let p = phone_with_three_agents().await;
    p.twilio.fail_next(fails("POST", "/Calls.json"));
    let i = call_in(&p).await;
    assert_eq!(i.legs.len(), 2, "two of three rang: {:?}", i.legs);
    let session = p.session(&i.call_id).await;
    let failed = session
        .participants
        .values()
        .filter(|l| l.state == LegState::Failed)
        .count();
    assert_eq!(failed, 1);
    // Both others ring out: the caller goes to voicemail, once.
    for (label, _) in &i.legs {
        let reply = p.agent_leg_status(&i, label, "no-answer", 20).await;
        assert_eq!(reply.status(), 200);
    }
    assert_eq!(p.redirects().len(), 1, "{:?}", p.redirects());
}

/// Found by the fault campaign: the voicemail step used to be claimed
/// before the caller was redirected, so a redirect Twilio refused was never
/// tried again and the caller waited in the empty conference.
#[tokio::test]
async fn a_voicemail_redirect_twilio_refuses_is_tried_again() {
    let p = phone_with_three_agents().await;
    let i = call_in(&p).await;
    for label in ["agent-1", "agent-2"] {
        p.agent_leg_status(&i, label, "no-answer", 20).await;
    }
    p.twilio
        .fail_next(refuses("POST", &format!("/Calls/{}.json", i.caller)));
    p.agent_leg_status(&i, "agent-3", "no-answer", 20).await;
    let refused = p.redirects().len();
    assert_eq!(refused, 3, "tried, and refused: {:?}", p.redirects());
    // Twilio delivers callbacks at least once: the next one must get the
    // caller out of the waiting room.
    p.agent_leg_status(&i, "agent-3", "no-answer", 21).await;
    assert_eq!(p.redirects().len(), refused + 1, "{:?}", p.redirects());
}

// ---------------------------------------------------------------------------
// AWS failing behind the fault proxy

mod aws {
    use std::sync::Arc;

    use switchboard_aws::AwsResources;
    use switchboard_testkit::aws_faults::{AwsFault, AwsFaultProxy, Service};
    use switchboard_testkit::fake_twilio::FakeTwilio;
    use switchboard_testkit::moto;

    use super::*;

    const AUTH_TOKEN: &str = crate::calls::AUTH_TOKEN;

    struct OnAws {
        t: TestApp,
        proxy: AwsFaultProxy,
        account: String,
        _twilio: FakeTwilio,
    }

    /// The app on DynamoDB and KMS (moto) reached through the fault proxy,
    /// with the SDK limits the functions run with; acme connected.
    async fn on_aws() -> OnAws {
        let proxy = AwsFaultProxy::start(&moto::moto_url()).await.unwrap();
        let sdk = proxy.sdk_config().await;
        let (_, table) = moto::fresh_table().await;
        let (_, kms_key_id) = moto::fresh_kms_key().await;
        let resources = AwsResources {
            table,
            kms_key_id,
            recordings_bucket: None,
            recording_queue_url: None,
        };
        let adapters = switchboard_aws::open(&sdk, &resources);
        let account_sid = account("acme").to_string();
        let twilio = FakeTwilio::start(&account_sid, AUTH_TOKEN).await;
        let t = TestApp::with_adapters(
            &[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())],
            adapters.store,
            adapters.secrets,
        )
        .await;
        let workspace = t.seed_workspace("acme", &account("acme"), AUTH_TOKEN).await;
        // A shared line (no agents assigned): anyone may call from it.
        let line = switchboard::workspace::PhoneNumber {
            number: switchboard::phone::E164::parse(OUR_NUMBER).unwrap(),
            sid: None,
            agents: Vec::new(),
            label: None,
        };
        t.app.store.replace_numbers(&workspace.id, &[line]).await.unwrap();
        OnAws {
            t,
            proxy,
            account: account_sid,
            _twilio: twilio,
        }
    }

    impl OnAws {
        async fn place(&self) -> (Reply, Duration) {
            let started = Instant::now();
            let reply = self
                .t
                .call(with_json(
                    with_bearer(request(Method::POST, "/calls"), &agent_jwt("acme", ALICE, "agent")),
                    &json!({"to": CUSTOMER, "from": OUR_NUMBER}),
                ))
                .await;
            (reply, started.elapsed())
        }

        async fn calls(&self) -> usize {
            let listed = self
                .t
                .call(with_bearer(
                    request(Method::GET, "/calls"),
                    &agent_jwt("acme", ALICE, "agent"),
                ))
                .await;
            assert_eq!(listed.status(), 200, "{}", listed.text());
            listed.json()["calls"].as_array().unwrap().len()
        }

        async fn status_callback(&self, call_id: &str) -> (Reply, Duration) {
            let started = Instant::now();
            let params = [
                ("AccountSid", self.account.as_str()),
                ("CallSid", "CA0123456789abcdef0123456789abcdef"),
                ("CallStatus", "ringing"),
                ("SequenceNumber", "1"),
            ];
            let path = format!("/twilio/status?callId={call_id}&leg=customer");
            let reply = self.t.call(twilio_post(&path, &params, AUTH_TOKEN)).await;
            (reply, started.elapsed())
        }

        async fn agent_twiml(&self) -> (Reply, Duration) {
            let started = Instant::now();
            let params = [
                ("AccountSid", self.account.as_str()),
                ("CallSid", "CA1123456789abcdef0123456789abcdef"),
                ("From", "client:agent_alice"),
                ("To", CUSTOMER),
            ];
            let reply = self
                .t
                .call(twilio_post("/twilio/voice/agent", &params, AUTH_TOKEN))
                .await;
            (reply, started.elapsed())
        }
    }

    /// Within one operation's budget, with room for scheduling on a busy machine.
    fn in_time(took: Duration) -> bool {
        took < switchboard_aws::OPERATION_TIMEOUT + Duration::from_secs(2)
    }

    #[tokio::test]
    async fn throttling_and_5xx_are_retried_and_the_request_succeeds() {
        let aws = on_aws().await;
        let before = aws.proxy.counts(Service::DynamoDb);
        aws.proxy.fail_next(Service::DynamoDb, AwsFault::Throttle, 1);
        aws.proxy.fail_next(Service::DynamoDb, AwsFault::ServerError, 1);
        let (placed, _) = aws.place().await;
        assert_eq!(placed.status(), 201, "{}", placed.text());
        let after = aws.proxy.counts(Service::DynamoDb);
        assert_eq!(after.faults - before.faults, 2, "both faults were met and retried");
        assert_eq!(aws.calls().await, 1);
    }

    #[tokio::test]
    async fn a_dynamodb_that_keeps_failing_is_a_503_in_time_with_nothing_written() {
        let aws = on_aws().await;
        let (placed, _) = aws.place().await;
        assert_eq!(placed.status(), 201);
        let call_id = placed.json()["callId"].as_str().unwrap().to_owned();

        for fault in [AwsFault::ServerError, AwsFault::Throttle, AwsFault::Reset] {
            aws.proxy.fail_next(Service::DynamoDb, fault, 1000);
            let (refused, took) = aws.place().await;
            assert_eq!(refused.status(), 503, "{fault:?}: {}", refused.text());
            assert_eq!(refused.error_code(), "unavailable");
            assert!(in_time(took), "{fault:?}: {took:?}");
            let (callback, took) = aws.status_callback(&call_id).await;
            assert_eq!(callback.status(), 503, "{fault:?}: {}", callback.text());
            assert!(
                callback.text().contains("<Response"),
                "empty TwiML: {}",
                callback.text()
            );
            assert!(in_time(took), "{fault:?}: {took:?}");
            let (voice, took) = aws.agent_twiml().await;
            assert_eq!(voice.status(), 200, "voice webhooks answer TwiML: {}", voice.text());
            assert!(
                voice.text().contains("<Say") && voice.text().contains("<Hangup/>"),
                "{}",
                voice.text()
            );
            assert!(in_time(took), "{fault:?}: {took:?}");
            aws.proxy.heal();
        }
        assert_eq!(aws.calls().await, 1, "nothing was written while DynamoDB failed");
        let (callback, _) = aws.status_callback(&call_id).await;
        assert_eq!(callback.status(), 200, "healed: {}", callback.text());
    }

    #[tokio::test]
    async fn hung_attempts_are_abandoned_so_a_webhook_is_answered_in_time() {
        let aws = on_aws().await;
        let (placed, _) = aws.place().await;
        let call_id = placed.json()["callId"].as_str().unwrap().to_owned();
        // One attempt hangs: abandoned after its timeout, retried, answered.
        aws.proxy
            .fail_next(Service::DynamoDb, AwsFault::Hang(Duration::from_secs(30)), 1);
        let (callback, took) = aws.status_callback(&call_id).await;
        assert_eq!(callback.status(), 200, "{}", callback.text());
        assert!(took >= switchboard_aws::ATTEMPT_TIMEOUT, "{took:?}");
        assert!(in_time(took), "{took:?}");
        // Every attempt hangs: a 503 within the operation's timeout.
        aws.proxy
            .fail_next(Service::DynamoDb, AwsFault::Hang(Duration::from_secs(30)), 1000);
        let (callback, took) = aws.status_callback(&call_id).await;
        assert_eq!(callback.status(), 503, "{}", callback.text());
        assert!(in_time(took), "{took:?}");
        aws.proxy.heal();
    }

    #[tokio::test]
    async fn a_kms_that_keeps_failing_refuses_what_needs_a_secret_with_a_503() {
        let aws = on_aws().await;
        aws.proxy.fail_next(Service::Kms, AwsFault::Unavailable, 1000);
        // Webhooks open the Auth Token to check the signature.
        let (voice, took) = aws.agent_twiml().await;
        assert_eq!(voice.status(), 200, "{}", voice.text());
        assert!(voice.text().contains("<Hangup/>"), "{}", voice.text());
        assert!(in_time(took), "{took:?}");
        // An admin connecting an account seals its token.
        let admin = agent_jwt("acme", "root", "admin");
        let body = json!({"accountSid": account("acme").to_string(), "authToken": AUTH_TOKEN});
        let configured = aws
            .t
            .call(with_json(
                with_bearer(request(Method::PUT, "/workspace/twilio"), &admin),
                &body,
            ))
            .await;
        assert!(
            configured.status() == 503 || configured.status() == 502,
            "{}: {}",
            configured.status(),
            configured.text()
        );
        assert_ne!(configured.status(), 500);
        aws.proxy.heal();
        let (voice, _) = aws.agent_twiml().await;
        assert!(!voice.text().contains("trouble"), "healed: {}", voice.text());
    }

    #[tokio::test]
    async fn an_sqs_refusing_a_recording_copy_answers_503() {
        let mut aws = on_aws().await;
        let (client, queue_url) = moto::fresh_queue().await;
        let sdk = aws.proxy.sdk_config().await;
        aws.t.app.jobs = Arc::new(switchboard_aws::SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            queue_url.clone(),
        ));
        let (placed, _) = aws.place().await;
        let call_id = placed.json()["callId"].as_str().unwrap().to_owned();
        let recording = |sid: &'static str| {
            let account = aws.account.clone();
            let path = format!("/twilio/recording?callId={call_id}");
            async move {
                let params = [
                    ("AccountSid", account.as_str()),
                    ("CallSid", "CA0123456789abcdef0123456789abcdef"),
                    ("RecordingSid", sid),
                    ("RecordingStatus", "completed"),
                    ("RecordingDuration", "3"),
                ];
                twilio_post(&path, &params, AUTH_TOKEN)
            }
        };
        aws.proxy.fail_next(Service::Sqs, AwsFault::ServerError, 1000);
        let refused = aws.t.call(recording("RE0123456789abcdef0123456789abcdef").await).await;
        assert_eq!(refused.status(), 503, "{}", refused.text());
        aws.proxy.heal();
        // Twilio's repeat (or a later duplicate) queues it once SQS is back.
        let accepted = aws.t.call(recording("RE0123456789abcdef0123456789abcdef").await).await;
        assert_eq!(accepted.status(), 200, "{}", accepted.text());
        let received = client
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        assert_eq!(received.messages().len(), 1);
    }
}
