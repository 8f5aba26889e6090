//! Checking a Voice access token as Twilio checks the one a browser `Device`
//! presents: a JWT signed HS256 with the secret of the API key it names
//! (`iss`), `cty: twilio-fpa;v=1`, for the account in `sub`, within its `nbf`
//! and `exp` (at most 24 hours apart), with a voice grant whose
//! `outgoing.application_sid` is an application of that account.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Twilio's longest token lifetime.
pub const MAX_LIFETIME_SECONDS: u64 = 24 * 60 * 60;

/// Why a token is refused, with the code Twilio's Voice SDK reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is not a JWT")]
    Malformed,
    #[error("the access token's header must say alg HS256 and cty twilio-fpa;v=1")]
    Header,
    #[error("the access token's issuer is not an API key of its account")]
    Issuer,
    #[error("the access token's signature does not verify with its API key's secret")]
    Signature,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token lives longer than 24 hours")]
    TooLong,
    #[error("the access token has no identity or no voice grant with an outgoing application")]
    Grants,
    #[error("the access token's application is not an application of its account")]
    Application,
}

impl TokenError {
    /// The error code the Voice SDK surfaces.
    pub fn code(&self) -> u32 {
        match self {
            Self::Malformed => 20101,
            Self::Header => 20102,
            Self::Issuer => 20103,
            Self::Expired => 20104,
            Self::NotYetValid => 20105,
            Self::Grants | Self::Application => 20106,
            Self::Signature => 20107,
            Self::TooLong => 20157,
        }
    }
}

/// What a token that checked out grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceGrant {
    pub account_sid: String,
    pub api_key_sid: String,
    pub identity: String,
    pub application_sid: String,
    pub incoming_allowed: bool,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    grants: Grants,
}

#[derive(Deserialize, Default)]
struct Grants {
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    voice: Option<Voice>,
}

#[derive(Deserialize)]
struct Voice {
    #[serde(default)]
    incoming: Option<Incoming>,
    #[serde(default)]
    outgoing: Option<Outgoing>,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    allow: bool,
}

#[derive(Deserialize)]
struct Outgoing {
    application_sid: String,
}

#[derive(Deserialize)]
struct Unverified {
    iss: String,
    sub: String,
}

/// Checks `token` at `now` (seconds since the epoch). `key_secret` gives the
/// secret of an API key of an account (`(account, key)`), and
/// `application_exists` whether an account has an application.
pub fn verify(
    token: &str,
    now: u64,
    key_secret: impl Fn(&str, &str) -> Option<String>,
    application_exists: impl Fn(&str, &str) -> bool,
) -> Result<VoiceGrant, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::HS256 || header.cty.as_deref() != Some("twilio-fpa;v=1") {
        return Err(TokenError::Header);
    }
    let unverified: Unverified =
        jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| TokenError::Malformed)?;
    if !unverified.iss.starts_with("SK") || !unverified.sub.starts_with("AC") {
        return Err(TokenError::Issuer);
    }
    let secret = key_secret(&unverified.sub, &unverified.iss).ok_or(TokenError::Issuer)?;

    let mut validation = Validation::new(Algorithm::HS256);
    // Time is checked below, against `now`.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|_| TokenError::Signature)?
        .claims;
    let start = claims.nbf.or(claims.iat).unwrap_or(now);
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if now < start {
        return Err(TokenError::NotYetValid);
    }
    if claims.exp.saturating_sub(start) > MAX_LIFETIME_SECONDS {
        return Err(TokenError::TooLong);
    }
    let identity = claims
        .grants
        .identity
        .filter(|i| !i.is_empty() && i.len() <= 256 && !i.chars().any(|c| c.is_whitespace() || c.is_control()))
        .ok_or(TokenError::Grants)?;
    let voice = claims.grants.voice.ok_or(TokenError::Grants)?;
    let application_sid = voice.outgoing.ok_or(TokenError::Grants)?.application_sid;
    if !application_exists(&claims.sub, &application_sid) {
        return Err(TokenError::Application);
    }
    Ok(VoiceGrant {
        account_sid: claims.sub,
        api_key_sid: claims.iss,
        identity,
        application_sid,
        incoming_allowed: voice.incoming.is_some_and(|i| i.allow),
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const KEY: &str = "SK0123456789abcdef0123456789abcdef";
    const APP: &str = "AP0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;

    fn token(claims: serde_json::Value, cty: Option<&str>, secret: &str) -> String {
        let header = Header {
            cty: cty.map(str::to_owned),
            ..Header::new(Algorithm::HS256)
        };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    fn claims(nbf: u64, exp: u64) -> serde_json::Value {
        json!({
            "jti": format!("{KEY}-{nbf}"), "iss": KEY, "sub": ACCOUNT, "nbf": nbf, "exp": exp,
            "grants": {"identity": "agent_alice", "voice": {"incoming": {"allow": true}, "outgoing": {"application_sid": APP}}}
        })
    }

    fn check(token: &str) -> Result<VoiceGrant, TokenError> {
        verify(
            token,
            NOW,
            |account, key| (account == ACCOUNT && key == KEY).then(|| "secret".to_owned()),
            |account, app| account == ACCOUNT && app == APP,
        )
    }

    #[test]
    fn a_token_as_switchboard_mints_it_checks_out() {
        let grant = check(&token(claims(NOW - 10, NOW + 3600), Some("twilio-fpa;v=1"), "secret")).unwrap();
        assert_eq!(grant.identity, "agent_alice");
        assert_eq!(grant.application_sid, APP);
        assert!(grant.incoming_allowed);
    }

    #[test]
    fn each_rule_refuses_with_its_code() {
        let good = claims(NOW - 10, NOW + 3600);
        let cases = [
            (token(good.clone(), None, "secret"), TokenError::Header),
            (
                token(good.clone(), Some("twilio-fpa;v=1"), "wrong"),
                TokenError::Signature,
            ),
            (
                token(claims(NOW - 7200, NOW - 3600), Some("twilio-fpa;v=1"), "secret"),
                TokenError::Expired,
            ),
            (
                token(claims(NOW + 60, NOW + 3600), Some("twilio-fpa;v=1"), "secret"),
                TokenError::NotYetValid,
            ),
            (
                token(claims(NOW - 10, NOW + 90_000), Some("twilio-fpa;v=1"), "secret"),
                TokenError::TooLong,
            ),
            ("not.a.jwt".to_owned(), TokenError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(check(&token), Err(expected.clone()), "{expected}");
        }
        let mut other_app = good.clone();
        other_app["grants"]["voice"]["outgoing"]["application_sid"] = json!("AP".to_owned() + &"f".repeat(32));
        assert_eq!(
            check(&token(other_app, Some("twilio-fpa;v=1"), "secret")),
            Err(TokenError::Application)
        );
        let mut unknown_key = good.clone();
        unknown_key["iss"] = json!("SK".to_owned() + &"e".repeat(32));
        assert_eq!(
            check(&token(unknown_key, Some("twilio-fpa;v=1"), "secret")),
            Err(TokenError::Issuer)
        );
        let mut no_voice = good;
        no_voice["grants"] = json!({"identity": "agent_alice"});
        assert_eq!(
            check(&token(no_voice, Some("twilio-fpa;v=1"), "secret")),
            Err(TokenError::Grants)
        );
        assert_eq!(TokenError::Expired.code(), 20104);
    }
}
