//! Conferences as Twilio runs them: a `<Dial><Conference>` joins (creating
//! the conference with the first participant's callbacks), a participant
//! with `startConferenceOnEnter` starts it (and its recording), one with
//! `endConferenceOnExit` leaving ends it for everyone, as does the last one
//! leaving or `Status=completed`; each change is reported to the
//! conference's status callback with Twilio's parameters.
//!
//! Changes are made under the state lock and return the callbacks to send,
//! which the caller delivers in order once the lock is released.

use std::time::{Duration, Instant};

use crate::state::{
    Conference, ConferenceHooks, Participant, Recording, State, events_or_completed, lock, now, unix_now,
};
use crate::twilio::{RecordingClock, Signal, Twilio};
use crate::twiml::Node;

/// One webhook to send.
#[derive(Debug, Clone)]
pub(crate) struct Callback {
    pub account: String,
    pub url: String,
    pub method: String,
    pub params: Vec<(String, String)>,
}

/// The callbacks a change causes: now (conference events), and a moment
/// later (recordings, which Twilio processes first).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub now: Vec<Callback>,
    pub later: Vec<Callback>,
}

impl Outcome {
    fn extend(&mut self, other: Outcome) {
        self.now.extend(other.now);
        self.later.extend(other.later);
    }
}

/// Sends `outcome`'s callbacks: the immediate ones in order (awaited), the
/// recording ones after Twilio's processing time (in the background).
pub(crate) async fn deliver(twilio: &std::sync::Arc<Twilio>, outcome: Outcome) {
    for callback in outcome.now {
        twilio
            .webhook(&callback.account, &callback.url, &callback.method, callback.params)
            .await;
    }
    if !outcome.later.is_empty() {
        let twilio = twilio.clone();
        tokio::spawn(async move {
            twilio.sleep(Duration::from_secs(1)).await;
            for callback in outcome.later {
                twilio
                    .webhook(&callback.account, &callback.url, &callback.method, callback.params)
                    .await;
            }
        });
    }
}

/// `call_sid` joins the conference `<Conference>` names (creating it).
/// Returns the conference's SID.
pub(crate) fn join(twilio: &Twilio, call_sid: &str, noun: &Node) -> (String, Outcome) {
    let mut state = twilio.lock();
    let account = state.call(call_sid).map(|c| c.account_sid.clone()).unwrap_or_default();
    let name = noun.trimmed_text().to_owned();
    let existing = state
        .conferences
        .iter()
        .position(|c| c.account_sid == account && c.friendly_name == name && c.status != "completed");
    let index = match existing {
        Some(index) => index,
        None => {
            let sid = state.new_sid("CF");
            let hooks = ConferenceHooks {
                status_callback: noun.attr("statusCallback").map(str::to_owned),
                status_callback_method: noun.method("statusCallbackMethod"),
                events: noun.list("statusCallbackEvent"),
                record_from_start: noun.attr("record") == Some("record-from-start"),
                recording_status_callback: noun.attr("recordingStatusCallback").map(str::to_owned),
                recording_status_callback_method: noun.method("recordingStatusCallbackMethod"),
                recording_events: events_or_completed(noun.list("recordingStatusCallbackEvent")),
            };
            state
                .conferences
                .push(Conference::new(sid, &account, &name, "init", hooks));
            state.conferences.len() - 1
        }
    };
    let mut participant = Participant::new(call_sid);
    participant.muted = noun.flag("muted", false);
    let starts = noun.flag("startConferenceOnEnter", true);
    let ends = noun.flag("endConferenceOnExit", false);
    participant
        .other
        .insert("start_conference_on_enter".into(), starts.to_string());
    participant
        .other
        .insert("end_conference_on_exit".into(), ends.to_string());
    if let Some(coached) = noun.attr("coach") {
        participant.other.insert("coaching".into(), "true".into());
        participant.other.insert("call_sid_to_coach".into(), coached.to_owned());
    }
    if let Some(label) = noun.attr("participantLabel") {
        participant.other.insert("label".into(), label.to_owned());
    }

    let mut outcome = Outcome::default();
    let sid = state.conferences[index].sid.clone();
    state.conferences[index].participants.push(participant.clone());
    state.conferences[index].date_updated = now();
    outcome.now.extend(event(
        &mut state.conferences[index],
        "participant-join",
        Some(&participant),
        &[],
    ));
    if starts && state.conferences[index].status != "in-progress" {
        state.conferences[index].status = "in-progress".into();
        outcome
            .now
            .extend(event(&mut state.conferences[index], "conference-start", None, &[]));
        start_recording(twilio, &mut state, index);
    }
    (sid, outcome)
}

/// Records the conference from now, if its TwiML asked to.
fn start_recording(twilio: &Twilio, state: &mut State, index: usize) {
    if !state.conferences[index].hooks.record_from_start || state.conferences[index].recording_sid.is_some() {
        return;
    }
    let sid = state.new_sid("RE");
    let conference = &mut state.conferences[index];
    conference.recording = Some("in-progress".into());
    conference.recording_sid = Some(sid.clone());
    let recording = Recording {
        sid: sid.clone(),
        account_sid: conference.account_sid.clone(),
        call_sid: None,
        conference_sid: Some(conference.sid.clone()),
        source: "Conference".into(),
        status: "in-progress".into(),
        duration: 0,
        date_created: now(),
        date_updated: now(),
    };
    state.recordings.push(recording);
    lock(&twilio.recording_clocks).insert(
        sid,
        RecordingClock {
            started: Instant::now(),
            paused_at: None,
            skipped: Duration::ZERO,
            skip_pauses: false,
        },
    );
}

/// A conference recording paused or resumed over REST.
pub(crate) fn recording_changed(twilio: &Twilio, conference: &str, status: &str, skip: bool) {
    let Some(sid) = twilio
        .lock()
        .conferences
        .iter()
        .find(|c| c.sid == conference)
        .and_then(|c| c.recording_sid.clone())
    else {
        return;
    };
    {
        let mut clocks = lock(&twilio.recording_clocks);
        let Some(clock) = clocks.get_mut(&sid) else { return };
        match (status, clock.paused_at) {
            ("paused", None) => {
                clock.paused_at = Some(Instant::now());
                clock.skip_pauses = skip;
            }
            ("in-progress", Some(paused)) => {
                if clock.skip_pauses {
                    clock.skipped += paused.elapsed();
                }
                clock.paused_at = None;
            }
            _ => {}
        }
    }
    if let Some(recording) = twilio.lock().recordings.iter_mut().find(|r| r.sid == sid) {
        recording.status = status.to_owned();
    }
}

/// `call_sid` leaves (hung up, redirected): its conference may end with it.
pub(crate) fn leave(twilio: &Twilio, conference: &str, call_sid: &str, reason: &str) -> Outcome {
    let mut state = twilio.lock();
    let Some(index) = state.conferences.iter().position(|c| c.sid == conference) else {
        return Outcome::default();
    };
    let Some(position) = state.conferences[index]
        .participants
        .iter()
        .position(|p| p.call_sid == call_sid)
    else {
        // Gone already: the conference ended, or REST took it out.
        return Outcome::default();
    };
    let left = state.conferences[index].participants.remove(position);
    after_removal(twilio, &mut state, index, &left, reason)
}

/// REST `DELETE …/Participants/{CallSid}`: the participant is out (the state
/// says so already); its leg's `<Dial>` ends.
pub(crate) fn removed(twilio: &Twilio, conference: &str, participant: &Participant) -> Outcome {
    twilio.signal(&participant.call_sid, Signal::ConferenceOver);
    let mut state = twilio.lock();
    let Some(index) = state.conferences.iter().position(|c| c.sid == conference) else {
        return Outcome::default();
    };
    after_removal(twilio, &mut state, index, participant, "participant_updated_via_api")
}

fn after_removal(twilio: &Twilio, state: &mut State, index: usize, left: &Participant, reason: &str) -> Outcome {
    let mut outcome = Outcome::default();
    outcome.now.extend(event(
        &mut state.conferences[index],
        "participant-leave",
        Some(left),
        &[("ReasonParticipantLeft", reason)],
    ));
    let conference = &state.conferences[index];
    let started = conference.status == "in-progress";
    if conference.participants.is_empty() {
        outcome.extend(end(twilio, state, index, None, "last-participant-left"));
    } else if started && left.end_conference_on_exit() {
        outcome.extend(end(
            twilio,
            state,
            index,
            Some(&left.call_sid),
            "participant-with-end-conference-on-exit-left",
        ));
    }
    outcome
}

/// REST `Status=completed`: the participants are out (the state says so);
/// everyone is told, and their legs' `<Dial>` end.
pub(crate) fn ended_via_api(twilio: &Twilio, conference: &str, participants: &[Participant]) -> Outcome {
    let mut state = twilio.lock();
    let Some(index) = state.conferences.iter().position(|c| c.sid == conference) else {
        return Outcome::default();
    };
    state.conferences[index].participants = participants.to_vec();
    end(twilio, &mut state, index, None, "conference-ended-via-api")
}

/// Ends the conference at `index`: everyone still in it leaves, each leg's
/// `<Dial>` ends, the recording (if any) completes.
fn end(twilio: &Twilio, state: &mut State, index: usize, ending: Option<&str>, reason: &str) -> Outcome {
    let mut outcome = Outcome::default();
    let remaining = std::mem::take(&mut state.conferences[index].participants);
    for participant in &remaining {
        outcome.now.extend(event(
            &mut state.conferences[index],
            "participant-leave",
            Some(participant),
            &[("ReasonParticipantLeft", "conference_ended")],
        ));
        twilio.signal(&participant.call_sid, Signal::ConferenceOver);
    }
    let conference = &mut state.conferences[index];
    conference.status = "completed".into();
    conference.date_updated = now();
    let mut extra = vec![("ReasonConferenceEnded", reason)];
    if let Some(call) = ending {
        extra.push(("CallSidEndingConference", call));
    }
    outcome.now.extend(event(conference, "conference-end", None, &extra));

    if let Some(recording_sid) = conference.recording_sid.clone() {
        conference.recording = Some("completed".into());
        let clock = lock(&twilio.recording_clocks).remove(&recording_sid);
        let duration = clock.map_or(0, |clock| {
            let mut audio = clock.started.elapsed().saturating_sub(clock.skipped);
            if let (Some(paused), true) = (clock.paused_at, clock.skip_pauses) {
                audio = audio.saturating_sub(paused.elapsed());
            }
            twilio.simulated(audio).max(1)
        });
        let hooks = conference.hooks.clone();
        let (account, conference_sid) = (conference.account_sid.clone(), conference.sid.clone());
        if let Some(recording) = state.recordings.iter_mut().find(|r| r.sid == recording_sid) {
            recording.status = "completed".into();
            recording.duration = duration;
            recording.date_updated = now();
        }
        if let Some(url) = hooks
            .recording_status_callback
            .filter(|_| hooks.recording_events.iter().any(|e| e == "completed"))
        {
            outcome.later.push(Callback {
                account: account.clone(),
                url,
                method: hooks.recording_status_callback_method,
                params: recording_params(
                    twilio,
                    &account,
                    &recording_sid,
                    None,
                    Some(&conference_sid),
                    duration,
                    "Conference",
                ),
            });
        }
    }
    outcome
}

/// A participant's hold, mute or coaching changed over REST.
pub(crate) fn participant_updated(
    twilio: &Twilio,
    conference: &str,
    before: &Participant,
    after: &Participant,
) -> Outcome {
    let mut state = twilio.lock();
    let Some(conference) = state.conferences.iter_mut().find(|c| c.sid == conference) else {
        return Outcome::default();
    };
    let mut outcome = Outcome::default();
    let toggles = [
        (before.hold, after.hold, "participant-hold", "participant-unhold"),
        (before.muted, after.muted, "participant-mute", "participant-unmute"),
    ];
    for (was, is, on, off) in toggles {
        if was != is {
            let name = if is { on } else { off };
            outcome.now.extend(event(conference, name, Some(after), &[]));
        }
    }
    if before.other != after.other {
        outcome
            .now
            .extend(event(conference, "participant-modify", Some(after), &[]));
    }
    outcome
}

/// The TwiML event name (`statusCallbackEvent`) that asks for an event.
fn requested_by(event: &str) -> &'static str {
    match event {
        "conference-start" => "start",
        "conference-end" => "end",
        "participant-join" => "join",
        "participant-leave" => "leave",
        "participant-hold" | "participant-unhold" => "hold",
        "participant-mute" | "participant-unmute" => "mute",
        _ => "modify",
    }
}

/// The callback for one conference event, if the conference asked for it.
fn event(
    conference: &mut Conference,
    name: &str,
    participant: Option<&Participant>,
    extra: &[(&str, &str)],
) -> Option<Callback> {
    let url = conference.hooks.status_callback.clone()?;
    if !conference.hooks.events.iter().any(|e| e == requested_by(name)) {
        return None;
    }
    conference.sequence += 1;
    let mut params: Vec<(String, String)> = vec![
        ("AccountSid".into(), conference.account_sid.clone()),
        ("ConferenceSid".into(), conference.sid.clone()),
        ("FriendlyName".into(), conference.friendly_name.clone()),
        ("StatusCallbackEvent".into(), name.into()),
        ("SequenceNumber".into(), conference.sequence.to_string()),
        ("Timestamp".into(), now()),
    ];
    if let Some(p) = participant {
        params.extend([
            ("CallSid".into(), p.call_sid.clone()),
            ("Muted".into(), p.muted.to_string()),
            ("Hold".into(), p.hold.to_string()),
            ("Coaching".into(), p.coaching().to_string()),
            ("EndConferenceOnExit".into(), p.end_conference_on_exit().to_string()),
            (
                "StartConferenceOnEnter".into(),
                p.start_conference_on_enter().to_string(),
            ),
        ]);
        if let Some(label) = p.other.get("label") {
            params.push(("ParticipantLabel".into(), label.clone()));
        }
    }
    params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Some(Callback {
        account: conference.account_sid.clone(),
        url,
        method: conference.hooks.status_callback_method.clone(),
        params,
    })
}

/// A recording status callback's parameters (`completed`).
pub(crate) fn recording_params(
    twilio: &Twilio,
    account: &str,
    recording: &str,
    call: Option<&str>,
    conference: Option<&str>,
    duration: u64,
    source: &str,
) -> Vec<(String, String)> {
    let mut params = vec![
        ("AccountSid".to_owned(), account.to_owned()),
        ("RecordingSid".to_owned(), recording.to_owned()),
        ("RecordingUrl".to_owned(), twilio.recording_url(account, recording)),
        ("RecordingStatus".to_owned(), "completed".to_owned()),
        ("RecordingDuration".to_owned(), duration.to_string()),
        ("RecordingChannels".to_owned(), "1".to_owned()),
        ("RecordingSource".to_owned(), source.to_owned()),
        (
            "RecordingStartTime".to_owned(),
            crate::state::rfc2822(unix_now().saturating_sub(duration)),
        ),
        ("ErrorCode".to_owned(), "0".to_owned()),
    ];
    params.push(("CallSid".to_owned(), call.unwrap_or_default().to_owned()));
    if let Some(conference) = conference {
        params.push(("ConferenceSid".to_owned(), conference.to_owned()));
    }
    params
}
