//! E.164 phone numbers, parsed with libphonenumber's rules (the `phonenumber` crate).

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
        let parsed = phonenumber::parse(None, trimmed).map_err(|_| InvalidNumber::Invalid(shown()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(InvalidNumber::Invalid(shown()));
        }
        Ok(Self(parsed.format().mode(phonenumber::Mode::E164).to_string()))
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

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
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
}
