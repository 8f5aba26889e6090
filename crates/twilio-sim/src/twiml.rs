//! Reading the TwiML a webhook answers: a `<Response>` whose children are
//! verbs, read into a small tree the call engine walks.

use quick_xml::events::Event;

use crate::state::{parse_bool, webhook_method};

/// One element: its name, attributes, text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean attribute: `true`/`false` (any case), else the default.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.attr(name).and_then(parse_bool).unwrap_or(default)
    }

    /// A whole number attribute, else the default.
    pub fn number(&self, name: &str, default: u64) -> u64 {
        self.attr(name).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
    }

    /// An HTTP method attribute: `GET` or `POST` (the default).
    pub fn method(&self, name: &str) -> String {
        webhook_method(self.attr(name))
    }

    /// A space-separated list attribute.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.attr(name)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TwimlError {
    #[error("the document is not well-formed XML: {0}")]
    Xml(String),
    #[error("the root element is <{0}>, not <Response>")]
    NotResponse(String),
    #[error("the document is empty")]
    Empty,
}

/// The verbs of a TwiML document.
pub(crate) fn parse(document: &str) -> Result<Vec<Node>, TwimlError> {
    let mut reader = quick_xml::Reader::from_str(document);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader.read_event().map_err(|e| TwimlError::Xml(e.to_string()))?;
        match event {
            Event::Start(start) => stack.push(element(&start)?),
            Event::Empty(empty) => {
                let node = element(&empty)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let node = stack
                    .pop()
                    .ok_or_else(|| TwimlError::Xml("an unmatched end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(text) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(node) = stack.last_mut() {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => match &*reference.xml10_content() {
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "amp" => "&".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => return Err(TwimlError::Xml(format!("unknown entity &{other};"))),
                        },
                    };
                    node.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(TwimlError::Xml("an element is not closed".into()));
    }
    let root = root.ok_or(TwimlError::Empty)?;
    if root.name != "Response" {
        return Err(TwimlError::NotResponse(root.name));
    }
    Ok(root.children)
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Result<Node, TwimlError> {
    let name = start.name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| TwimlError::Xml(e.to_string()))?;
        let key = attribute.key.as_ref().to_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| TwimlError::Xml(e.to_string()))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_verbs_nouns_attributes_and_escaped_text() {
        let verbs = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Tom &amp; Jerry&#33;</Say><Dial><Conference startConferenceOnEnter="true" statusCallbackEvent="start end join leave" statusCallback="https://v.example/s?callId=1&amp;leg=agent">call-1</Conference></Dial><Hangup/></Response>"#,
        )
        .unwrap();
        assert_eq!(verbs.len(), 3);
        assert_eq!(verbs[0].text, "Tom & Jerry!");
        let conference = &verbs[1].children[0];
        assert_eq!(conference.name, "Conference");
        assert_eq!(conference.trimmed_text(), "call-1");
        assert!(conference.flag("startConferenceOnEnter", false));
        assert_eq!(
            conference.list("statusCallbackEvent"),
            ["start", "end", "join", "leave"]
        );
        assert_eq!(
            conference.attr("statusCallback"),
            Some("https://v.example/s?callId=1&leg=agent")
        );
        assert_eq!(verbs[2].name, "Hangup");
        assert_eq!(parse("<Response/>").unwrap(), Vec::<Node>::new());
    }

    #[test]
    fn refuses_what_is_not_twiml() {
        assert!(matches!(parse("<html><body/></html>"), Err(TwimlError::NotResponse(_))));
        assert!(matches!(parse("<Response><Say>"), Err(TwimlError::Xml(_))));
        assert_eq!(parse(""), Err(TwimlError::Empty));
        assert!(parse(r#"{"json": true}"#).is_err());
    }
}
