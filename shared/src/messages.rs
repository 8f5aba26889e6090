//! Text messages to and from the workspace's numbers.

use serde::{Deserialize, Serialize};

use crate::calls::Timestamp;
use crate::ids::{AgentId, MessageSid, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub sid: MessageSid,
    pub workspace: WorkspaceId,
    pub direction: crate::calls::Direction,
    pub from: String,
    pub to: String,
    pub body: String,
    #[serde(default)]
    pub media_urls: Vec<String>,
    /// Twilio's status (`received`, `queued`, `sent`, `delivered`, …).
    pub status: String,
    /// The agent who sent it, for outbound messages.
    #[serde(default)]
    pub agent: Option<AgentId>,
    pub created_at: Timestamp,
}
