//! Sealing and opening workspace secrets: opened only in memory, never
//! logged, never returned.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::ids::WorkspaceId;
use crate::sealed::Sealed;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Wrong workspace, tampered ciphertext, or a key we do not hold.
    #[error("a stored secret could not be opened for this workspace")]
    Unopenable,
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
}

/// Seal and open secrets for one workspace.
#[async_trait]
pub trait SecretBox: Send + Sync {
    async fn seal(&self, workspace: &WorkspaceId, plaintext: &SecretString) -> Result<Sealed, SecretError>;
    async fn open(&self, workspace: &WorkspaceId, sealed: &Sealed) -> Result<SecretString, SecretError>;
}
