//! Workspaces (tenants) and their phone numbers.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountSid, AgentId, ApiKeySid, ApplicationSid, PhoneNumberSid, WorkspaceId};
use crate::phone::E164;
use crate::secrets::Sealed;

/// One tenant: a company with its own Twilio account and its own agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: WorkspaceId,
    /// `None` until an admin connects a Twilio account.
    pub twilio: Option<TwilioAccount>,
    pub settings: WorkspaceSettings,
}

impl Workspace {
    pub fn new(id: WorkspaceId) -> Self {
        Self {
            id,
            twilio: None,
            settings: WorkspaceSettings::default(),
        }
    }
}

/// The workspace's Twilio account as Switchboard wired it. Secrets are sealed
/// (encrypted with the workspace id bound in) before they reach a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwilioAccount {
    pub account_sid: AccountSid,
    pub auth_token: Sealed,
    /// The API key that signs access tokens, and its secret.
    pub api_key: Option<ApiKey>,
    /// The TwiML App whose Voice URL is the agent TwiML.
    pub twiml_app_sid: Option<ApplicationSid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub sid: ApiKeySid,
    pub secret: Sealed,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkspaceSettings {
    /// Caller ID for outbound calls when the agent has no number of their own.
    pub caller_id: Option<E164>,
    /// Record calls (both legs, from the conference).
    pub record: bool,
    /// Delete Twilio's copy once ours is verified in S3.
    pub delete_twilio_recording_after_copy: bool,
    /// Answer inbound texts with this, when set.
    pub sms_auto_reply: Option<String>,
}

/// A phone number of the workspace's Twilio account, and who answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    pub number: E164,
    pub sid: Option<PhoneNumberSid>,
    /// Agents who ring for inbound calls and may use it as caller ID.
    #[serde(default)]
    pub agents: Vec<AgentId>,
    #[serde(default)]
    pub label: Option<String>,
}
