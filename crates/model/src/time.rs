//! Moments, always UTC, at millisecond precision.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A moment, serialised as RFC 3339 with exactly three fraction digits: fixed
/// width, so text order is time order (stores compare them as strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

const FIXED_RFC3339: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let millis = at.millisecond();
        Self(at.replace_millisecond(millis).unwrap_or(at))
    }

    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn rfc3339(&self) -> String {
        self.0.format(FIXED_RFC3339).expect("any UTC date formats as RFC 3339")
    }

    pub fn parse_rfc3339(value: &str) -> Option<Self> {
        OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(Self::from_datetime)
    }

    /// Twilio's callback `Timestamp` is RFC 2822.
    pub fn parse_rfc2822(value: &str) -> Option<Self> {
        OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn unix_millis(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    pub fn plus_seconds(&self, seconds: i64) -> Self {
        Self(self.0 + time::Duration::seconds(seconds))
    }

    pub fn plus_millis(&self, millis: i64) -> Self {
        Self(self.0 + time::Duration::milliseconds(millis))
    }

    /// The next moment after `previous` that is not before now: what a
    /// changed object's `updatedAt` becomes, strictly growing per object
    /// even when the clock stands still or steps back.
    pub fn after(previous: Timestamp) -> Self {
        Self::now().max(previous.plus_millis(1))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse_rfc3339(&raw).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_rfc2822_timestamps_parse() {
        let t = Timestamp::parse_rfc2822("Tue, 14 Nov 2023 22:13:20 +0000").unwrap();
        assert_eq!(t.unix_seconds(), 1_700_000_000);
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn timestamps_are_fixed_width_so_text_order_is_time_order() {
        let a = Timestamp::parse_rfc3339("2023-11-14T22:13:20.5Z").unwrap();
        let b = Timestamp::parse_rfc3339("2023-11-14T22:13:20.123456789Z").unwrap();
        assert_eq!(a.rfc3339(), "2023-11-14T22:13:20.500Z");
        assert_eq!(b.rfc3339(), "2023-11-14T22:13:20.123Z");
        assert!(b < a && b.rfc3339() < a.rfc3339());
        let now = Timestamp::now();
        assert_eq!(Timestamp::parse_rfc3339(&now.rfc3339()), Some(now));
        assert_eq!(Timestamp::from_unix_millis(now.unix_millis()), Some(now));
    }

    #[test]
    fn after_is_strictly_later_even_when_the_clock_is_behind() {
        let future = Timestamp::now().plus_seconds(3600);
        assert_eq!(Timestamp::after(future), future.plus_millis(1));
        let past = Timestamp::now().plus_seconds(-3600);
        assert!(Timestamp::after(past) > past.plus_millis(1));
    }
}
