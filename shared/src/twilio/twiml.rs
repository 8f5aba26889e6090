//! A small typed TwiML writer for the verbs Switchboard uses.
//!
//! Every text and attribute goes through `quick_xml`'s escaping, and characters
//! XML 1.0 cannot carry at all (most control characters) are dropped, so any
//! string a caller, an agent or a database hands us still renders well-formed XML.

use std::borrow::Cow;
use std::fmt::Write;

/// `<Response>`: the document Twilio executes, verb by verb.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    verbs: Vec<Element>,
}

impl Response {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<Say>` with Twilio's default voice.
    pub fn say(mut self, text: &str) -> Self {
        self.verbs.push(Element::new("Say").text(text));
        self
    }

    pub fn pause(mut self, seconds: u32) -> Self {
        self.verbs.push(Element::new("Pause").attr("length", seconds));
        self
    }

    pub fn dial(mut self, dial: Dial) -> Self {
        self.verbs.push(dial.0);
        self
    }

    pub fn record(mut self, record: Record) -> Self {
        self.verbs.push(record.0);
        self
    }

    pub fn hangup(mut self) -> Self {
        self.verbs.push(Element::new("Hangup"));
        self
    }

    /// `<Message>`: a text back to whoever texted (messaging TwiML).
    pub fn message(mut self, text: &str) -> Self {
        self.verbs.push(Element::new("Message").text(text));
        self
    }

    /// The short message-then-hang-up answer for anything that went wrong: a
    /// 500 would make Twilio play "an application error has occurred".
    pub fn say_and_hang_up(text: &str) -> Self {
        Self::new().say(text).hangup()
    }

    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        if self.verbs.is_empty() {
            out.push_str("<Response/>");
            return out;
        }
        out.push_str("<Response>");
        for verb in &self.verbs {
            verb.write(&mut out);
        }
        out.push_str("</Response>");
        out
    }
}

/// `<Dial>` with its nouns.
#[derive(Debug, Clone, PartialEq)]
pub struct Dial(Element);

impl Default for Dial {
    fn default() -> Self {
        Self::new()
    }
}

impl Dial {
    pub fn new() -> Self {
        Self(Element::new("Dial"))
    }

    pub fn caller_id(self, number: &str) -> Self {
        Self(self.0.attr("callerId", number))
    }

    /// Seconds to ring before giving up.
    pub fn timeout(self, seconds: u32) -> Self {
        Self(self.0.attr("timeout", seconds))
    }

    /// Where Twilio goes when the dial ends (voicemail after no answer).
    pub fn action(self, url: &str) -> Self {
        Self(self.0.attr("action", url).attr("method", "POST"))
    }

    pub fn answer_on_bridge(self) -> Self {
        Self(self.0.attr("answerOnBridge", true))
    }

    pub fn number(self, number: &str) -> Self {
        Self(self.0.child(Element::new("Number").text(number)))
    }

    /// A Voice SDK client, with custom parameters the browser receives.
    pub fn client(self, identity: &str, parameters: &[(&str, &str)]) -> Self {
        let mut client = Element::new("Client").child(Element::new("Identity").text(identity));
        for (name, value) in parameters {
            client = client.child(Element::new("Parameter").attr("name", name).attr("value", value));
        }
        Self(self.0.child(client))
    }

    /// A Voice SDK client whose answer and hang-up are reported to `status_callback`.
    pub fn client_with_status(self, identity: &str, parameters: &[(&str, &str)], status_callback: &str) -> Self {
        let mut client = Element::new("Client")
            .attr("statusCallbackEvent", "answered completed")
            .attr("statusCallback", status_callback)
            .attr("statusCallbackMethod", "POST")
            .child(Element::new("Identity").text(identity));
        for (name, value) in parameters {
            client = client.child(Element::new("Parameter").attr("name", name).attr("value", value));
        }
        Self(self.0.child(client))
    }

    pub fn conference(self, conference: Conference) -> Self {
        Self(self.0.child(conference.0))
    }
}

/// `<Conference>`: the room both legs of every call meet in.
#[derive(Debug, Clone, PartialEq)]
pub struct Conference(Element);

impl Conference {
    pub fn new(name: &str) -> Self {
        Self(Element::new("Conference").text(name))
    }

    pub fn start_conference_on_enter(self, start: bool) -> Self {
        Self(self.0.attr("startConferenceOnEnter", start))
    }

    pub fn end_conference_on_exit(self, end: bool) -> Self {
        Self(self.0.attr("endConferenceOnExit", end))
    }

    pub fn beep(self, beep: bool) -> Self {
        Self(self.0.attr("beep", beep))
    }

    /// Joins unheard (a supervisor listening in).
    pub fn muted(self, muted: bool) -> Self {
        Self(self.0.attr("muted", muted))
    }

    /// Joins heard only by the participant whose leg is `call_sid` (a
    /// supervisor whispering to the call's agent).
    pub fn coach(self, call_sid: &str) -> Self {
        Self(self.0.attr("coach", call_sid))
    }

    /// Music (or silence) while the participant waits alone.
    pub fn wait_url(self, url: &str) -> Self {
        Self(self.0.attr("waitUrl", url))
    }

    /// Conference events are space-separated in TwiML (unlike the REST API).
    pub fn status_callback(self, url: &str, events: &[&str]) -> Self {
        Self(
            self.0
                .attr("statusCallback", url)
                .attr("statusCallbackMethod", "POST")
                .attr("statusCallbackEvent", events.join(" ")),
        )
    }

    pub fn record_from_start(self, recording_status_callback: &str) -> Self {
        Self(
            self.0
                .attr("record", "record-from-start")
                .attr("recordingStatusCallback", recording_status_callback)
                .attr("recordingStatusCallbackMethod", "POST")
                .attr("recordingStatusCallbackEvent", "completed absent failed"),
        )
    }
}

/// `<Record>`: voicemail.
#[derive(Debug, Clone, PartialEq)]
pub struct Record(Element);

impl Record {
    pub fn new() -> Self {
        Self(Element::new("Record"))
    }

    pub fn max_length(self, seconds: u32) -> Self {
        Self(self.0.attr("maxLength", seconds))
    }

    pub fn play_beep(self, beep: bool) -> Self {
        Self(self.0.attr("playBeep", beep))
    }

    /// Where Twilio goes after the caller finishes (hangs up or times out).
    pub fn action(self, url: &str) -> Self {
        Self(self.0.attr("action", url).attr("method", "POST"))
    }

    pub fn recording_status_callback(self, url: &str) -> Self {
        Self(
            self.0
                .attr("recordingStatusCallback", url)
                .attr("recordingStatusCallbackMethod", "POST")
                .attr("recordingStatusCallbackEvent", "completed absent failed"),
        )
    }
}

impl Default for Record {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Element {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    content: Content,
}

#[derive(Debug, Clone, PartialEq)]
enum Content {
    Empty,
    Text(String),
    Children(Vec<Element>),
}

impl Element {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            attrs: Vec::new(),
            content: Content::Empty,
        }
    }

    fn attr(mut self, name: &'static str, value: impl ToString) -> Self {
        let value = value.to_string();
        match self.attrs.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = value,
            None => self.attrs.push((name, value)),
        }
        self
    }

    fn text(mut self, text: &str) -> Self {
        self.content = Content::Text(text.to_owned());
        self
    }

    fn child(mut self, child: Element) -> Self {
        match &mut self.content {
            Content::Children(children) => children.push(child),
            _ => self.content = Content::Children(vec![child]),
        }
        self
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(self.name);
        for (name, value) in &self.attrs {
            let _ = write!(out, r#" {name}="{}""#, escape(value));
        }
        match &self.content {
            Content::Empty => out.push_str("/>"),
            Content::Text(text) => {
                let _ = write!(out, ">{}</{}>", escape(text), self.name);
            }
            Content::Children(children) => {
                out.push('>');
                for child in children {
                    child.write(out);
                }
                let _ = write!(out, "</{}>", self.name);
            }
        }
    }
}

/// Escapes markup and drops what XML 1.0 cannot represent.
fn escape(raw: &str) -> Cow<'_, str> {
    let representable =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if raw.chars().all(representable) {
        quick_xml::escape::escape(raw)
    } else {
        let clean: String = raw.chars().filter(|c| representable(*c)).collect();
        Cow::Owned(quick_xml::escape::escape(&clean).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(xml: &str) {
        let mut reader = quick_xml::Reader::from_str(xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("malformed XML {xml}: {e}"),
            }
        }
    }

    #[test]
    fn empty_response() {
        assert_eq!(
            Response::new().to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
    }

    #[test]
    fn agent_conference_leg() {
        let xml = Response::new()
            .dial(
                Dial::new().conference(
                    Conference::new("sb-01J")
                        .start_conference_on_enter(true)
                        .end_conference_on_exit(true)
                        .status_callback(
                            "https://x.test/twilio/status?callId=1&ws=a",
                            &["start", "end", "join", "leave"],
                        ),
                ),
            )
            .to_xml();
        assert_eq!(
            xml,
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference startConferenceOnEnter="true" "#,
                r#"endConferenceOnExit="true" statusCallback="https://x.test/twilio/status?callId=1&amp;ws=a" "#,
                r#"statusCallbackMethod="POST" statusCallbackEvent="start end join leave">sb-01J</Conference></Dial></Response>"#
            )
        );
        parse_ok(&xml);
    }

    #[test]
    fn clients_with_parameters_and_voicemail() {
        let xml = Response::new()
            .dial(
                Dial::new()
                    .timeout(20)
                    .action("https://x.test/after")
                    .client("agent_a", &[("callId", "01J")])
                    .client("agent_b", &[]),
            )
            .record(
                Record::new()
                    .max_length(120)
                    .recording_status_callback("https://x.test/rec"),
            )
            .to_xml();
        assert!(xml.contains(r#"<Client><Identity>agent_a</Identity><Parameter name="callId" value="01J"/></Client>"#));
        assert!(xml.contains(r#"<Dial timeout="20" action="https://x.test/after" method="POST">"#));
        assert!(xml.contains(r#"<Record maxLength="120" recordingStatusCallback="https://x.test/rec""#));
        parse_ok(&xml);
    }

    #[test]
    fn hostile_strings_stay_text() {
        let hostile = r#"</Say><Dial><Number>+19005550100</Number></Dial><Say a="'"&amp;]]><!--"#;
        let xml = Response::new()
            .say(hostile)
            .dial(Dial::new().caller_id(hostile).number(hostile))
            .to_xml();
        parse_ok(&xml);
        assert_eq!(xml.matches("<Dial").count(), 1);
        assert!(!xml.contains("<Number>+19005550100</Number>"));
        let escaped = quick_xml::escape::escape(hostile);
        assert_eq!(xml.matches(escaped.as_ref()).count(), 3, "{xml}");
    }

    #[test]
    fn control_characters_are_dropped_not_emitted() {
        let xml = Response::say_and_hang_up("bad\u{0}\u{1b}[31m\u{fffe}text").to_xml();
        parse_ok(&xml);
        assert!(xml.contains("<Say>bad[31mtext</Say><Hangup/>"));
    }
}
