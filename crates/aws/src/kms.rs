//! Secrets sealed with AWS KMS: `Encrypt`/`Decrypt` under one key, with the
//! encryption context `{"workspace": <workspace id>}`, so a ciphertext copied
//! onto another workspace's record does not open.
//!
//! Nothing here logs, and error messages never carry plaintext: only the SDK's
//! error context, which holds codes and request ids.

use async_trait::async_trait;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use secrecy::{ExposeSecret, SecretString};

use switchboard_model::ids::WorkspaceId;
use switchboard_model::ports::{SecretBox, SecretError};
use switchboard_model::sealed::Sealed;

/// The encryption context key that binds a ciphertext to its workspace.
const CONTEXT_KEY: &str = "workspace";

/// Decrypt failures that mean "this ciphertext is not for this workspace and
/// key", as opposed to "KMS could not answer right now".
const UNOPENABLE_CODES: [&str; 3] = [
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "InvalidKeyUsageException",
];

pub struct KmsSecretBox {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsSecretBox {
    /// `key_id` is a key id, key ARN, alias name or alias ARN.
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

fn unavailable<E, R>(op: &str, err: &SdkError<E, R>) -> SecretError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    SecretError::Unavailable(crate::errors::describe("KMS", op, err))
}

#[async_trait]
impl SecretBox for KmsSecretBox {
    async fn seal(&self, workspace: &WorkspaceId, plaintext: &SecretString) -> Result<Sealed, SecretError> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext.expose_secret().as_bytes()))
            .encryption_context(CONTEXT_KEY, workspace.as_str())
            .send()
            .await
            .map_err(|err| unavailable("Encrypt", &err))?;
        let ciphertext = out
            .ciphertext_blob
            .ok_or_else(|| SecretError::Unavailable("KMS Encrypt returned no ciphertext".into()))?;
        Ok(Sealed(ciphertext.into_inner()))
    }

    async fn open(&self, workspace: &WorkspaceId, sealed: &Sealed) -> Result<SecretString, SecretError> {
        let out = self
            .client
            .decrypt()
            // Naming the key makes KMS refuse ciphertexts sealed under any other key.
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(sealed.0.clone()))
            .encryption_context(CONTEXT_KEY, workspace.as_str())
            .send()
            .await
            .map_err(|err| {
                let code = err.as_service_error().and_then(ProvideErrorMetadata::code);
                if code.is_some_and(|c| UNOPENABLE_CODES.contains(&c)) {
                    SecretError::Unopenable
                } else {
                    unavailable("Decrypt", &err)
                }
            })?;
        let plaintext = out
            .plaintext
            .ok_or_else(|| SecretError::Unavailable("KMS Decrypt returned no plaintext".into()))?;
        // Our secrets are text; anything else was not sealed by us.
        String::from_utf8(plaintext.into_inner())
            .map(SecretString::from)
            .map_err(|_| SecretError::Unopenable)
    }
}
