//! Work that runs after a webhook has been answered: copying a recording
//! into our own storage.

use serde::{Deserialize, Serialize};

use crate::ids::{CallId, RecordingSid, WorkspaceId};
use crate::time::Timestamp;

/// One recording to copy into our storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyJob {
    pub workspace: WorkspaceId,
    pub call: CallId,
    pub recording: RecordingSid,
}

/// A job in a local durable queue, with its retry state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedJob {
    pub job: CopyJob,
    pub attempts: u32,
    pub not_before: Timestamp,
}
