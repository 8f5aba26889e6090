//! The DynamoDB adapter: every storage port on one table (pool model).
//!
//! Keys are strings `pk` / `sk`; a workspace id is always a whole segment
//! between fixed delimiters, so `acme` never shares a prefix with `acme-corp`
//! (`WS#acme` vs `WS#acme-corp`, and every query adds the `sk` prefix):
//!
//! | item                  | pk                 | sk                               |
//! |-----------------------|--------------------|----------------------------------|
//! | workspace profile     | `WS#<ws>`          | `PROFILE`                        |
//! | Account SID index     | `ACCOUNT#<AC…>`    | `ACCOUNT` (→ `workspace`)        |
//! | phone number          | `WS#<ws>`          | `NUMBER#<e164>`                  |
//! | number index          | `NUMBER#<e164>`    | `NUMBER` (→ `workspace`)         |
//! | call session          | `WS#<ws>`          | `CALL#<callId>`                  |
//! | timeline event        | `WS#<ws>`          | `EVENT#<callId>#<event key>`     |
//! | CallSid link          | `WS#<ws>`          | `CALLSID#<CA…>` (→ `callId`)     |
//! | message               | `WS#<ws>`          | `MSG#<created, fixed width>#<SM…>` |
//! | message by sid        | `WS#<ws>`          | `MSGSID#<SM…>` (→ `messageSk`)   |
//! | idempotency record    | `WS#<ws>`          | `IDEMPOTENCY#<sha256 of key>`    |
//!
//! No secondary index is needed. Call ids are ULIDs, so a reverse query on
//! `begins_with(sk, "CALL#")` lists sessions newest first; no other kind of
//! item starts with `CALL#` (`CALLSID#` differs at its fifth character), and
//! likewise `MSG#` vs `MSGSID#`.
//!
//! Messages are two items written in one transaction: the listing item, whose
//! sort key orders by `created_at`, and a pointer keyed by `MessageSid` that
//! makes the write happen once per sid (`attribute_not_exists` on the pointer)
//! and finds the listing item again for `get_message` and status updates.
//!
//! Idempotency keys come from clients, so their sort key segment is the hex
//! SHA-256 of the key: bounded in size whatever the client sends.
//!
//! Paging cursors are base64url of `<workspace id>\n<sort key of the last item
//! returned>`. A cursor that does not decode, names another workspace, or
//! points outside the listing is answered with `StoreError::InvalidCursor`,
//! never by silently starting over.
//!
//! A call session's `reached` map holds each time in `Timestamp`'s serde
//! form, RFC 3339 with exactly three fraction digits: fixed width, so the
//! condition `reached.#s > :at` compares times by comparing strings.
//!
//! All reads are strongly consistent. Every state change is one conditional
//! write (or one transaction), never read-then-write; the reads that do come
//! first (`put_workspace`, `replace_numbers`) only choose the write, and the
//! write's condition re-checks what was read.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use switchboard_model::calls::{CallSession, Direction, TimelineEvent};
use switchboard_model::ids::{AccountSid, CallId, CallSid, MessageSid, WorkspaceId};
use switchboard_model::messages::Message;
use switchboard_model::phone::E164;
use switchboard_model::ports::{
    CallChange, CallQuery, CallStore, ChangesQuery, Connection, ConnectionStore, IdempotencyStore, MessageChange,
    MessageQuery, MessageStore, Modified, NumberStore, Page, StoreError, WorkspaceStore,
};
use switchboard_model::time::Timestamp;
use switchboard_model::workspace::{PhoneNumber, Workspace};

type Item = HashMap<String, AttributeValue>;

const PK: &str = "pk";
const SK: &str = "sk";
/// The table's TTL attribute (epoch seconds).
const EXPIRES_AT: &str = "expiresAt";
/// Index items name their workspace in this attribute.
const WORKSPACE: &str = "workspace";

/// Page size when a query asks for none.
const DEFAULT_LIMIT: usize = 50;
/// Upper bound on one page, whatever a query asks for.
const MAX_LIMIT: usize = 1000;
/// DynamoDB's cap on operations in one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// DynamoDB's cap on keys in one BatchGetItem.
const MAX_BATCH_GET: usize = 100;
/// The global secondary index that lists what changed, oldest first: its
/// partition (`chPk`, one per workspace and kind) and sort (`chSk`) keys.
pub const CHANGES_INDEX: &str = "changes";
const CH_PK: &str = "chPk";
const CH_SK: &str = "chSk";
/// Attempts for writes that lose a race to a concurrent transaction.
const ATTEMPTS: u32 = 5;

mod keys {
    use super::*;

    pub const PROFILE: &str = "PROFILE";
    pub const ACCOUNT: &str = "ACCOUNT";
    pub const NUMBER_INDEX: &str = "NUMBER";
    pub const NUMBER_PREFIX: &str = "NUMBER#";
    pub const CALL_PREFIX: &str = "CALL#";
    pub const MSG_PREFIX: &str = "MSG#";
    pub const CONN_PREFIX: &str = "CONN#";
    pub const CONNECTION_POINTER: &str = "CONNECTION";

    /// A socket's item under its workspace (listed by the fan-out).
    pub fn connection(id: &str) -> String {
        format!("{CONN_PREFIX}{id}")
    }
    /// The item that finds a socket's workspace by its id alone.
    pub fn connection_pointer(id: &str) -> String {
        format!("CONNECTION#{id}")
    }
    /// The partition of the `changes` index that orders a workspace's
    /// sessions (or messages) by when they last changed.
    pub fn call_changes(ws: &WorkspaceId) -> String {
        format!("WS#{ws}#CALLS")
    }
    pub fn message_changes(ws: &WorkspaceId) -> String {
        format!("WS#{ws}#MSGS")
    }
    /// `<updated_at, fixed width>#<id>`: unique, in change order.
    pub fn change(updated_at: &Timestamp, id: &str) -> Result<String, StoreError> {
        Ok(format!("{}#{id}", sortable_time(updated_at)?))
    }

    pub fn workspace(ws: &WorkspaceId) -> String {
        format!("WS#{ws}")
    }
    /// Takes the SID as text: stored profiles are read without full decoding.
    pub fn account(sid: &str) -> String {
        format!("ACCOUNT#{sid}")
    }
    /// Both the workspace's number item sk and the global index pk.
    pub fn number(number: &E164) -> String {
        format!("{NUMBER_PREFIX}{number}")
    }
    pub fn call(id: &CallId) -> String {
        format!("{CALL_PREFIX}{id}")
    }
    pub fn events(id: &CallId) -> String {
        format!("EVENT#{id}#")
    }
    pub fn event(id: &CallId, key: &str) -> String {
        format!("EVENT#{id}#{key}")
    }
    pub fn call_sid(sid: &CallSid) -> String {
        format!("CALLSID#{sid}")
    }
    pub fn message(created_at: &Timestamp, sid: &MessageSid) -> Result<String, StoreError> {
        Ok(format!("{MSG_PREFIX}{}#{sid}", sortable_time(created_at)?))
    }
    pub fn message_sid(sid: &MessageSid) -> String {
        format!("MSGSID#{sid}")
    }
    pub fn idempotency(key: &str) -> String {
        format!("IDEMPOTENCY#{}", hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// RFC 3339 with a fixed nine-digit fraction, so text order is time order.
    /// (Kept at nine digits though times are whole milliseconds now, so that
    /// keys written before sort with new ones.)
    pub fn sortable_time(at: &Timestamp) -> Result<String, StoreError> {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
        let unsortable = |err: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("time {} has no sortable form: {err}", at.rfc3339()))
        };
        // `Timestamp` gives its sub-second part only through its RFC 3339 form.
        time::OffsetDateTime::parse(&at.rfc3339(), &time::format_description::well_known::Rfc3339)
            .map_err(|err| unsortable(&err))?
            .format(&format)
            .map_err(|err| unsortable(&err))
    }
}

/// The adapter. Cheap to clone: the SDK client is reference-counted.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Creates the table this adapter expects, for tests and the local dev flow:
/// on-demand capacity, string keys `pk`/`sk`, TTL on `expiresAt`. The SAM
/// template creates the real one. An existing table is left as it is (TTL is
/// still switched on), so calling this twice is harmless.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(built)
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(built)
    };
    let changes = GlobalSecondaryIndex::builder()
        .index_name(CHANGES_INDEX)
        .key_schema(key(CH_PK, KeyType::Hash)?)
        .key_schema(key(CH_SK, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(built)?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .attribute_definitions(attribute(CH_PK)?)
        .attribute_definitions(attribute(CH_SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(changes)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(built)?,
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(err) if error_code(&err) == Some("ResourceInUseException") => {}
        Err(err) => return Err(unavailable("CreateTable", &err)),
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(Duration::from_secs(300))
        .await
        .map_err(|err| StoreError::Unavailable(format!("DynamoDB table {table} did not become active: {err}")))?;

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|err| unavailable("DescribeTimeToLive", &err))?;
    let on = ttl.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(EXPIRES_AT)
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if !on {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
            .map_err(built)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|err| unavailable("UpdateTimeToLive", &err))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Errors and item conversion

fn unavailable<E, R>(op: &str, err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(crate::errors::describe("DynamoDB", op, err))
}

/// A request we built ourselves lacked a required field: a bug, reported as
/// unavailability rather than a panic.
fn built(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB request could not be built: {err}"))
}

fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    error_code(err) == Some("ConditionalCheckFailedException")
}

/// Why each operation of a cancelled transaction failed, in request order
/// (`"None"` for those that did not), or `None` if it was not cancelled.
fn cancellation_reasons<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => Some(
            cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().unwrap_or("None").to_owned())
                .collect(),
        ),
        _ => None,
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn names<const N: usize>(pairs: [(&str, &str); N]) -> HashMap<String, String> {
    pairs
        .into_iter()
        .map(|(placeholder, name)| (placeholder.to_owned(), name.to_owned()))
        .collect()
}

fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs
        .into_iter()
        .map(|(placeholder, value)| (placeholder.to_owned(), value))
        .collect()
}

/// A session's item, with its place in the `changes` index.
fn session_item(session: &CallSession) -> Result<Item, StoreError> {
    let mut item = to_item(session, keys::workspace(&session.workspace), keys::call(&session.id))?;
    item.insert(CH_PK.into(), s(keys::call_changes(&session.workspace)));
    item.insert(CH_SK.into(), s(keys::change(&session.updated_at, session.id.as_str())?));
    Ok(item)
}

/// A message's listing item (`sk`), with its place in the `changes` index.
fn message_item(message: &Message, sk: String) -> Result<Item, StoreError> {
    let mut item = to_item(message, keys::workspace(&message.workspace), sk)?;
    item.insert(CH_PK.into(), s(keys::message_changes(&message.workspace)));
    item.insert(
        CH_SK.into(),
        s(keys::change(&message.updated_at, message.sid.as_str())?),
    );
    Ok(item)
}

/// A record as an item under `pk`/`sk`. Top-level nulls are left out, so
/// "not set" is "absent" and `if_not_exists` means what it says.
fn to_item<T: Serialize>(value: &T, pk: String, sk: impl Into<String>) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value)
        .map_err(|err| StoreError::Corrupt(format!("record does not fit an item: {err}")))?;
    item.retain(|_, v| !matches!(v, AttributeValue::Null(true)));
    item.extend(key(pk, sk));
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let at = describe_key(&item);
    serde_dynamo::from_item(item).map_err(|err| StoreError::Corrupt(format!("item {at}: {err}")))
}

fn describe_key(item: &Item) -> String {
    let part = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
    format!("{}/{}", part(PK), part(SK))
}

fn string_attr(item: &Item, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| StoreError::Corrupt(format!("item {} lacks string attribute {name}", describe_key(item))))
}

fn workspace_attr(item: &Item) -> Result<WorkspaceId, StoreError> {
    let raw = string_attr(item, WORKSPACE)?;
    WorkspaceId::parse(&raw).map_err(|err| StoreError::Corrupt(format!("item {}: {err}", describe_key(item))))
}

// ---------------------------------------------------------------------------
// Cursors

fn encode_cursor(ws: &WorkspaceId, sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{ws}\n{sk}"))
}

/// The sort key a cursor resumes after, if it is one of ours for this listing.
fn decode_cursor(ws: &WorkspaceId, cursor: &str, prefix: &str) -> Result<String, StoreError> {
    let invalid = || StoreError::InvalidCursor("the cursor is not valid for this listing".into());
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (owner, sk) = text.split_once('\n').ok_or_else(invalid)?;
    if owner != ws.as_str() || !sk.starts_with(prefix) || sk.len() > 1024 {
        return Err(invalid());
    }
    Ok(sk.to_owned())
}

fn page_limit(limit: usize) -> usize {
    if limit == 0 {
        DEFAULT_LIMIT
    } else {
        limit.min(MAX_LIMIT)
    }
}

/// A filter for a listing query: expression plus its placeholders.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl Filter {
    fn name(&mut self, placeholder: &str, attribute: &str) {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
    }
    fn value(&mut self, placeholder: &str, value: AttributeValue) {
        self.values.insert(placeholder.to_owned(), value);
    }
}

// ---------------------------------------------------------------------------
// Shared operations

impl DynamoStore {
    async fn get_item(&self, pk: String, sk: impl Into<String>) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| unavailable("GetItem", &err))?;
        Ok(out.item)
    }

    /// Every item under `pk` whose sort key starts with `prefix`, in key order.
    async fn query_all(&self, pk: String, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .set_expression_attribute_names(Some(names([("#pk", PK), ("#sk", SK)])))
                .set_expression_attribute_values(Some(values([(":pk", s(pk.clone())), (":prefix", s(prefix))])))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| unavailable("Query", &err))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(items),
            }
        }
    }

    /// One newest-first page of the items under the workspace whose sort key
    /// starts with `prefix` and that pass `filter`. Fetches one item beyond
    /// the page so that `next` is set only when more items exist.
    async fn list_page(
        &self,
        ws: &WorkspaceId,
        prefix: &str,
        filter: Filter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let limit = page_limit(limit);
        let start = match cursor {
            Some(cursor) => Some(key(keys::workspace(ws), decode_cursor(ws, cursor, prefix)?)),
            None => None,
        };
        let mut names = names([("#pk", PK), ("#sk", SK)]);
        names.extend(filter.names);
        let mut values = values([(":pk", s(keys::workspace(ws))), (":prefix", s(prefix))]);
        values.extend(filter.values);
        let expression = (!filter.clauses.is_empty()).then(|| filter.clauses.join(" AND "));
        // A filter applies after `Limit`, so filtered queries read more per call.
        let read = if expression.is_some() {
            (limit + 1).max(100)
        } else {
            limit + 1
        };
        let read = i32::try_from(read).unwrap_or(i32::MAX);

        let (items, last) = self
            .collect_page(
                |start| {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                        .set_filter_expression(expression.clone())
                        .set_expression_attribute_names(Some(names.clone()))
                        .set_expression_attribute_values(Some(values.clone()))
                        .scan_index_forward(false)
                        .consistent_read(true)
                        .limit(read)
                        .set_exclusive_start_key(start)
                },
                start,
                limit,
                SK,
            )
            .await?;
        Ok((items, last.map(|sk| encode_cursor(ws, &sk))))
    }

    /// Runs a query page after page, from `first` (an exclusive start key)
    /// (DynamoDB may answer with fewer items
    /// than asked, a filter applying after `Limit`) until one more than
    /// `limit` items came or the listing ended: the first `limit` items, and
    /// the `position` attribute of the last of them if there are more.
    async fn collect_page(
        &self,
        query: impl Fn(Option<Item>) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        first: Option<Item>,
        limit: usize,
        position: &str,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let mut start = first;
        let mut items = Vec::new();
        loop {
            let out = query(start.take())
                .send()
                .await
                .map_err(|err| unavailable("Query", &err))?;
            items.extend(out.items.unwrap_or_default());
            if items.len() > limit {
                items.truncate(limit);
                let last = items.last().map(|item| string_attr(item, position)).transpose()?;
                return Ok((items, last));
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok((items, None)),
            }
        }
    }

    /// A page of the `changes` index under `partition`, oldest change
    /// first, from `since` (inclusive) or past the cursor. The index is
    /// eventually consistent: a change shows up within a second or so of its
    /// write, which a client catching up after a reconnect tolerates.
    async fn changed_page<T: DeserializeOwned>(
        &self,
        ws: &WorkspaceId,
        partition: String,
        listing: &str,
        query: &ChangesQuery,
    ) -> Result<Page<T>, StoreError> {
        let limit = page_limit(query.limit);
        let (condition, from) = match &query.cursor {
            Some(cursor) => {
                let position = decode_cursor(ws, cursor, listing)?;
                ("#p = :p AND #s > :from", position[listing.len()..].to_owned())
            }
            None => ("#p = :p AND #s >= :from", keys::sortable_time(&query.since)?),
        };
        let (items, last) = self
            .collect_page(
                |start| {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name(CHANGES_INDEX)
                        .key_condition_expression(condition)
                        .set_expression_attribute_names(Some(names([("#p", CH_PK), ("#s", CH_SK)])))
                        .set_expression_attribute_values(Some(values([
                            (":p", s(partition.clone())),
                            (":from", s(from.clone())),
                        ])))
                        .scan_index_forward(true)
                        .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                        .set_exclusive_start_key(start)
                },
                None,
                limit,
                CH_SK,
            )
            .await?;
        let next = last.map(|sk| encode_cursor(ws, &format!("{listing}{sk}")));
        let items = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), SdkError<TransactWriteItemsError>> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
    }
}

// ---------------------------------------------------------------------------
// Workspaces

impl DynamoStore {
    fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(built)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(
        &self,
        key: Item,
        condition: Option<&str>,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(built)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn update(
        &self,
        key: Item,
        expression: String,
        condition: Option<&str>,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(built)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// An index item (`ACCOUNT#…` or `NUMBER#…`) that names `ws`, written only
    /// if it is free or already ours.
    fn claim_index(&self, pk: String, sk: &str, ws: &WorkspaceId) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(pk, sk);
        item.insert(WORKSPACE.to_owned(), s(ws.as_str()));
        self.put(
            item,
            Some("attribute_not_exists(#pk) OR #ws = :ws"),
            names([("#pk", PK), ("#ws", WORKSPACE)]),
            values([(":ws", s(ws.as_str()))]),
        )
    }

    /// Deletes an index item if it is ours (or already gone).
    fn release_index(&self, pk: String, sk: &str, ws: &WorkspaceId) -> Result<TransactWriteItem, StoreError> {
        self.delete(
            key(pk, sk),
            Some("attribute_not_exists(#pk) OR #ws = :ws"),
            names([("#pk", PK), ("#ws", WORKSPACE)]),
            values([(":ws", s(ws.as_str()))]),
        )
    }
}

/// The Account SID a stored profile is connected to, read without decoding
/// the rest of it.
fn stored_account(profile: &Item) -> Option<String> {
    profile
        .get("twilio")
        .and_then(|t| t.as_m().ok())
        .and_then(|t| t.get("accountSid"))
        .and_then(|a| a.as_s().ok())
        .cloned()
}

#[async_trait]
impl WorkspaceStore for DynamoStore {
    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        self.get_item(keys::workspace(id), keys::PROFILE)
            .await?
            .map(from_item)
            .transpose()
    }

    /// One transaction: the profile (on condition that its account is still
    /// the one read just before), the new account's index item (if free or
    /// ours), and the release of the old account's index item. A profile that
    /// changed in between makes it start over.
    async fn put_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let ws = &workspace.id;
        let new_account = workspace.twilio.as_ref().map(|t| t.account_sid.as_str().to_owned());
        let mut release_old = true;
        for _ in 0..ATTEMPTS {
            let current = self.get_item(keys::workspace(ws), keys::PROFILE).await?;
            let old_account = current.as_ref().and_then(stored_account);

            // Names must all be used, so each condition brings its own.
            let account_names = names([("#twilio", "twilio"), ("#acct", "accountSid")]);
            let (condition, profile_names, profile_values) = match (&current, &old_account) {
                (None, _) => ("attribute_not_exists(#pk)", names([("#pk", PK)]), Item::new()),
                (Some(_), Some(old)) => (
                    "#twilio.#acct = :old",
                    account_names,
                    values([(":old", s(old.clone()))]),
                ),
                (Some(_), None) => {
                    let mut both = account_names;
                    both.insert("#pk".into(), PK.into());
                    (
                        "attribute_exists(#pk) AND attribute_not_exists(#twilio.#acct)",
                        both,
                        Item::new(),
                    )
                }
            };
            let mut ops = vec![self.put(
                to_item(workspace, keys::workspace(ws), keys::PROFILE)?,
                Some(condition),
                profile_names,
                profile_values,
            )?];
            let mut claim_at = None;
            let mut release_at = None;
            if let Some(sid) = &new_account {
                claim_at = Some(ops.len());
                ops.push(self.claim_index(keys::account(sid), keys::ACCOUNT, ws)?);
            }
            if let Some(old) = old_account.as_ref().filter(|old| Some(*old) != new_account.as_ref())
                && release_old
            {
                release_at = Some(ops.len());
                ops.push(self.release_index(keys::account(old), keys::ACCOUNT, ws)?);
            }

            let err = match self.transact(ops).await {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(unavailable("TransactWriteItems", &err));
            };
            let failed = |at: Option<usize>| {
                at.and_then(|i| reasons.get(i))
                    .is_some_and(|code| code == "ConditionalCheckFailed")
            };
            if failed(claim_at) {
                return Err(StoreError::Conflict(format!(
                    "Twilio account {} is connected to another workspace",
                    new_account.unwrap_or_default()
                )));
            }
            if failed(release_at) {
                // The old SID was claimed elsewhere meanwhile: it is not ours to free.
                release_old = false;
            }
            // Otherwise the profile changed under us, or a concurrent
            // transaction touched the same items: read again and retry.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(StoreError::Unavailable(format!(
            "workspace {ws} kept changing while it was being saved"
        )))
    }

    async fn workspace_by_account(&self, account: &AccountSid) -> Result<Option<WorkspaceId>, StoreError> {
        self.get_item(keys::account(account.as_str()), keys::ACCOUNT)
            .await?
            .map(|item| workspace_attr(&item))
            .transpose()
    }
}

// ---------------------------------------------------------------------------
// Phone numbers

impl DynamoStore {
    /// The index items of `numbers`, by number, with strongly consistent reads.
    async fn number_owners(&self, numbers: &[&E164]) -> Result<HashMap<String, WorkspaceId>, StoreError> {
        let mut owners = HashMap::new();
        for chunk in numbers.chunks(MAX_BATCH_GET) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(
                    chunk
                        .iter()
                        .map(|number| key(keys::number(number), keys::NUMBER_INDEX))
                        .collect(),
                ))
                .consistent_read(true)
                .build()
                .map_err(built)?;
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|err| unavailable("BatchGetItem", &err))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    owners.insert(string_attr(&item, PK)?, workspace_attr(&item)?);
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        if attempt >= ATTEMPTS {
                            return Err(StoreError::Unavailable(
                                "DynamoDB BatchGetItem kept leaving keys unprocessed".into(),
                            ));
                        }
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                        pending = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(owners)
    }

    /// Sets a number's own fields, creating the item if needed, keeping any
    /// agents and label it already has.
    /// Twilio's side of a number (the number, its SID) is set; ours (agents,
    /// label) is set only on a number that is new, and kept on one that is not.
    fn upsert_number(&self, ws: &WorkspaceId, number: &PhoneNumber) -> Result<TransactWriteItem, StoreError> {
        let agents = serde_dynamo::to_attribute_value(&number.agents)
            .map_err(|err| StoreError::Corrupt(format!("agents do not fit an attribute: {err}")))?;
        let mut names = names([("#number", "number"), ("#agents", "agents"), ("#sid", "sid")]);
        let mut values = values([(":number", s(number.number.as_str())), (":agents", agents)]);
        let mut set = vec!["#number = :number", "#agents = if_not_exists(#agents, :agents)"];
        if let Some(label) = &number.label {
            names.insert("#label".into(), "label".into());
            values.insert(":label".into(), s(label.clone()));
            set.push("#label = if_not_exists(#label, :label)");
        }
        let expression = match &number.sid {
            Some(sid) => {
                values.insert(":sid".into(), s(sid.as_str()));
                set.push("#sid = :sid");
                format!("SET {}", set.join(", "))
            }
            None => format!("SET {} REMOVE #sid", set.join(", ")),
        };
        self.update(
            key(keys::workspace(ws), keys::number(&number.number)),
            expression,
            None,
            names,
            values,
        )
    }

    /// Runs groups of operations in as few transactions as fit, never
    /// splitting a group (a number's item and its index item go together).
    async fn write_groups(&self, groups: Vec<(String, Vec<TransactWriteItem>)>) -> Result<(), StoreError> {
        let mut batches: Vec<(Vec<String>, Vec<TransactWriteItem>)> = Vec::new();
        for (what, ops) in groups {
            let fits = batches
                .last()
                .is_some_and(|(_, batch)| batch.len() + ops.len() <= MAX_TRANSACTION_ITEMS);
            if !fits {
                batches.push((Vec::new(), Vec::new()));
            }
            if let Some((whats, batch)) = batches.last_mut() {
                whats.extend(std::iter::repeat_n(what, ops.len()));
                batch.extend(ops);
            }
        }
        for (whats, batch) in batches {
            let mut attempt = 0;
            loop {
                let err = match self.transact(batch.clone()).await {
                    Ok(()) => break,
                    Err(err) => err,
                };
                let Some(reasons) = cancellation_reasons(&err) else {
                    return Err(unavailable("TransactWriteItems", &err));
                };
                if let Some(i) = reasons.iter().position(|code| code == "ConditionalCheckFailed") {
                    let what = whats.get(i).map_or("a phone number", String::as_str);
                    return Err(StoreError::Conflict(format!("{what} belongs to another workspace")));
                }
                attempt += 1;
                if attempt >= ATTEMPTS {
                    return Err(unavailable("TransactWriteItems", &err));
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl NumberStore for DynamoStore {
    /// Checks every new number's owner first, so an ordinary conflict changes
    /// nothing. Writes go number by number (item and index item in one
    /// transaction), additions before removals, packed into transactions of
    /// up to 100 operations; a set that fits one transaction is replaced
    /// atomically. A larger one that fails part way is left with whole
    /// numbers only, and the same call again converges.
    async fn replace_numbers(&self, workspace: &WorkspaceId, numbers: &[PhoneNumber]) -> Result<(), StoreError> {
        let ws = workspace;
        let current: HashMap<E164, PhoneNumber> = self
            .list_numbers(ws)
            .await?
            .into_iter()
            .map(|n| (n.number.clone(), n))
            .collect();

        let mut seen = HashSet::new();
        let desired: Vec<&PhoneNumber> = numbers.iter().filter(|n| seen.insert(&n.number)).collect();
        let new: Vec<&E164> = desired
            .iter()
            .filter(|n| !current.contains_key(&n.number))
            .map(|n| &n.number)
            .collect();

        let owners = self.number_owners(&new).await?;
        if let Some(taken) = new
            .iter()
            .find(|number| owners.get(&keys::number(number)).is_some_and(|owner| owner != ws))
        {
            return Err(StoreError::Conflict(format!(
                "phone number {taken} belongs to another workspace"
            )));
        }

        let mut groups = Vec::new();
        for number in &desired {
            let changed = match current.get(&number.number) {
                None => true,
                Some(stored) => stored.sid != number.sid,
            };
            if changed {
                groups.push((
                    format!("phone number {}", number.number),
                    vec![
                        self.claim_index(keys::number(&number.number), keys::NUMBER_INDEX, ws)?,
                        self.upsert_number(ws, number)?,
                    ],
                ));
            }
        }
        for number in current.keys().filter(|n| !seen.contains(n)) {
            groups.push((
                format!("phone number {number}"),
                vec![
                    self.release_index(keys::number(number), keys::NUMBER_INDEX, ws)?,
                    self.delete(
                        key(keys::workspace(ws), keys::number(number)),
                        None,
                        HashMap::new(),
                        Item::new(),
                    )?,
                ],
            ));
        }
        self.write_groups(groups).await
    }

    async fn list_numbers(&self, workspace: &WorkspaceId) -> Result<Vec<PhoneNumber>, StoreError> {
        self.query_all(keys::workspace(workspace), keys::NUMBER_PREFIX)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn get_number(&self, workspace: &WorkspaceId, number: &E164) -> Result<Option<PhoneNumber>, StoreError> {
        self.get_item(keys::workspace(workspace), keys::number(number))
            .await?
            .map(from_item)
            .transpose()
    }

    async fn update_number(&self, workspace: &WorkspaceId, number: &PhoneNumber) -> Result<(), StoreError> {
        let agents = serde_dynamo::to_attribute_value(&number.agents)
            .map_err(|err| StoreError::Corrupt(format!("agents do not fit an attribute: {err}")))?;
        let mut values = values([(":agents", agents)]);
        let expression = match &number.label {
            Some(label) => {
                values.insert(":label".into(), s(label.clone()));
                "SET #agents = :agents, #label = :label"
            }
            None => "SET #agents = :agents REMOVE #label",
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::workspace(workspace), keys::number(&number.number))))
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(Some(names([("#pk", PK), ("#agents", "agents"), ("#label", "label")])))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(StoreError::NotFound(format!(
                "phone number {} in workspace {workspace}",
                number.number
            ))),
            Err(err) => Err(unavailable("UpdateItem", &err)),
        }
    }

    async fn workspace_by_number(&self, number: &E164) -> Result<Option<WorkspaceId>, StoreError> {
        self.get_item(keys::number(number), keys::NUMBER_INDEX)
            .await?
            .map(|item| workspace_attr(&item))
            .transpose()
    }
}

// ---------------------------------------------------------------------------
// Call sessions

/// How often a compare-and-set write is tried against concurrent writers
/// before the store reports itself unavailable: each lost round means another
/// writer won, so this bounds the racers it waits out.
const CAS_ATTEMPTS: u32 = 40;

impl DynamoStore {
    /// Stores `after` over the item that held `before`, on condition that the
    /// item still holds `before`'s version (a compare-and-set). False if
    /// another writer got there first; `NotFound` if the item is gone.
    async fn replace_if_version(&self, item: Item, version: u64, what: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(#pk) AND #version = :version")
            .set_expression_attribute_names(Some(names([("#pk", PK), ("#version", "version")])))
            .set_expression_attribute_values(Some(values([(":version", n(version))])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => {
                let gone = matches!(
                    err.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e))
                        if e.item().is_none_or(|item| item.is_empty())
                );
                if gone {
                    Err(StoreError::NotFound(what.to_owned()))
                } else {
                    Ok(false)
                }
            }
            Err(err) => Err(unavailable("PutItem", &err)),
        }
    }
}

/// A short, growing, jittered pause after losing a compare-and-set round.
async fn back_off(attempt: u32) {
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            % 7,
    );
    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(8)) * 3 + jitter)).await;
}

#[async_trait]
impl CallStore for DynamoStore {
    async fn create_call(&self, session: &CallSession) -> Result<(), StoreError> {
        let item = session_item(session)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Err(StoreError::Conflict(format!(
                "call session {} already exists",
                session.id
            ))),
            Err(err) => Err(unavailable("PutItem", &err)),
        }
    }

    async fn get_call(&self, workspace: &WorkspaceId, id: &CallId) -> Result<Option<CallSession>, StoreError> {
        self.get_item(keys::workspace(workspace), keys::call(id))
            .await?
            .map(from_item)
            .transpose()
    }

    /// A compare-and-set on the session's `version`: read (strongly
    /// consistent), change, write on condition that nobody wrote meanwhile;
    /// a lost round reads again. A change that changes nothing writes nothing.
    async fn modify_call(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        change: CallChange<'_>,
    ) -> Result<Modified<CallSession>, StoreError> {
        let what = format!("call session {id}");
        for attempt in 0..CAS_ATTEMPTS {
            let Some(item) = self.get_item(keys::workspace(workspace), keys::call(id)).await? else {
                return Err(StoreError::NotFound(what));
            };
            let before: CallSession = from_item(item)?;
            let mut after = before.clone();
            change(&mut after);
            if !after.differs_from(&before) {
                return Ok(Modified {
                    after: before.clone(),
                    before,
                });
            }
            after.touch(&before);
            let item = session_item(&after)?;
            if self.replace_if_version(item, before.version, &what).await? {
                return Ok(Modified { before, after });
            }
            back_off(attempt).await;
        }
        Err(StoreError::Unavailable(format!(
            "{what} kept changing under concurrent writes"
        )))
    }

    async fn append_event(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        event: &TimelineEvent,
    ) -> Result<bool, StoreError> {
        let item = to_item(event, keys::workspace(workspace), keys::event(id, &event.key))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failed(&err) => Ok(false),
            Err(err) => Err(unavailable("PutItem", &err)),
        }
    }

    async fn timeline(&self, workspace: &WorkspaceId, id: &CallId) -> Result<Vec<TimelineEvent>, StoreError> {
        let mut events: Vec<TimelineEvent> = self
            .query_all(keys::workspace(workspace), &keys::events(id))
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        events.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.key.cmp(&b.key)));
        Ok(events)
    }

    async fn list_calls(&self, workspace: &WorkspaceId, query: &CallQuery) -> Result<Page<CallSession>, StoreError> {
        let mut filter = Filter::default();
        if let Some(agent) = &query.agent {
            filter.name("#agent", "agent");
            filter.value(":agent", s(agent.as_str()));
            filter.clauses.push("#agent = :agent".into());
        }
        if let Some(direction) = query.direction {
            filter.name("#direction", "direction");
            filter.value(":direction", s(direction.as_str()));
            filter.clauses.push("#direction = :direction".into());
        }
        if let Some(state) = query.state {
            filter.name("#state", "state");
            filter.value(":state", s(state.as_str()));
            filter.clauses.push("#state = :state".into());
        }
        let (items, next) = self
            .list_page(
                workspace,
                keys::CALL_PREFIX,
                filter,
                query.limit,
                query.cursor.as_deref(),
            )
            .await?;
        let items = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    async fn calls_changed(
        &self,
        workspace: &WorkspaceId,
        query: &ChangesQuery,
    ) -> Result<Page<CallSession>, StoreError> {
        self.changed_page(workspace, keys::call_changes(workspace), "CALLS#", query)
            .await
    }

    async fn link_call_sid(&self, workspace: &WorkspaceId, sid: &CallSid, id: &CallId) -> Result<(), StoreError> {
        let mut item = key(keys::workspace(workspace), keys::call_sid(sid));
        item.insert("callId".into(), s(id.as_str()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            // An existing link wins: that is the rule, not an error.
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(unavailable("PutItem", &err)),
        }
    }

    async fn call_by_sid(&self, workspace: &WorkspaceId, sid: &CallSid) -> Result<Option<CallId>, StoreError> {
        let Some(item) = self.get_item(keys::workspace(workspace), keys::call_sid(sid)).await? else {
            return Ok(None);
        };
        let raw = string_attr(&item, "callId")?;
        CallId::parse(&raw)
            .map(Some)
            .map_err(|err| StoreError::Corrupt(format!("item {}: {err}", describe_key(&item))))
    }
}

// ---------------------------------------------------------------------------
// Messages

impl DynamoStore {
    /// The listing item's sort key for a message sid, from its pointer.
    async fn message_sk(&self, workspace: &WorkspaceId, sid: &MessageSid) -> Result<Option<String>, StoreError> {
        self.get_item(keys::workspace(workspace), keys::message_sid(sid))
            .await?
            .map(|pointer| string_attr(&pointer, "messageSk"))
            .transpose()
    }
}

#[async_trait]
impl MessageStore for DynamoStore {
    async fn put_message(&self, message: &Message) -> Result<bool, StoreError> {
        let ws = &message.workspace;
        let listing_sk = keys::message(&message.created_at, &message.sid)?;
        let mut pointer = key(keys::workspace(ws), keys::message_sid(&message.sid));
        pointer.insert("messageSk".into(), s(listing_sk.clone()));
        let ops = vec![
            self.put(
                pointer,
                Some("attribute_not_exists(#pk)"),
                names([("#pk", PK)]),
                Item::new(),
            )?,
            self.put(message_item(message, listing_sk)?, None, HashMap::new(), Item::new())?,
        ];
        for attempt in 0..ATTEMPTS {
            let err = match self.transact(ops.clone()).await {
                Ok(()) => return Ok(true),
                Err(err) => err,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(unavailable("TransactWriteItems", &err));
            };
            if reasons.first().is_some_and(|code| code == "ConditionalCheckFailed") {
                return Ok(false);
            }
            // A racing put of the same sid (TransactionConflict): try again
            // and the condition decides.
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
        Err(StoreError::Unavailable(format!(
            "message {} kept conflicting while it was stored",
            message.sid
        )))
    }

    async fn get_message(&self, workspace: &WorkspaceId, sid: &MessageSid) -> Result<Option<Message>, StoreError> {
        let Some(sk) = self.message_sk(workspace, sid).await? else {
            return Ok(None);
        };
        match self.get_item(keys::workspace(workspace), sk).await? {
            Some(item) => from_item(item).map(Some),
            None => Err(StoreError::Corrupt(format!("message {sid} has a pointer but no item"))),
        }
    }

    async fn list_messages(&self, workspace: &WorkspaceId, query: &MessageQuery) -> Result<Page<Message>, StoreError> {
        let mut filter = Filter::default();
        if query.number.is_some() || query.counterpart.is_some() {
            filter.name("#direction", "direction");
            filter.name("#from", "from");
            filter.name("#to", "to");
            filter.value(":outbound", s(Direction::Outbound.as_str()));
            filter.value(":inbound", s(Direction::Inbound.as_str()));
        }
        // Our number is `from` on outbound messages and `to` on inbound ones;
        // the other party the opposite.
        if let Some(number) = &query.number {
            filter.value(":number", s(number.clone()));
            filter.clauses.push(
                "((#direction = :outbound AND #from = :number) OR (#direction = :inbound AND #to = :number))".into(),
            );
        }
        if let Some(counterpart) = &query.counterpart {
            filter.value(":counterpart", s(counterpart.clone()));
            filter.clauses.push(
                "((#direction = :outbound AND #to = :counterpart) OR (#direction = :inbound AND #from = :counterpart))"
                    .into(),
            );
        }
        let (items, next) = self
            .list_page(
                workspace,
                keys::MSG_PREFIX,
                filter,
                query.limit,
                query.cursor.as_deref(),
            )
            .await?;
        let items = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    async fn messages_changed(
        &self,
        workspace: &WorkspaceId,
        query: &ChangesQuery,
    ) -> Result<Page<Message>, StoreError> {
        self.changed_page(workspace, keys::message_changes(workspace), "MSGS#", query)
            .await
    }

    /// A compare-and-set on the listing item's `version`, like `modify_call`.
    async fn modify_message(
        &self,
        workspace: &WorkspaceId,
        sid: &MessageSid,
        change: MessageChange<'_>,
    ) -> Result<Modified<Message>, StoreError> {
        let what = format!("message {sid}");
        let Some(sk) = self.message_sk(workspace, sid).await? else {
            return Err(StoreError::NotFound(what));
        };
        for attempt in 0..CAS_ATTEMPTS {
            let Some(item) = self.get_item(keys::workspace(workspace), sk.clone()).await? else {
                return Err(StoreError::Corrupt(format!("{what} has a pointer but no item")));
            };
            let before: Message = from_item(item)?;
            let mut after = before.clone();
            change(&mut after);
            if after == before {
                return Ok(Modified {
                    after: before.clone(),
                    before,
                });
            }
            after.touch(&before);
            let item = message_item(&after, sk.clone())?;
            if self.replace_if_version(item, before.version, &what).await? {
                return Ok(Modified { before, after });
            }
            back_off(attempt).await;
        }
        Err(StoreError::Unavailable(format!(
            "{what} kept changing under concurrent writes"
        )))
    }
}

// ---------------------------------------------------------------------------
// WebSocket connections (live events in AWS)

/// A connection as both of its items store it.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredConnection {
    connection_id: String,
    workspace: WorkspaceId,
    agent: switchboard_model::ids::AgentId,
    /// The TTL attribute (epoch seconds): DynamoDB deletes it some time after.
    expires_at: i64,
    /// The same moment, exactly: what the fan-out compares.
    closes_at: Timestamp,
}

impl StoredConnection {
    fn from(connection: &Connection) -> Self {
        Self {
            connection_id: connection.id.clone(),
            workspace: connection.workspace.clone(),
            agent: connection.agent.clone(),
            expires_at: connection.expires_at.unix_seconds(),
            closes_at: connection.expires_at,
        }
    }

    fn into_connection(self) -> Connection {
        Connection {
            id: self.connection_id,
            workspace: self.workspace,
            agent: self.agent,
            expires_at: self.closes_at,
        }
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    /// Two items in one transaction: one under the workspace (what the
    /// fan-out queries) and a pointer by connection id (what `$disconnect`
    /// and `$default`, which know only the id, read). Both expire by TTL.
    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let stored = StoredConnection::from(connection);
        let listing = to_item(
            &stored,
            keys::workspace(&connection.workspace),
            keys::connection(&connection.id),
        )?;
        let pointer = to_item(
            &stored,
            keys::connection_pointer(&connection.id),
            keys::CONNECTION_POINTER,
        )?;
        let ops = vec![
            self.put(listing, None, HashMap::new(), Item::new())?,
            self.put(pointer, None, HashMap::new(), Item::new())?,
        ];
        self.transact(ops)
            .await
            .map_err(|err| unavailable("TransactWriteItems", &err))
    }

    async fn get_connection(&self, id: &str) -> Result<Option<Connection>, StoreError> {
        self.get_item(keys::connection_pointer(id), keys::CONNECTION_POINTER)
            .await?
            .map(|item| from_item::<StoredConnection>(item).map(StoredConnection::into_connection))
            .transpose()
    }

    async fn workspace_connections(&self, workspace: &WorkspaceId) -> Result<Vec<Connection>, StoreError> {
        self.query_all(keys::workspace(workspace), keys::CONN_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item::<StoredConnection>(item).map(StoredConnection::into_connection))
            .collect()
    }

    async fn delete_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let ops = vec![
            self.delete(
                key(keys::workspace(&connection.workspace), keys::connection(&connection.id)),
                None,
                HashMap::new(),
                Item::new(),
            )?,
            self.delete(
                key(keys::connection_pointer(&connection.id), keys::CONNECTION_POINTER),
                None,
                HashMap::new(),
                Item::new(),
            )?,
        ];
        self.transact(ops)
            .await
            .map_err(|err| unavailable("TransactWriteItems", &err))
    }
}

/// What a DynamoDB Streams record's new image holds (as Lambda delivers it),
/// if it is a session or a message listing item; any other item is `None`
/// (the fan-out's filter lets only those through).
pub fn change_from_image(image: serde_dynamo::Item) -> Option<Result<switchboard_model::changes::Change, StoreError>> {
    use switchboard_model::changes::Change;
    let sk = match image.get(SK) {
        Some(serde_dynamo::AttributeValue::S(sk)) => sk.clone(),
        _ => return None,
    };
    let corrupt = |err: serde_dynamo::Error| StoreError::Corrupt(format!("stream image {sk}: {err}"));
    if sk.starts_with(keys::CALL_PREFIX) {
        Some(
            serde_dynamo::from_item(image)
                .map(|s| Change::Call(Box::new(s)))
                .map_err(corrupt),
        )
    } else if sk.starts_with(keys::MSG_PREFIX) {
        Some(
            serde_dynamo::from_item(image)
                .map(|m| Change::Message(Box::new(m)))
                .map_err(corrupt),
        )
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Idempotency

fn unix_millis() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    /// A put that succeeds only over nothing or over an expired record (TTL
    /// deletion lags by hours, so expiry is checked here, not left to it).
    async fn remember(
        &self,
        workspace: &WorkspaceId,
        key_: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let pk = keys::workspace(workspace);
        let sk = keys::idempotency(key_);
        for _ in 0..ATTEMPTS {
            let now_ms = unix_millis();
            let now = now_ms.div_euclid(1000);
            let ttl_ms = i128::try_from(ttl.as_millis()).unwrap_or(i128::MAX / 4);
            // Rounded up: a record lives at least `ttl`, at most a second more.
            let expires_at = (now_ms + ttl_ms + 999).div_euclid(1000);
            let mut item = key(pk.clone(), sk.clone());
            item.insert("value".into(), s(value));
            item.insert(EXPIRES_AT.into(), n(expires_at));
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk) OR #exp <= :now")
                .set_expression_attribute_names(Some(names([("#pk", PK), ("#exp", EXPIRES_AT)])))
                .set_expression_attribute_values(Some(values([(":now", n(now))])))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(value.to_owned()),
                Err(err) if is_condition_failed(&err) => err,
                Err(err) => return Err(unavailable("PutItem", &err)),
            };
            let returned = match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e)) => {
                    e.item().cloned()
                }
                _ => None,
            };
            let stored = match returned {
                Some(item) => Some(item),
                None => self.get_item(pk.clone(), sk.clone()).await?,
            };
            if let Some(stored) = stored {
                return string_attr(&stored, "value");
            }
            // Deleted between the put and the read: try again.
        }
        Err(StoreError::Unavailable(format!(
            "idempotency record in workspace {workspace} kept changing"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(id: &str) -> WorkspaceId {
        WorkspaceId::parse(id).unwrap()
    }

    #[test]
    fn workspace_ids_are_whole_key_segments() {
        assert_eq!(keys::workspace(&ws("acme")), "WS#acme");
        assert!(!keys::workspace(&ws("acme-corp")).starts_with(&format!("{}#", keys::workspace(&ws("acme")))));
    }

    #[test]
    fn no_other_item_matches_the_listing_prefixes() {
        let id = CallId::generate();
        let sid = CallSid::parse(&format!("CA{}", "a".repeat(32))).unwrap();
        let msg = MessageSid::parse(&format!("SM{}", "b".repeat(32))).unwrap();
        for other in [keys::event(&id, "CA1:0"), keys::call_sid(&sid), keys::message_sid(&msg)] {
            assert!(!other.starts_with(keys::CALL_PREFIX), "{other}");
            assert!(!other.starts_with(keys::MSG_PREFIX), "{other}");
        }
    }

    #[test]
    fn message_keys_sort_by_time_even_with_and_without_fractions() {
        let sid = MessageSid::parse(&format!("SM{}", "0".repeat(32))).unwrap();
        let whole = Timestamp::parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        let half = Timestamp::parse_rfc3339("2024-01-01T00:00:00.5Z").unwrap();
        assert!(keys::message(&whole, &sid).unwrap() < keys::message(&half, &sid).unwrap());
    }

    #[test]
    fn cursors_round_trip_only_within_their_workspace_and_listing() {
        let acme = ws("acme");
        let cursor = encode_cursor(&acme, "CALL#01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(
            decode_cursor(&acme, &cursor, "CALL#").unwrap(),
            "CALL#01ARZ3NDEKTSV4RRFFQ69G5FAV"
        );
        assert!(matches!(
            decode_cursor(&ws("acme-corp"), &cursor, "CALL#"),
            Err(StoreError::InvalidCursor(_))
        ));
        assert!(matches!(
            decode_cursor(&acme, &cursor, "MSG#"),
            Err(StoreError::InvalidCursor(_))
        ));
        assert!(matches!(
            decode_cursor(&acme, "!!garbage!!", "CALL#"),
            Err(StoreError::InvalidCursor(_))
        ));
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        assert_eq!(keys::idempotency(&"k".repeat(10_000)).len(), "IDEMPOTENCY#".len() + 64);
    }

    #[test]
    fn nulls_are_left_out_of_items() {
        let item = to_item(&Workspace::new(ws("acme")), "WS#acme".into(), "PROFILE").unwrap();
        assert!(!item.contains_key("twilio"));
        assert_eq!(item.get(PK), Some(&s("WS#acme")));
        let _: Workspace = from_item(item).unwrap();
    }

    #[test]
    fn sessions_round_trip_through_items() {
        let session = CallSession::new(
            ws("acme"),
            Direction::Outbound,
            None,
            "+1".into(),
            "+2".into(),
            Timestamp::now(),
        );
        let item = to_item(&session, "WS#acme".into(), keys::call(&session.id)).unwrap();
        assert!(matches!(item.get("reached"), Some(AttributeValue::M(_))));
        assert!(matches!(item.get("version"), Some(AttributeValue::N(_))));
        assert!(matches!(item.get("steps"), Some(AttributeValue::M(_))));
        assert_eq!(from_item::<CallSession>(item).unwrap(), session);
    }

    #[test]
    fn the_version_is_the_number_a_compare_and_set_compares() {
        let mut session = CallSession::new(
            ws("acme"),
            Direction::Outbound,
            None,
            "+1".into(),
            "+2".into(),
            Timestamp::now(),
        );
        session.version = 41;
        let item = to_item(&session, "WS#acme".into(), keys::call(&session.id)).unwrap();
        assert_eq!(item.get("version"), Some(&n(41)));
    }
}
