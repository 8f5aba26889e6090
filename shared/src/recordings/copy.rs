//! The copy itself: Twilio's media streamed into our storage part by part
//! (memory bounded by one part, whatever the length), checked before it is
//! kept, and only then, if the workspace asks, deleted at Twilio.

use crate::accounts::AccountError;
use crate::app::App;
use crate::jobs::CopyJob;
use crate::model::recordings::{Recording, RecordingStatus};
use crate::ports::{RecordingStore, SecretError, StoreError, StoredObject};
use crate::telemetry::error_chain;
use crate::time::Timestamp;
use crate::twilio::rest::{TwilioClient, TwilioError};
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no such call or recording: {0}")]
    Unknown(String),
    #[error("the workspace has no Twilio account, or no recordings store is configured")]
    NotConfigured,
    #[error("the workspace's Twilio credentials could not be opened")]
    Secret(#[source] SecretError),
    #[error("downloading from Twilio")]
    Download(#[source] TwilioError),
    #[error("the download failed: {0}")]
    Transfer(String),
    #[error("Twilio's answer is not audio (Content-Type {0:?}); nothing was stored")]
    NotAudio(String),
    #[error("storing the recording")]
    Storage(#[source] StoreError),
    #[error("deleting Twilio's copy")]
    Delete(#[source] TwilioError),
    #[error(transparent)]
    Record(#[from] StoreError),
}

impl From<AccountError> for CopyError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotConfigured => Self::NotConfigured,
            AccountError::Secret(error) => Self::Secret(error),
        }
    }
}

impl CopyError {
    /// Errors no retry can fix.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Unknown(_) | Self::NotConfigured)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Copied {
    /// A previous run did all there was to do.
    AlreadyDone,
    Stored(StoredObject),
    /// A previous run stored it; this one deleted Twilio's copy.
    DeletedAtTwilio,
}

/// Copies one recording, once, and (when the workspace asks) deletes
/// Twilio's copy once ours is verified. A job whose work is done does
/// nothing; a failure is recorded on the session and returned for a retry.
pub async fn copy_recording(app: &App, job: &CopyJob) -> Result<Copied, CopyError> {
    let (ws, id) = (&job.workspace, &job.call);
    let session = app
        .store
        .get_call(ws, id)
        .await?
        .ok_or_else(|| CopyError::Unknown(format!("call {id}")))?;
    let mut recording = session
        .recordings
        .get(job.recording.as_str())
        .cloned()
        .ok_or_else(|| CopyError::Unknown(format!("recording {}", job.recording)))?;
    let workspace = app
        .store
        .get_workspace(ws)
        .await?
        .filter(|w| w.twilio.is_some())
        .ok_or(CopyError::NotConfigured)?;
    let delete_at_twilio = workspace.settings.delete_twilio_recording_after_copy;
    if !recording.needs_work(delete_at_twilio) {
        return Ok(Copied::AlreadyDone);
    }
    let store = app.recordings.as_deref().ok_or(CopyError::NotConfigured)?;
    let twilio = app.twilio.media_for_workspace(app.secrets.as_ref(), &workspace).await?;

    if recording.status == RecordingStatus::Stored {
        // Stored by an earlier run whose deletion at Twilio failed.
        let stored = StoredObject {
            size: recording.size.unwrap_or_default(),
            sha256: recording.sha256.clone().unwrap_or_default(),
            content_type: recording.content_type.clone().unwrap_or_default(),
        };
        return match delete_at_twilio_once_verified(app, &twilio, store, &workspace, &mut recording, job, &stored).await
        {
            Ok(()) => Ok(Copied::DeletedAtTwilio),
            Err(error) => Err(noted(app, job, &mut recording, error).await),
        };
    }

    let stored = match transfer(&twilio, store, &workspace, &recording, job).await {
        Ok(stored) => stored,
        Err(error) => return Err(noted(app, job, &mut recording, error).await),
    };
    recording.status = RecordingStatus::Stored;
    recording.object_key = Some(recording.key(ws, id).object_key());
    recording.size = Some(stored.size);
    recording.sha256 = Some(stored.sha256.clone());
    recording.content_type = Some(stored.content_type.clone());
    recording.stored_at = Some(Timestamp::now());
    recording.last_error = None;
    app.store.update_recording(ws, id, &recording).await?;
    tracing::info!(recording = %recording.sid, size = stored.size, "stored a recording");

    if delete_at_twilio
        && let Err(error) =
            delete_at_twilio_once_verified(app, &twilio, store, &workspace, &mut recording, job, &stored).await
    {
        // Ours is stored; the retry only has the deletion left to do.
        return Err(noted(app, job, &mut recording, error).await);
    }
    Ok(Copied::Stored(stored))
}

/// Records a failed attempt on the recording, and hands the error back.
async fn noted(app: &App, job: &CopyJob, recording: &mut Recording, error: CopyError) -> CopyError {
    recording.failed_attempts += 1;
    recording.last_error = Some(error_chain(&error));
    if let Err(store_error) = app.store.update_recording(&job.workspace, &job.call, recording).await {
        tracing::warn!(error = %error_chain(&store_error), "could not record a failed copy attempt");
    }
    error
}

async fn transfer(
    twilio: &TwilioClient,
    store: &dyn RecordingStore,
    workspace: &Workspace,
    recording: &Recording,
    job: &CopyJob,
) -> Result<StoredObject, CopyError> {
    let mut response = twilio
        .recording_media(&recording.sid)
        .await
        .map_err(CopyError::Download)?;
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // Twilio's error pages are XML or JSON with a 200 now and then: never store those.
    if !content_type.starts_with("audio/") {
        return Err(CopyError::NotAudio(content_type));
    }
    let expected = response.content_length();
    let key = recording.key(&workspace.id, &job.call);
    let mut upload = store.begin(&key, &content_type).await.map_err(CopyError::Storage)?;
    let mut received: u64 = 0;
    let failure = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                if let Err(error) = upload.write(chunk).await {
                    break Some(CopyError::Storage(error));
                }
            }
            Ok(None) if received == 0 => break Some(CopyError::Transfer("the recording is empty".into())),
            Ok(None) if expected.is_some_and(|n| n != received) => {
                break Some(CopyError::Transfer(format!(
                    "the download ended after {received} of {} bytes",
                    expected.unwrap_or_default()
                )));
            }
            Ok(None) => break None,
            Err(error) => break Some(CopyError::Transfer(error_chain(&error.without_url()))),
        }
    };
    if let Some(error) = failure {
        // Nothing half-written stays behind (S3 also expires stray parts).
        if let Err(abort) = upload.abort().await {
            tracing::warn!(error = %error_chain(&abort), "could not abort a failed upload");
        }
        return Err(error);
    }
    let stored = upload.finish().await.map_err(CopyError::Storage)?;
    if stored.size != received {
        return Err(CopyError::Transfer(format!(
            "stored {} bytes of {received} received",
            stored.size
        )));
    }
    Ok(stored)
}

/// Deletes Twilio's copy only once ours reads back with the same size and
/// hash. If ours does not verify, or Twilio refuses, Twilio's copy is kept
/// and the error goes back for a retry (and, in the end, to the dead-letter
/// queue or the log, with Twilio's copy still there).
async fn delete_at_twilio_once_verified(
    app: &App,
    twilio: &TwilioClient,
    store: &dyn RecordingStore,
    workspace: &Workspace,
    recording: &mut Recording,
    job: &CopyJob,
    stored: &StoredObject,
) -> Result<(), CopyError> {
    let key = recording.key(&workspace.id, &job.call);
    match store.stat(&key).await {
        Ok(Some(ours)) if ours.size == stored.size && ours.sha256 == stored.sha256 => {}
        Err(error) => return Err(CopyError::Storage(error)),
        other => {
            return Err(CopyError::Transfer(format!(
                "our copy did not verify ({other:?}); Twilio's copy is kept"
            )));
        }
    }
    match twilio.delete_recording(&recording.sid).await {
        // Already gone: a previous attempt's answer was lost.
        Ok(()) | Err(TwilioError::NotFound { .. }) => {
            recording.twilio_deleted = true;
            recording.last_error = None;
            app.store.update_recording(&workspace.id, &job.call, recording).await?;
            Ok(())
        }
        Err(error) => Err(CopyError::Delete(error)),
    }
}
