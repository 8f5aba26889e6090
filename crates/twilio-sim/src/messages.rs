//! Texts (live mode): a text Switchboard sends is `sent`, then `delivered`
//! (or `undelivered`), each reported to its status callback; a text a
//! simulated person sends to one of the account's numbers is posted to the
//! number's SMS URL, and a `<Message>` in the answer is texted back.

use std::sync::Arc;
use std::time::Duration;

use crate::numbers::Script;
use crate::state::{IncomingNumber, Message, State, now};
use crate::twilio::Twilio;
use crate::twiml;

/// Why a simulated person's text or call cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeopleError {
    #[error("{0} is not a number of any sandbox account")]
    UnknownNumber(String),
    #[error("{0:?} is not a phone number in E.164 form (+ and 8 to 15 digits)")]
    InvalidNumber(String),
    #[error("the text is empty or longer than 1600 characters")]
    InvalidBody,
}

/// Checks an E.164 number the way Twilio's carriers would see it.
pub(crate) fn check_number(number: &str) -> Result<(), PeopleError> {
    let digits = number.strip_prefix('+').unwrap_or_default();
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
        Ok(())
    } else {
        Err(PeopleError::InvalidNumber(number.chars().take(40).collect()))
    }
}

/// The number of one of the accounts a simulated person calls or texts.
pub(crate) fn number_called(state: &State, to: &str) -> Result<IncomingNumber, PeopleError> {
    state
        .number(to)
        .cloned()
        .ok_or_else(|| PeopleError::UnknownNumber(to.chars().take(40).collect()))
}

/// Delivers a text created over REST, reporting each step.
pub(crate) fn deliver(twilio: &Arc<Twilio>, sid: &str) {
    let twilio = twilio.clone();
    let sid = sid.to_owned();
    tokio::spawn(async move {
        twilio.sleep(Duration::from_millis(500)).await;
        step(&twilio, &sid, "sent", None).await;
        twilio.sleep(Duration::from_secs(1)).await;
        let to = twilio
            .lock()
            .messages
            .iter()
            .find(|m| m.sid == sid)
            .map(|m| m.to.clone())
            .unwrap_or_default();
        if Script::takes_texts(&to) {
            step(&twilio, &sid, "delivered", None).await;
        } else {
            // Twilio's 30003: unreachable destination handset.
            step(&twilio, &sid, "undelivered", Some(30003)).await;
        }
    });
}

async fn step(twilio: &Arc<Twilio>, sid: &str, status: &str, error: Option<u32>) {
    let message = {
        let mut state = twilio.lock();
        let Some(message) = state.messages.iter_mut().find(|m| m.sid == sid) else {
            return;
        };
        message.status = status.to_owned();
        message.error_code = error;
        message.date_updated = now();
        message.clone()
    };
    let Some(url) = message.status_callback.clone().filter(|u| !u.is_empty()) else {
        return;
    };
    let mut params = vec![
        ("AccountSid".to_owned(), message.account_sid.clone()),
        ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
        ("From".to_owned(), message.from.clone()),
        ("To".to_owned(), message.to.clone()),
        ("MessageSid".to_owned(), message.sid.clone()),
        ("SmsSid".to_owned(), message.sid.clone()),
        ("MessageStatus".to_owned(), status.to_owned()),
        ("SmsStatus".to_owned(), status.to_owned()),
    ];
    if let Some(code) = error {
        params.push(("ErrorCode".to_owned(), code.to_string()));
    }
    twilio.webhook(&message.account_sid, &url, "POST", params).await;
}

/// What became of a simulated person's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_sid: String,
    /// The number's SMS URL's HTTP answer (`None`: no URL, or no answer).
    pub webhook_status: Option<u16>,
    /// The text the answer's `<Message>` sent back, if any.
    pub reply: Option<Message>,
}

/// A person texts one of the account's numbers: the number's SMS URL is
/// asked (signed), and an answer's `<Message>` is texted back.
pub(crate) async fn receive(twilio: &Arc<Twilio>, from: &str, to: &str, body: &str) -> Result<Received, PeopleError> {
    check_number(from)?;
    if body.trim().is_empty() || body.chars().count() > 1600 {
        return Err(PeopleError::InvalidBody);
    }
    let (message, sms_url, sms_method) = {
        let mut state = twilio.lock();
        let number = number_called(&state, to)?;
        let message = Message::new(
            state.new_sid("SM"),
            &number.account_sid,
            from,
            to,
            body,
            "received",
            "inbound",
        );
        state.messages.push(message.clone());
        (message, number.sms_url, number.sms_method)
    };
    let mut received = Received {
        message_sid: message.sid.clone(),
        webhook_status: None,
        reply: None,
    };
    if sms_url.is_empty() {
        return Ok(received);
    }
    let params = vec![
        ("AccountSid".to_owned(), message.account_sid.clone()),
        ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
        ("Body".to_owned(), message.body.clone()),
        ("From".to_owned(), message.from.clone()),
        ("MessageSid".to_owned(), message.sid.clone()),
        ("NumMedia".to_owned(), "0".to_owned()),
        ("NumSegments".to_owned(), "1".to_owned()),
        ("SmsMessageSid".to_owned(), message.sid.clone()),
        ("SmsSid".to_owned(), message.sid.clone()),
        ("SmsStatus".to_owned(), "received".to_owned()),
        ("To".to_owned(), message.to.clone()),
    ];
    let Some(answer) = twilio
        .webhook(&message.account_sid, &sms_url, &sms_method, params)
        .await
    else {
        return Ok(received);
    };
    received.webhook_status = Some(answer.status);
    if !(200..300).contains(&answer.status) {
        return Ok(received);
    }
    let reply_text = twiml::parse(&answer.body).ok().and_then(|verbs| {
        verbs
            .iter()
            .find(|v| v.name == "Message")
            .map(|m| match m.children.iter().find(|c| c.name == "Body") {
                Some(body) => body.trimmed_text().to_owned(),
                None => m.trimmed_text().to_owned(),
            })
    });
    if let Some(text) = reply_text.filter(|t| !t.is_empty()) {
        let reply = {
            let mut state = twilio.lock();
            let reply = Message::new(
                state.new_sid("SM"),
                &message.account_sid,
                &message.to,
                &message.from,
                &text,
                "queued",
                "outbound-reply",
            );
            state.messages.push(reply.clone());
            reply
        };
        deliver(twilio, &reply.sid);
        received.reply = Some(reply);
    }
    Ok(received)
}
