//! E.164 phone numbers, parsed with libphonenumber's rules (the
//! `rlibphonenumber` crate, a port of Google's library).
//!
//! A number a person typed is checked against libphonenumber's rules once,
//! where it enters ([`E164::parse`]). A number Twilio sent or Switchboard
//! stored is canonical already, so only its form is checked
//! ([`E164::from_canonical`]): the metadata is loaded on first use (about
//! 10 ms), which the webhooks, on the path of a ringing call and of every
//! cold start, need not pay.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNumber {
    #[error("{0:?} is not a phone number in E.164 form (for example +14155550100)")]
    NotE164(String),
    #[error("{0:?} is not a valid phone number")]
    Invalid(String),
}

/// A valid phone number, held in canonical E.164 form (`+` and digits only).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Accepts only numbers written in international form: a leading `+`, then
    /// digits, optionally grouped with spaces, dashes, dots or parentheses.
    pub fn parse(input: &str) -> Result<Self, InvalidNumber> {
        let shown = || input.chars().take(40).collect::<String>();
        let trimmed = input.trim();
        let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')');
        if !trimmed.starts_with('+') || trimmed.len() > 32 || !trimmed[1..].chars().all(allowed) {
            return Err(InvalidNumber::NotE164(shown()));
        }
        let rules = &*rlibphonenumber::PHONE_NUMBER_UTIL;
        let parsed = rules
            .parse(trimmed, None)
            .map_err(|_| InvalidNumber::Invalid(shown()))?;
        if !rules.is_valid_number(&parsed) {
            return Err(InvalidNumber::Invalid(shown()));
        }
        Ok(Self(
            rules
                .format(&parsed, rlibphonenumber::PhoneNumberFormat::E164)
                .into_owned(),
        ))
    }

    /// A number in canonical E.164 form as Twilio sends it and as stored:
    /// `+`, a first digit from 1 to 9, then 1 to 14 more digits, nothing else.
    pub fn from_canonical(input: &str) -> Result<Self, InvalidNumber> {
        let digits = input.strip_prefix('+').unwrap_or_default();
        let canonical =
            (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if canonical {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidNumber::NotE164(input.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.0)
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Reads the canonical form (stored values, Twilio's). Request bodies with a
/// number a person typed read a `String` and call [`E164::parse`].
impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::from_canonical(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_international_numbers() {
        assert_eq!(E164::parse("+1 415-555-0100").unwrap().as_str(), "+14155550100");
        assert_eq!(E164::parse("+44 20 7946 0958").unwrap().as_str(), "+442079460958");
    }

    #[test]
    fn rejects_national_forms_letters_and_invalid_numbers() {
        for bad in [
            "4155550100",
            "+1415555010O",
            "+1 000",
            "",
            "+",
            "+99912345678",
            "+1415;DROP",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn canonical_form_is_checked_without_the_metadata() {
        for good in ["+14155550100", "+442079460958", "+12"] {
            assert_eq!(E164::from_canonical(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "+",
            "+1",
            "14155550100",
            "+1 415 555 0100",
            "+04155550100",
            "+1415555010O",
            "+1234567890123456",
            "client:alice",
            "+1415\u{0}",
        ] {
            assert!(E164::from_canonical(bad).is_err(), "{bad:?} accepted");
        }
        let stored: E164 = serde_json::from_str("\"+14155550100\"").unwrap();
        assert_eq!(stored.as_str(), "+14155550100");
        assert!(serde_json::from_str::<E164>("\"+1 415 555 0100\"").is_err());
    }
}
