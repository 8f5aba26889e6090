//! The tests' stateful fake of Twilio's REST API 2010-04-01: the simulated
//! Twilio of `switchboard-twilio-sim` in passive mode, the very code the
//! local server's sandbox runs live, so the fake and the sandbox cannot
//! drift apart.
//!
//! What a test (or the code under test) creates can be fetched, listed page
//! by page, updated and deleted, as on Twilio; test controls (`add_number`,
//! `set_number_hooks`, …) change the state directly, the way someone in the
//! Twilio Console would. Nothing happens on its own: tests send the webhooks
//! themselves (`crate::signed_post`).
//!
//! What it models (see the sim's `rest` module for the details):
//! - HTTP Basic auth: `AccountSid:AuthToken`, or `KeySid:secret` of an
//!   existing key everywhere but the Keys endpoints. Anything else is 401,
//!   code 20003. A path naming another account than the authenticated one is
//!   404, code 20404.
//! - `Accounts/{Sid}.json`, `Keys`, `Applications`, `IncomingPhoneNumbers`,
//!   `Calls`, `Conferences` and their `Participants` and current recording,
//!   `Messages`, `Recordings`.
//! - Lists paged as Twilio pages them: `PageSize`, `Page`, `PageToken`,
//!   `next_page_uri` (`null` on the last page).
//! - Twilio's checks on values; a failed check is 400 with Twilio's error
//!   body, never a panic.
//! - Faults ([`Fault`]): an error status, a slow response, or a response lost
//!   after the change was applied.
//!
//! Creates answer 201, updates 200, deletes 204, as Twilio does.

use std::ops::Deref;

pub use switchboard_twilio_sim::{
    Application, Call, Conference, Fault, FaultKind, IncomingNumber, Key, Message, Participant, RecordedRequest,
    Recording,
};
use switchboard_twilio_sim::{Options, Sim};

/// The fake: every control and snapshot of [`Sim`] (`uri`, `add_number`,
/// `fail_next`, `calls`, `requests`, …) through `Deref`.
pub struct FakeTwilio {
    sim: Sim,
}

impl FakeTwilio {
    /// A fake serving one account, `account_sid` with `auth_token`.
    pub async fn start(account_sid: &str, auth_token: &str) -> Self {
        let sim = Sim::start(account_sid, auth_token, Options::passive())
            .await
            .expect("the fake Twilio could not listen on the loopback interface");
        Self { sim }
    }

    /// The simulated Twilio underneath.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }
}

impl Deref for FakeTwilio {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.sim
    }
}
