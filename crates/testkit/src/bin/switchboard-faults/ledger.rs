//! What the server acknowledged, kept by the driver, and the check that all
//! of it is still there: calls answered 201, texts answered 201 (sent) or
//! whose SMS webhook was answered 200 (received), timeline events of
//! callbacks answered 200, recordings whose callback was answered 200.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;

use crate::common::Api;

#[derive(Default)]
pub struct Ledger {
    calls: Mutex<BTreeSet<String>>,
    events: Mutex<BTreeMap<String, BTreeSet<String>>>,
    messages: Mutex<BTreeSet<String>>,
    recordings: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Acknowledged writes looked for.
    pub checked: u64,
    /// Acknowledged and not there (the first few described in `examples`).
    pub lost: u64,
    /// Could not be looked at (the server did not answer the read).
    pub unreadable: u64,
    pub examples: Vec<String>,
}

impl Verified {
    /// What to report when anything acknowledged is lost or unreadable.
    pub fn problem(&self) -> Option<String> {
        (self.lost > 0 || self.unreadable > 0).then(|| {
            format!(
                "{} lost, {} unreadable: {:?}",
                self.lost, self.unreadable, self.examples
            )
        })
    }

    fn lost(&mut self, what: String) {
        self.lost += 1;
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ledger {
    pub fn call(&self, id: &str) {
        locked(&self.calls).insert(id.to_owned());
    }

    pub fn event(&self, call: &str, key: &str) {
        locked(&self.events)
            .entry(call.to_owned())
            .or_default()
            .insert(key.to_owned());
    }

    pub fn message(&self, sid: &str) {
        locked(&self.messages).insert(sid.to_owned());
    }

    pub fn recording(&self, call: &str, sid: &str) {
        locked(&self.recordings)
            .entry(call.to_owned())
            .or_default()
            .insert(sid.to_owned());
    }

    /// How many acknowledged writes the ledger holds.
    pub fn acknowledged(&self) -> u64 {
        let events: usize = locked(&self.events).values().map(BTreeSet::len).sum();
        let recordings: usize = locked(&self.recordings).values().map(BTreeSet::len).sum();
        (locked(&self.calls).len() + events + locked(&self.messages).len() + recordings) as u64
    }

    pub fn recordings(&self) -> BTreeMap<String, BTreeSet<String>> {
        locked(&self.recordings).clone()
    }

    pub fn calls(&self) -> Vec<String> {
        locked(&self.calls).iter().cloned().collect()
    }

    /// Reads every acknowledged write back through the API.
    pub async fn verify(&self, api: &Api) -> Verified {
        let calls = locked(&self.calls).clone();
        let events = locked(&self.events).clone();
        let recordings = locked(&self.recordings).clone();
        let messages = locked(&self.messages).clone();
        let mut ids: BTreeSet<String> = calls.clone();
        ids.extend(events.keys().cloned());
        ids.extend(recordings.keys().cloned());

        let mut verified = Verified::default();
        let mut reads = futures_util::stream::iter(ids)
            .map(|id| async move {
                let read = read_call(api, &id).await;
                (id, read)
            })
            .buffer_unordered(16);
        while let Some((id, read)) = reads.next().await {
            let wanted_events = events.get(&id).cloned().unwrap_or_default();
            let wanted_recordings = recordings.get(&id).cloned().unwrap_or_default();
            let wanted = u64::from(calls.contains(&id)) + (wanted_events.len() + wanted_recordings.len()) as u64;
            verified.checked += wanted;
            match read {
                CallRead::Missing => verified.lost(format!("call {id} ({wanted} acknowledged writes)")),
                CallRead::Unreadable(why) => {
                    verified.unreadable += wanted;
                    if verified.examples.len() < 10 {
                        verified.examples.push(format!("call {id} unreadable: {why}"));
                    }
                }
                CallRead::Found { keys, recordings } => {
                    for key in wanted_events.difference(&keys) {
                        verified.lost(format!("call {id}: timeline event {key}"));
                    }
                    for sid in wanted_recordings.difference(&recordings) {
                        verified.lost(format!("call {id}: recording {sid}"));
                    }
                }
            }
        }

        verified.checked += messages.len() as u64;
        match list_messages(api).await {
            Ok(listed) => {
                for sid in messages.difference(&listed) {
                    verified.lost(format!("message {sid}"));
                }
            }
            Err(why) => {
                verified.unreadable += messages.len() as u64;
                verified.examples.push(format!("messages unreadable: {why}"));
            }
        }
        verified
    }
}

enum CallRead {
    Found {
        keys: BTreeSet<String>,
        recordings: BTreeSet<String>,
    },
    Missing,
    Unreadable(String),
}

async fn read_call(api: &Api, id: &str) -> CallRead {
    let mut last = String::new();
    for attempt in 0..5 {
        let answer = api.get(&format!("/calls/{id}")).await;
        match answer.status {
            200 => {
                let body = answer.json();
                let keys = body["timeline"]
                    .as_array()
                    .map(|events| {
                        events
                            .iter()
                            .filter_map(|e| e["key"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let recordings = match &body["recordings"] {
                    serde_json::Value::Object(map) => map
                        .iter()
                        .map(|(k, v)| v["sid"].as_str().unwrap_or(k).to_owned())
                        .collect(),
                    serde_json::Value::Array(list) => list
                        .iter()
                        .filter_map(|r| r["sid"].as_str().map(str::to_owned))
                        .collect(),
                    _ => BTreeSet::new(),
                };
                return CallRead::Found { keys, recordings };
            }
            404 => return CallRead::Missing,
            status => last = format!("{status} {}", answer.body.chars().take(120).collect::<String>()),
        }
        tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
    }
    CallRead::Unreadable(last)
}

/// Every message sid the workspace lists (all pages).
pub async fn list_messages(api: &Api) -> Result<BTreeSet<String>, String> {
    let mut sids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/messages?limit=100&cursor={c}"),
            None => "/messages?limit=100".to_owned(),
        };
        let mut answer = api.get(&path).await;
        for attempt in 0..5 {
            if answer.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            answer = api.get(&path).await;
        }
        if answer.status != 200 {
            return Err(format!("GET {path}: {} {}", answer.status, answer.body));
        }
        let body = answer.json();
        for message in body["messages"].as_array().into_iter().flatten() {
            if let Some(sid) = message["sid"].as_str() {
                sids.insert(sid.to_owned());
            }
        }
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(sids),
        }
    }
}
