//! Storage ports: one small trait per capability. The DynamoDB adapter and the
//! embedded adapter implement all of them; handlers see only the traits.
//!
//! Every operation is scoped by a `WorkspaceId`, except the two lookups Twilio
//! forces on us (workspace by Account SID, workspace by phone number).

use std::time::Duration;

use async_trait::async_trait;

use crate::calls::{CallSession, CallState, CallUpdate, Direction, TimelineEvent, Timestamp};
use crate::ids::{AccountSid, AgentId, CallId, CallSid, MessageSid, WorkspaceId};
use crate::messages::Message;
use crate::phone::E164;
use crate::recordings::Recording;
use crate::workspace::{PhoneNumber, Workspace};

#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod dynamodb;
pub mod embedded;
pub mod recordings;

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

/// What `advance_call` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The session moved to the new state.
    Moved { from: CallState },
    /// The session was already there or further (a duplicate or a late event).
    Unchanged { current: CallState },
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

    /// Applies one report "the call was in `state` at `at`" (Twilio delivers
    /// them at least once, in any order), so that the stored session ends up
    /// the same whatever order, and however many duplicates, the reports
    /// arrive in:
    ///
    /// - `state` moves forward only: the session takes `state` if its rank is
    ///   higher than the current one's (`CallState::can_advance_to`), with one
    ///   conditional write, never read-then-write. Terminal states share the
    ///   top rank, so none is ever overwritten. Returns `Moved { from }` if it
    ///   moved, `Unchanged { current }` otherwise (a duplicate, a late report).
    /// - `reached[state]` keeps the earliest `at` ever reported for `state`,
    ///   whether or not the state moved: a late `ringing` after `in-progress`
    ///   still records when it rang if nothing is recorded, and a report with
    ///   an earlier `at` replaces a later one. A report that changes neither
    ///   (a duplicate with the same or a later `at`) is a no-op. The `created`
    ///   time set at creation is kept unless a report names an earlier one.
    ///
    /// Only `state` depends on order, and only when reports name two
    /// different terminal states (the first to arrive stays).
    ///
    /// `NotFound` if there is no session; nothing is written then.
    async fn advance_call(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        state: CallState,
        at: Timestamp,
    ) -> Result<Advance, StoreError>;

    /// Applies the fields of `update` (see `CallUpdate` for which ones stick).
    async fn update_call(&self, workspace: &WorkspaceId, id: &CallId, update: &CallUpdate) -> Result<(), StoreError>;

    /// Claims a "do this once" step (`dial-customer`, …). True for exactly one
    /// caller, however many race.
    async fn claim_step(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        step: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

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

    /// Remembers which session a Twilio call leg belongs to (first link wins).
    async fn link_call_sid(&self, workspace: &WorkspaceId, sid: &CallSid, id: &CallId) -> Result<(), StoreError>;

    async fn call_by_sid(&self, workspace: &WorkspaceId, sid: &CallSid) -> Result<Option<CallId>, StoreError>;

    /// Adds a recording entry to the session once per `RecordingSid`. True if
    /// it was new; an existing entry is left as it is. `NotFound` if there is
    /// no session.
    async fn put_recording(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        recording: &Recording,
    ) -> Result<bool, StoreError>;

    /// Replaces a recording entry (the copy's progress and result). `NotFound`
    /// if there is no session.
    async fn update_recording(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        recording: &Recording,
    ) -> Result<(), StoreError>;
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

    /// Sets the delivery status. `NotFound` if there is no such message.
    async fn set_message_status(
        &self,
        workspace: &WorkspaceId,
        sid: &MessageSid,
        status: &str,
    ) -> Result<(), StoreError>;
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
