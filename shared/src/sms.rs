//! Texts to and from the workspace's numbers.
//!
//! - `POST /twilio/sms`, every number's SMS URL: keeps the text once per
//!   `MessageSid` under the workspace that owns the number, and answers with
//!   messaging TwiML: an empty `<Response/>`, or the workspace's auto-reply.
//! - `GET /messages`: the workspace's texts, newest first.
//! - `POST /messages`: sends a text through Twilio's Messages API from a
//!   number the agent may use, at most once per `Idempotency-Key`.
//! - `POST /twilio/sms/status`: delivery status of the texts sent.
//!
//! ## Idempotency-Key: at most once
//!
//! The key is claimed (`remember`, first writer wins) before Twilio is asked,
//! so of any number of requests with one key, one sends; the others wait for
//! its message to be stored and answer with it. The claim's value is a fresh
//! ULID and a fingerprint of the text: the ULID's time becomes the stored
//! message's `createdAt`, which is how the others find the message (in the
//! conversation's listing, by agent, body and that exact time), and the
//! fingerprint refuses a key reused for another text.
//!
//! A claim cannot be undone. If the sender dies between claiming and storing
//! (before Twilio was asked, or after Twilio took the text but before it was
//! stored), or Twilio failed, a retry with the same key cannot tell whether
//! the text went out, so it does not send: it answers 409
//! `idempotency_key_in_use` and the client decides, with a new key, whether
//! to send again. A customer may miss a text (and the agent is told), but is
//! never texted twice; resending on a lease timeout would risk the opposite.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use ulid::Ulid;

use crate::api::{self, ApiError, IDEMPOTENCY_TTL, Request, Response, empty_twiml, twiml};
use crate::app::App;
use crate::auth::Agent;
use crate::ids::{AgentId, MessageSid, WorkspaceId};
use crate::model::calls::Direction;
use crate::model::messages::{Message, MessageStatus};
use crate::paths;
use crate::phone::{E164, InvalidNumber};
use crate::ports::{MessageQuery, StoreError};
use crate::time::Timestamp;
use crate::twilio::rest::{NewMessage, TwilioError};
use crate::twilio::twiml::Response as Twiml;
use crate::twilio::webhooks::{IncomingMessage, MessageStatusCallback, Params};
use crate::views;
use crate::webhook::{Webhook, WebhookError};
use crate::workspace::Workspace;

/// Twilio's limit for one text (it splits longer ones into segments itself).
pub const MAX_BODY_CHARS: usize = 1600;
/// Twilio delivers at most 10 media items with one MMS.
const MAX_MEDIA: usize = 10;
/// Senders are phone numbers, short codes or alphanumeric ids: short.
const MAX_PARTY_CHARS: usize = 64;
/// How long a request whose key another request claimed waits for that
/// request's message, and how often it looks.
const CLAIM_WAIT: Duration = Duration::from_secs(5);
const CLAIM_POLL: Duration = Duration::from_millis(100);
/// How far back in the conversation a claimed message is looked for.
const CLAIM_SEARCH_PAGES: usize = 8;

/// The media of an MMS: `MediaUrl0` … `MediaUrl{NumMedia - 1}`.
fn media_urls(form: &IncomingMessage, params: &Params) -> Vec<String> {
    let count = form
        .num_media
        .as_deref()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_MEDIA);
    (0..count)
        .filter_map(|i| params.get(&format!("MediaUrl{i}")).map(str::to_owned))
        .collect()
}

/// The workspace's answer to every text: its auto-reply, or nothing.
fn reply(workspace: &Workspace) -> Twiml {
    match workspace.settings.sms_auto_reply.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => Twiml::new().message(text),
        _ => Twiml::new(),
    }
}

/// `POST /twilio/sms`: a text to one of the workspace's numbers.
pub async fn receive(app: &App, hook: Webhook, _request: Request) -> Result<Response, WebhookError> {
    let ws = &hook.workspace;
    // Parse everything before anything is written.
    let form: IncomingMessage = hook.form()?;
    let sid = form.message_sid.clone();
    let from = form
        .from
        .as_deref()
        .filter(|from| !from.chars().any(char::is_control))
        .ok_or_else(|| WebhookError::BadRequest("missing or invalid From".into()))?;
    let to = form.to.as_deref().and_then(|to| E164::from_canonical(to).ok());
    let owned = match &to {
        Some(number) => app.store.get_number(&ws.id, number).await?.is_some(),
        None => false,
    };
    let Some(to) = to.filter(|_| owned) else {
        tracing::info!(message_sid = %sid, "a text to a number this workspace does not have: not kept");
        return Ok(empty_twiml());
    };
    let now = Timestamp::now();
    let message = Message {
        sid,
        workspace: ws.id.clone(),
        direction: Direction::Inbound,
        from: from.chars().take(MAX_PARTY_CHARS).collect(),
        to: to.to_string(),
        body: form.body.clone().unwrap_or_default(),
        media_urls: media_urls(&form, &hook.params),
        status: MessageStatus::Received,
        agent: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    // Once per MessageSid; a redelivery gets the same answer.
    let new = app.store.put_message(&message).await?;
    tracing::info!(message_sid = %message.sid, new, "received a text");
    Ok(twiml(reply(ws)))
}

/// `POST /twilio/sms/status`: delivery of a text Switchboard sent. Twilio
/// reports at least once and in no set order; the message only moves forward
/// (`Message::advance_status`, made atomic by the store).
pub async fn status(app: &App, hook: Webhook, _request: Request) -> Result<Response, WebhookError> {
    let ws = &hook.workspace.id;
    let form: MessageStatusCallback = hook.form()?;
    let sid = form.message_sid;
    let status = form
        .message_status
        .or(form.sms_status)
        .ok_or_else(|| WebhookError::BadRequest("missing MessageStatus".into()))?;
    if let MessageStatus::Other(unknown) = &status {
        tracing::warn!(value = %bounded(unknown), "a message status this version does not know; acknowledged");
        return Ok(empty_twiml());
    }
    let moved = app.store.advance_message_status(ws, &sid, &status).await?;
    if moved {
        tracing::info!(message_sid = %sid, to = %status, "text status moved");
    }
    Ok(empty_twiml())
}

fn bounded(value: &str) -> String {
    value.chars().take(MAX_PARTY_CHARS).collect()
}

/// A number in a query string. A `+` sent unencoded arrives as a space
/// (`?number=+1415…`), so that is read as the `+` it was.
fn query_number(raw: &str) -> Result<E164, InvalidNumber> {
    E164::parse(raw).or_else(|error| match raw.strip_prefix(' ') {
        Some(rest) => E164::parse(&format!("+{rest}")),
        None => Err(error),
    })
}

/// `GET /messages?number=&counterpart=&limit=&cursor=`: newest first.
pub async fn list(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let params = request.query_params();
    if let Some(query) = api::changes_query(&params, &["number", "counterpart"])? {
        let page = app.store.messages_changed(&agent.workspace, &query).await?;
        let messages: Vec<_> = page.items.iter().map(views::message).collect();
        return Ok(api::json_response(
            StatusCode::OK,
            &serde_json::json!({"messages": messages, "next": page.next}),
        ));
    }
    let bad = |name: &str, value: &str| ApiError::BadRequest(format!("{name}={:?} is not valid", bounded(value)));
    let number = match params.get("number") {
        Some(raw) => Some(query_number(raw).map_err(|_| bad("number", raw))?),
        None => None,
    };
    let counterpart = match params.get("counterpart") {
        Some(raw) => Some(match query_number(raw) {
            Ok(number) => number.to_string(),
            // Short codes and alphanumeric senders, as Twilio gives them.
            Err(_) if raw.chars().count() <= MAX_PARTY_CHARS && !raw.chars().any(char::is_control) => raw.to_owned(),
            Err(_) => return Err(bad("counterpart", raw)),
        }),
        None => None,
    };
    let limit = api::page_limit(params.get("limit"))?;
    if let Some(number) = &number
        && app.store.get_number(&agent.workspace, number).await?.is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "{number} is not a number of this workspace"
        )));
    }
    let query = MessageQuery {
        number: number.map(|n| n.to_string()),
        counterpart,
        limit,
        cursor: params.get("cursor").map(str::to_owned),
    };
    let page = app.store.list_messages(&agent.workspace, &query).await?;
    let messages: Vec<_> = page.items.iter().map(views::message).collect();
    Ok(api::json_response(
        StatusCode::OK,
        &serde_json::json!({"messages": messages, "next": page.next}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    to: String,
    from: String,
    body: String,
}

/// A text an agent asked to send, checked.
struct Outgoing<'a> {
    workspace: &'a WorkspaceId,
    agent: &'a AgentId,
    to: E164,
    from: E164,
    body: String,
}

impl Outgoing<'_> {
    /// Tells a reused key from a repeated request.
    fn fingerprint(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}\n{}", self.to, self.from, self.body));
        hex::encode(&digest[..16])
    }

    /// The message as stored once Twilio has taken it.
    fn message(&self, sid: MessageSid, status: MessageStatus, created_at: Timestamp) -> Message {
        Message {
            sid,
            workspace: self.workspace.clone(),
            direction: Direction::Outbound,
            from: self.from.to_string(),
            to: self.to.to_string(),
            body: self.body.clone(),
            media_urls: Vec::new(),
            status,
            agent: Some(self.agent.clone()),
            created_at,
            updated_at: created_at,
            version: 1,
        }
    }

    /// Whether `message` is this text, sent at `at`.
    fn is(&self, message: &Message, at: Timestamp) -> bool {
        message.created_at == at
            && message.direction == Direction::Outbound
            && message.agent.as_ref() == Some(self.agent)
            && message.body == self.body
    }
}

/// `POST /messages` `{"to", "from", "body"}` (header `Idempotency-Key` recommended).
pub async fn send(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let input: SendBody = request.json()?;
    let key = request.idempotency_key("messages", &agent.id)?;
    let to = E164::parse(&input.to).map_err(|e| ApiError::BadRequest(format!("to: {e}")))?;
    let from = E164::parse(&input.from).map_err(|e| ApiError::BadRequest(format!("from: {e}")))?;
    let chars = input.body.chars().count();
    if input.body.trim().is_empty() || chars > MAX_BODY_CHARS {
        return Err(ApiError::BadRequest(format!(
            "body must be 1 to {MAX_BODY_CHARS} characters (it has {chars})"
        )));
    }
    let workspace = app.configured_workspace(&agent.workspace).await?;
    let number = app.store.get_number(&agent.workspace, &from).await?;
    if !number.is_some_and(|n| n.may_be_used_by(&agent.id)) {
        return Err(ApiError::Forbidden(format!(
            "{from} is not a number of this workspace that you may text from"
        )));
    }
    let text = Outgoing {
        workspace: &agent.workspace,
        agent: &agent.id,
        to,
        from,
        body: input.body,
    };
    let message = match key {
        Some(key) => send_once(app, &workspace, &key, &text).await?,
        None => send_now(app, &workspace, &text, Timestamp::now()).await?,
    };
    Ok(api::json_response(StatusCode::CREATED, &views::message(&message)))
}

/// Sends `text` at most once per `key` (see the module's notes).
async fn send_once(app: &App, workspace: &Workspace, key: &str, text: &Outgoing<'_>) -> Result<Message, ApiError> {
    let claim = Ulid::new();
    let fingerprint = text.fingerprint();
    let stored = app
        .store
        .remember(text.workspace, key, &format!("{claim} {fingerprint}"), IDEMPOTENCY_TTL)
        .await?;
    let corrupt = || StoreError::Corrupt(format!("idempotency record {stored:?}"));
    let (holder, stored_fingerprint) = stored.split_once(' ').ok_or_else(corrupt)?;
    if stored_fingerprint != fingerprint {
        return Err(ApiError::Conflict {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used for a different text".into(),
        });
    }
    let holder = Ulid::from_string(holder).map_err(|_| corrupt())?;
    let at = Timestamp::from_datetime(OffsetDateTime::from(holder.datetime()));
    if holder == claim {
        return send_now(app, workspace, text, at).await;
    }
    // Another request holds the key: its message is ours, once it is stored.
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        if let Some(message) = find_claimed(app, text, at).await? {
            return Ok(message);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Conflict {
                code: "idempotency_key_in_use",
                message: "a text with this Idempotency-Key is being sent, or its outcome is unknown: it is not \
                          sent again; use a new key to send another"
                    .into(),
            });
        }
        tokio::time::sleep(CLAIM_POLL).await;
    }
}

/// The message sent at `at` for `text`, if it is stored: the conversation is
/// listed newest first down to `at`.
async fn find_claimed(app: &App, text: &Outgoing<'_>, at: Timestamp) -> Result<Option<Message>, StoreError> {
    let mut query = MessageQuery {
        number: Some(text.from.to_string()),
        counterpart: Some(text.to.to_string()),
        limit: api::DEFAULT_PAGE,
        cursor: None,
    };
    for _ in 0..CLAIM_SEARCH_PAGES {
        let page = app.store.list_messages(text.workspace, &query).await?;
        for message in page.items {
            if message.created_at < at {
                return Ok(None);
            }
            if text.is(&message, at) {
                return Ok(Some(message));
            }
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// Asks Twilio to send `text` and stores what Twilio took.
async fn send_now(app: &App, workspace: &Workspace, text: &Outgoing<'_>, at: Timestamp) -> Result<Message, ApiError> {
    let client = app.twilio_for(workspace).await?;
    let status_callback = app.config.public_url.join(paths::SMS_STATUS);
    let (to, from) = (text.to.to_string(), text.from.to_string());
    let sent = client
        .send_message(&NewMessage {
            to: &to,
            from: &from,
            body: &text.body,
            status_callback: &status_callback,
        })
        .await
        .map_err(send_error)?;
    let status = sent.status.unwrap_or(MessageStatus::Queued);
    let message = text.message(sent.sid, status, at);
    app.store.put_message(&message).await?;
    tracing::info!(message_sid = %message.sid, "sent a text");
    Ok(message)
}

/// Twilio refusing the destination is the client's mistake (400 with Twilio's
/// reason); anything else is a 502 that names the step.
fn send_error(error: TwilioError) -> ApiError {
    match error {
        // 21211: not a valid phone number; 21614: not a mobile number.
        TwilioError::Rejected {
            status: 400,
            code: 21211 | 21614,
            message,
        } => ApiError::Rejected {
            code: "invalid_number",
            message,
        },
        other => ApiError::upstream("send message")(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_queries_survive_an_unencoded_plus() {
        assert_eq!(query_number("+14155550100").unwrap().as_str(), "+14155550100");
        assert_eq!(query_number(" 14155550100").unwrap().as_str(), "+14155550100");
        assert!(query_number("14155550100").is_err());
    }

    #[test]
    fn media_are_read_up_to_num_media() {
        let body = "MessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=2\
                    &MediaUrl1=https://api.twilio.com/m/1&MediaUrl0=https://api.twilio.com/m/0\
                    &MediaUrl2=https://api.twilio.com/m/2";
        let form: IncomingMessage = crate::twilio::webhooks::parse_form(body.as_bytes()).unwrap();
        assert_eq!(
            media_urls(&form, &Params::parse_form(body.as_bytes())),
            ["https://api.twilio.com/m/0", "https://api.twilio.com/m/1"]
        );
        let hostile = "MessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=99999999999999999999";
        let form: IncomingMessage = crate::twilio::webhooks::parse_form(hostile.as_bytes()).unwrap();
        assert!(media_urls(&form, &Params::parse_form(hostile.as_bytes())).is_empty());
    }

    #[test]
    fn only_a_refused_number_is_the_clients_mistake() {
        let refused = TwilioError::Rejected {
            status: 400,
            code: 21211,
            message: "The 'To' number +1 is not a valid phone number.".into(),
        };
        let error = send_error(refused);
        assert_eq!(error.status(), 400);
        assert!(error.to_string().contains("not a valid phone number"));
        let other = TwilioError::Rejected {
            status: 400,
            code: 21606,
            message: "not your number".into(),
        };
        assert_eq!(send_error(other).status(), 502);
        assert_eq!(send_error(TwilioError::Unavailable("503: down".into())).status(), 502);
    }
}
