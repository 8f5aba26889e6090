//! The simulated people at the far end of a call, scripted by the number
//! dialed, in the spirit of Twilio's test numbers (README, "Try it without a
//! Twilio account", has the table):
//!
//! | number           | the person                                        |
//! |------------------|---------------------------------------------------|
//! | `+15005550001`   | answers after the ring time, stays on the line    |
//! | `+15005550002`   | is busy                                           |
//! | `+15005550003`   | does not answer (rings until the call's timeout)  |
//! | `+15005550004`   | cannot be reached: the call fails                 |
//! | `+15005551NNN`   | answers, hangs up after NNN seconds               |
//! | `+15005552NNN`   | rings NNN seconds, then answers                   |
//! | any other number | answers after the ring time, stays on the line    |
//!
//! Texts to `+15005550004` fail (`undelivered`); texts to any other number
//! are delivered.

use std::time::Duration;

pub const ANSWERS: &str = "+15005550001";
pub const BUSY: &str = "+15005550002";
pub const NO_ANSWER: &str = "+15005550003";
pub const FAILS: &str = "+15005550004";
/// `HANGS_UP_AFTER` + three digits: answers, hangs up after that many seconds.
pub const HANGS_UP_AFTER: &str = "+15005551";
/// `RINGS_FOR` + three digits: rings that many seconds, then answers.
pub const RINGS_FOR: &str = "+15005552";

/// What the person reached at a phone number does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Answers after ringing this long (`None`: the sim's ring time), then
    /// stays until hung up, or hangs up after `hang_up_after`.
    Answers {
        ring: Option<Duration>,
        hang_up_after: Option<Duration>,
    },
    Busy,
    NoAnswer,
    Fails,
}

impl Script {
    pub fn for_number(number: &str) -> Self {
        let seconds = |prefix: &str| {
            number
                .strip_prefix(prefix)
                .filter(|rest| rest.len() == 3 && rest.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|rest| rest.parse::<u64>().ok())
                .map(Duration::from_secs)
        };
        match number {
            BUSY => Self::Busy,
            NO_ANSWER => Self::NoAnswer,
            FAILS => Self::Fails,
            _ => Self::Answers {
                ring: seconds(RINGS_FOR),
                hang_up_after: seconds(HANGS_UP_AFTER),
            },
        }
    }

    /// Whether a text to the number is delivered.
    pub fn takes_texts(number: &str) -> bool {
        number != FAILS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_name_their_scripts() {
        assert_eq!(Script::for_number(BUSY), Script::Busy);
        assert_eq!(Script::for_number(NO_ANSWER), Script::NoAnswer);
        assert_eq!(Script::for_number(FAILS), Script::Fails);
        assert_eq!(
            Script::for_number("+15005551005"),
            Script::Answers {
                ring: None,
                hang_up_after: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(
            Script::for_number("+15005552030"),
            Script::Answers {
                ring: Some(Duration::from_secs(30)),
                hang_up_after: None
            }
        );
        for other in [ANSWERS, "+14155550100", "+1500555100", "+150055510055"] {
            assert_eq!(
                Script::for_number(other),
                Script::Answers {
                    ring: None,
                    hang_up_after: None
                },
                "{other}"
            );
        }
        assert!(!Script::takes_texts(FAILS) && Script::takes_texts(ANSWERS));
    }
}
