//! Twilio Voice access tokens for the browser `Device`.
//!
//! A JWT signed HS256 with an API key secret, `cty: twilio-fpa;v=1`, issued by
//! the API key for the account, with a voice grant that allows incoming calls
//! and names the TwiML App that outgoing calls use.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ids::{AccountSid, AgentId, ApiKeySid, ApplicationSid};

/// Twilio refuses tokens that live longer than this.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

pub struct VoiceGrant<'a> {
    pub account_sid: &'a AccountSid,
    pub api_key_sid: &'a ApiKeySid,
    pub api_key_secret: &'a [u8],
    pub application_sid: &'a ApplicationSid,
    pub identity: &'a str,
    pub lifetime: Duration,
}

#[derive(Serialize)]
struct Claims<'a> {
    jti: String,
    iss: &'a str,
    sub: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    grants: Grants<'a>,
}

#[derive(Serialize)]
struct Grants<'a> {
    identity: &'a str,
    voice: Voice<'a>,
}

#[derive(Serialize)]
struct Voice<'a> {
    incoming: Incoming,
    outgoing: Outgoing<'a>,
}

#[derive(Serialize)]
struct Incoming {
    allow: bool,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    application_sid: &'a str,
}

/// Mints a token valid from `now` (seconds since the Unix epoch).
pub fn mint(grant: &VoiceGrant<'_>, now: u64) -> String {
    let lifetime = grant.lifetime.min(MAX_LIFETIME).as_secs();
    let claims = Claims {
        jti: format!("{}-{now}", grant.api_key_sid),
        iss: grant.api_key_sid.as_str(),
        sub: grant.account_sid.as_str(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        grants: Grants {
            identity: grant.identity,
            voice: Voice {
                incoming: Incoming { allow: true },
                outgoing: Outgoing {
                    application_sid: grant.application_sid.as_str(),
                },
            },
        },
    };
    let header = Header {
        cty: Some("twilio-fpa;v=1".to_owned()),
        ..Header::new(Algorithm::HS256)
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(grant.api_key_secret))
        .expect("HS256 encoding of plain claims cannot fail")
}

/// Twilio client identities are at most 256 characters; mobile SDKs only
/// accept letters, digits and `_`. Longer subjects are hashed.
const MAX_READABLE_IDENTITY: usize = 120;

/// The Voice SDK identity of an agent: `agent_` followed by the agent id with
/// every byte other than an ASCII letter or digit written as `_xx` (hex), which
/// is injective, so two agents never share an identity. One Twilio account
/// serves one workspace, so this is unique within the account.
pub fn agent_identity(agent: &AgentId) -> String {
    let mut identity = String::from("agent_");
    for byte in agent.as_str().bytes() {
        if byte.is_ascii_alphanumeric() {
            identity.push(byte as char);
        } else {
            identity.push('_');
            identity.push_str(&format!("{byte:02x}"));
        }
    }
    if identity.len() <= MAX_READABLE_IDENTITY {
        identity
    } else {
        // A different prefix keeps hashed and readable identities apart.
        format!("agenth_{}", hex::encode(Sha256::digest(agent.as_str())))
    }
}

/// The agent an identity was made from, for readable identities (hashed ones
/// cannot be reversed; those agents must go through `POST /calls`).
/// Where a call to an agent's browser goes (`client:<identity>`), with custom
/// parameters the browser's `Call` carries (`call.customParameters`).
pub fn client_address(agent: &AgentId, parameters: &[(&str, &str)]) -> String {
    let mut address = format!("client:{}", agent_identity(agent));
    if !parameters.is_empty() {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(parameters)
            .finish();
        address.push('?');
        address.push_str(&query);
    }
    address
}

pub fn agent_from_identity(identity: &str) -> Option<AgentId> {
    let encoded = identity.strip_prefix("agent_")?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'_' {
            let hex = tail.get(..2)?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else if first.is_ascii_alphanumeric() {
            bytes.push(first);
            rest = tail;
        } else {
            return None;
        }
    }
    let agent = AgentId::parse(std::str::from_utf8(&bytes).ok()?).ok()?;
    // Only the canonical spelling counts (`_41` for `A` would be another identity).
    (agent_identity(&agent) == identity).then_some(agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{DecodingKey, Validation};

    fn sid<T: std::str::FromStr>(prefix: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        format!("{prefix}{}", "0123456789abcdef".repeat(2)).parse().unwrap()
    }

    #[test]
    fn token_has_the_shape_twilio_expects() {
        let (account, key, app) = (
            sid::<AccountSid>("AC"),
            sid::<ApiKeySid>("SK"),
            sid::<ApplicationSid>("AP"),
        );
        let token = mint(
            &VoiceGrant {
                account_sid: &account,
                api_key_sid: &key,
                api_key_secret: b"secret",
                application_sid: &app,
                identity: "agent_alice",
                lifetime: Duration::from_secs(3600),
            },
            1_700_000_000,
        );
        let mut parts = token.split('.');
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["cty"], "twilio-fpa;v=1");

        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_secret(b"secret"), &validation)
                .unwrap()
                .claims;
        assert_eq!(claims["iss"], key.as_str());
        assert_eq!(claims["sub"], account.as_str());
        assert_eq!(claims["jti"], format!("{key}-1700000000"));
        assert_eq!(claims["nbf"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_003_600);
        assert_eq!(claims["grants"]["identity"], "agent_alice");
        assert_eq!(claims["grants"]["voice"]["incoming"]["allow"], true);
        assert_eq!(claims["grants"]["voice"]["outgoing"]["application_sid"], app.as_str());
    }

    #[test]
    fn lifetime_is_capped_at_24_hours() {
        let (account, key, app) = (
            sid::<AccountSid>("AC"),
            sid::<ApiKeySid>("SK"),
            sid::<ApplicationSid>("AP"),
        );
        let token = mint(
            &VoiceGrant {
                account_sid: &account,
                api_key_sid: &key,
                api_key_secret: b"s",
                application_sid: &app,
                identity: "x",
                lifetime: Duration::from_secs(10 * 86_400),
            },
            0,
        );
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["exp"], 86_400);
    }

    #[test]
    fn identities_are_twilio_safe_and_distinct() {
        let ids = [
            "alice",
            "auth0|64f1c2",
            "auth0_7c64f1c2",
            "a.b@example.com",
            "ünïcode",
            "a b",
        ];
        let identities: Vec<String> = ids
            .iter()
            .map(|i| agent_identity(&AgentId::parse(i).unwrap()))
            .collect();
        for identity in &identities {
            assert!(identity.len() <= 256);
            assert!(
                identity.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{identity}"
            );
        }
        let unique: std::collections::HashSet<_> = identities.iter().collect();
        assert_eq!(unique.len(), identities.len());
        assert_eq!(identities[0], "agent_alice");
        assert_eq!(identities[1], "agent_auth0_7c64f1c2");
    }

    #[test]
    fn readable_identities_reverse_to_their_agent() {
        for id in ["alice", "auth0|64f1c2", "a.b@example.com", "ünïcode", "a_b"] {
            let agent = AgentId::parse(id).unwrap();
            assert_eq!(agent_from_identity(&agent_identity(&agent)), Some(agent));
        }
        for bad in [
            "alice",
            "agent_",
            "agent_a_4",
            "agent_a_zz",
            "agent_a b",
            "agent__41",
            "agenth_00",
        ] {
            assert_eq!(agent_from_identity(bad), None, "{bad}");
        }
    }

    #[test]
    fn long_subjects_are_hashed_within_limits() {
        let long = AgentId::parse(&"é".repeat(100)).unwrap();
        let identity = agent_identity(&long);
        assert!(identity.starts_with("agenth_") && identity.len() <= 256);
        assert_ne!(identity, agent_identity(&AgentId::parse(&"è".repeat(100)).unwrap()));
    }
}
