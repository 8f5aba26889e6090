//! Storage ports: one small trait per capability. The DynamoDB adapter and the
//! embedded adapter implement all of them; handlers see only the traits.
//!
//! Every operation is scoped by a `WorkspaceId`, except the two lookups Twilio
//! forces on us (workspace by Account SID, workspace by phone number).
//!
//! The rules of a session or a message (state only moves forward, the
//! earliest time wins, a step is claimed once) are the model's methods; an
//! adapter's part is `modify_call` / `modify_message`: run such a change on
//! the stored object and store the result atomically.

use std::time::Duration;

use async_trait::async_trait;

use crate::calls::{Advance, CallSession, CallState, CallUpdate, Direction, TimelineEvent};
use crate::ids::{AccountSid, AgentId, CallId, CallSid, MessageSid, WorkspaceId};
use crate::messages::{Message, MessageStatus};
use crate::phone::E164;
use crate::recordings::Recording;
use crate::time::Timestamp;
use crate::workspace::{PhoneNumber, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule would break (an Account SID or number owned by another
    /// workspace, a session that already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A listing was given a paging cursor that is not one of ours for it:
    /// garbage, tampered with, or issued for another workspace or listing.
    /// The client's mistake, not a missing page.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// The backend failed or could not be reached; the operation may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back (a bug or a manual edit).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// One page of a newest-first listing. `next` is an opaque cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError>;

    /// Creates or replaces the workspace and keeps the Account SID index in step
    /// with it, atomically. `Conflict` if the Account SID belongs to another
    /// workspace.
    async fn put_workspace(&self, workspace: &Workspace) -> Result<(), StoreError>;

    /// The workspace that connected this Twilio account (webhooks carry only it).
    async fn workspace_by_account(&self, account: &AccountSid) -> Result<Option<WorkspaceId>, StoreError>;
}

#[async_trait]
pub trait NumberStore: Send + Sync {
    /// Makes `numbers` the workspace's whole set: adds the new ones, updates the
    /// kept ones (keeping their agents and label), removes the rest. `Conflict`
    /// if a number belongs to another workspace.
    async fn replace_numbers(&self, workspace: &WorkspaceId, numbers: &[PhoneNumber]) -> Result<(), StoreError>;

    async fn list_numbers(&self, workspace: &WorkspaceId) -> Result<Vec<PhoneNumber>, StoreError>;

    async fn get_number(&self, workspace: &WorkspaceId, number: &E164) -> Result<Option<PhoneNumber>, StoreError>;

    /// Updates agents and label of a number the workspace has. `NotFound` otherwise.
    async fn update_number(&self, workspace: &WorkspaceId, number: &PhoneNumber) -> Result<(), StoreError>;

    /// The workspace that owns a number (inbound calls and texts carry only it).
    async fn workspace_by_number(&self, number: &E164) -> Result<Option<WorkspaceId>, StoreError>;
}

/// A change run on a stored object: how it was, and how it is now (the same
/// when the change changed nothing, and then nothing was written).
#[derive(Debug, Clone, PartialEq)]
pub struct Modified<T> {
    pub before: T,
    pub after: T,
}

/// A change to a session: a pure function of it, since a store may run it
/// more than once (again on what another writer stored meanwhile).
pub type CallChange<'a> = &'a (dyn Fn(&mut CallSession) + Send + Sync);
pub type MessageChange<'a> = &'a (dyn Fn(&mut Message) + Send + Sync);

/// What changed since a moment: oldest change first (by `updated_at`, then
/// id), so a client that reconnects lists what it missed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesQuery {
    /// Changes at or after this moment. At, not only after: two objects may
    /// change in the same millisecond, and a client that saw one of them must
    /// still get the other (it ignores what is not newer than its copy).
    pub since: Timestamp,
    pub limit: usize,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallQuery {
    pub agent: Option<AgentId>,
    pub direction: Option<Direction>,
    pub state: Option<CallState>,
    pub limit: usize,
    pub cursor: Option<String>,
}

#[async_trait]
pub trait CallStore: Send + Sync {
    /// `Conflict` if a session with this id exists.
    async fn create_call(&self, session: &CallSession) -> Result<(), StoreError>;

    async fn get_call(&self, workspace: &WorkspaceId, id: &CallId) -> Result<Option<CallSession>, StoreError>;

    /// Runs `change` on the stored session and, if the session changed
    /// (`CallSession::differs_from`), stores it stamped (`CallSession::touch`),
    /// atomically: no other write lands between the read `change` saw and
    /// the write. `NotFound` if there is no session; nothing is written then.
    async fn modify_call(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        change: CallChange<'_>,
    ) -> Result<Modified<CallSession>, StoreError>;

    /// Appends an event to the session's timeline once per `event.key`. True if
    /// it was new.
    async fn append_event(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        event: &TimelineEvent,
    ) -> Result<bool, StoreError>;

    /// The timeline, oldest first.
    async fn timeline(&self, workspace: &WorkspaceId, id: &CallId) -> Result<Vec<TimelineEvent>, StoreError>;

    /// Sessions newest first. `InvalidCursor` if `query.cursor` is not a
    /// cursor this listing could have handed out.
    async fn list_calls(&self, workspace: &WorkspaceId, query: &CallQuery) -> Result<Page<CallSession>, StoreError>;

    /// Sessions that changed at or after `query.since`, oldest change first.
    /// `InvalidCursor` as `list_calls`.
    async fn calls_changed(
        &self,
        workspace: &WorkspaceId,
        query: &ChangesQuery,
    ) -> Result<Page<CallSession>, StoreError>;

    /// Remembers which session a Twilio call leg belongs to (first link wins).
    async fn link_call_sid(&self, workspace: &WorkspaceId, sid: &CallSid, id: &CallId) -> Result<(), StoreError>;

    async fn call_by_sid(&self, workspace: &WorkspaceId, sid: &CallSid) -> Result<Option<CallId>, StoreError>;

    // The model's rules, made atomic by `modify_call`.

    /// Applies one report "the call was in `state` at `at`"
    /// (`CallSession::advance`): `Moved { from }` or `Unchanged { current }`.
    async fn advance_call(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        state: CallState,
        at: Timestamp,
    ) -> Result<Advance, StoreError> {
        let modified = self
            .modify_call(workspace, id, &|session| {
                session.advance(state, at);
            })
            .await?;
        Ok(if modified.after.state != modified.before.state {
            Advance::Moved {
                from: modified.before.state,
            }
        } else {
            Advance::Unchanged {
                current: modified.after.state,
            }
        })
    }

    /// Merges `update` (`CallSession::apply`).
    async fn update_call(&self, workspace: &WorkspaceId, id: &CallId, update: &CallUpdate) -> Result<(), StoreError> {
        self.modify_call(workspace, id, &|session| session.apply(update))
            .await
            .map(drop)
    }

    /// Claims a "do this once" step (`dial-customer`, …). True for exactly one
    /// caller, however many race.
    async fn claim_step(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        step: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let modified = self
            .modify_call(workspace, id, &|session| {
                session.claim(step, at);
            })
            .await?;
        Ok(!modified.before.steps.contains_key(step))
    }

    /// Adds a recording entry to the session once per `RecordingSid`. True if
    /// it was new; an existing entry is left as it is.
    async fn put_recording(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        recording: &Recording,
    ) -> Result<bool, StoreError> {
        let modified = self
            .modify_call(workspace, id, &|session| {
                session.add_recording(recording);
            })
            .await?;
        Ok(!modified.before.recordings.contains_key(recording.sid.as_str()))
    }

    /// Replaces a recording entry (the copy's progress and result).
    async fn update_recording(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        recording: &Recording,
    ) -> Result<(), StoreError> {
        self.modify_call(workspace, id, &|session| session.replace_recording(recording))
            .await
            .map(drop)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageQuery {
    /// Messages sent from or to this workspace number.
    pub number: Option<String>,
    /// Messages exchanged with this other party.
    pub counterpart: Option<String>,
    pub limit: usize,
    pub cursor: Option<String>,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a message once per `MessageSid`. True if it was new.
    async fn put_message(&self, message: &Message) -> Result<bool, StoreError>;

    async fn get_message(&self, workspace: &WorkspaceId, sid: &MessageSid) -> Result<Option<Message>, StoreError>;

    /// Messages newest first. `InvalidCursor` if `query.cursor` is not a
    /// cursor this listing could have handed out.
    async fn list_messages(&self, workspace: &WorkspaceId, query: &MessageQuery) -> Result<Page<Message>, StoreError>;

    /// Messages that changed at or after `query.since`, oldest change first.
    async fn messages_changed(
        &self,
        workspace: &WorkspaceId,
        query: &ChangesQuery,
    ) -> Result<Page<Message>, StoreError>;

    /// Runs `change` on the stored message and stores the result if it
    /// changed (stamped with `Message::touch`), atomically, like
    /// `CallStore::modify_call`. `NotFound` if there is no such message.
    async fn modify_message(
        &self,
        workspace: &WorkspaceId,
        sid: &MessageSid,
        change: MessageChange<'_>,
    ) -> Result<Modified<Message>, StoreError>;

    /// Moves the delivery status forward (`Message::advance_status`): true if
    /// it moved.
    async fn advance_message_status(
        &self,
        workspace: &WorkspaceId,
        sid: &MessageSid,
        status: &MessageStatus,
    ) -> Result<bool, StoreError> {
        let modified = self
            .modify_message(workspace, sid, &|message| {
                message.advance_status(status);
            })
            .await?;
        Ok(modified.after.status != modified.before.status)
    }
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Stores `value` under `key` unless something is stored there already, and
    /// returns what is stored: the first caller's value wins, for `ttl`.
    async fn remember(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, StoreError>;
}

/// Every port at once: what a handler's context holds.
pub trait Store: WorkspaceStore + NumberStore + CallStore + MessageStore + IdempotencyStore {}

impl<T: WorkspaceStore + NumberStore + CallStore + MessageStore + IdempotencyStore> Store for T {}
