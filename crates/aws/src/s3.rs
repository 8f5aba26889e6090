//! Recordings in S3, at `recordings/<workspace>/<callId>/<RecordingSid>.<ext>`.
//!
//! An upload holds at most one part in memory. Whatever fits in one part goes
//! up as a single `PutObject`; anything larger becomes a multipart upload,
//! started when the first part is full, so `begin` costs no request and an
//! upload that never grows past one part leaves nothing to clean up.
//!
//! The SHA-256 of the bytes is computed while they stream through and returned
//! by `finish`. So that `stat` can report it later too, it is kept with the
//! object: as user metadata `sha256` on a single `PutObject` (known before the
//! request), and as the object tag `sha256` after a multipart upload (metadata
//! cannot change once the object exists; tags can, without a copy). The
//! function role needs `s3:PutObjectTagging` and `s3:GetObjectTagging` for that.
//! Should neither be there (a tagging request that failed after the upload
//! completed), `stat` hashes the object by streaming it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Tag, Tagging};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use switchboard_model::ports::{Playback, RecordingStore, RecordingUpload, StoreError, StoredObject};
use switchboard_model::recordings::RecordingKey;

/// Default part size: big enough to keep the part count low for long
/// recordings, small enough to hold in a Lambda's memory.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// S3 refuses parts below 5 MiB, except the last one.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// S3 allows at most this many parts in one upload.
const MAX_PARTS: i32 = 10_000;

/// A presigned URL may live at most seven days (SigV4).
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 60 * 60);

const SHA256_KEY: &str = "sha256";

pub struct S3Recordings {
    client: aws_sdk_s3::Client,
    bucket: String,
    part_size: usize,
}

impl S3Recordings {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Changes the part size (tests use the minimum to exercise multipart
    /// uploads cheaply). Raised to `MIN_PART_SIZE` if smaller, since S3 would
    /// reject the upload at completion otherwise.
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    pub fn part_size(&self) -> usize {
        self.part_size
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Hashes a stored object by streaming it, for objects that carry no hash.
    async fn hash_object(&self, key: &str) -> Result<(u64, String), StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| unavailable("GetObject", &err))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|err| StoreError::Unavailable(format!("S3 GetObject body: {err}")))?
        {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    async fn stat_exists(&self, object_key: &str) -> Result<bool, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(err) => Err(unavailable("HeadObject", &err)),
        }
    }

    async fn sha256_tag(&self, key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| unavailable("GetObjectTagging", &err))?;
        Ok(out
            .tag_set()
            .iter()
            .find(|tag| tag.key() == SHA256_KEY)
            .map(|tag| tag.value().to_owned()))
    }
}

fn unavailable<E, R>(op: &str, err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(crate::errors::describe("S3", op, err))
}

#[async_trait]
impl RecordingStore for S3Recordings {
    async fn begin(&self, key: &RecordingKey, content_type: &str) -> Result<Box<dyn RecordingUpload>, StoreError> {
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.object_key(),
            content_type: content_type.to_owned(),
            part_size: self.part_size,
            buffer: BytesMut::new(),
            hasher: Sha256::new(),
            size: 0,
            multipart: None,
        }))
    }

    async fn stat(&self, key: &RecordingKey) -> Result<Option<StoredObject>, StoreError> {
        let object_key = key.object_key();
        let head = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await
        {
            Ok(head) => head,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => return Ok(None),
            Err(err) => return Err(unavailable("HeadObject", &err)),
        };
        let content_type = head.content_type().unwrap_or("application/octet-stream").to_owned();
        let size = head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("S3 object {object_key} has no size")))?;
        let from_metadata = head.metadata().and_then(|m| m.get(SHA256_KEY)).cloned();
        let sha256 = match from_metadata {
            Some(sha) => sha,
            None => match self.sha256_tag(&object_key).await? {
                Some(sha) => sha,
                None => {
                    let (hashed_size, sha) = self.hash_object(&object_key).await?;
                    if hashed_size != size {
                        return Err(StoreError::Unavailable(format!(
                            "S3 object {object_key} changed while it was read"
                        )));
                    }
                    sha
                }
            },
        };
        Ok(Some(StoredObject {
            size,
            sha256,
            content_type,
        }))
    }

    async fn playback(&self, key: &RecordingKey, valid_for: Duration) -> Result<Playback, StoreError> {
        let object_key = key.object_key();
        // A link to nothing helps nobody: say NotFound like the local store does.
        if self.stat_exists(&object_key).await? {
            let config = PresigningConfig::expires_in(valid_for.clamp(Duration::from_secs(1), MAX_PRESIGN))
                .map_err(|err| StoreError::Unavailable(format!("S3 presigning: {err}")))?;
            let request = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&object_key)
                .presigned(config)
                .await
                .map_err(|err| unavailable("presign GetObject", &err))?;
            Ok(Playback::Redirect(request.uri().to_owned()))
        } else {
            Err(StoreError::NotFound(format!("recording {object_key}")))
        }
    }
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

struct S3Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    content_type: String,
    part_size: usize,
    /// Bytes not yet sent: less than one part between calls.
    buffer: BytesMut,
    hasher: Sha256,
    size: u64,
    /// Started once the first part is full.
    multipart: Option<Multipart>,
}

impl S3Upload {
    async fn start_multipart(&mut self) -> Result<(), StoreError> {
        if self.multipart.is_some() {
            return Ok(());
        }
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type(&self.content_type)
            .send()
            .await
            .map_err(|err| unavailable("CreateMultipartUpload", &err))?;
        let upload_id = out
            .upload_id
            .ok_or_else(|| StoreError::Unavailable("S3 CreateMultipartUpload returned no upload id".into()))?;
        self.multipart = Some(Multipart {
            upload_id,
            parts: Vec::new(),
        });
        Ok(())
    }

    async fn upload_part(&mut self, body: Bytes) -> Result<(), StoreError> {
        self.start_multipart().await?;
        let Some(multipart) = self.multipart.as_mut() else {
            return Err(StoreError::Unavailable("S3 multipart upload was not started".into()));
        };
        let number = i32::try_from(multipart.parts.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .filter(|n| *n <= MAX_PARTS)
            .ok_or_else(|| StoreError::Unavailable(format!("S3 upload {} exceeds {MAX_PARTS} parts", self.key)))?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&multipart.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| unavailable("UploadPart", &err))?;
        multipart.parts.push(
            CompletedPart::builder()
                .set_e_tag(out.e_tag)
                .part_number(number)
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl RecordingUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.hasher.update(&chunk);
        self.size += chunk.len() as u64;
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= self.part_size {
            let part = self.buffer.split_to(self.part_size).freeze();
            self.upload_part(part).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<StoredObject, StoreError> {
        let sha256 = hex::encode(self.hasher.clone().finalize());
        let stored = StoredObject {
            size: self.size,
            sha256: sha256.clone(),
            content_type: self.content_type.clone(),
        };
        let rest = std::mem::take(&mut self.buffer).freeze();

        if self.multipart.is_none() {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .metadata(SHA256_KEY, &sha256)
                .body(ByteStream::from(rest))
                .send()
                .await
                .map_err(|err| unavailable("PutObject", &err))?;
            return Ok(stored);
        }

        if !rest.is_empty() {
            self.upload_part(rest).await?;
        }
        let Some(multipart) = self.multipart.take() else {
            return Err(StoreError::Unavailable("S3 multipart upload was not started".into()));
        };
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&multipart.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(multipart.parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|err| unavailable("CompleteMultipartUpload", &err))?;

        let tag = Tag::builder()
            .key(SHA256_KEY)
            .value(&sha256)
            .build()
            .map_err(|err| StoreError::Unavailable(format!("S3 tag: {err}")))?;
        let tagging = Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|err| StoreError::Unavailable(format!("S3 tagging: {err}")))?;
        // If this fails the object is complete but unlabelled; `stat` copes by
        // hashing it, and a retried copy simply overwrites it.
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(&self.key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|err| unavailable("PutObjectTagging", &err))?;
        Ok(stored)
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.buffer = BytesMut::new();
        let Some(multipart) = self.multipart.take() else {
            // Nothing was sent: nothing to discard.
            return Ok(());
        };
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&multipart.upload_id)
            .send()
            .await
            .map_err(|err| unavailable("AbortMultipartUpload", &err))?;
        Ok(())
    }
}
