//! The call model: one session per customer-agent conversation, held in a
//! Twilio conference, moving forward only through its states; and the routes
//! that drive it.

pub mod control;
pub mod outbound;
pub mod status;
pub mod voice;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AgentId, CallId, CallSid, ConferenceSid, WorkspaceId};

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
    pub recordings: BTreeMap<String, crate::recordings::Recording>,
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
            agent_call_sid: None,
            customer_call_sid: None,
            conference_sid: None,
            steps: BTreeMap::new(),
            end_reason: None,
            duration_seconds: None,
            notes: None,
            disposition: None,
            recordings: BTreeMap::new(),
        }
    }
}

/// The conference each session's legs meet in: unique per session.
pub fn conference_name(id: &CallId) -> String {
    format!("sb-{id}")
}

impl CallSession {
    /// The same session under an id chosen up front (idempotent creation).
    pub fn with_id(mut self, id: CallId) -> Self {
        self.conference = conference_name(&id);
        self.id = id;
        self
    }

    pub fn is_outbound(&self) -> bool {
        self.direction == Direction::Outbound
    }
}

/// A moment, always UTC, at millisecond precision, serialised as RFC 3339 with
/// exactly three fraction digits: fixed width, so text order is time order
/// (stores compare them as strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

const FIXED_RFC3339: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let millis = at.millisecond();
        Self(at.replace_millisecond(millis).unwrap_or(at))
    }

    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn rfc3339(&self) -> String {
        self.0.format(FIXED_RFC3339).expect("any UTC date formats as RFC 3339")
    }

    pub fn parse_rfc3339(value: &str) -> Option<Self> {
        OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(Self::from_datetime)
    }

    /// Twilio's callback `Timestamp` is RFC 2822.
    pub fn parse_rfc2822(value: &str) -> Option<Self> {
        OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn plus_seconds(&self, seconds: i64) -> Self {
        Self(self.0 + time::Duration::seconds(seconds))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse_rfc3339(&raw).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 time"))
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

/// Fields set on a session after it is created. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallUpdate {
    /// Written only if not yet set: the first value Twilio gave wins.
    /// The agent who answered an inbound call.
    pub agent: Option<AgentId>,
    pub agent_call_sid: Option<CallSid>,
    pub customer_call_sid: Option<CallSid>,
    pub conference_sid: Option<ConferenceSid>,
    pub end_reason: Option<String>,
    pub duration_seconds: Option<u32>,
    /// Overwritten by the agent at will.
    pub notes: Option<String>,
    pub disposition: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn twilio_rfc2822_timestamps_parse() {
        let t = Timestamp::parse_rfc2822("Tue, 14 Nov 2023 22:13:20 +0000").unwrap();
        assert_eq!(t.unix_seconds(), 1_700_000_000);
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn timestamps_are_fixed_width_so_text_order_is_time_order() {
        let a = Timestamp::parse_rfc3339("2023-11-14T22:13:20.5Z").unwrap();
        let b = Timestamp::parse_rfc3339("2023-11-14T22:13:20.123456789Z").unwrap();
        assert_eq!(a.rfc3339(), "2023-11-14T22:13:20.500Z");
        assert_eq!(b.rfc3339(), "2023-11-14T22:13:20.123Z");
        assert!(b < a && b.rfc3339() < a.rfc3339());
        let now = Timestamp::now();
        assert_eq!(Timestamp::parse_rfc3339(&now.rfc3339()), Some(now));
    }
}
