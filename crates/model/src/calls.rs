//! The call model: one session per customer-agent conversation, held in a
//! Twilio conference, moving forward only through its states. The rules of a
//! session are methods here; a store only makes them atomic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CallId, CallSid, ConferenceSid, WorkspaceId};
use crate::recordings::Recording;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallState {
    Created,
    Dialing,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
    Abandoned,
}

impl CallState {
    pub const ALL: [CallState; 10] = [
        Self::Created,
        Self::Dialing,
        Self::Ringing,
        Self::InProgress,
        Self::Completed,
        Self::Busy,
        Self::NoAnswer,
        Self::Failed,
        Self::Canceled,
        Self::Abandoned,
    ];

    /// Position in the forward-only order. Every terminal state shares the
    /// last rank, so one terminal state never replaces another.
    pub fn rank(self) -> u8 {
        match self {
            Self::Created => 0,
            Self::Dialing => 1,
            Self::Ringing => 2,
            Self::InProgress => 3,
            _ => 4,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 4
    }

    /// Whether a session in `self` may move to `next`.
    pub fn can_advance_to(self, next: CallState) -> bool {
        next.rank() > self.rank()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Dialing => "dialing",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Outbound, Self::Inbound]
            .into_iter()
            .find(|d| d.as_str() == value)
    }
}

/// What a participant of the call's conference is to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The person outside: the one an agent calls, or the caller.
    Customer,
    /// An agent's browser: rung for an inbound call, or placing a call.
    Agent,
    /// A supervisor listening, whispering or barging.
    Supervisor,
    /// Someone a call is being transferred to.
    Transfer,
}

impl Role {
    /// Labels are `customer`, `agent-1`, `supervisor-2`, `transfer-1`, …:
    /// named by Switchboard, never by user input.
    fn label_prefix(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::Supervisor => "supervisor",
            Self::Transfer => "transfer",
        }
    }
}

/// Where a participant's leg stands. It moves forward only: ringing, then
/// in the conference, then gone; or from ringing straight to an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegState {
    Ringing,
    /// Answered (or connected), not yet in the conference.
    Answered,
    Joined,
    Left,
    NoAnswer,
    Busy,
    Failed,
    /// Stopped ringing: someone else answered, or the caller left.
    Canceled,
    /// Answered after someone else did: told so, and hung up.
    Refused,
}

impl LegState {
    fn rank(self) -> u8 {
        match self {
            Self::Ringing => 0,
            Self::Answered => 1,
            Self::Joined => 2,
            _ => 3,
        }
    }

    pub fn is_over(self) -> bool {
        self.rank() == 3
    }
}

/// What a supervisor's leg does in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MonitorMode {
    /// Hears everyone, is heard by nobody (a muted participant).
    Listen,
    /// Heard by the call's agent only (coaching).
    Whisper,
    /// A full participant.
    Barge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMode {
    /// The customer waits on hold while the agents talk; then the first agent hands over.
    Warm,
    /// The first agent leaves as soon as the target answers.
    Cold,
}

/// Whom a call is transferred to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransferTarget {
    Agent(AgentId),
    Number(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferState {
    Ringing,
    /// The target answered (a warm transfer: they talk with the first agent).
    Talking,
    Completed,
    Failed,
    Canceled,
}

impl TransferState {
    pub fn is_active(self) -> bool {
        matches!(self, Self::Ringing | Self::Talking)
    }
}

/// A transfer of the call, under way or done (the last one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// The target's participant label (`transfer-1`, …).
    pub label: String,
    pub mode: TransferMode,
    pub to: TransferTarget,
    pub state: TransferState,
    /// Who asked for it.
    pub by: AgentId,
    /// The participant label of the agent handing the call over.
    pub from_label: Option<String>,
    pub started_at: Timestamp,
}

/// Why a transfer cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferRefused {
    #[error("only a connected call can be transferred")]
    NotConnected,
    #[error("a transfer of this call is under way")]
    UnderWay,
}

/// One leg of the call's conference, as Switchboard knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub label: String,
    pub role: Role,
    /// The agent whose browser this is (agents and supervisors).
    #[serde(default)]
    pub agent: Option<AgentId>,
    /// The phone number of a customer or an outside transfer target.
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub call_sid: Option<CallSid>,
    pub state: LegState,
    #[serde(default)]
    pub held: bool,
    #[serde(default)]
    pub muted: bool,
    /// The first moment each state was reached.
    #[serde(default)]
    pub reached: BTreeMap<LegState, Timestamp>,
    /// A supervisor's mode.
    #[serde(default)]
    pub monitor: Option<MonitorMode>,
}

/// A call session as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSession {
    #[serde(rename = "callId")]
    pub id: CallId,
    pub workspace: WorkspaceId,
    pub direction: Direction,
    /// The agent who placed it, or who answered it.
    pub agent: Option<AgentId>,
    pub from: String,
    pub to: String,
    /// The conference's friendly name (unique per session).
    pub conference: String,
    pub state: CallState,
    /// The first moment each state was reached.
    #[serde(default)]
    pub reached: BTreeMap<CallState, Timestamp>,
    pub created_at: Timestamp,
    /// When anything about the session last changed: strictly growing.
    pub updated_at: Timestamp,
    /// Counts the stored changes: what a store compares to make a change atomic.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub agent_call_sid: Option<CallSid>,
    #[serde(default)]
    pub customer_call_sid: Option<CallSid>,
    #[serde(default)]
    pub conference_sid: Option<ConferenceSid>,
    /// "Do this once" steps already claimed (for example `dial-customer`).
    #[serde(default)]
    pub steps: BTreeMap<String, Timestamp>,
    #[serde(default)]
    pub end_reason: Option<String>,
    #[serde(default)]
    pub duration_seconds: Option<u32>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub disposition: Option<String>,
    /// Recordings of the call (and voicemails), by RecordingSid.
    #[serde(default)]
    pub recordings: BTreeMap<String, Recording>,
    /// Every leg of the conference, by label (`customer`, `agent-1`, …).
    #[serde(default)]
    pub participants: BTreeMap<String, Participant>,
    /// The label of the agent leg that answered an inbound call (the first).
    #[serde(default)]
    pub answered_by: Option<String>,
    /// The label of the call's agent's leg now (`agent-1`; after a transfer,
    /// `transfer-1`): the one whose leaving ends the call.
    #[serde(default)]
    pub agent_label: Option<String>,
    /// The current or last transfer.
    #[serde(default)]
    pub transfer: Option<Transfer>,
    /// The conference is recorded from its start (the workspace's setting
    /// when the call began).
    #[serde(default)]
    pub recorded: bool,
    /// The conference recording is paused (a card number is being read).
    #[serde(default)]
    pub recording_paused: bool,
}

/// What `CallSession::advance` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The session moved to the new state.
    Moved { from: CallState },
    /// The session was already there or further (a duplicate or a late event).
    Unchanged { current: CallState },
}

/// The "do this once" step that dials an outbound call's customer; claiming
/// it any other way (the agent left, the session expired) makes sure they are
/// never dialed.
pub const DIAL_CUSTOMER: &str = "dial-customer";
/// The "do this once" step that takes an inbound caller nobody answered out
/// of the waiting room into voicemail. Once it is claimed no agent can
/// answer, and once an agent answered it cannot be claimed.
pub const TO_VOICEMAIL: &str = "to-voicemail";

/// The conference each session's legs meet in: unique per session.
pub fn conference_name(id: &CallId) -> String {
    format!("sb-{id}")
}

impl CallSession {
    pub fn new(
        workspace: WorkspaceId,
        direction: Direction,
        agent: Option<AgentId>,
        from: String,
        to: String,
        now: Timestamp,
    ) -> Self {
        let id = CallId::generate();
        Self {
            conference: conference_name(&id),
            id,
            workspace,
            direction,
            agent,
            from,
            to,
            state: CallState::Created,
            reached: BTreeMap::from([(CallState::Created, now)]),
            created_at: now,
            updated_at: now,
            version: 1,
            agent_call_sid: None,
            customer_call_sid: None,
            conference_sid: None,
            steps: BTreeMap::new(),
            end_reason: None,
            duration_seconds: None,
            notes: None,
            disposition: None,
            recordings: BTreeMap::new(),
            participants: BTreeMap::new(),
            answered_by: None,
            agent_label: None,
            transfer: None,
            recorded: false,
            recording_paused: false,
        }
    }

    /// The same session under an id chosen up front (idempotent creation).
    pub fn with_id(mut self, id: CallId) -> Self {
        self.conference = conference_name(&id);
        self.id = id;
        self
    }

    pub fn is_outbound(&self) -> bool {
        self.direction == Direction::Outbound
    }

    /// The customer's number: the one called, or the caller's.
    pub fn customer_number(&self) -> &str {
        if self.is_outbound() { &self.to } else { &self.from }
    }

    /// The workspace's number the call is on: the one it was placed from,
    /// or the one that was called.
    pub fn our_number(&self) -> &str {
        if self.is_outbound() { &self.from } else { &self.to }
    }

    /// Applies one report "the call was in `state` at `at`". Twilio delivers
    /// them at least once, in any order, and the session ends up the same
    /// whatever the order and however many duplicates:
    ///
    /// - the state moves forward only (`CallState::can_advance_to`); terminal
    ///   states share the top rank, so none is ever overwritten;
    /// - `reached[state]` keeps the earliest `at` ever reported for `state`,
    ///   whether or not the state moved (a late `ringing` after `in-progress`
    ///   still records when it rang).
    ///
    /// Only `state` depends on order, and only when reports name two
    /// different terminal states (the first to arrive stays).
    pub fn advance(&mut self, state: CallState, at: Timestamp) -> Advance {
        if self.reached.get(&state).is_none_or(|recorded| at < *recorded) {
            self.reached.insert(state, at);
        }
        if !self.state.can_advance_to(state) {
            return Advance::Unchanged { current: self.state };
        }
        let from = self.state;
        self.state = state;
        Advance::Moved { from }
    }

    /// Merges `update`: the legs' SIDs, the answering agent, why it ended and
    /// how long it took keep the first value Twilio gave; notes and
    /// disposition, the agent's own fields, take the latest.
    pub fn apply(&mut self, update: &CallUpdate) {
        fill(&mut self.agent, update.agent.as_ref());
        fill(&mut self.agent_call_sid, update.agent_call_sid.as_ref());
        fill(&mut self.customer_call_sid, update.customer_call_sid.as_ref());
        fill(&mut self.conference_sid, update.conference_sid.as_ref());
        fill(&mut self.end_reason, update.end_reason.as_ref());
        fill(&mut self.duration_seconds, update.duration_seconds.as_ref());
        if update.notes.is_some() {
            self.notes.clone_from(&update.notes);
        }
        if update.disposition.is_some() {
            self.disposition.clone_from(&update.disposition);
        }
    }

    /// Claims a "do this once" step: true the first time only.
    pub fn claim(&mut self, step: &str, at: Timestamp) -> bool {
        if self.steps.contains_key(step) {
            return false;
        }
        self.steps.insert(step.to_owned(), at);
        true
    }

    /// Gives a claimed step back (a token another caller may take): true if
    /// it was claimed.
    pub fn release(&mut self, step: &str) -> bool {
        self.steps.remove(step).is_some()
    }

    /// Makes sure the customer is never dialed: if the dial step is still
    /// unclaimed, claims it and ends the session `abandoned` with `reason`.
    /// True if it did.
    pub fn abandon(&mut self, at: Timestamp, reason: &str) -> bool {
        if !self.claim(DIAL_CUSTOMER, at) {
            return false;
        }
        self.advance(CallState::Abandoned, at);
        self.apply(&CallUpdate {
            end_reason: Some(reason.into()),
            ..CallUpdate::default()
        });
        true
    }

    /// Adds a recording once per RecordingSid: true if it was new; an
    /// existing entry stays as it is.
    pub fn add_recording(&mut self, recording: &Recording) -> bool {
        if self.recordings.contains_key(recording.sid.as_str()) {
            return false;
        }
        self.recordings.insert(recording.sid.to_string(), recording.clone());
        true
    }

    /// Replaces a recording entry (the copy's progress and result).
    pub fn replace_recording(&mut self, recording: &Recording) {
        self.recordings.insert(recording.sid.to_string(), recording.clone());
    }

    /// The label the next participant of `role` gets: `customer` for the
    /// (one) customer, `agent-1`, `agent-2`, … for the others.
    pub fn next_label(&self, role: Role) -> String {
        let prefix = role.label_prefix();
        if role == Role::Customer {
            return prefix.to_owned();
        }
        let taken = self.participants.values().filter(|p| p.role == role).count();
        (taken + 1..)
            .map(|n| format!("{prefix}-{n}"))
            .find(|label| !self.participants.contains_key(label))
            .unwrap_or_else(|| format!("{prefix}-{}", taken + 1))
    }

    /// Adds a participant, ringing, under `label`, once: a label that exists
    /// is left as it is. True if it was new.
    pub fn add_participant(
        &mut self,
        label: &str,
        role: Role,
        agent: Option<AgentId>,
        number: Option<String>,
        at: Timestamp,
    ) -> bool {
        if self.participants.contains_key(label) {
            return false;
        }
        let participant = Participant {
            label: label.to_owned(),
            role,
            agent,
            number,
            call_sid: None,
            state: LegState::Ringing,
            held: false,
            muted: false,
            reached: BTreeMap::from([(LegState::Ringing, at)]),
            monitor: None,
        };
        self.participants.insert(label.to_owned(), participant);
        true
    }

    /// Which leg a CallSid is, first one linked wins. False if there is no
    /// such participant.
    pub fn link_participant(&mut self, label: &str, sid: &CallSid) -> bool {
        let Some(participant) = self.participants.get_mut(label) else {
            return false;
        };
        if participant.call_sid.is_none() {
            participant.call_sid = Some(sid.clone());
        }
        true
    }

    /// The participant whose leg is `sid`.
    pub fn participant_by_sid(&self, sid: &CallSid) -> Option<&Participant> {
        self.participants.values().find(|p| p.call_sid.as_ref() == Some(sid))
    }

    /// A report that a participant's leg was in `state` at `at`, with the
    /// rules of the session's own state: it moves forward only, and each
    /// state keeps the earliest time reported. False if there is no such
    /// participant.
    pub fn move_participant(&mut self, label: &str, state: LegState, at: Timestamp) -> bool {
        let Some(participant) = self.participants.get_mut(label) else {
            return false;
        };
        if participant.reached.get(&state).is_none_or(|recorded| at < *recorded) {
            participant.reached.insert(state, at);
        }
        if state.rank() > participant.state.rank() {
            participant.state = state;
        }
        true
    }

    /// An agent leg answered an inbound call: the first one to answer wins
    /// the call (it becomes the call's agent), true; any later one is told
    /// it was taken, false (and its leg is `refused`).
    /// Only an agent leg that was rung can answer: any other label is
    /// refused and nothing changes.
    pub fn answer(&mut self, label: &str, at: Timestamp) -> bool {
        let Some(agent) = self
            .participants
            .get(label)
            .filter(|p| p.role == Role::Agent)
            .map(|p| p.agent.clone())
        else {
            return false;
        };
        if self.answered_by.is_none() && (self.steps.contains_key(TO_VOICEMAIL) || self.state.is_terminal()) {
            // Too late: the caller went to voicemail, or hung up.
            self.move_participant(label, LegState::Refused, at);
            return false;
        }
        match &self.answered_by {
            Some(winner) => {
                let won = winner == label;
                if !won {
                    self.move_participant(label, LegState::Refused, at);
                }
                won
            }
            None => {
                self.answered_by = Some(label.to_owned());
                self.agent_label = Some(label.to_owned());
                self.move_participant(label, LegState::Answered, at);
                if self.agent.is_none() {
                    self.agent = agent;
                }
                true
            }
        }
    }

    /// The agent legs still ringing (to stop once someone answered, or the
    /// caller left).
    pub fn ringing_agents(&self) -> Vec<&Participant> {
        self.participants
            .values()
            .filter(|p| p.role == Role::Agent && p.state == LegState::Ringing)
            .collect()
    }

    /// Takes a caller nobody answered to voicemail, once: true for the one
    /// caller that may move them (a claimed step), false if someone answered,
    /// an agent leg still rings, or it is done already.
    pub fn to_voicemail(&mut self, at: Timestamp) -> bool {
        self.nobody_answered() && self.claim(TO_VOICEMAIL, at)
    }

    /// Nobody answered, and nobody can any more: every agent leg that was
    /// rung is over, and none was answered.
    pub fn nobody_answered(&self) -> bool {
        let mut agents = self.participants.values().filter(|p| p.role == Role::Agent).peekable();
        self.answered_by.is_none() && agents.peek().is_some() && agents.all(|p| p.state.is_over())
    }

    /// Starts a transfer to a new participant `label`, ringing.
    pub fn start_transfer(
        &mut self,
        label: &str,
        mode: TransferMode,
        to: TransferTarget,
        by: AgentId,
        at: Timestamp,
    ) -> Result<(), TransferRefused> {
        if self.state != CallState::InProgress {
            return Err(TransferRefused::NotConnected);
        }
        if self.active_transfer().is_some() {
            return Err(TransferRefused::UnderWay);
        }
        let (agent, number) = match &to {
            TransferTarget::Agent(agent) => (Some(agent.clone()), None),
            TransferTarget::Number(number) => (None, Some(number.clone())),
        };
        self.add_participant(label, Role::Transfer, agent, number, at);
        self.transfer = Some(Transfer {
            label: label.to_owned(),
            mode,
            to,
            state: TransferState::Ringing,
            by,
            from_label: self.agent_label.clone(),
            started_at: at,
        });
        Ok(())
    }

    /// The active transfer, if any.
    pub fn active_transfer(&self) -> Option<&Transfer> {
        self.transfer.as_ref().filter(|t| t.state.is_active())
    }

    /// The participant `label` joined: if it is the active transfer's
    /// target, the transfer moves on to talking.
    pub fn transfer_joined(&mut self, label: &str) {
        if let Some(transfer) = self
            .transfer
            .as_mut()
            .filter(|t| t.state == TransferState::Ringing && t.label == label)
        {
            transfer.state = TransferState::Talking;
        }
    }

    /// Ends the active transfer as `state` (failed, canceled); a completed one
    /// goes through `complete_transfer`. True if there was one.
    pub fn end_transfer(&mut self, state: TransferState) -> bool {
        match self.transfer.as_mut().filter(|t| t.state.is_active()) {
            Some(transfer) => {
                transfer.state = state;
                true
            }
            None => false,
        }
    }

    /// Hands the call to the transfer's target: it becomes the call's agent
    /// (an outside number: the call has no agent of its own any more). True
    /// the first time.
    pub fn complete_transfer(&mut self) -> bool {
        let Some(transfer) = self.transfer.as_mut().filter(|t| t.state.is_active()) else {
            return false;
        };
        transfer.state = TransferState::Completed;
        let (label, to) = (transfer.label.clone(), transfer.to.clone());
        self.agent = match to {
            TransferTarget::Agent(agent) => Some(agent),
            TransferTarget::Number(_) => None,
        };
        self.agent_call_sid = self.participants.get(&label).and_then(|p| p.call_sid.clone());
        self.agent_label = Some(label);
        true
    }

    /// The placing agent's browser connected to an outbound call: it is the
    /// call's first agent, `agent-1`, answered at once.
    pub fn connect_placing_agent(&mut self, sid: &CallSid, at: Timestamp) {
        const LABEL: &str = "agent-1";
        let agent = self.agent.clone();
        self.add_participant(LABEL, Role::Agent, agent, None, at);
        self.link_participant(LABEL, sid);
        self.move_participant(LABEL, LegState::Answered, at);
        fill(&mut self.agent_label, Some(&LABEL.to_owned()));
    }

    /// The leg of the call's agent now (the one who placed or answered it,
    /// or took it over in a transfer).
    pub fn agent_leg(&self) -> Option<&Participant> {
        self.participants.get(self.agent_label.as_deref()?)
    }

    /// Whether the agent handing the call over in the active transfer has
    /// left it.
    fn transferring_agent_left(&self) -> bool {
        self.active_transfer()
            .and_then(|t| self.participants.get(t.from_label.as_deref()?))
            .is_some_and(|p| p.state.is_over())
    }

    /// The transfer target joined: a cold transfer (or one whose
    /// transferring agent is gone already) hands over at once. True if it
    /// should be handed over now.
    pub fn hands_over_on_join(&self, label: &str) -> bool {
        self.active_transfer()
            .is_some_and(|t| t.label == label && (t.mode == TransferMode::Cold || self.transferring_agent_left()))
    }

    /// Mutes a participant or unmutes it. False if there is none.
    pub fn set_muted(&mut self, label: &str, muted: bool) -> bool {
        match self.participants.get_mut(label) {
            Some(participant) => {
                participant.muted = muted;
                true
            }
            None => false,
        }
    }

    /// Sets a supervisor's mode (listen is a muted participant). False if
    /// there is no such supervisor.
    pub fn set_monitor(&mut self, label: &str, mode: MonitorMode) -> bool {
        match self.participants.get_mut(label).filter(|p| p.role == Role::Supervisor) {
            Some(participant) => {
                participant.monitor = Some(mode);
                participant.muted = mode == MonitorMode::Listen;
                true
            }
            None => false,
        }
    }

    /// The legs rung into the call that have not answered yet (transfer
    /// targets, supervisors): to stop when the call ends.
    pub fn ringing_side_legs(&self) -> Vec<&Participant> {
        self.participants
            .values()
            .filter(|p| matches!(p.role, Role::Transfer | Role::Supervisor) && p.state < LegState::Joined)
            .collect()
    }

    /// The supervisor leg of `agent`, if one is in the call (or ringing).
    pub fn supervisor_of(&self, agent: &AgentId) -> Option<&Participant> {
        self.participants
            .values()
            .find(|p| p.role == Role::Supervisor && p.agent.as_ref() == Some(agent) && !p.state.is_over())
    }

    /// Puts a participant on hold, or takes it off. False if there is none.
    pub fn set_held(&mut self, label: &str, held: bool) -> bool {
        match self.participants.get_mut(label) {
            Some(participant) => {
                participant.held = held;
                true
            }
            None => false,
        }
    }

    /// Marks the session as changed since `before`: one more version, and an
    /// `updated_at` later than the one before.
    pub fn touch(&mut self, before: &CallSession) {
        self.version = before.version + 1;
        self.updated_at = Timestamp::after(before.updated_at);
    }

    /// Whether the two differ in anything but the change stamps.
    pub fn differs_from(&self, other: &CallSession) -> bool {
        let stamped = |s: &CallSession| CallSession {
            version: 0,
            updated_at: s.created_at,
            ..s.clone()
        };
        stamped(self) != stamped(other)
    }
}

/// Sets `field` from `value` unless it already has one.
fn fill<T: Clone>(field: &mut Option<T>, value: Option<&T>) {
    if field.is_none() {
        *field = value.cloned();
    }
}

/// One thing that happened to a call, as Twilio told us.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    /// Identifies the event across duplicate deliveries (for example
    /// `<CallSid>:<SequenceNumber>` or `<ConferenceSid>:<event>:<CallSid>`).
    pub key: String,
    pub at: Timestamp,
    pub kind: String,
    #[serde(default)]
    pub detail: BTreeMap<String, String>,
}

/// Fields set on a session after it is created. `None` leaves a field as it
/// is; see `CallSession::apply` for which ones stick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallUpdate {
    /// The agent who answered an inbound call.
    pub agent: Option<AgentId>,
    pub agent_call_sid: Option<CallSid>,
    pub customer_call_sid: Option<CallSid>,
    pub conference_sid: Option<ConferenceSid>,
    pub end_reason: Option<String>,
    pub duration_seconds: Option<u32>,
    pub notes: Option<String>,
    pub disposition: Option<String>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::RecordingSid;
    use crate::recordings::RecordingStatus;

    fn session() -> CallSession {
        CallSession::new(
            WorkspaceId::parse("acme").unwrap(),
            Direction::Outbound,
            AgentId::parse("alice").ok(),
            "+14155550100".into(),
            "+14155550101".into(),
            Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
        )
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::parse_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .plus_seconds(second)
    }

    #[test]
    fn states_only_move_forward_and_terminal_states_stick() {
        use CallState::*;
        assert!(Created.can_advance_to(Ringing));
        assert!(Ringing.can_advance_to(InProgress));
        assert!(InProgress.can_advance_to(Completed));
        assert!(Created.can_advance_to(Abandoned));
        assert!(!InProgress.can_advance_to(Ringing));
        assert!(!Ringing.can_advance_to(Ringing));
        for terminal in [Completed, Busy, NoAnswer, Failed, Canceled, Abandoned] {
            assert!(terminal.is_terminal());
            for next in CallState::ALL {
                assert!(!terminal.can_advance_to(next));
            }
        }
    }

    #[test]
    fn states_round_trip_through_their_twilio_names() {
        for state in CallState::ALL {
            assert_eq!(CallState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    #[test]
    fn advance_moves_forward_and_keeps_the_earliest_time() {
        use CallState::*;
        let mut s = session();
        assert_eq!(s.advance(Ringing, at(3)), Advance::Moved { from: Created });
        assert_eq!(s.advance(Ringing, at(5)), Advance::Unchanged { current: Ringing });
        assert_eq!(s.reached[&Ringing], at(3), "a later duplicate keeps the earlier time");
        assert_eq!(s.advance(Ringing, at(2)), Advance::Unchanged { current: Ringing });
        assert_eq!(s.reached[&Ringing], at(2), "an earlier duplicate lowers it");
        assert_eq!(s.advance(InProgress, at(6)), Advance::Moved { from: Ringing });
        assert_eq!(s.advance(Dialing, at(4)), Advance::Unchanged { current: InProgress });
        assert_eq!(s.reached[&Dialing], at(4), "a late state's time is still recorded");
        assert_eq!(s.advance(Completed, at(9)), Advance::Moved { from: InProgress });
        assert_eq!(s.advance(Failed, at(10)), Advance::Unchanged { current: Completed });
        assert_eq!(s.state, Completed);
    }

    #[test]
    fn updates_keep_twilios_first_values_and_the_agents_latest() {
        let mut s = session();
        s.apply(&CallUpdate {
            end_reason: Some("first".into()),
            notes: Some("first notes".into()),
            ..CallUpdate::default()
        });
        s.apply(&CallUpdate {
            end_reason: Some("second".into()),
            notes: Some("second notes".into()),
            disposition: Some("sale".into()),
            agent: AgentId::parse("bob").ok(),
            ..CallUpdate::default()
        });
        assert_eq!(s.end_reason.as_deref(), Some("first"));
        assert_eq!(s.notes.as_deref(), Some("second notes"));
        assert_eq!(s.disposition.as_deref(), Some("sale"));
        assert_eq!(s.agent, AgentId::parse("alice").ok(), "the placing agent stays");
    }

    #[test]
    fn steps_are_claimed_once_and_recordings_added_once() {
        let mut s = session();
        assert!(s.claim("dial-customer", at(1)));
        assert!(!s.claim("dial-customer", at(2)));
        assert_eq!(s.steps["dial-customer"], at(1));
        assert!(s.claim("token", at(2)) && s.release("token"));
        assert!(!s.release("token"), "a token is taken once");
        let recording = Recording::new(
            RecordingSid::parse(&format!("RE{}", "0".repeat(32))).unwrap(),
            RecordingStatus::Pending,
            at(3),
        );
        assert!(s.add_recording(&recording));
        let mut stored = recording.clone();
        stored.status = RecordingStatus::Stored;
        assert!(!s.add_recording(&stored), "an existing entry stays");
        assert_eq!(s.recordings[recording.sid.as_str()].status, RecordingStatus::Pending);
        s.replace_recording(&stored);
        assert_eq!(s.recordings[recording.sid.as_str()].status, RecordingStatus::Stored);
    }

    #[test]
    fn an_abandoned_session_is_never_dialed_and_a_dialed_one_never_abandoned() {
        let mut s = session();
        assert!(s.abandon(at(1), "the agent left"));
        assert_eq!(s.state, CallState::Abandoned);
        assert_eq!(s.end_reason.as_deref(), Some("the agent left"));
        assert!(!s.claim(DIAL_CUSTOMER, at(2)), "nobody dials it afterwards");
        let mut dialed = session();
        assert!(dialed.claim(DIAL_CUSTOMER, at(1)));
        assert!(!dialed.abandon(at(2), "too late"));
        assert_eq!(dialed.state, CallState::Created);
    }

    fn inbound() -> CallSession {
        let mut s = session();
        s.direction = Direction::Inbound;
        s.agent = None;
        for agent in ["alice", "bob", "carol"] {
            let label = s.next_label(Role::Agent);
            assert!(s.add_participant(&label, Role::Agent, AgentId::parse(agent).ok(), None, at(0)));
        }
        s
    }

    #[test]
    fn participants_are_labelled_by_switchboard_in_order() {
        let mut s = inbound();
        assert_eq!(
            s.participants.keys().collect::<Vec<_>>(),
            ["agent-1", "agent-2", "agent-3"]
        );
        assert_eq!(s.next_label(Role::Customer), "customer");
        assert_eq!(s.next_label(Role::Supervisor), "supervisor-1");
        assert!(!s.add_participant("agent-1", Role::Agent, None, None, at(1)), "once");
        let sid = CallSid::parse(&format!("CA{}", "2".repeat(32))).unwrap();
        assert!(s.link_participant("agent-2", &sid));
        assert_eq!(s.participant_by_sid(&sid).map(|p| p.label.as_str()), Some("agent-2"));
    }

    #[test]
    fn the_first_agent_to_answer_wins_and_later_ones_are_refused() {
        let mut s = inbound();
        s.add_participant("customer", Role::Customer, None, Some("+14155550177".into()), at(0));
        let before = s.clone();
        assert!(!s.answer("customer", at(1)), "the caller is no agent");
        assert_eq!(s, before);
        assert!(s.answer("agent-2", at(5)));
        assert_eq!(s.agent, AgentId::parse("bob").ok());
        assert!(s.answer("agent-2", at(6)), "the winner's duplicate answer still wins");
        assert!(!s.answer("agent-1", at(6)));
        assert_eq!(s.participants["agent-1"].state, LegState::Refused);
        let before = s.clone();
        assert!(!s.answer("customer", at(7)), "only an agent leg answers");
        assert_eq!(s, before, "and a refused label changes nothing");
        assert_eq!(s.answered_by.as_deref(), Some("agent-2"));
        assert_eq!(
            s.ringing_agents().iter().map(|p| p.label.as_str()).collect::<Vec<_>>(),
            ["agent-3"]
        );
        assert!(!s.nobody_answered());
    }

    #[test]
    fn nobody_answered_once_every_rung_leg_is_over_unanswered() {
        let mut s = inbound();
        assert!(!s.nobody_answered());
        s.move_participant("agent-1", LegState::NoAnswer, at(20));
        s.move_participant("agent-2", LegState::Busy, at(3));
        assert!(!s.nobody_answered(), "agent-3 still rings");
        s.move_participant("agent-3", LegState::Canceled, at(20));
        assert!(s.nobody_answered());
        assert!(!session().nobody_answered(), "no agent was rung: not this rule's case");
    }

    #[test]
    fn voicemail_is_taken_once_and_then_nobody_can_answer() {
        let mut s = inbound();
        for label in ["agent-1", "agent-2", "agent-3"] {
            s.move_participant(label, LegState::NoAnswer, at(20));
        }
        assert!(s.to_voicemail(at(21)));
        assert!(!s.to_voicemail(at(22)), "once");
        assert!(!s.answer("agent-1", at(23)), "a late accept is refused");
        assert_eq!(
            s.participants["agent-1"].state,
            LegState::NoAnswer,
            "it was over already"
        );
        let mut answered = inbound();
        assert!(answered.answer("agent-3", at(4)));
        for label in ["agent-1", "agent-2"] {
            answered.move_participant(label, LegState::Canceled, at(5));
        }
        assert!(!answered.to_voicemail(at(6)), "never after an answer");
    }

    fn connected() -> CallSession {
        let mut s = session();
        s.add_participant("agent-1", Role::Agent, AgentId::parse("alice").ok(), None, at(0));
        s.agent_label = Some("agent-1".into());
        s.add_participant("customer", Role::Customer, None, Some("+14155550101".into()), at(1));
        s.advance(CallState::InProgress, at(2));
        s
    }

    #[test]
    fn a_transfer_hands_the_call_to_its_target_once() {
        let mut s = session();
        let bob = AgentId::parse("bob").unwrap();
        let alice = AgentId::parse("alice").unwrap();
        let refused = s.start_transfer(
            "transfer-1",
            TransferMode::Warm,
            TransferTarget::Agent(bob.clone()),
            alice.clone(),
            at(3),
        );
        assert_eq!(refused, Err(TransferRefused::NotConnected));
        let mut s = connected();
        assert_eq!(s.next_label(Role::Transfer), "transfer-1");
        s.start_transfer(
            "transfer-1",
            TransferMode::Warm,
            TransferTarget::Agent(bob.clone()),
            alice.clone(),
            at(3),
        )
        .unwrap();
        assert_eq!(
            s.start_transfer(
                "transfer-2",
                TransferMode::Cold,
                TransferTarget::Number("+1".into()),
                alice.clone(),
                at(4)
            ),
            Err(TransferRefused::UnderWay)
        );
        assert_eq!(s.transfer.as_ref().unwrap().from_label.as_deref(), Some("agent-1"));
        s.transfer_joined("agent-1");
        assert_eq!(
            s.transfer.as_ref().unwrap().state,
            TransferState::Ringing,
            "not the target"
        );
        s.transfer_joined("transfer-1");
        assert_eq!(s.transfer.as_ref().unwrap().state, TransferState::Talking);
        assert!(s.complete_transfer());
        assert!(!s.complete_transfer(), "once");
        assert_eq!(s.agent, Some(bob));
        assert_eq!(s.agent_label.as_deref(), Some("transfer-1"));
        assert!(s.active_transfer().is_none());
        assert!(
            !s.end_transfer(TransferState::Failed),
            "a done transfer does not fail later"
        );
    }

    #[test]
    fn a_transfer_that_fails_leaves_the_call_with_its_agent() {
        let mut s = connected();
        let alice = AgentId::parse("alice").unwrap();
        s.start_transfer(
            "transfer-1",
            TransferMode::Cold,
            TransferTarget::Number("+14155550123".into()),
            alice.clone(),
            at(3),
        )
        .unwrap();
        assert!(s.end_transfer(TransferState::Failed));
        assert_eq!(s.agent, Some(alice));
        assert_eq!(s.agent_label.as_deref(), Some("agent-1"));
        assert!(
            s.start_transfer(
                "transfer-2",
                TransferMode::Warm,
                TransferTarget::Number("+1".into()),
                AgentId::parse("alice").unwrap(),
                at(9)
            )
            .is_ok(),
            "a new transfer may start"
        );
    }

    #[test]
    fn legs_move_forward_only_and_keep_their_earliest_times() {
        let mut s = inbound();
        s.move_participant("agent-1", LegState::Joined, at(9));
        s.move_participant("agent-1", LegState::Answered, at(8));
        assert_eq!(
            s.participants["agent-1"].state,
            LegState::Joined,
            "a late answered is no step back"
        );
        s.move_participant("agent-1", LegState::Joined, at(7));
        assert_eq!(s.participants["agent-1"].reached[&LegState::Joined], at(7));
        s.move_participant("agent-1", LegState::Left, at(30));
        s.move_participant("agent-1", LegState::Joined, at(31));
        assert_eq!(s.participants["agent-1"].state, LegState::Left);
        assert!(!s.move_participant("agent-9", LegState::Left, at(1)));
    }

    #[test]
    fn touch_counts_versions_and_updated_at_grows() {
        let before = session();
        let mut after = before.clone();
        after.notes = Some("x".into());
        after.touch(&before);
        assert_eq!(after.version, before.version + 1);
        assert!(after.updated_at > before.updated_at);
        assert!(after.differs_from(&before));
        let mut stamped_only = before.clone();
        stamped_only.touch(&before);
        assert!(!stamped_only.differs_from(&before));
    }

    /// Reports of the live states and of one terminal state: two different
    /// terminal states are the one case where order decides (the first stays).
    fn reports() -> impl Strategy<Value = Vec<(CallState, i64)>> {
        use CallState::*;
        prop::sample::select(vec![Completed, Busy, NoAnswer, Failed, Canceled, Abandoned]).prop_flat_map(|terminal| {
            let state = prop::sample::select(vec![Created, Dialing, Ringing, InProgress, terminal]);
            prop::collection::vec((state, 0i64..100), 1..20)
        })
    }

    proptest! {
        /// Any order of the same reports leaves the same session.
        #[test]
        fn reports_in_any_order_end_the_same(reports in reports(), seed in any::<u64>()) {
            let mut shuffled = reports.clone();
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut a = session();
            let mut b = a.clone();
            for (state, second) in &reports { a.advance(*state, at(*second)); }
            for (state, second) in &shuffled { b.advance(*state, at(*second)); }
            prop_assert_eq!(a, b);
        }
    }
}
