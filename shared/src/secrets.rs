//! Workspace secrets (Twilio Auth Token, API key secret): sealed before they are
//! stored, opened only in memory, never logged, never returned.
//!
//! Sealing binds the workspace id (KMS encryption context in AWS, AEAD
//! associated data locally), so a ciphertext copied onto another workspace's
//! record does not open.

use std::fmt;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::WorkspaceId;

pub mod kms;
pub mod local;

/// Ciphertext as stored. Its `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

impl Serialize for Sealed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        BASE64.decode(raw).map(Sealed).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Wrong workspace, tampered ciphertext, or a key we do not hold.
    #[error("a stored secret could not be opened for this workspace")]
    Unopenable,
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
}

/// The port: seal and open secrets for one workspace.
#[async_trait]
pub trait SecretBox: Send + Sync {
    async fn seal(&self, workspace: &WorkspaceId, plaintext: &SecretString) -> Result<Sealed, SecretError>;
    async fn open(&self, workspace: &WorkspaceId, sealed: &Sealed) -> Result<SecretString, SecretError>;
}
