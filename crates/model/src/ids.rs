//! Identifiers that are parsed once at the boundary and trusted everywhere after.
//!
//! Each one is a newtype over `String` whose constructor is the only way in, so a
//! `WorkspaceId` can always be used as a whole key segment and a `CallSid` always
//! looks like one Twilio issued.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} is not valid: {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn invalid(kind: &'static str, value: &str, reason: &'static str) -> InvalidId {
    // Bound what we echo back: the value comes from a client.
    let value: String = value.chars().take(80).collect();
    InvalidId { kind, value, reason }
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(value).map_err(|reason| invalid($kind, value, reason))?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A Twilio SID: a two-letter prefix and 32 lowercase or uppercase hex digits.
fn twilio_sid(prefix: &'static str) -> impl Fn(&str) -> Result<(), &'static str> {
    move |value: &str| {
        let Some(hex) = value.strip_prefix(prefix) else {
            return Err("wrong prefix");
        };
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("expected 32 hex digits after the prefix");
        }
        Ok(())
    }
}

string_id!(
    /// A tenant. Letters, digits, `-` and `_` only, so it is always a whole key
    /// segment between `#` delimiters and never needs escaping in a URL.
    WorkspaceId,
    "workspace id",
    |v| {
        if v.is_empty() || v.len() > 64 {
            return Err("must be 1 to 64 characters");
        }
        if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("only letters, digits, '-' and '_' are allowed");
        }
        Ok(())
    }
);

string_id!(
    /// The agent, as the identity provider's `sub` claim names them.
    AgentId,
    "agent id",
    |v| {
        if v.is_empty() || v.len() > 255 {
            return Err("must be 1 to 255 characters");
        }
        if v.chars().any(char::is_control) {
            return Err("control characters are not allowed");
        }
        Ok(())
    }
);

string_id!(
    /// Our own id for a call session: a ULID, so ids sort by creation time.
    CallId,
    "call id",
    |v| {
        ulid::Ulid::from_string(v)
            .map(|_| ())
            .map_err(|_| "expected a ULID")
    }
);

string_id!(AccountSid, "account SID", |v| twilio_sid("AC")(v));
string_id!(CallSid, "call SID", |v| twilio_sid("CA")(v));
string_id!(ApiKeySid, "API key SID", |v| twilio_sid("SK")(v));
string_id!(ApplicationSid, "application SID", |v| twilio_sid("AP")(v));
string_id!(ConferenceSid, "conference SID", |v| twilio_sid("CF")(v));
string_id!(RecordingSid, "recording SID", |v| twilio_sid("RE")(v));
string_id!(PhoneNumberSid, "phone number SID", |v| twilio_sid("PN")(v));
string_id!(MessageSid, "message SID", |v| {
    // SMS are `SM…`, MMS `MM…`.
    twilio_sid("SM")(v).or_else(|_| twilio_sid("MM")(v))
});

impl CallId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_ids_are_whole_key_segments() {
        assert!(WorkspaceId::parse("acme").is_ok());
        assert!(WorkspaceId::parse("acme-corp_2").is_ok());
        for bad in ["", "a#b", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn twilio_sids_need_their_prefix_and_32_hex_digits() {
        let sid = format!("AC{}", "a1".repeat(16));
        assert!(AccountSid::parse(&sid).is_ok());
        assert!(CallSid::parse(&sid).is_err());
        assert!(AccountSid::parse("AC123").is_err());
        assert!(AccountSid::parse(&format!("AC{}", "g".repeat(32))).is_err());
        assert!(MessageSid::parse(&format!("MM{}", "0".repeat(32))).is_ok());
    }

    #[test]
    fn call_ids_are_ulids_and_serde_round_trips_through_parse() {
        let id = CallId::generate();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<CallId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<CallId>("\"not-a-ulid\"").is_err());
    }

    #[test]
    fn invalid_ids_do_not_echo_unbounded_input() {
        let err = AgentId::parse(&format!("{}\u{7}", "a".repeat(500))).unwrap_err();
        assert!(err.value.len() <= 80);
    }
}
