//! Sessions and messages as the API shows them, on `GET /calls`, `GET
//! /messages` and every live event alike: the stored object without what
//! only the store needs (the version it compares, the claimed steps).

use serde_json::Value;

use crate::model::calls::CallSession;
use crate::model::changes::Change;
use crate::model::messages::Message;

pub fn call(session: &CallSession) -> Value {
    let mut view = serde_json::to_value(session).unwrap_or(Value::Null);
    if let Some(object) = view.as_object_mut() {
        object.remove("version");
        object.remove("steps");
        object.remove("workspace");
    }
    view
}

pub fn message(message: &Message) -> Value {
    let mut view = serde_json::to_value(message).unwrap_or(Value::Null);
    if let Some(object) = view.as_object_mut() {
        object.remove("version");
        object.remove("workspace");
    }
    view
}

/// A live event: `{"type": "call" | "message", "data": <the view>}`.
pub fn event(change: &Change) -> Value {
    match change {
        Change::Call(session) => serde_json::json!({"type": "call", "data": call(session)}),
        Change::Message(message) => serde_json::json!({"type": "message", "data": self::message(message)}),
    }
}
