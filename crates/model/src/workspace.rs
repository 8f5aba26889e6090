//! Workspaces (tenants) and their phone numbers.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountSid, AgentId, ApiKeySid, ApplicationSid, PhoneNumberSid, WorkspaceId};
use crate::phone::E164;
use crate::sealed::Sealed;

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
    /// How long agents' browsers ring for an inbound call before the caller
    /// goes to voicemail (`None`: `DEFAULT_RING_SECONDS`).
    pub ring_seconds: Option<u32>,
    /// What an inbound caller hears while waiting for an agent (an http(s)
    /// URL of audio or TwiML); `None`: Twilio's own hold music.
    pub wait_url: Option<String>,
}

/// Agents ring this long for an inbound call unless the workspace says.
pub const DEFAULT_RING_SECONDS: u32 = 20;
/// The ring times a workspace may choose (Twilio rings a leg 5 to 600 s).
pub const RING_SECONDS: std::ops::RangeInclusive<u32> = 5..=120;

impl WorkspaceSettings {
    pub fn ring_seconds(&self) -> u32 {
        self.ring_seconds.unwrap_or(DEFAULT_RING_SECONDS)
    }
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

impl PhoneNumber {
    /// Whether `agent` may call or text from this number: numbers with no
    /// agents assigned are shared lines anyone may use.
    pub fn may_be_used_by(&self, agent: &AgentId) -> bool {
        self.agents.is_empty() || self.agents.contains(agent)
    }
}

/// Why no caller ID can be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerIdError {
    #[error("{0} is not a number of this workspace that you may use")]
    NotAllowed(E164),
    #[error(
        "there is no caller ID to call from: an admin must assign you a number (PUT /workspace/numbers/{{number}}) or set the workspace's callerId"
    )]
    NoCallerId,
}

impl Workspace {
    /// The number an agent's call goes out from: `requested` if the agent may
    /// use it, else the agent's own number, else the workspace caller ID.
    pub fn caller_id(
        &self,
        numbers: &[PhoneNumber],
        agent: &AgentId,
        requested: Option<&E164>,
    ) -> Result<E164, CallerIdError> {
        if let Some(requested) = requested {
            return match numbers.iter().find(|n| &n.number == requested) {
                Some(number) if number.may_be_used_by(agent) => Ok(requested.clone()),
                _ => Err(CallerIdError::NotAllowed(requested.clone())),
            };
        }
        numbers
            .iter()
            .find(|n| n.agents.contains(agent))
            .map(|n| n.number.clone())
            .or_else(|| self.settings.caller_id.clone())
            .ok_or(CallerIdError::NoCallerId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: &str, agents: &[&str]) -> PhoneNumber {
        PhoneNumber {
            number: E164::from_canonical(n).unwrap(),
            sid: None,
            agents: agents.iter().map(|a| AgentId::parse(a).unwrap()).collect(),
            label: None,
        }
    }

    #[test]
    fn agents_use_their_own_numbers_and_shared_lines() {
        let (alice, bob) = (AgentId::parse("alice").unwrap(), AgentId::parse("bob").unwrap());
        let own = number("+14155550100", &["alice"]);
        let shared = number("+14155550101", &[]);
        assert!(own.may_be_used_by(&alice) && !own.may_be_used_by(&bob));
        assert!(shared.may_be_used_by(&alice) && shared.may_be_used_by(&bob));
    }

    #[test]
    fn caller_id_prefers_the_request_then_the_agents_number_then_the_workspace() {
        let alice = AgentId::parse("alice").unwrap();
        let bob = AgentId::parse("bob").unwrap();
        let mut ws = Workspace::new(WorkspaceId::parse("acme").unwrap());
        let numbers = [number("+14155550100", &["alice"]), number("+14155550101", &[])];
        let shared = E164::from_canonical("+14155550101").unwrap();
        let own = E164::from_canonical("+14155550100").unwrap();
        assert_eq!(ws.caller_id(&numbers, &alice, Some(&shared)), Ok(shared.clone()));
        assert_eq!(ws.caller_id(&numbers, &alice, None), Ok(own.clone()));
        assert_eq!(
            ws.caller_id(&numbers, &bob, Some(&own)),
            Err(CallerIdError::NotAllowed(own))
        );
        assert_eq!(ws.caller_id(&numbers, &bob, None), Err(CallerIdError::NoCallerId));
        ws.settings.caller_id = Some(shared.clone());
        assert_eq!(ws.caller_id(&numbers, &bob, None), Ok(shared));
    }
}
