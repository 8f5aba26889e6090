//! Switchboard's model: the identifiers and phone numbers parsed once at the
//! boundary, the call sessions, recordings, messages and workspaces with their
//! rules as methods, and the ports (storage, secrets, recordings, jobs) that
//! adapters implement.
//!
//! Layers, each importing only from those above it in this list:
//! `ids`, `phone`, `time`, `sealed` → `recordings`, `workspace`, `jobs` →
//! `calls`, `messages` → `changes` → `ports` → `conformance`.

pub mod calls;
pub mod changes;
pub mod ids;
pub mod jobs;
pub mod messages;
pub mod phone;
pub mod recordings;
pub mod sealed;
pub mod time;
pub mod workspace;

pub mod ports;

/// The storage contract every adapter is held to.
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
