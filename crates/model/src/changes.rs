//! Objects that changed, whole, as stored: what live events are made of. A
//! browser replaces its copy by id and ignores anything not newer (by
//! `updated_at`) than what it has, so no delta is ever merged.

use crate::calls::CallSession;
use crate::ids::WorkspaceId;
use crate::messages::Message;

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    // Boxed: a session is twice a message, and changes travel by value.
    Call(Box<CallSession>),
    Message(Box<Message>),
}

impl Change {
    pub fn workspace(&self) -> &WorkspaceId {
        match self {
            Self::Call(call) => &call.workspace,
            Self::Message(message) => &message.workspace,
        }
    }
}
