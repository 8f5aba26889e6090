//! The simulated browser `Device` and the simulated callers (live mode).
//!
//! A device connects with the Voice access token its page got from
//! Switchboard (checked as Twilio checks it), sees the calls ringing its
//! identity with their custom parameters, and accepts, rejects or hangs up.
//! A caller dials one of the account's numbers and waits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::access_token::{self, TokenError};
use crate::calls::{self, Party, Progress, Start};
use crate::messages::{PeopleError, check_number, number_called};
use crate::state::{Call, first, unix_now};
use crate::twilio::{Program, Signal, Twilio, without_query};

/// Whose device: an identity of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOwner {
    pub account_sid: String,
    pub identity: String,
}

/// A call as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCall {
    pub call_sid: String,
    /// Twilio's call status: `queued`, `initiated`, `ringing`,
    /// `in-progress`, `completed`, `busy`, `no-answer`, `canceled`, `failed`.
    pub status: String,
    /// `incoming` (rung to this device) or `outgoing` (from `connect`).
    pub direction: String,
    pub from: String,
    pub to: String,
    /// The custom parameters: `connect`'s params, or those of the
    /// `client:` address the call was placed to.
    pub parameters: BTreeMap<String, String>,
    /// What the device was told (`<Say>`), in order.
    pub heard: Vec<String>,
    /// Seconds from answer to end, once over.
    pub duration: Option<u64>,
    /// The conference the call is in, by its name, if any.
    pub conference: Option<String>,
    pub on_hold: bool,
    pub muted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the access token is for another identity or account than the signed-in agent")]
    NotYours,
    #[error("this device has no such call")]
    NotFound,
    #[error("the call is {0}, not ringing")]
    NotRinging(String),
    #[error("the call is over ({0})")]
    Over(String),
    #[error("the TwiML App has no Voice URL")]
    NoVoiceUrl,
    #[error("digits are 0-9, *, # and w, at most 32")]
    BadDigits,
}

/// How long a call that rang a device stays listed after it stopped
/// ringing, so the device sees how it ended (`canceled`, `no-answer`).
const RECENT_SECONDS: u64 = 60;

fn direction(call: &Call, owner: &DeviceOwner) -> Option<&'static str> {
    if call.account_sid != owner.account_sid {
        return None;
    }
    let address = format!("client:{}", owner.identity);
    if without_query(&call.to) == address {
        Some("incoming")
    } else if call.from == address {
        Some("outgoing")
    } else {
        None
    }
}

fn view(twilio: &Twilio, call: &Call, direction: &str) -> DeviceCall {
    let state = twilio.lock();
    let conference = state
        .conferences
        .iter()
        .filter(|c| c.status != "completed")
        .find_map(|c| Some((c, c.participants.iter().find(|p| p.call_sid == call.sid)?)));
    DeviceCall {
        call_sid: call.sid.clone(),
        status: call.status.clone(),
        direction: direction.to_owned(),
        from: call.from.clone(),
        to: without_query(&call.to),
        parameters: call.parameters.iter().cloned().collect(),
        heard: call.heard.clone(),
        duration: call.duration,
        conference: conference.map(|(c, _)| c.friendly_name.clone()),
        on_hold: conference.is_some_and(|(_, p)| p.hold),
        muted: conference.is_some_and(|(_, p)| p.muted),
    }
}

fn find(twilio: &Twilio, owner: &DeviceOwner, sid: &str) -> Result<(Call, &'static str), DeviceError> {
    let state = twilio.lock();
    let call = state.call(sid).ok_or(DeviceError::NotFound)?;
    let direction = direction(call, owner).ok_or(DeviceError::NotFound)?;
    Ok((call.clone(), direction))
}

/// `device.connect({params})`: checks the token, starts the leg that asks
/// the token's TwiML App for TwiML. `owner`, when given, must be the token's.
pub(crate) fn connect(
    twilio: &Arc<Twilio>,
    owner: Option<&DeviceOwner>,
    token: &str,
    params: &[(String, String)],
) -> Result<DeviceCall, DeviceError> {
    let grant = {
        let state = twilio.lock();
        access_token::verify(
            token,
            unix_now(),
            |account, key| {
                state
                    .keys
                    .iter()
                    .find(|k| k.account_sid == account && k.sid == key)
                    .map(|k| k.secret.clone())
            },
            |account, app| {
                state
                    .applications
                    .iter()
                    .any(|a| a.account_sid == account && a.sid == app)
            },
        )?
    };
    if owner.is_some_and(|o| o.account_sid != grant.account_sid || o.identity != grant.identity) {
        return Err(DeviceError::NotYours);
    }
    let (sid, program, progress) = {
        let mut state = twilio.lock();
        let app = state
            .applications
            .iter()
            .find(|a| a.sid == grant.application_sid)
            .cloned()
            .ok_or(DeviceError::NoVoiceUrl)?;
        let voice_url = app
            .voice_url
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or(DeviceError::NoVoiceUrl)?;
        let sid = state.new_sid("CA");
        let from = format!("client:{}", grant.identity);
        let to = first(params, "To").unwrap_or_default();
        let mut call = Call::new(sid.clone(), &grant.account_sid, &from, to, "ringing", "inbound");
        call.parameters = params.to_vec();
        state.calls.push(call);
        let progress = Progress::completed_only(
            app.status_callback.as_deref().unwrap_or_default(),
            &app.status_callback_method,
        );
        (
            sid,
            Program::Url {
                url: voice_url,
                method: app.voice_method.clone(),
            },
            progress,
        )
    };
    let owner = DeviceOwner {
        account_sid: grant.account_sid.clone(),
        identity: grant.identity.clone(),
    };
    let mut extra = vec![("ApplicationSid".to_owned(), grant.application_sid.clone())];
    extra.extend(params.iter().filter(|(k, _)| k != "To").cloned());
    calls::start(twilio, &sid, Start::Answer { program, extra }, Party::Browser, progress);
    call(twilio, &owner, &sid)
}

/// The calls ringing this device, and those that stopped ringing lately.
pub(crate) fn incoming(twilio: &Twilio, owner: &DeviceOwner) -> Vec<DeviceCall> {
    let now = unix_now();
    let calls: Vec<Call> = twilio
        .lock()
        .calls
        .iter()
        .filter(|c| direction(c, owner) == Some("incoming"))
        // Never answered: ringing, or it stopped ringing a moment ago.
        .filter(|c| c.start_time.is_none())
        .filter(|c| c.ended_at.is_none_or(|at| now.saturating_sub(at) <= RECENT_SECONDS))
        .cloned()
        .collect();
    calls.iter().map(|c| view(twilio, c, "incoming")).collect()
}

pub(crate) fn call(twilio: &Twilio, owner: &DeviceOwner, sid: &str) -> Result<DeviceCall, DeviceError> {
    let (call, direction) = find(twilio, owner, sid)?;
    Ok(view(twilio, &call, direction))
}

/// What the device does with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAction {
    Accept,
    Reject,
    HangUp,
    Digits(String),
}

pub(crate) async fn act(
    twilio: &Twilio,
    owner: &DeviceOwner,
    sid: &str,
    action: DeviceAction,
) -> Result<DeviceCall, DeviceError> {
    let (call, direction) = find(twilio, owner, sid)?;
    if call.is_over() {
        return Err(DeviceError::Over(call.status));
    }
    let ringing_here = direction == "incoming" && call.start_time.is_none();
    let signal = match action {
        DeviceAction::Accept | DeviceAction::Reject if !ringing_here || call.status != "ringing" => {
            return Err(DeviceError::NotRinging(call.status));
        }
        DeviceAction::Accept => Signal::Answer,
        DeviceAction::Reject => Signal::Reject,
        DeviceAction::HangUp if ringing_here => Signal::Reject,
        DeviceAction::HangUp => Signal::End("completed".into()),
        DeviceAction::Digits(digits) => {
            let valid = !digits.is_empty()
                && digits.len() <= 32
                && digits
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'w'));
            if !valid {
                return Err(DeviceError::BadDigits);
            }
            Signal::Digits(digits)
        }
    };
    let waits_for_change = !matches!(signal, Signal::Digits(_));
    twilio.signal(sid, signal);
    // The leg acts on its own task: wait (briefly) for the change to show.
    if waits_for_change {
        for _ in 0..50 {
            let moved = twilio.lock().call(sid).is_none_or(|c| c.status != call.status);
            if moved {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let (call, direction) = find(twilio, owner, sid)?;
    Ok(view(twilio, &call, direction))
}

/// A person calls one of the sandbox's numbers from `from`: the number's
/// Voice URL (or its application's) is asked for TwiML. They wait as long as
/// it takes, speak into a voicemail, or hang up after `hang_up_after`.
pub(crate) fn place_call(
    twilio: &Arc<Twilio>,
    from: &str,
    to: &str,
    hang_up_after: Option<Duration>,
) -> Result<String, PeopleError> {
    check_number(from)?;
    let (sid, program, progress) = {
        let mut state = twilio.lock();
        let number = number_called(&state, to)?;
        let program = match &number.voice_application_sid {
            Some(app) => match state.applications.iter().find(|a| &a.sid == app) {
                Some(app) => Program::Url {
                    url: app.voice_url.clone().unwrap_or_default(),
                    method: app.voice_method.clone(),
                },
                None => Program::Url {
                    url: String::new(),
                    method: "POST".into(),
                },
            },
            None => Program::Url {
                url: number.voice_url.clone(),
                method: number.voice_method.clone(),
            },
        };
        let sid = state.new_sid("CA");
        state.calls.push(Call::new(
            sid.clone(),
            &number.account_sid,
            from,
            to,
            "ringing",
            "inbound",
        ));
        let progress = Progress::completed_only(&number.status_callback, &number.status_callback_method);
        (sid, program, progress)
    };
    calls::start(
        twilio,
        &sid,
        Start::Answer {
            program,
            extra: Vec::new(),
        },
        Party::Caller { hang_up_after },
        progress,
    );
    Ok(sid)
}
