//! The storage contract, written once and run against every adapter.
//!
//! Each public function exercises one part of the ports in `store.rs` and
//! panics (with a message that says which rule broke) on a violation. Every
//! run uses fresh random workspace ids, account SIDs and phone numbers, so runs
//! against a shared backend (one DynamoDB table for many tests) never collide.
//!
//! ```ignore
//! #[tokio::test]
//! async fn embedded_store_keeps_the_contract() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = EmbeddedStore::open(dir.path()).unwrap();
//!     switchboard::store::conformance::run_all(&store).await;
//! }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use time::OffsetDateTime;
use ulid::Ulid;

use crate::calls::{Advance, CallSession, CallState, CallUpdate, Direction, TimelineEvent};
use crate::ids::{
    AccountSid, AgentId, CallId, CallSid, ConferenceSid, MessageSid, PhoneNumberSid, RecordingSid, WorkspaceId,
};
use crate::messages::{Message, MessageStatus};
use crate::phone::E164;
use crate::ports::store::{CallQuery, ChangesQuery, MessageQuery, Store, StoreError};
use crate::recordings::{Recording, RecordingStatus};
use crate::sealed::Sealed;
use crate::time::Timestamp;
use crate::workspace::{PhoneNumber, TwilioAccount, Workspace};

/// How many callers race in the "exactly once" checks.
const RACERS: usize = 20;

/// Every check, one after the other.
pub async fn run_all<S: Store + ?Sized>(store: &S) {
    workspace_round_trip(store).await;
    account_index(store).await;
    replace_numbers(store).await;
    update_number(store).await;
    create_and_get_call(store).await;
    advance_call(store).await;
    advance_call_in_any_order(store).await;
    update_call(store).await;
    claim_step(store).await;
    recordings(store).await;
    modify_call(store).await;
    timeline(store).await;
    list_calls(store).await;
    calls_changed(store).await;
    call_sid_links(store).await;
    messages(store).await;
    list_messages(store).await;
    messages_changed(store).await;
    idempotency(store).await;
    idempotency_expires(store).await;
    tenant_isolation(store).await;
}

// ---------------------------------------------------------------------------
// Workspaces and the Account SID index

pub async fn workspace_round_trip<S: Store + ?Sized>(store: &S) {
    let id = fresh_workspace("ws");
    assert_eq!(
        get_workspace(store, &id).await,
        None,
        "a fresh workspace id must not exist"
    );

    let mut workspace = Workspace::new(id.clone());
    workspace.settings.record = true;
    workspace.settings.caller_id = Some(fresh_number());
    workspace.settings.sms_auto_reply = Some("We will call you back".into());
    put_workspace(store, &workspace).await;
    assert_eq!(get_workspace(store, &id).await, Some(workspace.clone()), "put then get");

    let mut connected = workspace.clone();
    connected.twilio = Some(twilio_account(account_sid()));
    put_workspace(store, &connected).await;
    assert_eq!(get_workspace(store, &id).await, Some(connected.clone()), "put replaces");

    // Putting the same workspace again is not a conflict with itself.
    put_workspace(store, &connected).await;
    assert_eq!(
        get_workspace(store, &id).await,
        Some(connected),
        "a repeated put is a no-op"
    );
}

pub async fn account_index<S: Store + ?Sized>(store: &S) {
    let first = fresh_workspace("acct");
    let second = fresh_workspace("acct");
    let sid = account_sid();
    let other_sid = account_sid();

    assert_eq!(
        by_account(store, &sid).await,
        None,
        "a fresh Account SID maps to nothing"
    );

    let mut a = Workspace::new(first.clone());
    a.twilio = Some(twilio_account(sid.clone()));
    put_workspace(store, &a).await;
    assert_eq!(
        by_account(store, &sid).await,
        Some(first.clone()),
        "the index follows put_workspace"
    );

    // A second workspace may not claim the same account, and nothing of it is stored.
    let mut b = Workspace::new(second.clone());
    b.twilio = Some(twilio_account(sid.clone()));
    let claimed = store.put_workspace(&b).await;
    assert!(
        matches!(claimed, Err(StoreError::Conflict(_))),
        "a second workspace claiming an Account SID must be a Conflict, got {claimed:?}"
    );
    assert_eq!(
        get_workspace(store, &second).await,
        None,
        "a conflicting put must store nothing"
    );
    assert_eq!(
        by_account(store, &sid).await,
        Some(first.clone()),
        "the conflict must not move the index"
    );

    // Moving the first workspace to another account frees the old SID.
    a.twilio = Some(twilio_account(other_sid.clone()));
    put_workspace(store, &a).await;
    assert_eq!(
        by_account(store, &other_sid).await,
        Some(first.clone()),
        "the new SID maps to the workspace"
    );
    assert_eq!(by_account(store, &sid).await, None, "the old SID must be freed");

    put_workspace(store, &b).await;
    assert_eq!(
        by_account(store, &sid).await,
        Some(second.clone()),
        "a freed SID can be claimed"
    );

    // Disconnecting frees the SID too.
    a.twilio = None;
    put_workspace(store, &a).await;
    assert_eq!(by_account(store, &other_sid).await, None, "disconnecting frees the SID");
    assert_eq!(
        by_account(store, &sid).await,
        Some(second),
        "other workspaces keep theirs"
    );
}

// ---------------------------------------------------------------------------
// Phone numbers

pub async fn replace_numbers<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("num");
    let other = fresh_workspace("num");
    let agent = agent("agent-1");
    let (kept, dropped, added) = (fresh_number(), fresh_number(), fresh_number());

    assert!(
        list_numbers(store, &ws).await.is_empty(),
        "a fresh workspace has no numbers"
    );

    replace(store, &ws, &[number(&kept, None), number(&dropped, None)]).await;
    assert_eq!(
        sorted(list_numbers(store, &ws).await),
        sorted(vec![number(&kept, None), number(&dropped, None)]),
        "replace_numbers on an empty set adds them all"
    );
    assert_eq!(
        by_number(store, &kept).await,
        Some(ws.clone()),
        "workspace_by_number follows"
    );

    // Agents and a label set on a number survive the next sync from Twilio.
    let mut assigned = number(&kept, None);
    assigned.agents = vec![agent.clone()];
    assigned.label = Some("Sales".into());
    update(store, &ws, &assigned).await;

    let new_sid = phone_number_sid();
    replace(
        store,
        &ws,
        &[number(&kept, Some(new_sid.clone())), number(&added, None)],
    )
    .await;
    let mut expected_kept = assigned.clone();
    expected_kept.sid = Some(new_sid);
    assert_eq!(
        sorted(list_numbers(store, &ws).await),
        sorted(vec![expected_kept.clone(), number(&added, None)]),
        "kept numbers keep agents and label and take the new SID; dropped ones go; new ones come"
    );
    assert_eq!(
        get_number(store, &ws, &kept).await,
        Some(expected_kept.clone()),
        "get_number"
    );
    assert_eq!(get_number(store, &ws, &dropped).await, None, "a removed number is gone");
    assert_eq!(by_number(store, &dropped).await, None, "a removed number is freed");
    assert_eq!(
        by_number(store, &added).await,
        Some(ws.clone()),
        "an added number is indexed"
    );

    // A number that is new comes with the agents and label it is given.
    let mut labelled = number(&fresh_number(), None);
    labelled.agents = vec![agent.clone()];
    labelled.label = Some("Support".into());
    replace(
        store,
        &ws,
        &[expected_kept.clone(), number(&added, None), labelled.clone()],
    )
    .await;
    assert_eq!(
        get_number(store, &ws, &labelled.number).await,
        Some(labelled.clone()),
        "a new number keeps what it is given"
    );

    // Another workspace cannot take a number this one owns, and its own set stays as it was.
    let own = fresh_number();
    replace(store, &other, &[number(&own, None)]).await;
    let taken = store
        .replace_numbers(&other, &[number(&own, None), number(&kept, None)])
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(_))),
        "claiming another workspace's number must be a Conflict, got {taken:?}"
    );
    assert_eq!(
        list_numbers(store, &other).await,
        vec![number(&own, None)],
        "a conflicting replace changes nothing"
    );
    assert_eq!(
        by_number(store, &kept).await,
        Some(ws.clone()),
        "the owner keeps its number"
    );
    assert_eq!(
        get_number(store, &ws, &kept).await,
        Some(expected_kept),
        "the owner's record is untouched"
    );

    // A number freed by one workspace can be claimed by another.
    replace(store, &other, &[number(&own, None), number(&dropped, None)]).await;
    assert_eq!(
        by_number(store, &dropped).await,
        Some(other.clone()),
        "a freed number can move"
    );

    // An empty set removes everything.
    replace(store, &ws, &[]).await;
    assert!(
        list_numbers(store, &ws).await.is_empty(),
        "replace with nothing empties the set"
    );
    assert_eq!(by_number(store, &kept).await, None, "and frees every number");
    assert_eq!(
        list_numbers(store, &other).await.len(),
        2,
        "other workspaces keep theirs"
    );
}

pub async fn update_number<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("upd");
    let present = fresh_number();
    let sid = phone_number_sid();
    replace(store, &ws, &[number(&present, Some(sid.clone()))]).await;

    let mut changed = number(&present, Some(sid));
    changed.agents = vec![agent("a"), agent("b")];
    changed.label = Some("Support".into());
    update(store, &ws, &changed).await;
    assert_eq!(
        get_number(store, &ws, &present).await,
        Some(changed.clone()),
        "update_number sets agents and label"
    );

    changed.agents.clear();
    changed.label = None;
    update(store, &ws, &changed).await;
    assert_eq!(
        get_number(store, &ws, &present).await,
        Some(changed),
        "update_number can clear them"
    );

    let missing = number(&fresh_number(), None);
    let result = store.update_number(&ws, &missing).await;
    assert!(
        matches!(result, Err(StoreError::NotFound(_))),
        "update_number on a number the workspace lacks must be NotFound, got {result:?}"
    );
    assert_eq!(
        get_number(store, &ws, &missing.number).await,
        None,
        "a failed update creates nothing"
    );
    assert_eq!(by_number(store, &missing.number).await, None, "nor indexes anything");
}

// ---------------------------------------------------------------------------
// Call sessions

pub async fn create_and_get_call<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("call");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));

    assert_eq!(
        get_call(store, &ws, &session.id).await,
        None,
        "a fresh id has no session"
    );
    create(store, &session).await;
    assert_eq!(
        get_call(store, &ws, &session.id).await,
        Some(session.clone()),
        "create then get"
    );

    let mut again = session.clone();
    again.to = "+15005550006".into();
    let duplicate = store.create_call(&again).await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "creating a session whose id exists must be a Conflict, got {duplicate:?}"
    );
    assert_eq!(
        get_call(store, &ws, &session.id).await,
        Some(session),
        "a duplicate create changes nothing"
    );
}

pub async fn advance_call<S: Store + ?Sized>(store: &S) {
    use CallState::*;

    let ws = fresh_workspace("adv");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    let created_at = session.created_at;
    create(store, &session).await;
    let id = &session.id;
    // Times handed out in order, used out of order below, as Twilio delivers.
    let t: Vec<Timestamp> = (0..10).map(|_| clock.later()).collect();
    let reached = |stored: &CallSession, state: CallState| stored.reached.get(&state).copied();

    assert_eq!(
        advance(store, &ws, id, Ringing, t[3]).await,
        Advance::Moved { from: Created },
        "states may be skipped"
    );
    assert_eq!(
        advance(store, &ws, id, Ringing, t[3]).await,
        Advance::Unchanged { current: Ringing },
        "a duplicate is a no-op"
    );
    assert_eq!(
        advance(store, &ws, id, Ringing, t[5]).await,
        Advance::Unchanged { current: Ringing },
        "so is a duplicate with a later time"
    );
    let stored = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(
        reached(&stored, Ringing),
        Some(t[3]),
        "a later duplicate keeps the earlier time"
    );

    assert_eq!(
        advance(store, &ws, id, Ringing, t[2]).await,
        Advance::Unchanged { current: Ringing },
        "a duplicate with an earlier time does not move the state"
    );
    let stored = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(
        reached(&stored, Ringing),
        Some(t[2]),
        "but its earlier time replaces the later one"
    );

    assert_eq!(
        advance(store, &ws, id, InProgress, t[6]).await,
        Advance::Moved { from: Ringing }
    );
    assert_eq!(
        advance(store, &ws, id, Dialing, t[4]).await,
        Advance::Unchanged { current: InProgress },
        "a late dialing never moves an in-progress call back"
    );
    let stored = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(stored.state, InProgress);
    assert_eq!(
        reached(&stored, Dialing),
        Some(t[4]),
        "but the time it reports is recorded when none is"
    );
    assert_eq!(
        advance(store, &ws, id, Dialing, t[1]).await,
        Advance::Unchanged { current: InProgress }
    );
    assert_eq!(
        advance(store, &ws, id, Ringing, t[7]).await,
        Advance::Unchanged { current: InProgress },
        "nor does a late ringing"
    );

    assert_eq!(
        advance(store, &ws, id, Completed, t[9]).await,
        Advance::Moved { from: InProgress }
    );
    assert_eq!(
        advance(store, &ws, id, Completed, t[8]).await,
        Advance::Unchanged { current: Completed },
        "a terminal state's earlier duplicate"
    );
    let mut others = BTreeMap::new();
    for terminal in [Failed, Busy, NoAnswer, Canceled, Abandoned] {
        let at = clock.later();
        others.insert(terminal, at);
        assert_eq!(
            advance(store, &ws, id, terminal, at).await,
            Advance::Unchanged { current: Completed },
            "a terminal state is never overwritten (tried {terminal:?})"
        );
    }
    assert_eq!(
        advance(store, &ws, id, Created, t[0]).await,
        Advance::Unchanged { current: Completed },
        "a report of `created` after creation"
    );

    let stored = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(stored.state, Completed);
    let mut expected = BTreeMap::from([
        (Created, created_at),
        (Dialing, t[1]),
        (Ringing, t[2]),
        (InProgress, t[6]),
        (Completed, t[8]),
    ]);
    expected.extend(others);
    assert_eq!(
        stored.reached, expected,
        "each reported state keeps the earliest time reported for it, whether or not the state moved \
         (the creation time stays: it is the earliest)"
    );
    assert!(
        !stored.differs_from(&CallSession {
            state: Completed,
            reached: expected,
            ..session.clone()
        }),
        "advance_call touches nothing but `state` and `reached` (and the change stamps)"
    );
    assert!(stored.updated_at > session.updated_at, "a change moves updated_at");

    // Straight to a terminal state; a later report cannot revive the call.
    let skipped = clock.session(&ws, Direction::Inbound, None);
    create(store, &skipped).await;
    let t_abandoned = clock.later();
    assert_eq!(
        advance(store, &ws, &skipped.id, Abandoned, t_abandoned).await,
        Advance::Moved { from: Created }
    );
    let t_late = clock.later();
    assert_eq!(
        advance(store, &ws, &skipped.id, InProgress, t_late).await,
        Advance::Unchanged { current: Abandoned }
    );
    let stored = get_call(store, &ws, &skipped.id).await.expect("the session exists");
    assert_eq!(stored.state, Abandoned);
    assert_eq!(
        stored.reached,
        BTreeMap::from([
            (Created, skipped.created_at),
            (InProgress, t_late),
            (Abandoned, t_abandoned),
        ])
    );

    let missing_id = CallId::generate();
    let missing = store.advance_call(&ws, &missing_id, Ringing, clock.later()).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "advancing a missing session must be NotFound, got {missing:?}"
    );
    assert_eq!(
        get_call(store, &ws, &missing_id).await,
        None,
        "advancing a missing session creates nothing"
    );
}

/// How many sessions `advance_call_in_any_order` replays the reports on.
const ORDERS: u64 = 8;

/// One call's status reports, with duplicates (same and different times),
/// replayed in several orders, one after the other and all at once: every
/// replay ends in the same session. Each order is a seeded shuffle, so a
/// failure names the seed that replays it.
pub async fn advance_call_in_any_order<S: Store + ?Sized>(store: &S) {
    use CallState::*;

    let ws = fresh_workspace("ord");
    let mut clock = Clock::new();
    let created_at = clock.later();
    let t: Vec<Timestamp> = (0..10).map(|_| clock.later()).collect();
    let reports = [
        (Created, t[0]),
        (Dialing, t[1]),
        (Dialing, t[1]),
        (Dialing, t[3]),
        (Ringing, t[4]),
        (Ringing, t[2]),
        (Ringing, t[2]),
        (InProgress, t[7]),
        (InProgress, t[5]),
        (Completed, t[8]),
        (Completed, t[6]),
        (Completed, t[9]),
        (Completed, t[8]),
    ];
    let expected_reached = BTreeMap::from([
        (Created, created_at),
        (Dialing, t[1]),
        (Ringing, t[2]),
        (InProgress, t[5]),
        (Completed, t[6]),
    ]);
    // Sessions alike but for their ids, all created at the same moment.
    let mut fresh_session = || {
        let mut session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
        session.created_at = created_at;
        session.reached = BTreeMap::from([(Created, created_at)]);
        session
    };
    // Alike but for the id and the change stamps (versions count writes,
    // which differ with the order).
    let same_but_id = |stored: CallSession, like: &CallSession| CallSession {
        id: like.id.clone(),
        conference: like.conference.clone(),
        version: like.version,
        updated_at: like.updated_at,
        ..stored
    };

    let mut first: Option<CallSession> = None;
    for seed in 0..ORDERS {
        let order = match seed {
            0 => reports.to_vec(),
            1 => reports.iter().rev().copied().collect(),
            _ => shuffled(&reports, seed),
        };
        let session = fresh_session();
        create(store, &session).await;
        // What each report must answer follows from the order alone.
        let mut current = Created;
        for (state, at) in &order {
            let expected = if current.can_advance_to(*state) {
                let from = current;
                current = *state;
                Advance::Moved { from }
            } else {
                Advance::Unchanged { current }
            };
            assert_eq!(
                advance(store, &ws, &session.id, *state, *at).await,
                expected,
                "order {seed}: reporting {state:?} at {at:?} (order {order:?})"
            );
        }
        let stored = get_call(store, &ws, &session.id).await.expect("the session exists");
        assert_eq!(stored.state, Completed, "order {seed}: {order:?}");
        assert_eq!(
            stored.reached, expected_reached,
            "order {seed}: the earliest time reported for each state, whatever the order ({order:?})"
        );
        match &first {
            None => first = Some(stored),
            Some(first) => assert_eq!(
                &same_but_id(stored, first),
                first,
                "order {seed} ends in another session than order 0 ({order:?})"
            ),
        }
    }
    let first = first.expect("at least one order ran");

    // Every report at once, racing.
    let session = fresh_session();
    create(store, &session).await;
    let results = join_all(
        reports
            .iter()
            .map(|(state, at)| store.advance_call(&ws, &session.id, *state, *at)),
    )
    .await;
    let mut completed_moves = 0;
    for ((state, at), result) in reports.iter().zip(results) {
        match result.expect("advance_call") {
            Advance::Moved { from } => {
                assert!(from.can_advance_to(*state), "racing: moved from {from:?} to {state:?}");
                completed_moves += usize::from(*state == Completed);
            }
            Advance::Unchanged { current } => assert!(
                !current.can_advance_to(*state),
                "racing: {state:?} at {at:?} left unchanged at {current:?}, which is behind it"
            ),
        }
    }
    assert_eq!(
        completed_moves, 1,
        "racing: exactly one of the `completed` reports moves the call"
    );
    let stored = get_call(store, &ws, &session.id).await.expect("the session exists");
    assert_eq!(
        same_but_id(stored, &first),
        first,
        "racing reports end in the same session as any order"
    );
}

pub async fn update_call<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("updc");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    create(store, &session).await;
    let id = &session.id;

    let (agent_leg, other_agent_leg, customer_leg) = (call_sid(), call_sid(), call_sid());
    let conference = conference_sid();
    let first = CallUpdate {
        agent_call_sid: Some(agent_leg.clone()),
        end_reason: Some("customer-hung-up".into()),
        duration_seconds: Some(42),
        notes: Some("first notes".into()),
        ..CallUpdate::default()
    };
    store.update_call(&ws, id, &first).await.expect("update_call");

    let second = CallUpdate {
        agent_call_sid: Some(other_agent_leg),
        customer_call_sid: Some(customer_leg.clone()),
        conference_sid: Some(conference.clone()),
        end_reason: Some("agent-hung-up".into()),
        duration_seconds: Some(7),
        notes: Some("second notes".into()),
        disposition: Some("sale".into()),
        ..CallUpdate::default()
    };
    store.update_call(&ws, id, &second).await.expect("update_call");

    // An empty update leaves everything as it is.
    store
        .update_call(&ws, id, &CallUpdate::default())
        .await
        .expect("update_call");

    let stored = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(
        stored.agent_call_sid,
        Some(agent_leg),
        "agent_call_sid: the first value wins"
    );
    assert_eq!(stored.agent, Some(agent("alice")), "the placing agent stays");

    // An inbound call learns who answered it, once.
    let inbound = clock.session(&ws, Direction::Inbound, None);
    create(store, &inbound).await;
    for who in ["bob", "carol"] {
        let answered = CallUpdate {
            agent: Some(agent(who)),
            ..CallUpdate::default()
        };
        store
            .update_call(&ws, &inbound.id, &answered)
            .await
            .expect("update_call");
    }
    let answered = get_call(store, &ws, &inbound.id).await.expect("the session exists");
    assert_eq!(answered.agent, Some(agent("bob")), "agent: the first value wins");
    assert_eq!(
        stored.customer_call_sid,
        Some(customer_leg),
        "customer_call_sid is set when unset"
    );
    assert_eq!(
        stored.conference_sid,
        Some(conference),
        "conference_sid is set when unset"
    );
    assert_eq!(
        stored.end_reason.as_deref(),
        Some("customer-hung-up"),
        "end_reason: the first value wins"
    );
    assert_eq!(
        stored.duration_seconds,
        Some(42),
        "duration_seconds: the first value wins"
    );
    assert_eq!(stored.notes.as_deref(), Some("second notes"), "notes are overwritten");
    assert_eq!(
        stored.disposition.as_deref(),
        Some("sale"),
        "disposition is overwritten"
    );
    assert_eq!(stored.state, session.state, "update_call does not touch the state");
    assert_eq!(stored.reached, session.reached, "nor the reached times");

    let missing = store.update_call(&ws, &CallId::generate(), &first).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "updating a missing session must be NotFound, got {missing:?}"
    );
}

pub async fn claim_step<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("step");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    create(store, &session).await;
    let id = &session.id;

    let times: Vec<Timestamp> = (0..RACERS).map(|_| clock.later()).collect();
    let claims = join_all(times.iter().map(|at| store.claim_step(&ws, id, "dial-customer", *at))).await;
    let winners: Vec<Timestamp> = claims
        .into_iter()
        .zip(&times)
        .filter_map(|(claim, at)| claim.expect("claim_step").then_some(*at))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {RACERS} racing claims must win, {} did",
        winners.len()
    );

    let again = store.claim_step(&ws, id, "dial-customer", clock.later()).await;
    assert!(!again.expect("claim_step"), "a claimed step stays claimed");
    let other = store.claim_step(&ws, id, "end-conference", clock.later()).await;
    assert!(other.expect("claim_step"), "another step is claimed on its own");

    let stored = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(
        stored.steps.get("dial-customer"),
        Some(&winners[0]),
        "the winner's time is recorded"
    );
    assert!(stored.steps.contains_key("end-conference"));
    assert_eq!(stored.state, session.state, "claiming does not touch the state");

    let missing = store
        .claim_step(&ws, &CallId::generate(), "dial-customer", clock.later())
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "claiming a step of a missing session must be NotFound, got {missing:?}"
    );
}

pub async fn recordings<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("rec");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    create(store, &session).await;
    let id = &session.id;
    let sid = RecordingSid::parse(&format!("RE{}", random_hex())).expect("a valid RecordingSid");
    let pending = Recording::new(sid.clone(), RecordingStatus::Pending, clock.later());

    let racing = join_all((0..RACERS).map(|_| store.put_recording(&ws, id, &pending))).await;
    let new = racing
        .into_iter()
        .filter(|r| *r.as_ref().expect("put_recording"))
        .count();
    assert_eq!(new, 1, "exactly one of {RACERS} racing puts of one recording is new");

    let mut stored = pending.clone();
    stored.status = RecordingStatus::Stored;
    stored.size = Some(1234);
    stored.stored_at = Some(clock.later());
    assert!(
        !store.put_recording(&ws, id, &stored).await.expect("put_recording"),
        "a recording is put once"
    );
    let session_now = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(
        session_now.recordings.get(sid.as_str()),
        Some(&pending),
        "a second put leaves the first entry"
    );

    store
        .update_recording(&ws, id, &stored)
        .await
        .expect("update_recording");
    let session_now = get_call(store, &ws, id).await.expect("the session exists");
    assert_eq!(
        session_now.recordings.get(sid.as_str()),
        Some(&stored),
        "update_recording replaces the entry"
    );
    assert_eq!(session_now.state, session.state, "recordings do not touch the state");

    let missing = store.put_recording(&ws, &CallId::generate(), &pending).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "putting a recording on a missing session must be NotFound, got {missing:?}"
    );
    let missing = store.update_recording(&ws, &CallId::generate(), &stored).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "updating a recording of a missing session must be NotFound, got {missing:?}"
    );
}

/// The primitive every rule goes through: a change that changes nothing
/// writes nothing; one that does is stamped once; racing changes each see
/// the others' results (none is lost).
pub async fn modify_call<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("mod");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    create(store, &session).await;
    let id = &session.id;

    let unchanged = store.modify_call(&ws, id, &|_| {}).await.expect("modify_call");
    assert_eq!(unchanged.before, unchanged.after, "a change that changes nothing");
    assert_eq!(
        get_call(store, &ws, id).await,
        Some(session.clone()),
        "writes nothing, not even the stamps"
    );

    let changed = store
        .modify_call(&ws, id, &|s| s.notes = Some("one".into()))
        .await
        .expect("modify_call");
    assert_eq!(changed.before, session, "before is the stored session");
    assert_eq!(changed.after.notes.as_deref(), Some("one"));
    assert_eq!(changed.after.version, session.version + 1, "stamped once");
    assert!(changed.after.updated_at > session.updated_at, "updated_at grows");
    assert_eq!(
        get_call(store, &ws, id).await,
        Some(changed.after.clone()),
        "after is what is stored"
    );

    // Racing changes to different fields of one session: none is lost.
    let steps: Vec<String> = (0..RACERS).map(|i| format!("step-{i}")).collect();
    let at = clock.later();
    let claims: Vec<_> = steps
        .iter()
        .map(|step| {
            move |s: &mut CallSession| {
                s.claim(step, at);
            }
        })
        .collect();
    let results = join_all(claims.iter().map(|claim| store.modify_call(&ws, id, claim))).await;
    for result in results {
        result.expect("modify_call");
    }
    let stored = get_call(store, &ws, id).await.expect("the session exists");
    for step in &steps {
        assert!(stored.steps.contains_key(step), "racing change {step} was lost");
    }
    assert_eq!(
        stored.version,
        changed.after.version + RACERS as u64,
        "each racing change is one version"
    );

    let missing = store.modify_call(&ws, &CallId::generate(), &|s| s.notes = None).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "modifying a missing session must be NotFound, got {missing:?}"
    );
}

pub async fn timeline<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("tl");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    let neighbour = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    create(store, &session).await;
    create(store, &neighbour).await;
    let id = &session.id;

    assert!(
        timeline_of(store, &ws, id).await.is_empty(),
        "a new session has an empty timeline"
    );

    let (t1, t2, t3) = (clock.later(), clock.later(), clock.later());
    // Keys whose text order is not time order ("10" < "8"), as sequence numbers give.
    let initiated = event("CA1:8", t1, "initiated");
    let ringing = event("CA1:9", t2, "ringing");
    let answered = event("CA1:10", t3, "answered");

    // Twilio delivers out of order: the timeline is ordered by when things happened.
    assert!(append(store, &ws, id, &answered).await, "a new event is appended");
    assert!(append(store, &ws, id, &initiated).await);
    assert!(append(store, &ws, id, &ringing).await);

    // A duplicate delivery (even with different details) is not appended.
    let mut duplicate = ringing.clone();
    duplicate.at = clock.later();
    duplicate.detail.insert("SequenceNumber".into(), "99".into());
    assert!(
        !append(store, &ws, id, &duplicate).await,
        "a duplicate key is not appended"
    );

    let racing = event("CF1:participant-join:CA1", clock.later(), "participant-join");
    let results = join_all((0..RACERS).map(|_| store.append_event(&ws, id, &racing))).await;
    let new = results
        .into_iter()
        .filter(|r| *r.as_ref().expect("append_event"))
        .count();
    assert_eq!(new, 1, "exactly one of {RACERS} racing appends of one key is new");

    assert_eq!(
        timeline_of(store, &ws, id).await,
        vec![initiated, ringing, answered, racing],
        "the timeline is oldest first, once per key"
    );
    assert!(
        timeline_of(store, &ws, &neighbour.id).await.is_empty(),
        "events stay with their session"
    );
}

pub async fn list_calls<S: Store + ?Sized>(store: &S) {
    use CallState::*;

    let ws = fresh_workspace("list");
    let (alice, bob) = (agent("alice"), agent("bob"));
    let mut clock = Clock::new();

    let oldest = clock.session(&ws, Direction::Outbound, Some(alice.clone()));
    let ringing = clock.session(&ws, Direction::Inbound, Some(bob.clone()));
    let talking = clock.session(&ws, Direction::Outbound, Some(alice.clone()));
    let done = clock.session(&ws, Direction::Outbound, Some(bob.clone()));
    let newest = clock.session(&ws, Direction::Inbound, None);
    for session in [&oldest, &ringing, &talking, &done, &newest] {
        create(store, session).await;
    }
    advance(store, &ws, &ringing.id, Ringing, clock.later()).await;
    advance(store, &ws, &talking.id, InProgress, clock.later()).await;
    advance(store, &ws, &done.id, Completed, clock.later()).await;

    let ids = |sessions: &[&CallSession]| sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>();

    let all = ids(&[&newest, &done, &talking, &ringing, &oldest]);
    let first = store
        .list_calls(
            &ws,
            &CallQuery {
                limit: 2,
                ..CallQuery::default()
            },
        )
        .await
        .expect("list_calls");
    assert_eq!(first.items.len(), 2, "an unfiltered page is full");
    assert!(first.next.is_some(), "a full page with more behind it has a cursor");
    assert_eq!(
        first.items[0],
        get_call(store, &ws, &newest.id).await.expect("exists"),
        "items are whole sessions"
    );

    for limit in [1, 2, 3, 5, 10] {
        let query = CallQuery {
            limit,
            ..CallQuery::default()
        };
        assert_eq!(
            all_calls(store, &ws, query).await,
            all,
            "newest first, every session once (limit {limit})"
        );
    }

    let cases = [
        (
            CallQuery {
                agent: Some(alice.clone()),
                ..CallQuery::default()
            },
            ids(&[&talking, &oldest]),
        ),
        (
            CallQuery {
                agent: Some(bob.clone()),
                ..CallQuery::default()
            },
            ids(&[&done, &ringing]),
        ),
        (
            CallQuery {
                direction: Some(Direction::Inbound),
                ..CallQuery::default()
            },
            ids(&[&newest, &ringing]),
        ),
        (
            CallQuery {
                direction: Some(Direction::Outbound),
                ..CallQuery::default()
            },
            ids(&[&done, &talking, &oldest]),
        ),
        (
            CallQuery {
                state: Some(Created),
                ..CallQuery::default()
            },
            ids(&[&newest, &oldest]),
        ),
        (
            CallQuery {
                state: Some(Completed),
                ..CallQuery::default()
            },
            ids(&[&done]),
        ),
        (
            CallQuery {
                state: Some(Busy),
                ..CallQuery::default()
            },
            vec![],
        ),
        (
            CallQuery {
                agent: Some(alice.clone()),
                direction: Some(Direction::Outbound),
                state: Some(InProgress),
                ..CallQuery::default()
            },
            ids(&[&talking]),
        ),
        (
            CallQuery {
                agent: Some(agent("nobody")),
                ..CallQuery::default()
            },
            vec![],
        ),
    ];
    for (query, expected) in cases {
        for limit in [1, 2, 50] {
            let query = CallQuery { limit, ..query.clone() };
            assert_eq!(
                all_calls(store, &ws, query.clone()).await,
                expected,
                "filtered listing {query:?}"
            );
        }
    }

    let garbage = CallQuery {
        limit: 2,
        cursor: Some("!!not a cursor!!".into()),
        ..CallQuery::default()
    };
    let result = store.list_calls(&ws, &garbage).await;
    assert!(
        matches!(result, Err(StoreError::InvalidCursor(_))),
        "a cursor that is not one of ours is InvalidCursor, got {result:?}"
    );

    let empty = fresh_workspace("list");
    let page = store
        .list_calls(
            &empty,
            &CallQuery {
                limit: 10,
                ..CallQuery::default()
            },
        )
        .await
        .expect("list_calls");
    assert!(
        page.items.is_empty() && page.next.is_none(),
        "an empty workspace lists nothing: {page:?}"
    );
}

/// Every listed session in change order, from `since`, `limit` at a time.
async fn all_changed_calls<S: Store + ?Sized>(
    store: &S,
    ws: &WorkspaceId,
    since: Timestamp,
    limit: usize,
) -> Vec<(CallId, Timestamp)> {
    let mut query = ChangesQuery {
        since,
        limit,
        cursor: None,
    };
    let mut seen = Vec::new();
    for _ in 0..100 {
        let page = store.calls_changed(ws, &query).await.expect("calls_changed");
        assert!(page.items.len() <= limit, "a page holds at most `limit`");
        seen.extend(page.items.iter().map(|s| (s.id.clone(), s.updated_at)));
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return seen,
        }
    }
    panic!("calls_changed never ended");
}

/// What changed, oldest change first, from a moment on: objects that change
/// again move to the end; two objects that share a moment are both listed,
/// across pages; a moment is inclusive; another workspace sees nothing.
pub async fn calls_changed<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("chg");
    let other = fresh_workspace("chg");
    let mut clock = Clock::new();
    let start = clock.later();
    // Five sessions, two created in the very same millisecond.
    let mut sessions = Vec::new();
    for i in 0..5 {
        let mut session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
        if i == 3 {
            session.created_at = sessions
                .last()
                .map_or(session.created_at, |s: &CallSession| s.created_at);
            session.updated_at = session.created_at;
            session.reached = BTreeMap::from([(CallState::Created, session.created_at)]);
        }
        create(store, &session).await;
        sessions.push(session);
    }
    create(store, &clock.session(&other, Direction::Outbound, Some(agent("bob")))).await;

    let listed = all_changed_calls(store, &ws, start, 2).await;
    let ids: Vec<CallId> = listed.iter().map(|(id, _)| id.clone()).collect();
    let mut expected: Vec<&CallSession> = sessions.iter().collect();
    expected.sort_by(|a, b| (a.updated_at, a.id.as_str()).cmp(&(b.updated_at, b.id.as_str())));
    assert_eq!(
        ids,
        expected.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        "every session, oldest change first, ties in id order, none lost across pages of 2"
    );

    // One changes again: it is listed once, at its new moment.
    let changed = store
        .modify_call(&ws, &sessions[4].id, &|s| s.notes = Some("later".into()))
        .await
        .expect("modify_call");
    let listed = all_changed_calls(store, &ws, start, 2).await;
    assert_eq!(listed.len(), 5, "a changed session is listed once: {listed:?}");
    assert!(
        listed.contains(&(sessions[4].id.clone(), changed.after.updated_at)),
        "{listed:?}"
    );
    assert!(
        listed
            .windows(2)
            .all(|w| (w[0].1, w[0].0.as_str()) < (w[1].1, w[1].0.as_str())),
        "still in change order: {listed:?}"
    );

    // From exactly a change's moment: it is listed (inclusive), with
    // everything after it.
    let since = changed.after.updated_at;
    let from_it = all_changed_calls(store, &ws, since, 10).await;
    assert_eq!(from_it, [(sessions[4].id.clone(), since)], "a moment is inclusive");
    let after_all = all_changed_calls(store, &ws, since.plus_millis(1), 10).await;
    assert!(after_all.is_empty(), "nothing changed after the last change");

    // A shared millisecond at a page boundary: both are listed.
    let tie = sessions[3].updated_at;
    let at_tie = all_changed_calls(store, &ws, tie, 1).await;
    let tied: Vec<_> = at_tie.iter().filter(|(_, at)| *at == tie).collect();
    assert_eq!(
        tied.len(),
        2,
        "both sessions of the shared millisecond, one page each: {at_tie:?}"
    );

    let bad = store
        .calls_changed(
            &ws,
            &ChangesQuery {
                since: start,
                limit: 1,
                cursor: Some("%%%".into()),
            },
        )
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor(_))), "{bad:?}");
    let theirs = all_changed_calls(store, &other, start, 10).await;
    assert_eq!(theirs.len(), 1, "the other workspace lists only its own");
}

pub async fn messages_changed<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("mchg");
    let mut clock = Clock::new();
    let (ours, theirs) = (fresh_number(), fresh_number());
    let start = clock.later();
    let first = clock.message(&ws, Direction::Inbound, &theirs, &ours);
    let second = clock.message(&ws, Direction::Outbound, &ours, &theirs);
    for message in [&first, &second] {
        assert!(store.put_message(message).await.expect("put_message"));
    }
    let ws_ref = &ws;
    let list = |since: Timestamp| async move {
        store
            .messages_changed(
                ws_ref,
                &ChangesQuery {
                    since,
                    limit: 10,
                    cursor: None,
                },
            )
            .await
            .expect("messages_changed")
            .items
            .into_iter()
            .map(|m| m.sid)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(start).await,
        [first.sid.clone(), second.sid.clone()],
        "oldest change first"
    );
    assert!(
        store
            .advance_message_status(&ws, &first.sid, &MessageStatus::Read)
            .await
            .expect("advance_message_status")
    );
    let moved = get_message(store, &ws, &first.sid).await.expect("the message exists");
    let listed = list(start).await;
    let expected_order = if moved.updated_at > second.updated_at {
        [second.sid.clone(), first.sid.clone()]
    } else {
        [first.sid.clone(), second.sid.clone()]
    };
    assert_eq!(listed, expected_order, "in the order they last changed, each once");
    assert_eq!(
        list(moved.updated_at).await.first(),
        Some(&first.sid),
        "a status change is listed from its own moment"
    );
}

pub async fn call_sid_links<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("sid");
    let mut clock = Clock::new();
    let session = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    let other = clock.session(&ws, Direction::Outbound, Some(agent("alice")));
    create(store, &session).await;
    create(store, &other).await;
    let (agent_leg, customer_leg) = (call_sid(), call_sid());

    assert_eq!(
        by_sid(store, &ws, &agent_leg).await,
        None,
        "an unknown CallSid maps to nothing"
    );
    link(store, &ws, &agent_leg, &session.id).await;
    link(store, &ws, &customer_leg, &session.id).await;
    assert_eq!(by_sid(store, &ws, &agent_leg).await, Some(session.id.clone()));
    assert_eq!(
        by_sid(store, &ws, &customer_leg).await,
        Some(session.id.clone()),
        "a session has many legs"
    );

    link(store, &ws, &agent_leg, &session.id).await;
    link(store, &ws, &agent_leg, &other.id).await;
    assert_eq!(
        by_sid(store, &ws, &agent_leg).await,
        Some(session.id.clone()),
        "the first link wins"
    );

    let racing = call_sid();
    let results = join_all(
        [&session.id, &other.id]
            .repeat(RACERS / 2)
            .into_iter()
            .map(|id| store.link_call_sid(&ws, &racing, id)),
    )
    .await;
    for result in results {
        result.expect("link_call_sid");
    }
    let winner = by_sid(store, &ws, &racing).await.expect("a racing link sticks");
    assert!(
        winner == session.id || winner == other.id,
        "the link is one of the racers'"
    );
    for _ in 0..3 {
        assert_eq!(
            by_sid(store, &ws, &racing).await,
            Some(winner.clone()),
            "and it does not change"
        );
    }
}

// ---------------------------------------------------------------------------
// Messages

pub async fn messages<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("msg");
    let mut clock = Clock::new();
    let (ours, theirs) = (fresh_number(), fresh_number());
    let message = clock.message(&ws, Direction::Inbound, &theirs, &ours);

    assert_eq!(
        get_message(store, &ws, &message.sid).await,
        None,
        "a fresh sid has no message"
    );
    assert!(
        store.put_message(&message).await.expect("put_message"),
        "a new message is stored"
    );
    assert_eq!(
        get_message(store, &ws, &message.sid).await,
        Some(message.clone()),
        "put then get"
    );

    let mut redelivered = message.clone();
    redelivered.body = "something else".into();
    redelivered.status = MessageStatus::Delivered;
    assert!(
        !store.put_message(&redelivered).await.expect("put_message"),
        "a sid is stored once"
    );
    assert_eq!(
        get_message(store, &ws, &message.sid).await,
        Some(message.clone()),
        "the first one stays"
    );

    let racing = clock.message(&ws, Direction::Inbound, &theirs, &ours);
    let results = join_all((0..RACERS).map(|_| store.put_message(&racing))).await;
    let new = results
        .into_iter()
        .filter(|r| *r.as_ref().expect("put_message"))
        .count();
    assert_eq!(new, 1, "exactly one of {RACERS} racing puts of one sid is new");

    assert!(
        store
            .advance_message_status(&ws, &message.sid, &MessageStatus::Read)
            .await
            .expect("advance_message_status"),
        "a later status moves the message"
    );
    let stored = get_message(store, &ws, &message.sid).await.expect("the message exists");
    assert_eq!(
        stored.status,
        MessageStatus::Read,
        "advance_message_status sets the status"
    );
    assert_eq!(stored.version, message.version + 1, "one change, one version");
    assert!(stored.updated_at > message.updated_at, "a change moves updated_at");
    assert_eq!(
        Message {
            version: message.version,
            updated_at: message.updated_at,
            ..stored.clone()
        },
        Message {
            status: MessageStatus::Read,
            ..message.clone()
        },
        "and nothing else"
    );
    assert!(
        !store
            .advance_message_status(&ws, &message.sid, &MessageStatus::Delivered)
            .await
            .expect("advance_message_status"),
        "an earlier status does not move it back"
    );
    assert_eq!(
        get_message(store, &ws, &message.sid).await,
        Some(stored),
        "and writes nothing"
    );

    // Racing reports of one text: it ends at the furthest, whatever the order.
    let raced = clock.message(&ws, Direction::Outbound, &ours, &theirs);
    assert!(store.put_message(&raced).await.expect("put_message"));
    let statuses = [
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Sent,
        MessageStatus::Queued,
    ];
    let moved = join_all(
        statuses
            .iter()
            .map(|status| store.advance_message_status(&ws, &raced.sid, status)),
    )
    .await;
    assert!(moved.into_iter().all(|r| r.is_ok()), "advance_message_status");
    let stored = get_message(store, &ws, &raced.sid).await.expect("the message exists");
    assert_eq!(
        stored.status,
        MessageStatus::Delivered,
        "racing statuses end at the furthest"
    );

    let missing = store
        .advance_message_status(&ws, &message_sid(), &MessageStatus::Delivered)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "advance_message_status on a missing message must be NotFound, got {missing:?}"
    );
}

pub async fn list_messages<S: Store + ?Sized>(store: &S) {
    use Direction::*;

    let ws = fresh_workspace("lmsg");
    let mut clock = Clock::new();
    let (main, second) = (fresh_number(), fresh_number());
    let (carol, dave) = (fresh_number(), fresh_number());

    let m0 = clock.message(&ws, Inbound, &carol, &main);
    let m1 = clock.message(&ws, Outbound, &main, &carol);
    let m2 = clock.message(&ws, Inbound, &dave, &second);
    let m3 = clock.message(&ws, Outbound, &second, &carol);
    let m4 = clock.message(&ws, Inbound, &dave, &main);
    // Stored out of order: the listing follows `created_at`, not arrival.
    for message in [&m2, &m0, &m4, &m1, &m3] {
        assert!(store.put_message(message).await.expect("put_message"));
    }
    let sids = |messages: &[&Message]| messages.iter().map(|m| m.sid.clone()).collect::<Vec<_>>();

    let first = store
        .list_messages(
            &ws,
            &MessageQuery {
                limit: 2,
                ..MessageQuery::default()
            },
        )
        .await
        .expect("list_messages");
    assert_eq!(
        first.items,
        vec![m4.clone(), m3.clone()],
        "newest first, whole messages, a full page"
    );
    assert!(first.next.is_some(), "a full page with more behind it has a cursor");

    let all = sids(&[&m4, &m3, &m2, &m1, &m0]);
    for limit in [1, 2, 3, 5, 10] {
        let query = MessageQuery {
            limit,
            ..MessageQuery::default()
        };
        assert_eq!(
            all_messages(store, &ws, query).await,
            all,
            "newest first, each once (limit {limit})"
        );
    }

    let number = |n: &E164| Some(n.as_str().to_owned());
    let cases = [
        (
            MessageQuery {
                number: number(&main),
                ..MessageQuery::default()
            },
            sids(&[&m4, &m1, &m0]),
        ),
        (
            MessageQuery {
                number: number(&second),
                ..MessageQuery::default()
            },
            sids(&[&m3, &m2]),
        ),
        (
            MessageQuery {
                counterpart: number(&carol),
                ..MessageQuery::default()
            },
            sids(&[&m3, &m1, &m0]),
        ),
        (
            MessageQuery {
                counterpart: number(&dave),
                ..MessageQuery::default()
            },
            sids(&[&m4, &m2]),
        ),
        (
            MessageQuery {
                number: number(&main),
                counterpart: number(&dave),
                ..MessageQuery::default()
            },
            sids(&[&m4]),
        ),
        (
            MessageQuery {
                number: number(&fresh_number()),
                ..MessageQuery::default()
            },
            vec![],
        ),
    ];
    for (query, expected) in cases {
        for limit in [1, 2, 50] {
            let query = MessageQuery { limit, ..query.clone() };
            assert_eq!(
                all_messages(store, &ws, query.clone()).await,
                expected,
                "filtered listing {query:?}"
            );
        }
    }

    let garbage = MessageQuery {
        limit: 2,
        cursor: Some("!!not a cursor!!".into()),
        ..MessageQuery::default()
    };
    let result = store.list_messages(&ws, &garbage).await;
    assert!(
        matches!(result, Err(StoreError::InvalidCursor(_))),
        "a cursor that is not one of ours is InvalidCursor, got {result:?}"
    );
}

// ---------------------------------------------------------------------------
// Idempotency

pub async fn idempotency<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("idem");
    let ttl = Duration::from_secs(3600);
    let key = format!("key-{}", Ulid::new());

    assert_eq!(
        remember(store, &ws, &key, "first", ttl).await,
        "first",
        "the first value is stored"
    );
    assert_eq!(
        remember(store, &ws, &key, "second", ttl).await,
        "first",
        "the first value wins"
    );
    assert_eq!(
        remember(store, &ws, "another-key", "other", ttl).await,
        "other",
        "keys are independent"
    );

    let racing = format!("race-{}", Ulid::new());
    let values: Vec<String> = (0..RACERS).map(|i| format!("value-{i}")).collect();
    let results = join_all(values.iter().map(|v| store.remember(&ws, &racing, v, ttl))).await;
    let results: Vec<String> = results.into_iter().map(|r| r.expect("remember")).collect();
    assert!(
        values.contains(&results[0]),
        "the stored value is one of the racers': {:?}",
        results[0]
    );
    assert!(
        results.iter().all(|r| *r == results[0]),
        "every racer sees the same value: {results:?}"
    );
    assert_eq!(
        remember(store, &ws, &racing, "late", ttl).await,
        results[0],
        "and it stays"
    );
}

/// Waits a few seconds: a record is remembered for `ttl` only.
pub async fn idempotency_expires<S: Store + ?Sized>(store: &S) {
    let ws = fresh_workspace("ttl");
    let key = format!("key-{}", Ulid::new());

    assert_eq!(
        remember(store, &ws, &key, "early", Duration::from_secs(1)).await,
        "early"
    );
    assert_eq!(
        remember(store, &ws, &key, "ignored", Duration::from_secs(1)).await,
        "early",
        "within its ttl"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        remember(store, &ws, &key, "later", Duration::from_secs(3600)).await,
        "later",
        "an expired record counts as absent"
    );
    assert_eq!(
        remember(store, &ws, &key, "ignored", Duration::from_secs(3600)).await,
        "later",
        "and is replaced"
    );
}

// ---------------------------------------------------------------------------
// Tenant isolation

/// Two workspaces whose ids share a prefix (`acme…` and `acme…-corp`) hold the
/// same kinds of data, and never see each other's.
pub async fn tenant_isolation<S: Store + ?Sized>(store: &S) {
    let acme = fresh_workspace("acme");
    let corp = WorkspaceId::parse(&format!("{acme}-corp")).expect("a valid workspace id");
    let mut clock = Clock::new();

    let mut data = Vec::new();
    for ws in [&acme, &corp] {
        let mut workspace = Workspace::new(ws.clone());
        let account = account_sid();
        workspace.twilio = Some(twilio_account(account.clone()));
        put_workspace(store, &workspace).await;

        let our_number = fresh_number();
        replace(store, ws, &[number(&our_number, None)]).await;

        let session = clock.session(ws, Direction::Outbound, Some(agent("alice")));
        create(store, &session).await;
        let leg = call_sid();
        link(store, ws, &leg, &session.id).await;
        let event = event("shared-key", clock.later(), "initiated");
        assert!(append(store, ws, &session.id, &event).await);

        let message = clock.message(ws, Direction::Inbound, &fresh_number(), &our_number);
        assert!(store.put_message(&message).await.expect("put_message"));

        data.push((workspace, account, our_number, session, leg, message));
    }

    let ttl = Duration::from_secs(3600);
    assert_eq!(remember(store, &acme, "same-key", "acme's", ttl).await, "acme's");
    assert_eq!(
        remember(store, &corp, "same-key", "corp's", ttl).await,
        "corp's",
        "idempotency keys are per workspace"
    );

    let everything = |limit| CallQuery {
        limit,
        ..CallQuery::default()
    };
    for (mine, theirs) in [(0, 1), (1, 0)] {
        let (workspace, account, our_number, session, leg, message) = &data[mine];
        let ws = &workspace.id;
        let (_, _, their_number, their_session, their_leg, their_message) = &data[theirs];

        assert_eq!(
            get_workspace(store, ws).await.as_ref(),
            Some(workspace),
            "{ws}: its own workspace"
        );
        assert_eq!(
            by_account(store, account).await.as_ref(),
            Some(ws),
            "{ws}: its own account"
        );
        assert_eq!(
            by_number(store, our_number).await.as_ref(),
            Some(ws),
            "{ws}: its own number"
        );

        assert_eq!(
            list_numbers(store, ws).await,
            vec![number(our_number, None)],
            "{ws}: only its numbers"
        );
        assert_eq!(
            get_number(store, ws, their_number).await,
            None,
            "{ws}: not the other's number"
        );
        let foreign = store.update_number(ws, &number(their_number, None)).await;
        assert!(
            matches!(foreign, Err(StoreError::NotFound(_))),
            "{ws}: cannot update the other's number"
        );

        assert_eq!(
            get_call(store, ws, &their_session.id).await,
            None,
            "{ws}: not the other's session"
        );
        let listed = store.list_calls(ws, &everything(50)).await.expect("list_calls");
        assert_eq!(listed.items, vec![session.clone()], "{ws}: lists only its sessions");
        let moved = store
            .advance_call(ws, &their_session.id, CallState::Completed, clock.later())
            .await;
        assert!(
            matches!(moved, Err(StoreError::NotFound(_))),
            "{ws}: cannot advance the other's session"
        );
        let updated = store.update_call(ws, &their_session.id, &CallUpdate::default()).await;
        assert!(
            matches!(updated, Err(StoreError::NotFound(_))),
            "{ws}: cannot update the other's session"
        );
        assert_eq!(
            timeline_of(store, ws, &their_session.id).await,
            vec![],
            "{ws}: not the other's timeline"
        );
        assert_eq!(
            timeline_of(store, ws, &session.id).await.len(),
            1,
            "{ws}: its own timeline"
        );
        assert_eq!(
            by_sid(store, ws, leg).await.as_ref(),
            Some(&session.id),
            "{ws}: its own leg"
        );
        assert_eq!(by_sid(store, ws, their_leg).await, None, "{ws}: not the other's leg");

        assert_eq!(
            get_message(store, ws, &their_message.sid).await,
            None,
            "{ws}: not the other's message"
        );
        let listed = store
            .list_messages(
                ws,
                &MessageQuery {
                    limit: 50,
                    ..MessageQuery::default()
                },
            )
            .await
            .expect("list_messages");
        assert_eq!(listed.items, vec![message.clone()], "{ws}: lists only its messages");
        let status = store
            .advance_message_status(ws, &their_message.sid, &MessageStatus::Read)
            .await;
        assert!(
            matches!(status, Err(StoreError::NotFound(_))),
            "{ws}: cannot touch the other's message"
        );
    }

    // Nothing the checks above tried leaked into the other workspace.
    let (_, _, _, corp_session, _, corp_message) = &data[1];
    let stored = get_call(store, &corp, &corp_session.id).await.expect("exists");
    assert_eq!(&stored, corp_session, "the other's session is untouched");
    let stored = get_message(store, &corp, &corp_message.sid).await.expect("exists");
    assert_eq!(&stored, corp_message, "the other's message is untouched");
}

// ---------------------------------------------------------------------------
// Fixtures

/// A workspace id no other run uses.
fn fresh_workspace(prefix: &str) -> WorkspaceId {
    let id = format!("{prefix}{}", Ulid::new().to_string().to_lowercase());
    WorkspaceId::parse(&id).expect("a valid workspace id")
}

fn random_hex() -> String {
    format!("{:032x}", Ulid::new().0)
}

fn account_sid() -> AccountSid {
    AccountSid::parse(&format!("AC{}", random_hex())).expect("a valid Account SID")
}

fn call_sid() -> CallSid {
    CallSid::parse(&format!("CA{}", random_hex())).expect("a valid CallSid")
}

fn conference_sid() -> ConferenceSid {
    ConferenceSid::parse(&format!("CF{}", random_hex())).expect("a valid ConferenceSid")
}

fn message_sid() -> MessageSid {
    MessageSid::parse(&format!("SM{}", random_hex())).expect("a valid MessageSid")
}

fn phone_number_sid() -> PhoneNumberSid {
    PhoneNumberSid::parse(&format!("PN{}", random_hex())).expect("a valid PhoneNumberSid")
}

fn agent(name: &str) -> AgentId {
    AgentId::parse(name).expect("a valid agent id")
}

/// A random valid US number. Numbers are global (one owner each), so every run
/// needs its own.
fn fresh_number() -> E164 {
    const AREA_CODES: [u16; 8] = [206, 212, 303, 312, 404, 415, 512, 617];
    for _ in 0..1000 {
        let random = Ulid::new().random();
        let area = AREA_CODES[(random % 8) as usize];
        let exchange = 2 + (random / 8) % 8;
        let line = (random / 64) % 1_000_000;
        if let Ok(number) = E164::parse(&format!("+1{area}{exchange}{line:06}")) {
            return number;
        }
    }
    panic!("no valid random phone number in 1000 tries");
}

fn number(number: &E164, sid: Option<PhoneNumberSid>) -> PhoneNumber {
    PhoneNumber {
        number: number.clone(),
        sid,
        agents: Vec::new(),
        label: None,
    }
}

fn twilio_account(account_sid: AccountSid) -> TwilioAccount {
    TwilioAccount {
        account_sid,
        auth_token: Sealed(vec![1, 2, 3, 4]),
        api_key: None,
        twiml_app_sid: None,
    }
}

fn event(key: &str, at: Timestamp, kind: &str) -> TimelineEvent {
    TimelineEvent {
        key: key.into(),
        at,
        kind: kind.into(),
        detail: BTreeMap::from([("CallStatus".to_owned(), kind.to_owned())]),
    }
}

/// `items` in an order picked by `seed` (Fisher-Yates driven by xorshift64*):
/// the same seed gives the same order on every run and platform.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut state = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut items = items.to_vec();
    for i in (1..items.len()).rev() {
        let bound = u64::try_from(i + 1).expect("a small slice");
        let j = usize::try_from(next() % bound).expect("below the slice length");
        items.swap(i, j);
    }
    items
}

fn sorted(mut numbers: Vec<PhoneNumber>) -> Vec<PhoneNumber> {
    numbers.sort_by(|a, b| a.number.cmp(&b.number));
    numbers
}

/// Hands out strictly increasing whole-millisecond times, and session ids that
/// sort the same way as their `created_at` (so "newest first" means one thing
/// whether an adapter orders by id or by time).
struct Clock {
    ms: u64,
}

impl Clock {
    fn new() -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        Self {
            ms: u64::try_from(now).expect("a time after 1970"),
        }
    }

    fn later(&mut self) -> Timestamp {
        self.ms += 1000;
        let nanos = i128::from(self.ms) * 1_000_000;
        Timestamp::from_datetime(OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("a representable time"))
    }

    fn session(&mut self, ws: &WorkspaceId, direction: Direction, agent: Option<AgentId>) -> CallSession {
        let at = self.later();
        let mut session = CallSession::new(
            ws.clone(),
            direction,
            agent,
            "+15005550006".into(),
            "+15005550001".into(),
            at,
        );
        let id = Ulid::from_parts(self.ms, Ulid::new().random()).to_string();
        session.id = CallId::parse(&id).expect("a valid call id");
        session.conference = format!("sb-{}", session.id);
        session
    }

    fn message(&mut self, ws: &WorkspaceId, direction: Direction, from: &E164, to: &E164) -> Message {
        let at = self.later();
        Message {
            sid: message_sid(),
            workspace: ws.clone(),
            direction,
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
            body: format!("hello from {from}"),
            media_urls: vec!["https://example.com/cat.jpg".into()],
            status: MessageStatus::Received,
            agent: None,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }
}

// ---------------------------------------------------------------------------
// Shorthands that fail the check on a store error

async fn get_workspace<S: Store + ?Sized>(store: &S, id: &WorkspaceId) -> Option<Workspace> {
    store.get_workspace(id).await.expect("get_workspace")
}

async fn put_workspace<S: Store + ?Sized>(store: &S, workspace: &Workspace) {
    store.put_workspace(workspace).await.expect("put_workspace");
}

async fn by_account<S: Store + ?Sized>(store: &S, sid: &AccountSid) -> Option<WorkspaceId> {
    store.workspace_by_account(sid).await.expect("workspace_by_account")
}

async fn replace<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, numbers: &[PhoneNumber]) {
    store.replace_numbers(ws, numbers).await.expect("replace_numbers");
}

async fn update<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, number: &PhoneNumber) {
    store.update_number(ws, number).await.expect("update_number");
}

async fn list_numbers<S: Store + ?Sized>(store: &S, ws: &WorkspaceId) -> Vec<PhoneNumber> {
    store.list_numbers(ws).await.expect("list_numbers")
}

async fn get_number<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, number: &E164) -> Option<PhoneNumber> {
    store.get_number(ws, number).await.expect("get_number")
}

async fn by_number<S: Store + ?Sized>(store: &S, number: &E164) -> Option<WorkspaceId> {
    store.workspace_by_number(number).await.expect("workspace_by_number")
}

async fn create<S: Store + ?Sized>(store: &S, session: &CallSession) {
    store.create_call(session).await.expect("create_call");
}

async fn get_call<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, id: &CallId) -> Option<CallSession> {
    store.get_call(ws, id).await.expect("get_call")
}

async fn advance<S: Store + ?Sized>(
    store: &S,
    ws: &WorkspaceId,
    id: &CallId,
    state: CallState,
    at: Timestamp,
) -> Advance {
    store.advance_call(ws, id, state, at).await.expect("advance_call")
}

async fn append<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, id: &CallId, event: &TimelineEvent) -> bool {
    store.append_event(ws, id, event).await.expect("append_event")
}

async fn timeline_of<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, id: &CallId) -> Vec<TimelineEvent> {
    store.timeline(ws, id).await.expect("timeline")
}

async fn link<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, sid: &CallSid, id: &CallId) {
    store.link_call_sid(ws, sid, id).await.expect("link_call_sid");
}

async fn by_sid<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, sid: &CallSid) -> Option<CallId> {
    store.call_by_sid(ws, sid).await.expect("call_by_sid")
}

async fn get_message<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, sid: &MessageSid) -> Option<Message> {
    store.get_message(ws, sid).await.expect("get_message")
}

async fn remember<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, key: &str, value: &str, ttl: Duration) -> String {
    store.remember(ws, key, value, ttl).await.expect("remember")
}

/// Every page of a listing, following cursors; checks the page rules on the way.
async fn all_calls<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, mut query: CallQuery) -> Vec<CallId> {
    let mut ids = Vec::new();
    for _ in 0..100 {
        let page = store.list_calls(ws, &query).await.expect("list_calls");
        assert!(
            page.items.len() <= query.limit,
            "a page holds at most `limit` items: {query:?}"
        );
        ids.extend(page.items.into_iter().map(|s| s.id));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => return ids,
        }
    }
    panic!("list_calls kept returning cursors: {query:?}");
}

async fn all_messages<S: Store + ?Sized>(store: &S, ws: &WorkspaceId, mut query: MessageQuery) -> Vec<MessageSid> {
    let mut sids = Vec::new();
    for _ in 0..100 {
        let page = store.list_messages(ws, &query).await.expect("list_messages");
        assert!(
            page.items.len() <= query.limit,
            "a page holds at most `limit` items: {query:?}"
        );
        sids.extend(page.items.into_iter().map(|m| m.sid));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => return sids,
        }
    }
    panic!("list_messages kept returning cursors: {query:?}");
}

/// Drives all the futures at once on the current task and returns their
/// outputs in order. Good enough to race store calls against each other: each
/// one reaches the backend (a blocking thread, an HTTP request) before any
/// finishes. Saves the suite a `futures` dependency and a `'static` store.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("every future finished"))
        .collect()
}
