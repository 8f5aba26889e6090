//! What Twilio's webhooks carry. The signature is checked over the raw
//! parameters ([`Params`], in the order sent, repeated names and all); then
//! each webhook is read into one of the typed forms below, whose statuses are
//! enums. Every enum keeps an `Other` variant for values Twilio may add
//! later: a handler logs and acknowledges those, it never refuses them (a
//! refused callback is lost: Twilio does not retry a 4xx).

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::ids::{CallSid, ConferenceSid, MessageSid, RecordingSid};
use crate::model::messages::MessageStatus;

/// Form parameters in the order sent; a name may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse_form(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Reads a form body into `T`. An empty value reads as absent (`Foo=` is
/// `foo: None`), names `T` does not know are ignored, and a repeated name
/// counts once, with its first value, as [`Params::get`] reads it.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_html_form::de::Error> {
    let mut seen = std::collections::HashSet::new();
    let first_values: Vec<(String, String)> = form_urlencoded::parse(body)
        .into_owned()
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect();
    let deduplicated = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&first_values)
        .finish();
    serde_html_form::from_str(&deduplicated)
}

/// A status Twilio sent that this version does not know.
pub trait Unknown {
    /// The value as Twilio sent it, when it is not one we know.
    fn unknown(&self) -> Option<&str>;
}

/// Twilio's call statuses (`CallStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Answered,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
    #[serde(untagged)]
    Other(String),
}

/// The conference events of `StatusCallbackEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConferenceEvent {
    ConferenceStart,
    ConferenceEnd,
    ParticipantJoin,
    ParticipantLeave,
    ParticipantHold,
    ParticipantUnhold,
    ParticipantMute,
    ParticipantUnmute,
    ParticipantModify,
    ParticipantSpeechStart,
    ParticipantSpeechStop,
    AnnouncementEnd,
    AnnouncementFail,
    #[serde(untagged)]
    Other(String),
}

impl ConferenceEvent {
    pub fn as_str(&self) -> &str {
        match self {
            Self::ConferenceStart => "conference-start",
            Self::ConferenceEnd => "conference-end",
            Self::ParticipantJoin => "participant-join",
            Self::ParticipantLeave => "participant-leave",
            Self::ParticipantHold => "participant-hold",
            Self::ParticipantUnhold => "participant-unhold",
            Self::ParticipantMute => "participant-mute",
            Self::ParticipantUnmute => "participant-unmute",
            Self::ParticipantModify => "participant-modify",
            Self::ParticipantSpeechStart => "participant-speech-start",
            Self::ParticipantSpeechStop => "participant-speech-stop",
            Self::AnnouncementEnd => "announcement-end",
            Self::AnnouncementFail => "announcement-fail",
            Self::Other(other) => other,
        }
    }
}

impl CallStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Queued => "queued",
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Answered => "answered",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Other(other) => other,
        }
    }
}

impl Unknown for CallStatus {
    fn unknown(&self) -> Option<&str> {
        match self {
            Self::Other(other) => Some(other),
            _ => None,
        }
    }
}

impl Unknown for ConferenceEvent {
    fn unknown(&self) -> Option<&str> {
        match self {
            Self::Other(other) => Some(other),
            _ => None,
        }
    }
}

/// A voice webhook: Twilio asks what a leg should do.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VoiceRequest {
    pub call_sid: CallSid,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// How the `<Dial>` that ended ended (on its `action` URL).
    #[serde(default)]
    pub dial_call_status: Option<CallStatus>,
    /// Custom parameters a browser passes to `device.connect`.
    #[serde(default, rename = "callId")]
    pub call_id: Option<String>,
    #[serde(default, rename = "callerId")]
    pub caller_id: Option<String>,
}

/// `/twilio/status`: a leg's progress, or a conference event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatusCallback {
    /// Absent on conference-wide events (`conference-start`, `conference-end`).
    #[serde(default)]
    pub call_sid: Option<CallSid>,
    #[serde(default)]
    pub call_status: Option<CallStatus>,
    #[serde(default)]
    pub status_callback_event: Option<ConferenceEvent>,
    #[serde(default)]
    pub conference_sid: Option<ConferenceSid>,
    #[serde(default)]
    pub call_duration: Option<String>,
    #[serde(default)]
    pub sequence_number: Option<String>,
    /// RFC 2822.
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub sip_response_code: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub hold: Option<String>,
}

/// Twilio's recording statuses (`RecordingStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingProgress {
    InProgress,
    Completed,
    Absent,
    Failed,
    #[serde(untagged)]
    Other(String),
}

impl Unknown for RecordingProgress {
    fn unknown(&self) -> Option<&str> {
        match self {
            Self::Other(other) => Some(other),
            _ => None,
        }
    }
}

/// `/twilio/recording`: a recording's status callback.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordingCallback {
    pub recording_sid: RecordingSid,
    pub recording_status: RecordingProgress,
    #[serde(default)]
    pub recording_source: Option<String>,
    #[serde(default)]
    pub recording_channels: Option<String>,
    #[serde(default)]
    pub recording_duration: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
}

/// `/twilio/sms`: a text to one of the workspace's numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncomingMessage {
    pub message_sid: MessageSid,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub num_media: Option<String>,
}

/// `/twilio/sms/status`: delivery of a text Switchboard sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageStatusCallback {
    pub message_sid: MessageSid,
    #[serde(default)]
    pub message_status: Option<MessageStatus>,
    /// The older name of `MessageStatus`, still sent.
    #[serde(default)]
    pub sms_status: Option<MessageStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "CA0123456789abcdef0123456789abcdef";

    #[test]
    fn statuses_are_enums_and_unknown_ones_are_kept() {
        let known: StatusCallback = parse_form(format!("CallSid={CALL}&CallStatus=no-answer").as_bytes()).unwrap();
        assert_eq!(known.call_status, Some(CallStatus::NoAnswer));
        let unknown: StatusCallback = parse_form(format!("CallSid={CALL}&CallStatus=teleported").as_bytes()).unwrap();
        assert_eq!(
            unknown.call_status.as_ref().and_then(Unknown::unknown),
            Some("teleported")
        );
        let event: StatusCallback = parse_form(b"StatusCallbackEvent=participant-join").unwrap();
        assert_eq!(event.status_callback_event, Some(ConferenceEvent::ParticipantJoin));
        let new_event: StatusCallback = parse_form(b"StatusCallbackEvent=participant-dance").unwrap();
        assert_eq!(new_event.status_callback_event.unwrap().as_str(), "participant-dance");
    }

    #[test]
    fn empty_values_are_absent_and_unknown_names_ignored() {
        let form: StatusCallback =
            parse_form(format!("CallSid={CALL}&CallStatus=&Timestamp=&Whatever=1").as_bytes()).unwrap();
        assert_eq!(form.call_status, None);
        assert_eq!(form.timestamp, None);
    }

    #[test]
    fn a_repeated_name_counts_once_with_its_first_value() {
        let form: StatusCallback =
            parse_form(format!("CallSid={CALL}&CallStatus=ringing&CallStatus=completed&CallSid=CAnot").as_bytes())
                .unwrap();
        assert_eq!(form.call_status, Some(CallStatus::Ringing));
        assert_eq!(form.call_sid.unwrap().as_str(), CALL);
        assert_eq!(
            Params::parse_form(b"CallStatus=ringing&CallStatus=completed").get("CallStatus"),
            Some("ringing")
        );
    }

    #[test]
    fn a_malformed_sid_is_refused() {
        assert!(parse_form::<VoiceRequest>(b"CallSid=CA123").is_err());
        assert!(
            parse_form::<VoiceRequest>(b"From=client:alice").is_err(),
            "CallSid is required"
        );
    }
}
