//! Call recordings and voicemails as kept on their session, and where our
//! copy of each lives.

use serde::{Deserialize, Serialize};

use crate::ids::{CallId, RecordingSid, WorkspaceId};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingStatus {
    /// Twilio has it; our copy is queued or being retried.
    Pending,
    /// Our copy is stored and verified.
    Stored,
    /// Twilio recorded nothing (silence, or too short).
    Absent,
    /// Twilio failed to record.
    Failed,
}

/// One recording of a call, as stored on its session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub sid: RecordingSid,
    pub status: RecordingStatus,
    /// `Conference`, `RecordVerb` (voicemail), `DialVerb`, …
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub channels: Option<u8>,
    #[serde(default)]
    pub duration_seconds: Option<u32>,
    /// Where our copy lives (`recordings/<workspace>/<callId>/<RecordingSid>.mp3`).
    #[serde(default)]
    pub object_key: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// Hex SHA-256 of the stored bytes.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Copy attempts that failed, and why the last one did.
    #[serde(default)]
    pub failed_attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Twilio's copy was deleted after ours was verified.
    #[serde(default)]
    pub twilio_deleted: bool,
    pub received_at: Timestamp,
    #[serde(default)]
    pub stored_at: Option<Timestamp>,
}

impl Recording {
    /// A recording Twilio just told us about: nothing copied yet.
    pub fn new(sid: RecordingSid, status: RecordingStatus, received_at: Timestamp) -> Self {
        Self {
            sid,
            status,
            source: None,
            channels: None,
            duration_seconds: None,
            object_key: None,
            size: None,
            sha256: None,
            content_type: None,
            failed_attempts: 0,
            last_error: None,
            twilio_deleted: false,
            received_at,
            stored_at: None,
        }
    }

    pub fn key(&self, workspace: &WorkspaceId, call: &CallId) -> RecordingKey {
        RecordingKey {
            workspace: workspace.clone(),
            call: call.clone(),
            recording: self.sid.clone(),
            extension: "mp3",
        }
    }

    /// Whether a copy job still has work to do: the copy itself, or (when the
    /// workspace deletes Twilio's copies) the deletion at Twilio.
    pub fn needs_work(&self, delete_at_twilio: bool) -> bool {
        match self.status {
            RecordingStatus::Pending => true,
            RecordingStatus::Stored => delete_at_twilio && !self.twilio_deleted,
            RecordingStatus::Absent | RecordingStatus::Failed => false,
        }
    }
}

/// Where a recording lives: `recordings/<workspace>/<callId>/<RecordingSid>.<ext>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingKey {
    pub workspace: WorkspaceId,
    pub call: CallId,
    pub recording: RecordingSid,
    /// `mp3` or `wav`.
    pub extension: &'static str,
}

impl RecordingKey {
    pub fn object_key(&self) -> String {
        format!(
            "recordings/{}/{}/{}.{}",
            self.workspace, self.call, self.recording, self.extension
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_recording_needs_work_only_while_twilios_copy_must_go() {
        let sid = RecordingSid::parse(&format!("RE{}", "1".repeat(32))).unwrap();
        let mut r = Recording::new(sid, RecordingStatus::Pending, Timestamp::now());
        assert!(r.needs_work(false));
        r.status = RecordingStatus::Stored;
        assert!(!r.needs_work(false));
        assert!(r.needs_work(true));
        r.twilio_deleted = true;
        assert!(!r.needs_work(true));
        r.status = RecordingStatus::Absent;
        assert!(!r.needs_work(true));
    }
}
