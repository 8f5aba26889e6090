//! Text messages to and from the workspace's numbers, and the order their
//! delivery statuses come in.

use serde::{Deserialize, Serialize};

use crate::calls::Direction;
use crate::ids::{AgentId, MessageSid, WorkspaceId};
use crate::time::Timestamp;

/// Twilio's message statuses, in the order a text lives through them.
/// Twilio reports delivery at least once and in no set order, so a message
/// only moves forward: a late `sent` never replaces `delivered`, and one
/// final status never replaces another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Accepted,
    Scheduled,
    Receiving,
    Queued,
    Sending,
    Sent,
    Received,
    Delivered,
    Undelivered,
    Failed,
    Canceled,
    PartiallyDelivered,
    Read,
    /// A status Twilio added after this was written: kept as sent, never
    /// moved to.
    #[serde(untagged)]
    Other(String),
}

impl MessageStatus {
    /// Where a status stands in a text's life; `None` for one we do not know.
    pub fn rank(&self) -> Option<u8> {
        Some(match self {
            Self::Accepted | Self::Scheduled | Self::Receiving => 0,
            Self::Queued => 1,
            Self::Sending => 2,
            Self::Sent | Self::Received => 3,
            Self::Delivered | Self::Undelivered | Self::Failed | Self::Canceled | Self::PartiallyDelivered => 4,
            Self::Read => 5,
            Self::Other(_) => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Receiving => "receiving",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Received => "received",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::PartiallyDelivered => "partially_delivered",
            Self::Read => "read",
            Self::Other(other) => other,
        }
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub sid: MessageSid,
    pub workspace: WorkspaceId,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub body: String,
    #[serde(default)]
    pub media_urls: Vec<String>,
    pub status: MessageStatus,
    /// The agent who sent it, for outbound messages.
    #[serde(default)]
    pub agent: Option<AgentId>,
    pub created_at: Timestamp,
    /// When anything about the message last changed: strictly growing.
    pub updated_at: Timestamp,
    /// Counts the stored changes: what a store compares to make a change atomic.
    #[serde(default)]
    pub version: u64,
}

impl Message {
    /// Marks the message as changed since `before` (see `CallSession::touch`).
    pub fn touch(&mut self, before: &Message) {
        self.version = before.version + 1;
        self.updated_at = Timestamp::after(before.updated_at);
    }

    /// Moves the delivery status forward to `status`: true if it moved. A
    /// status we do not know never replaces one we do.
    pub fn advance_status(&mut self, status: &MessageStatus) -> bool {
        let moves = match (self.status.rank(), status.rank()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(current), Some(next)) => next > current,
        };
        if moves {
            self.status = status.clone();
        }
        moves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: MessageStatus) -> Message {
        Message {
            sid: MessageSid::parse(&format!("SM{}", "0".repeat(32))).unwrap(),
            workspace: WorkspaceId::parse("acme").unwrap(),
            direction: Direction::Outbound,
            from: "+14155550100".into(),
            to: "+14155550101".into(),
            body: "hi".into(),
            media_urls: Vec::new(),
            status,
            agent: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            version: 1,
        }
    }

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_kept() {
        for name in ["queued", "sent", "delivered", "partially_delivered", "read"] {
            let status: MessageStatus = serde_json::from_value(name.into()).unwrap();
            assert!(!matches!(status, MessageStatus::Other(_)), "{name}");
            assert_eq!(status.as_str(), name);
            assert_eq!(serde_json::to_value(&status).unwrap(), name);
        }
        let unknown: MessageStatus = serde_json::from_value("teleported".into()).unwrap();
        assert_eq!(unknown, MessageStatus::Other("teleported".into()));
        assert_eq!(serde_json::to_value(&unknown).unwrap(), "teleported");
    }

    #[test]
    fn delivery_only_moves_forward() {
        let mut m = message(MessageStatus::Queued);
        assert!(m.advance_status(&MessageStatus::Sent));
        assert!(m.advance_status(&MessageStatus::Delivered));
        assert!(
            !m.advance_status(&MessageStatus::Sent),
            "a late sent never replaces delivered"
        );
        assert!(
            !m.advance_status(&MessageStatus::Failed),
            "one final status never replaces another"
        );
        assert!(!m.advance_status(&MessageStatus::Other("x".into())));
        assert!(m.advance_status(&MessageStatus::Read));
        assert_eq!(m.status, MessageStatus::Read);
    }
}
