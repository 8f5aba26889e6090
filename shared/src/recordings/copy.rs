//! The copy itself: Twilio's media streamed into our storage part by part
//! (memory bounded by one part, whatever the length), checked before it is
//! kept, and only then, if the workspace asks, deleted at Twilio.

use secrecy::SecretString;

use crate::app::App;
use crate::calls::Timestamp;
use crate::recordings::queue::CopyJob;
use crate::recordings::{Recording, RecordingStatus};
use crate::store::StoreError;
use crate::store::recordings::{RecordingStore, StoredObject};
use crate::twilio::rest::TwilioClient;
use crate::workspace::Workspace;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no such call or recording: {0}")]
    Unknown(String),
    #[error("the workspace has no Twilio account, or no recordings store is configured")]
    NotConfigured,
    #[error("downloading from Twilio: {0}")]
    Download(String),
    #[error("Twilio's answer is not audio (Content-Type {0:?}); nothing was stored")]
    NotAudio(String),
    #[error("storing the recording: {0}")]
    Storage(String),
    #[error(transparent)]
    Record(#[from] StoreError),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Copied {
    /// A previous run stored it: nothing to do.
    AlreadyStored,
    Stored(StoredObject),
}

/// Copies one recording, once: a job for a recording already stored does
/// nothing. A failure is recorded on the session and returned for a retry.
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
    if recording.status == RecordingStatus::Stored {
        return Ok(Copied::AlreadyStored);
    }
    let workspace = app
        .store
        .get_workspace(ws)
        .await?
        .filter(|w| w.twilio.is_some())
        .ok_or(CopyError::NotConfigured)?;
    let store = app.recordings.as_deref().ok_or(CopyError::NotConfigured)?;
    let twilio = media_client(app, &workspace).await?;

    let stored = match transfer(&twilio, store, &workspace, &recording, job).await {
        Ok(stored) => stored,
        Err(error) => {
            recording.failed_attempts += 1;
            recording.last_error = Some(error.to_string());
            app.store.update_recording(ws, id, &recording).await?;
            return Err(error);
        }
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

    if workspace.settings.delete_twilio_recording_after_copy {
        delete_at_twilio(app, &twilio, store, &workspace, &mut recording, job, &stored).await?;
    }
    Ok(Copied::Stored(stored))
}

/// A client on the media HTTP client (no total timeout: a long recording
/// takes as long as it takes; stalls are caught by the read timeout).
async fn media_client(app: &App, workspace: &Workspace) -> Result<TwilioClient, CopyError> {
    let account = workspace.twilio.as_ref().ok_or(CopyError::NotConfigured)?;
    let token: SecretString = app
        .secrets
        .open(&workspace.id, &account.auth_token)
        .await
        .map_err(|e| CopyError::Download(e.to_string()))?;
    Ok(TwilioClient::with_auth_token(
        app.media_http.clone(),
        app.config.twilio_api_url.clone(),
        account.account_sid.clone(),
        token,
    ))
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
        .map_err(|e| CopyError::Download(e.to_string()))?;
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
    let mut upload = store
        .begin(&key, &content_type)
        .await
        .map_err(|e| CopyError::Storage(e.to_string()))?;
    let mut received: u64 = 0;
    let failure = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                if let Err(error) = upload.write(chunk).await {
                    break Some(CopyError::Storage(error.to_string()));
                }
            }
            Ok(None) if received == 0 => break Some(CopyError::Download("the recording is empty".into())),
            Ok(None) if expected.is_some_and(|n| n != received) => {
                break Some(CopyError::Download(format!(
                    "the download ended after {received} of {} bytes",
                    expected.unwrap_or_default()
                )));
            }
            Ok(None) => break None,
            Err(error) => break Some(CopyError::Download(error.without_url().to_string())),
        }
    };
    if let Some(error) = failure {
        // Nothing half-written stays behind (S3 also expires stray parts).
        if let Err(abort) = upload.abort().await {
            tracing::warn!(error = %abort, "could not abort a failed upload");
        }
        return Err(error);
    }
    let stored = upload.finish().await.map_err(|e| CopyError::Storage(e.to_string()))?;
    if stored.size != received {
        return Err(CopyError::Storage(format!(
            "stored {} bytes of {received} received",
            stored.size
        )));
    }
    Ok(stored)
}

/// Deletes Twilio's copy only once ours reads back with the same size and hash.
async fn delete_at_twilio(
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
        other => {
            tracing::warn!(recording = %recording.sid, ?other, "our copy did not verify; Twilio's copy is kept");
            return Ok(());
        }
    }
    match twilio.delete_recording(&recording.sid).await {
        Ok(()) => {
            recording.twilio_deleted = true;
            app.store.update_recording(&workspace.id, &job.call, recording).await?;
        }
        // Keeping Twilio's copy is the safe failure; the next run may delete it.
        Err(error) => tracing::warn!(recording = %recording.sid, %error, "could not delete Twilio's copy"),
    }
    Ok(())
}
