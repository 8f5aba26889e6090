//! A typed client for the handful of Twilio REST (2010-04-01) endpoints
//! Switchboard uses, built per request from a workspace's credentials.
//!
//! Reads, deletes and updates of a named resource are idempotent, so they are
//! retried on timeouts, 429 and 5xx; creates (`POST` to a collection) are never
//! retried, since a retry after a lost response would create a second resource.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::ids::{
    AccountSid, ApiKeySid, ApplicationSid, CallSid, ConferenceSid, MessageSid, PhoneNumberSid, RecordingSid,
};
use crate::model::messages::MessageStatus;
use crate::telemetry::error_chain;

/// How a Twilio call failed.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// 401/403: the credentials are wrong or lack the permission.
    #[error("Twilio refused the credentials: {message}")]
    Unauthorized { message: String },
    #[error("Twilio has no such resource: {message}")]
    NotFound { message: String },
    /// Any other 4xx: Twilio understood and said no.
    #[error("Twilio rejected the request ({status}, code {code}): {message}")]
    Rejected { status: u16, code: u64, message: String },
    /// 5xx or 429, after any retries.
    #[error("Twilio is unavailable: {0}")]
    Unavailable(String),
    /// No answer at all (the name did not resolve, the connection failed or
    /// timed out), after any retries. The cause says which.
    #[error("Twilio could not be reached")]
    Unreachable(#[source] reqwest::Error),
    /// A success whose body we could not read.
    #[error("Twilio answered with an unexpected body: {0}")]
    Unexpected(String),
}

/// Twilio's error body.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<u64>,
    #[serde(default)]
    message: Option<String>,
}

const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(800)];

pub struct TwilioClient {
    http: reqwest::Client,
    base: Url,
    account: AccountSid,
    username: String,
    password: SecretString,
}

impl TwilioClient {
    /// Authenticates as the account itself (Auth Token): needed to manage keys.
    pub fn with_auth_token(http: reqwest::Client, base: Url, account: AccountSid, auth_token: SecretString) -> Self {
        Self {
            http,
            base,
            username: account.to_string(),
            account,
            password: auth_token,
        }
    }

    /// Authenticates with an API key (Twilio's recommended way for everything
    /// but key management).
    pub fn with_api_key(
        http: reqwest::Client,
        base: Url,
        account: AccountSid,
        key: &ApiKeySid,
        secret: SecretString,
    ) -> Self {
        Self {
            http,
            base,
            username: key.to_string(),
            account,
            password: secret,
        }
    }

    pub fn account(&self) -> &AccountSid {
        &self.account
    }

    /// `/2010-04-01/Accounts/{AccountSid}{rest}`.
    fn url(&self, rest: &str) -> Result<Url, TwilioError> {
        self.base
            .join(&format!("/2010-04-01/Accounts/{}{rest}", self.account))
            .map_err(|e| TwilioError::Unexpected(format!("bad URL: {e}")))
    }

    /// A `next_page_uri` is a path on Twilio's host (`/2010-04-01/…`); anything
    /// else is refused, so our credentials never follow a link elsewhere.
    fn page_url(&self, next_page_uri: &str) -> Result<Url, TwilioError> {
        if !next_page_uri.starts_with('/') || next_page_uri.starts_with("//") {
            return Err(TwilioError::Unexpected(format!(
                "next_page_uri {next_page_uri:?} is not a path"
            )));
        }
        self.base
            .join(next_page_uri)
            .map_err(|e| TwilioError::Unexpected(format!("bad next_page_uri: {e}")))
    }

    pub async fn fetch_account(&self) -> Result<Account, TwilioError> {
        self.get(self.url(".json")?).await
    }

    pub async fn create_key(&self, friendly_name: &str) -> Result<NewKey, TwilioError> {
        self.create(self.url("/Keys.json")?, &[("FriendlyName", friendly_name)])
            .await
    }

    pub async fn fetch_key(&self, sid: &ApiKeySid) -> Result<Key, TwilioError> {
        self.get(self.url(&format!("/Keys/{sid}.json"))?).await
    }

    pub async fn delete_key(&self, sid: &ApiKeySid) -> Result<(), TwilioError> {
        self.delete(self.url(&format!("/Keys/{sid}.json"))?).await
    }

    /// Every application with this friendly name (following pages).
    pub async fn find_applications(&self, friendly_name: &str) -> Result<Vec<Application>, TwilioError> {
        let mut url = self.url("/Applications.json")?;
        url.query_pairs_mut()
            .append_pair("FriendlyName", friendly_name)
            .append_pair("PageSize", "50");
        self.list(url, |page: ApplicationPage| (page.applications, page.next_page_uri))
            .await
    }

    pub async fn fetch_application(&self, sid: &ApplicationSid) -> Result<Application, TwilioError> {
        self.get(self.url(&format!("/Applications/{sid}.json"))?).await
    }

    pub async fn create_application(
        &self,
        friendly_name: &str,
        voice: &VoiceWebhooks,
    ) -> Result<Application, TwilioError> {
        let mut form = vec![("FriendlyName", friendly_name)];
        form.extend(voice.form());
        self.create(self.url("/Applications.json")?, &form).await
    }

    pub async fn update_application(
        &self,
        sid: &ApplicationSid,
        voice: &VoiceWebhooks,
    ) -> Result<Application, TwilioError> {
        self.update(self.url(&format!("/Applications/{sid}.json"))?, &voice.form())
            .await
    }

    pub async fn delete_application(&self, sid: &ApplicationSid) -> Result<(), TwilioError> {
        self.delete(self.url(&format!("/Applications/{sid}.json"))?).await
    }

    /// Every incoming phone number of the account (following pages).
    pub async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        let mut url = self.url("/IncomingPhoneNumbers.json")?;
        url.query_pairs_mut().append_pair("PageSize", "100");
        self.list(url, |page: IncomingNumberPage| {
            (page.incoming_phone_numbers, page.next_page_uri)
        })
        .await
    }

    pub async fn fetch_incoming_number(&self, sid: &PhoneNumberSid) -> Result<IncomingNumber, TwilioError> {
        self.get(self.url(&format!("/IncomingPhoneNumbers/{sid}.json"))?).await
    }

    /// Sets a number's webhooks. With `clear_application`, also empties its
    /// `VoiceApplicationSid` (which would make Twilio ignore its `VoiceUrl`);
    /// that is only sent when there is one to clear, since Twilio's spec has
    /// no way to say "empty".
    pub async fn update_incoming_number(
        &self,
        sid: &PhoneNumberSid,
        hooks: &NumberWebhooks,
        clear_application: bool,
    ) -> Result<IncomingNumber, TwilioError> {
        let mut form = hooks.form();
        if clear_application {
            form.insert(0, ("VoiceApplicationSid", ""));
        }
        self.update(self.url(&format!("/IncomingPhoneNumbers/{sid}.json"))?, &form)
            .await
    }

    /// Places a call. Never retried: a lost response must not ring twice.
    pub async fn create_call(&self, call: &NewCall<'_>) -> Result<CallResource, TwilioError> {
        let timeout = call.timeout_seconds.to_string();
        let mut form = vec![
            ("To", call.to),
            ("From", call.from),
            ("Url", call.url),
            ("Method", "POST"),
            ("StatusCallback", call.status_callback),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", timeout.as_str()),
        ];
        // One parameter per event, as Twilio's helper libraries send them.
        form.extend(CALL_EVENTS.iter().map(|event| ("StatusCallbackEvent", *event)));
        self.create(self.url("/Calls.json")?, &form).await
    }

    /// Sends a text. Never retried: a lost response must not text twice.
    pub async fn send_message(&self, message: &NewMessage<'_>) -> Result<MessageResource, TwilioError> {
        let form = [
            ("To", message.to),
            ("From", message.from),
            ("Body", message.body),
            ("StatusCallback", message.status_callback),
        ];
        self.create(self.url("/Messages.json")?, &form).await
    }

    /// Sends a live call to other TwiML, fetched from `url` (POST): an
    /// inbound caller out of the conference's waiting room into voicemail.
    pub async fn redirect_call_to(&self, sid: &CallSid, url: &str) -> Result<CallResource, TwilioError> {
        self.update(
            self.url(&format!("/Calls/{sid}.json"))?,
            &[("Url", url), ("Method", "POST")],
        )
        .await
    }

    /// Replaces what a live call is doing with `twiml` (a message, then hang up).
    pub async fn redirect_call(&self, sid: &CallSid, twiml: &str) -> Result<CallResource, TwilioError> {
        self.update(self.url(&format!("/Calls/{sid}.json"))?, &[("Twiml", twiml)])
            .await
    }

    /// Ends a call: `canceled` stops one still ringing, `completed` hangs up
    /// one in progress (and anything earlier).
    pub async fn end_call(&self, sid: &CallSid, status: EndCall) -> Result<CallResource, TwilioError> {
        let status = match status {
            EndCall::Cancel => "canceled",
            EndCall::HangUp => "completed",
        };
        self.update(self.url(&format!("/Calls/{sid}.json"))?, &[("Status", status)])
            .await
    }

    /// Ends a conference, hanging up everyone in it.
    pub async fn end_conference(&self, sid: &ConferenceSid) -> Result<(), TwilioError> {
        let _: serde_json::Value = self
            .update(
                self.url(&format!("/Conferences/{sid}.json"))?,
                &[("Status", "completed")],
            )
            .await?;
        Ok(())
    }

    /// Puts a conference participant on hold (with music from `hold_url`) or back.
    pub async fn hold_participant(
        &self,
        conference: &ConferenceSid,
        call: &CallSid,
        hold: bool,
        hold_url: &str,
    ) -> Result<(), TwilioError> {
        let change = ParticipantChange {
            hold: Some(hold),
            hold_url: hold.then_some(hold_url),
            ..ParticipantChange::default()
        };
        self.update_participant(conference, call, &change).await
    }

    /// Changes one participant of a conference: only what `change` sets is sent.
    pub async fn update_participant(
        &self,
        conference: &ConferenceSid,
        call: &CallSid,
        change: &ParticipantChange<'_>,
    ) -> Result<(), TwilioError> {
        let url = self.url(&format!("/Conferences/{conference}/Participants/{call}.json"))?;
        let _: serde_json::Value = self.update(url, &change.form()).await?;
        Ok(())
    }

    /// Takes a participant out of a conference (its leg hangs up).
    pub async fn remove_participant(&self, conference: &ConferenceSid, call: &CallSid) -> Result<(), TwilioError> {
        self.delete(self.url(&format!("/Conferences/{conference}/Participants/{call}.json"))?)
            .await
    }

    /// Pauses the conference's recording (what is said meanwhile is left
    /// out, not replaced by silence) or resumes it.
    pub async fn pause_conference_recording(
        &self,
        conference: &ConferenceSid,
        paused: bool,
    ) -> Result<(), TwilioError> {
        let url = self.url(&format!("/Conferences/{conference}/Recordings/Twilio.CURRENT.json"))?;
        let form: &[(&str, &str)] = if paused {
            &[("Status", "paused"), ("PauseBehavior", "skip")]
        } else {
            &[("Status", "in-progress")]
        };
        let _: serde_json::Value = self.update(url, form).await?;
        Ok(())
    }

    /// A recording's audio (MP3) as a response to stream from; errors (404,
    /// auth) are mapped like any other call. The caller checks the type.
    pub async fn recording_media(&self, sid: &RecordingSid) -> Result<reqwest::Response, TwilioError> {
        let url = self.url(&format!("/Recordings/{sid}.mp3"))?;
        self.send_retrying(|| self.http.get(url.clone())).await
    }

    pub async fn delete_recording(&self, sid: &RecordingSid) -> Result<(), TwilioError> {
        self.delete(self.url(&format!("/Recordings/{sid}.json"))?).await
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, TwilioError> {
        let response = self.send_retrying(|| self.http.get(url.clone())).await?;
        decode(response).await
    }

    async fn update<T: DeserializeOwned>(&self, url: Url, form: &[(&str, &str)]) -> Result<T, TwilioError> {
        let response = self.send_retrying(|| self.http.post(url.clone()).form(form)).await?;
        decode(response).await
    }

    async fn create<T: DeserializeOwned>(&self, url: Url, form: &[(&str, &str)]) -> Result<T, TwilioError> {
        let response = self.send_once(self.http.post(url).form(form)).await?;
        decode(response).await
    }

    async fn delete(&self, url: Url) -> Result<(), TwilioError> {
        self.send_retrying(|| self.http.delete(url.clone())).await?;
        Ok(())
    }

    async fn list<P: DeserializeOwned, T>(
        &self,
        first: Url,
        split: impl Fn(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, TwilioError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        // A bound on pages keeps a misbehaving server from looping us forever.
        for _ in 0..1000 {
            let Some(url) = next.take() else {
                return Ok(items);
            };
            let (page, next_uri) = split(self.get(url).await?);
            items.extend(page);
            next = match next_uri.filter(|u| !u.is_empty()) {
                Some(uri) => Some(self.page_url(&uri)?),
                None => None,
            };
        }
        Err(TwilioError::Unexpected("more than 1000 pages".into()))
    }

    async fn send_retrying(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, TwilioError> {
        let mut attempt = 0;
        loop {
            match self.send_once(build()).await {
                Err(error @ (TwilioError::Unavailable(_) | TwilioError::Unreachable(_)))
                    if attempt < RETRY_DELAYS.len() =>
                {
                    tracing::warn!(reason = %error_chain(&error), attempt, "Twilio unavailable; retrying");
                    tokio::time::sleep(RETRY_DELAYS[attempt]).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, TwilioError> {
        let response = request
            .basic_auth(&self.username, Some(self.password.expose_secret()))
            .send()
            .await
            // `without_url` keeps nothing but the reason; URLs carry no secret
            // here, but errors end up in logs and responses.
            .map_err(|e| TwilioError::Unreachable(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: ErrorBody = response.json().await.unwrap_or(ErrorBody {
            code: None,
            message: None,
        });
        let message = body.message.unwrap_or_else(|| status.to_string());
        Err(match status.as_u16() {
            401 | 403 => TwilioError::Unauthorized { message },
            404 => TwilioError::NotFound { message },
            429 | 500..=599 => TwilioError::Unavailable(format!("{status}: {message}")),
            other => TwilioError::Rejected {
                status: other,
                code: body.code.unwrap_or(0),
                message,
            },
        })
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, TwilioError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| TwilioError::Unreachable(e.without_url()))?;
    serde_json::from_slice(&bytes).map_err(|e| TwilioError::Unexpected(e.to_string()))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// A key as created: the secret is returned this once.
#[derive(Deserialize)]
pub struct NewKey {
    pub sid: ApiKeySid,
    pub secret: SecretString,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Key {
    pub sid: ApiKeySid,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Application {
    pub sid: ApplicationSid,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub voice_method: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
    #[serde(default)]
    pub status_callback_method: Option<String>,
}

#[derive(Deserialize)]
struct ApplicationPage {
    #[serde(default)]
    applications: Vec<Application>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IncomingNumber {
    pub sid: PhoneNumberSid,
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub voice_method: Option<String>,
    #[serde(default)]
    pub voice_application_sid: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
    #[serde(default)]
    pub status_callback_method: Option<String>,
    #[serde(default)]
    pub sms_url: Option<String>,
    #[serde(default)]
    pub sms_method: Option<String>,
}

#[derive(Deserialize)]
struct IncomingNumberPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<IncomingNumber>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

/// The call progress events Switchboard follows on every leg it places.
pub const CALL_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

pub struct NewCall<'a> {
    pub to: &'a str,
    pub from: &'a str,
    /// The TwiML to run when the call is answered.
    pub url: &'a str,
    pub status_callback: &'a str,
    pub timeout_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCall {
    Cancel,
    HangUp,
}

/// What to change about a conference participant; `None` leaves it as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParticipantChange<'a> {
    pub hold: Option<bool>,
    pub hold_url: Option<&'a str>,
    pub muted: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
    /// Heard only by the leg `call_sid_to_coach` (whisper), or by everyone.
    pub coaching: Option<bool>,
    pub call_sid_to_coach: Option<&'a CallSid>,
}

impl ParticipantChange<'_> {
    fn form(&self) -> Vec<(&'static str, &str)> {
        let flag = |value: bool| if value { "true" } else { "false" };
        let mut form = Vec::new();
        let flags = [
            ("Hold", self.hold),
            ("Muted", self.muted),
            ("EndConferenceOnExit", self.end_conference_on_exit),
            ("Coaching", self.coaching),
        ];
        form.extend(flags.into_iter().filter_map(|(name, value)| Some((name, flag(value?)))));
        if let Some(url) = self.hold_url {
            form.extend([("HoldUrl", url), ("HoldMethod", "GET")]);
        }
        if let Some(call) = self.call_sid_to_coach {
            form.push(("CallSidToCoach", call.as_str()));
        }
        form
    }
}

pub struct NewMessage<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    /// Where Twilio reports delivery (`queued`, `sent`, `delivered`, …).
    pub status_callback: &'a str,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageResource {
    pub sid: MessageSid,
    /// `queued` (or `accepted`) when just created.
    #[serde(default)]
    pub status: Option<MessageStatus>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallResource {
    pub sid: CallSid,
    #[serde(default)]
    pub status: Option<String>,
}

/// What a TwiML App points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceWebhooks {
    pub voice_url: String,
    pub status_callback: String,
}

impl VoiceWebhooks {
    fn form(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("VoiceUrl", self.voice_url.as_str()),
            ("VoiceMethod", "POST"),
            ("StatusCallback", self.status_callback.as_str()),
            ("StatusCallbackMethod", "POST"),
        ]
    }

    /// Whether Twilio's copy of the app is what we asked for.
    pub fn matches(&self, app: &Application) -> bool {
        app.voice_url.as_deref() == Some(&self.voice_url)
            && eq_method(app.voice_method.as_deref())
            && app.status_callback.as_deref() == Some(&self.status_callback)
            && eq_method(app.status_callback_method.as_deref())
    }
}

/// What a phone number points at. All empty: pointed away from Switchboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberWebhooks {
    pub voice_url: String,
    pub status_callback: String,
    pub sms_url: String,
}

impl NumberWebhooks {
    pub fn cleared() -> Self {
        Self {
            voice_url: String::new(),
            status_callback: String::new(),
            sms_url: String::new(),
        }
    }

    fn form(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("VoiceUrl", self.voice_url.as_str()),
            ("VoiceMethod", "POST"),
            ("StatusCallback", self.status_callback.as_str()),
            ("StatusCallbackMethod", "POST"),
            ("SmsUrl", self.sms_url.as_str()),
            ("SmsMethod", "POST"),
        ]
    }

    /// Whether Twilio's copy of the number is what we asked for.
    pub fn matches(&self, number: &IncomingNumber) -> bool {
        let same = |ours: &str, theirs: &Option<String>| theirs.as_deref().unwrap_or("") == ours;
        same(&self.voice_url, &number.voice_url)
            && same(&self.status_callback, &number.status_callback)
            && same(&self.sms_url, &number.sms_url)
            && number.voice_application_sid.as_deref().unwrap_or("").is_empty()
            && (self.voice_url.is_empty() || eq_method(number.voice_method.as_deref()))
            && (self.sms_url.is_empty() || eq_method(number.sms_method.as_deref()))
    }
}

fn eq_method(method: Option<&str>) -> bool {
    method.is_some_and(|m| m.eq_ignore_ascii_case("POST"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_string_contains, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const KEY: &str = "SK0123456789abcdef0123456789abcdef";
    const APP: &str = "AP0123456789abcdef0123456789abcdef";

    fn client(server: &MockServer) -> TwilioClient {
        TwilioClient::with_auth_token(
            reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap(),
            Url::parse(&server.uri()).unwrap(),
            AccountSid::parse(ACCOUNT).unwrap(),
            SecretString::from("auth-token".to_owned()),
        )
    }

    fn base_path(rest: &str) -> String {
        format!("/2010-04-01/Accounts/{ACCOUNT}{rest}")
    }

    #[tokio::test]
    async fn sends_basic_auth_and_decodes() {
        let server = MockServer::start().await;
        // "AC…:auth-token" in base64.
        let credentials = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{ACCOUNT}:auth-token"),
        );
        Mock::given(method("GET"))
            .and(path(base_path(".json")))
            .and(header("authorization", format!("Basic {credentials}").as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"sid": ACCOUNT, "status": "active"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let account = client(&server).fetch_account().await.unwrap();
        assert_eq!(account.status.as_deref(), Some("active"));
    }

    #[tokio::test]
    async fn wrong_credentials_are_unauthorized_with_twilios_reason() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401})),
            )
            .expect(1) // never retried
            .mount(&server)
            .await;
        let error = client(&server).fetch_account().await.unwrap_err();
        assert!(
            matches!(error, TwilioError::Unauthorized { ref message } if message == "Authenticate"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn reads_are_retried_on_5xx_then_succeed() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"sid": KEY})))
            .mount(&server)
            .await;
        let key = client(&server)
            .fetch_key(&ApiKeySid::parse(KEY).unwrap())
            .await
            .unwrap();
        assert_eq!(key.sid.as_str(), KEY);
        assert_eq!(server.received_requests().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn creates_are_never_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(base_path("/Keys.json")))
            .respond_with(ResponseTemplate::new(500))
            .expect(1)
            .mount(&server)
            .await;
        let error = client(&server).create_key("switchboard").await.err().unwrap();
        assert!(matches!(error, TwilioError::Unavailable(_)));
    }

    #[tokio::test]
    async fn timeouts_are_unreachable_after_retries_and_say_why() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
            .expect(3)
            .mount(&server)
            .await;
        let error = client(&server).fetch_account().await.unwrap_err();
        assert!(matches!(error, TwilioError::Unreachable(_)), "{error:?}");
        assert!(error_chain(&error).contains("timed out"), "{}", error_chain(&error));
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_named_as_the_cause() {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let client = TwilioClient::with_auth_token(
            http,
            Url::parse("https://api.twilio.invalid").unwrap(),
            AccountSid::parse(ACCOUNT).unwrap(),
            SecretString::from("token"),
        );
        let error = client.fetch_account().await.unwrap_err();
        let told = error_chain(&error);
        assert!(told.starts_with("Twilio could not be reached: "), "{told}");
        assert!(told.contains("dns error"), "the cause is kept: {told}");
    }

    #[tokio::test]
    async fn rejections_carry_twilios_code_and_message() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(
                    serde_json::json!({"code": 21502, "message": "Invalid callback url", "status": 400}),
                ),
            )
            .mount(&server)
            .await;
        let hooks = VoiceWebhooks {
            voice_url: "nope".into(),
            status_callback: "nope".into(),
        };
        let error = client(&server)
            .update_application(&ApplicationSid::parse(APP).unwrap(), &hooks)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                TwilioError::Rejected {
                    status: 400,
                    code: 21502,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn lists_follow_next_page_uri() {
        let server = MockServer::start().await;
        let number =
            |n: u32| serde_json::json!({"sid": format!("PN{:032x}", n), "phone_number": format!("+1415555{:04}", n)});
        Mock::given(method("GET"))
            .and(path(base_path("/IncomingPhoneNumbers.json")))
            .and(query_param("Page", "1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "incoming_phone_numbers": [number(3)], "next_page_uri": null
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(base_path("/IncomingPhoneNumbers.json")))
            .and(query_param("PageSize", "100"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "incoming_phone_numbers": [number(1), number(2)],
                "next_page_uri": base_path("/IncomingPhoneNumbers.json?Page=1&PageToken=PA1"),
            })))
            .mount(&server)
            .await;
        let numbers = client(&server).list_incoming_numbers().await.unwrap();
        let phones: Vec<&str> = numbers.iter().map(|n| n.phone_number.as_str()).collect();
        assert_eq!(phones, ["+14155550001", "+14155550002", "+14155550003"]);
    }

    #[tokio::test]
    async fn next_page_links_off_twilios_host_are_refused() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "incoming_phone_numbers": [], "next_page_uri": "https://evil.example/steal"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let error = client(&server).list_incoming_numbers().await.unwrap_err();
        assert!(matches!(error, TwilioError::Unexpected(_)), "{error:?}");
    }

    #[tokio::test]
    async fn calls_carry_one_status_callback_event_parameter_per_event() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(base_path("/Calls.json")))
            .and(body_string_contains(
                "StatusCallbackEvent=initiated&StatusCallbackEvent=ringing&StatusCallbackEvent=answered&StatusCallbackEvent=completed",
            ))
            .and(body_string_contains("To=%2B14155550100"))
            .respond_with(ResponseTemplate::new(201).set_body_json(
                serde_json::json!({"sid": format!("CA{:032x}", 7), "status": "queued"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let call = client(&server)
            .create_call(&NewCall {
                to: "+14155550100",
                from: "+14155550101",
                url: "https://v.example/twilio/voice/customer?callId=1",
                status_callback: "https://v.example/twilio/status?callId=1&leg=customer",
                timeout_seconds: 30,
            })
            .await
            .unwrap();
        assert_eq!(call.status.as_deref(), Some("queued"));
    }

    #[tokio::test]
    async fn texts_are_sent_once_with_their_status_callback() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(base_path("/Messages.json")))
            .and(body_string_contains(
                "To=%2B14155550100&From=%2B14155550101&Body=Hello+%26+bye",
            ))
            .and(body_string_contains(
                "StatusCallback=https%3A%2F%2Fv.example%2Ftwilio%2Fsms%2Fstatus",
            ))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(serde_json::json!({"sid": format!("SM{:032x}", 7), "status": "queued"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let text = NewMessage {
            to: "+14155550100",
            from: "+14155550101",
            body: "Hello & bye",
            status_callback: "https://v.example/twilio/sms/status",
        };
        let sent = client(&server).send_message(&text).await.unwrap();
        assert_eq!(sent.sid.as_str(), format!("SM{:032x}", 7));
        assert_eq!(sent.status, Some(MessageStatus::Queued));
    }

    #[tokio::test]
    async fn texts_to_a_number_twilio_refuses_carry_its_code_and_are_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "code": 21211, "message": "The 'To' number +15005550001 is not a valid phone number.", "status": 400
            })))
            .expect(1)
            .mount(&server)
            .await;
        let text = NewMessage {
            to: "+15005550001",
            from: "+14155550101",
            body: "hi",
            status_callback: "https://v.example/twilio/sms/status",
        };
        let error = client(&server).send_message(&text).await.unwrap_err();
        assert!(
            matches!(error, TwilioError::Rejected { status: 400, code: 21211, ref message } if message.contains("not a valid phone number")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn number_updates_clear_the_voice_application() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string_contains("VoiceApplicationSid=&VoiceUrl="))
            .and(body_string_contains(
                "VoiceUrl=https%3A%2F%2Fv.example%2Ftwilio%2Fvoice%2Finbound",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "sid": format!("PN{:032x}", 1), "phone_number": "+14155550001",
                "voice_url": "https://v.example/twilio/voice/inbound", "voice_method": "POST",
                "status_callback": "https://v.example/twilio/status", "status_callback_method": "POST",
                "sms_url": "https://v.example/twilio/sms", "sms_method": "POST", "voice_application_sid": ""
            })))
            .expect(1)
            .mount(&server)
            .await;
        let hooks = NumberWebhooks {
            voice_url: "https://v.example/twilio/voice/inbound".into(),
            status_callback: "https://v.example/twilio/status".into(),
            sms_url: "https://v.example/twilio/sms".into(),
        };
        let number = client(&server)
            .update_incoming_number(&PhoneNumberSid::parse(&format!("PN{:032x}", 1)).unwrap(), &hooks, true)
            .await
            .unwrap();
        assert!(hooks.matches(&number));
        assert!(!NumberWebhooks::cleared().matches(&number));
    }
}
