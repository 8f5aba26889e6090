//! The AWS adapters (DynamoDB store, KMS secret box, S3 recordings) against
//! moto in server mode, over the real wire protocols. Needs
//! `SWITCHBOARD_TEST_MOTO_URL` (see `tests/support/mod.rs`; `scripts/test.sh`
//! sets it).

use std::collections::HashMap;
use std::time::Duration;
use switchboard_testkit::moto;

use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use switchboard::ids::{AccountSid, CallId, CallSid, MessageSid, RecordingSid, WorkspaceId};
use switchboard::model::calls::{CallSession, CallState, Direction, TimelineEvent};
use switchboard::model::messages::{Message, MessageStatus};
use switchboard::model::recordings::RecordingKey;
use switchboard::phone::E164;
use switchboard::ports::{
    CallQuery, CallStore, IdempotencyStore, MessageQuery, MessageStore, NumberStore, StoreError, WorkspaceStore,
};
use switchboard::ports::{Playback, RecordingStore};
use switchboard::ports::{SecretBox, SecretError};
use switchboard::sealed::Sealed;
use switchboard::time::Timestamp;
use switchboard::workspace::{PhoneNumber, TwilioAccount, Workspace};
use switchboard_aws::DynamoStore;
use switchboard_aws::KmsSecretBox;
use switchboard_aws::s3::{MIN_PART_SIZE, S3Recordings};

type Item = HashMap<String, AttributeValue>;

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

fn hex32(n: u128) -> String {
    format!("{n:032x}")
}

fn valid_numbers(count: usize, seed: u64) -> Vec<E164> {
    let (exchange, line) = (seed % 8, (seed / 8) % 1_000_000);
    (0..)
        .map(|i| {
            format!(
                "+1415{}{:06}",
                2 + (exchange + i / 1000) % 8,
                (line + i * 13) % 1_000_000
            )
        })
        .filter_map(|raw| E164::parse(&raw).ok())
        .take(count)
        .collect()
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan");
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

fn key_of(item: &Item) -> (String, String) {
    let s = |name: &str| item[name].as_s().unwrap().clone();
    (s("pk"), s("sk"))
}

// ---------------------------------------------------------------------------
// DynamoDB

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_store_keeps_the_contract() {
    let (client, table) = moto::fresh_table().await;
    let store = DynamoStore::new(client, table);
    switchboard_model::conformance::run_all(&store).await;
}

#[tokio::test]
async fn dynamodb_items_are_keyed_as_designed() {
    let (client, table) = moto::fresh_table().await;
    let store = DynamoStore::new(client.clone(), table.clone());
    let acme = ws("acme");
    let account = AccountSid::parse(&format!("AC{}", hex32(1))).unwrap();
    let number = valid_numbers(1, seed()).remove(0);

    let mut workspace = Workspace::new(acme.clone());
    workspace.twilio = Some(TwilioAccount {
        account_sid: account.clone(),
        auth_token: Sealed(vec![9; 16]),
        api_key: None,
        twiml_app_sid: None,
    });
    store.put_workspace(&workspace).await.unwrap();
    let phone = PhoneNumber {
        number: number.clone(),
        sid: None,
        agents: vec![],
        label: None,
    };
    store.replace_numbers(&acme, &[phone]).await.unwrap();
    let session = CallSession::new(
        acme.clone(),
        Direction::Outbound,
        None,
        "+1".into(),
        "+2".into(),
        Timestamp::now(),
    );
    store.create_call(&session).await.unwrap();
    let event = TimelineEvent {
        key: "CA1:0".into(),
        at: Timestamp::now(),
        kind: "initiated".into(),
        detail: Default::default(),
    };
    assert!(store.append_event(&acme, &session.id, &event).await.unwrap());
    let leg = CallSid::parse(&format!("CA{}", hex32(2))).unwrap();
    store.link_call_sid(&acme, &leg, &session.id).await.unwrap();
    let message = Message {
        sid: MessageSid::parse(&format!("SM{}", hex32(3))).unwrap(),
        workspace: acme.clone(),
        direction: Direction::Inbound,
        from: "+15005550006".into(),
        to: number.to_string(),
        body: "hi".into(),
        media_urls: vec![],
        status: MessageStatus::Received,
        agent: None,
        created_at: Timestamp::parse_rfc3339("2024-05-06T07:08:09Z").unwrap(),
        updated_at: Timestamp::parse_rfc3339("2024-05-06T07:08:09Z").unwrap(),
        version: 1,
    };
    assert!(store.put_message(&message).await.unwrap());
    store
        .remember(&acme, "request-1", "response", Duration::from_secs(60))
        .await
        .unwrap();

    let items = scan(&client, &table).await;
    let mut keys: Vec<(String, String)> = items.iter().map(key_of).collect();
    keys.sort();
    let idempotency_sk = format!("IDEMPOTENCY#{}", hex::encode(Sha256::digest(b"request-1")));
    let mut expected = vec![
        (format!("ACCOUNT#{account}"), "ACCOUNT".to_owned()),
        (format!("NUMBER#{number}"), "NUMBER".to_owned()),
        ("WS#acme".to_owned(), "PROFILE".to_owned()),
        ("WS#acme".to_owned(), format!("NUMBER#{number}")),
        ("WS#acme".to_owned(), format!("CALL#{}", session.id)),
        ("WS#acme".to_owned(), format!("EVENT#{}#CA1:0", session.id)),
        ("WS#acme".to_owned(), format!("CALLSID#{leg}")),
        (
            "WS#acme".to_owned(),
            format!("MSG#2024-05-06T07:08:09.000000000Z#{}", message.sid),
        ),
        ("WS#acme".to_owned(), format!("MSGSID#{}", message.sid)),
        ("WS#acme".to_owned(), idempotency_sk.clone()),
    ];
    expected.sort();
    assert_eq!(keys, expected);

    let by_key: HashMap<(String, String), &Item> = items.iter().map(|i| (key_of(i), i)).collect();
    let index = by_key[&(format!("ACCOUNT#{account}"), "ACCOUNT".to_owned())];
    assert_eq!(index["workspace"].as_s().unwrap(), "acme");
    let call = by_key[&("WS#acme".to_owned(), format!("CALL#{}", session.id))];
    assert_eq!(call["state"].as_s().unwrap(), "created");
    assert_eq!(
        call["version"].as_n().unwrap(),
        "1",
        "the number a compare-and-set compares"
    );
    assert!(!call.contains_key("agentCallSid"), "unset fields are absent, not null");
    let record = by_key[&("WS#acme".to_owned(), idempotency_sk)];
    let expires: i64 = record["expiresAt"].as_n().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 55..=now + 62).contains(&expires),
        "expiresAt is epoch seconds: {expires}"
    );
}

#[tokio::test]
async fn dynamodb_cursors_do_not_cross_workspaces_and_garbage_is_refused() {
    let (client, table) = moto::fresh_table().await;
    let store = DynamoStore::new(client, table);
    let (acme, corp) = (ws("acme"), ws("acme-corp"));
    for workspace in [&acme, &corp] {
        for _ in 0..3 {
            let session = CallSession::new(
                workspace.clone(),
                Direction::Inbound,
                None,
                "+1".into(),
                "+2".into(),
                Timestamp::now(),
            );
            store.create_call(&session).await.unwrap();
        }
    }
    let page = store
        .list_calls(
            &acme,
            &CallQuery {
                limit: 1,
                ..CallQuery::default()
            },
        )
        .await
        .unwrap();
    let cursor = page.next.expect("more pages");
    let second = store
        .list_calls(
            &acme,
            &CallQuery {
                limit: 1,
                cursor: Some(cursor.clone()),
                ..CallQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_ne!(second.items[0].id, page.items[0].id);

    let foreign = store
        .list_calls(
            &corp,
            &CallQuery {
                limit: 1,
                cursor: Some(cursor.clone()),
                ..CallQuery::default()
            },
        )
        .await;
    assert!(matches!(foreign, Err(StoreError::InvalidCursor(_))), "{foreign:?}");
    let wrong_listing = store
        .list_messages(
            &acme,
            &MessageQuery {
                limit: 1,
                cursor: Some(cursor),
                ..MessageQuery::default()
            },
        )
        .await;
    assert!(
        matches!(wrong_listing, Err(StoreError::InvalidCursor(_))),
        "{wrong_listing:?}"
    );
    let garbage = store
        .list_calls(
            &acme,
            &CallQuery {
                limit: 1,
                cursor: Some("%%%".into()),
                ..CallQuery::default()
            },
        )
        .await;
    assert!(matches!(garbage, Err(StoreError::InvalidCursor(_))), "{garbage:?}");
}

/// Stored times are the fixed-width form, whatever precision a report came
/// with, and each state keeps its earliest.
#[tokio::test]
async fn dynamodb_reached_times_are_stored_fixed_width_and_kept_earliest() {
    let (client, table) = moto::fresh_table().await;
    let store = DynamoStore::new(client.clone(), table.clone());
    let acme = ws("acme");
    let at = |raw: &str| Timestamp::parse_rfc3339(raw).unwrap();
    let session = CallSession::new(
        acme.clone(),
        Direction::Outbound,
        None,
        "+1".into(),
        "+2".into(),
        at("2024-05-06T07:08:00Z"),
    );
    store.create_call(&session).await.unwrap();
    // A whole second, then a time just before it ("…09Z" would sort after
    // "…08.999Z" as text only if the fraction were dropped), then later ones.
    for (state, raw) in [
        (CallState::Ringing, "2024-05-06T07:08:09Z"),
        (CallState::Ringing, "2024-05-06T07:08:08.999Z"),
        (CallState::Ringing, "2024-05-06T07:08:09.5Z"),
        (CallState::InProgress, "2024-05-06T07:08:10.25+00:00"),
        (CallState::Dialing, "2024-05-06T07:08:01Z"),
        (CallState::Dialing, "2024-05-06T07:08:01.000000001Z"),
    ] {
        store.advance_call(&acme, &session.id, state, at(raw)).await.unwrap();
    }

    let items = scan(&client, &table).await;
    let call = items
        .iter()
        .find(|item| key_of(item).1 == format!("CALL#{}", session.id))
        .expect("the session item");
    let reached: HashMap<&str, &str> = call["reached"]
        .as_m()
        .unwrap()
        .iter()
        .map(|(state, time)| (state.as_str(), time.as_s().unwrap().as_str()))
        .collect();
    assert_eq!(
        reached,
        HashMap::from([
            ("created", "2024-05-06T07:08:00.000Z"),
            ("dialing", "2024-05-06T07:08:01.000Z"),
            ("ringing", "2024-05-06T07:08:08.999Z"),
            ("in-progress", "2024-05-06T07:08:10.250Z"),
        ])
    );
    assert_eq!(call["state"].as_s().unwrap(), "in-progress");
    assert_eq!(
        call["version"].as_n().unwrap(),
        "5",
        "each report that changed something is one version (created 1, ringing at …09 and at …08.999, \
         in-progress, dialing); ringing at …09.5 and dialing at …01.000000001 (the same millisecond) changed nothing"
    );
}

#[tokio::test]
async fn dynamodb_replaces_number_sets_larger_than_one_transaction() {
    let (client, table) = moto::fresh_table().await;
    let store = DynamoStore::new(client, table);
    let acme = ws("acme");
    let numbers = valid_numbers(130, seed());
    let phone = |number: &E164| PhoneNumber {
        number: number.clone(),
        sid: None,
        agents: vec![],
        label: None,
    };

    let first: Vec<PhoneNumber> = numbers[..120].iter().map(phone).collect();
    store.replace_numbers(&acme, &first).await.unwrap();
    assert_eq!(store.list_numbers(&acme).await.unwrap().len(), 120);

    let second: Vec<PhoneNumber> = numbers[60..].iter().map(phone).collect();
    store.replace_numbers(&acme, &second).await.unwrap();
    let mut listed: Vec<E164> = store
        .list_numbers(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.number)
        .collect();
    listed.sort();
    let mut expected = numbers[60..].to_vec();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(store.workspace_by_number(&numbers[0]).await.unwrap(), None);
    assert_eq!(
        store.workspace_by_number(&numbers[129]).await.unwrap(),
        Some(acme.clone())
    );

    // A conflict found up front changes nothing, however large the set.
    let other = ws("other");
    let mut claim: Vec<PhoneNumber> = valid_numbers(70, seed() ^ 0x5555).iter().map(phone).collect();
    claim.push(phone(&numbers[100]));
    let taken = store.replace_numbers(&other, &claim).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert!(store.list_numbers(&other).await.unwrap().is_empty());
}

#[tokio::test]
async fn dynamodb_unreachable_is_unavailable() {
    // Nothing listens on port 9 (discard) here: connections are refused.
    let config = moto::sdk_config_for("http://127.0.0.1:9").await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), "nope");
    let result = store.get_workspace(&ws("acme")).await;
    match result {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("GetItem"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// KMS

const AUTH_TOKEN: &str = "auth-token-7f3c9b2e41d8a6";

#[tokio::test]
async fn kms_seals_and_opens_per_workspace() {
    let (client, key) = moto::fresh_kms_key().await;
    let secrets = KmsSecretBox::new(client, key);
    let (acme, corp) = (ws("acme"), ws("acme-corp"));
    let plaintext = SecretString::from(AUTH_TOKEN);

    let sealed = secrets.seal(&acme, &plaintext).await.unwrap();
    assert!(
        !contains(&sealed.0, AUTH_TOKEN.as_bytes()),
        "the ciphertext hides the plaintext"
    );
    let opened = secrets.open(&acme, &sealed).await.unwrap();
    assert_eq!(opened.expose_secret(), AUTH_TOKEN);

    // Moved onto another workspace's record, it does not open.
    let moved = secrets.open(&corp, &sealed).await;
    assert!(matches!(moved, Err(SecretError::Unopenable)), "{moved:?}");

    let mut tampered = sealed.clone();
    if let Some(last) = tampered.0.last_mut() {
        *last ^= 1;
    }
    let tampered = secrets.open(&acme, &tampered).await;
    assert!(matches!(tampered, Err(SecretError::Unopenable)), "{tampered:?}");
    let garbage = secrets.open(&acme, &Sealed(b"not a ciphertext".to_vec())).await;
    assert!(matches!(garbage, Err(SecretError::Unopenable)), "{garbage:?}");
}

#[tokio::test]
async fn kms_unreachable_is_unavailable() {
    let config = moto::sdk_config_for("http://127.0.0.1:9").await;
    let secrets = KmsSecretBox::new(aws_sdk_kms::Client::new(&config), "alias/nope");
    let sealed = secrets.seal(&ws("acme"), &SecretString::from(AUTH_TOKEN)).await;
    match sealed {
        Err(SecretError::Unavailable(message)) => assert!(!message.contains(AUTH_TOKEN)),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn stored_workspaces_hold_no_plaintext_secret() {
    let (kms, key) = moto::fresh_kms_key().await;
    let secrets = KmsSecretBox::new(kms, key);
    let (client, table) = moto::fresh_table().await;
    let store = DynamoStore::new(client.clone(), table.clone());
    let acme = ws("acme");

    let mut workspace = Workspace::new(acme.clone());
    workspace.twilio = Some(TwilioAccount {
        account_sid: AccountSid::parse(&format!("AC{}", hex32(42))).unwrap(),
        auth_token: secrets.seal(&acme, &SecretString::from(AUTH_TOKEN)).await.unwrap(),
        api_key: None,
        twiml_app_sid: None,
    });
    store.put_workspace(&workspace).await.unwrap();

    for item in scan(&client, &table).await {
        let raw = format!("{item:?}");
        assert!(!raw.contains(AUTH_TOKEN), "plaintext secret stored in {raw}");
    }
    let stored = store.get_workspace(&acme).await.unwrap().expect("stored");
    let sealed = stored.twilio.expect("connected").auth_token;
    assert_eq!(secrets.open(&acme, &sealed).await.unwrap().expose_secret(), AUTH_TOKEN);

    // The same ciphertext copied onto another workspace's record stays shut.
    let mut copy = Workspace::new(ws("acme-corp"));
    copy.twilio = Some(TwilioAccount {
        account_sid: AccountSid::parse(&format!("AC{}", hex32(43))).unwrap(),
        auth_token: sealed,
        api_key: None,
        twiml_app_sid: None,
    });
    store.put_workspace(&copy).await.unwrap();
    let stolen = store
        .get_workspace(&copy.id)
        .await
        .unwrap()
        .unwrap()
        .twilio
        .unwrap()
        .auth_token;
    let opened = secrets.open(&copy.id, &stolen).await;
    assert!(matches!(opened, Err(SecretError::Unopenable)), "{opened:?}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// S3

fn recording_key(workspace: &str) -> RecordingKey {
    RecordingKey {
        workspace: ws(workspace),
        call: CallId::generate(),
        recording: RecordingSid::parse(&format!("RE{}", hex32(u128::from(seed())))).unwrap(),
        extension: "mp3",
    }
}

/// Deterministic bytes that differ from part to part.
fn audio(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 13)) as u8).collect()
}

async fn upload(
    store: &S3Recordings,
    key: &RecordingKey,
    bytes: &[u8],
    chunk: usize,
) -> switchboard::ports::StoredObject {
    let mut upload = store.begin(key, "audio/mpeg").await.unwrap();
    for piece in bytes.chunks(chunk) {
        upload.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    upload.finish().await.unwrap()
}

async fn pending_uploads(client: &aws_sdk_s3::Client, bucket: &str) -> usize {
    let out = client.list_multipart_uploads().bucket(bucket).send().await.unwrap();
    out.uploads().len()
}

#[tokio::test]
async fn s3_large_recordings_go_up_in_parts() {
    let (client, bucket) = moto::fresh_bucket().await;
    let store = S3Recordings::new(client.clone(), bucket.clone()).with_part_size(MIN_PART_SIZE);
    assert_eq!(store.part_size(), MIN_PART_SIZE);
    let key = recording_key("acme");
    // Two full parts and a short last one, fed in chunks that straddle parts.
    let bytes = audio(2 * MIN_PART_SIZE + 123_457);
    let sha = hex::encode(Sha256::digest(&bytes));

    let stored = upload(&store, &key, &bytes, 700 * 1024 + 1).await;
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.sha256, sha);
    assert_eq!(stored.content_type, "audio/mpeg");

    let head = client
        .head_object()
        .bucket(&bucket)
        .key(key.object_key())
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap_or_default().trim_matches('"').to_owned();
    assert!(etag.ends_with("-3"), "a three-part multipart upload, etag {etag}");
    assert!(key.object_key().starts_with("recordings/acme/"), "{}", key.object_key());

    let body = client
        .get_object()
        .bucket(&bucket)
        .key(key.object_key())
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(body == bytes.as_slice(), "the stored bytes are the bytes sent");
    assert_eq!(store.stat(&key).await.unwrap(), Some(stored));
    assert_eq!(pending_uploads(&client, &bucket).await, 0);
}

#[tokio::test]
async fn s3_small_recordings_are_one_put_with_their_hash() {
    let (client, bucket) = moto::fresh_bucket().await;
    let store = S3Recordings::new(client.clone(), bucket.clone()).with_part_size(MIN_PART_SIZE);
    let key = recording_key("acme");
    let bytes = audio(300_000);

    let stored = upload(&store, &key, &bytes, 64 * 1024).await;
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&bytes)));
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(key.object_key())
        .send()
        .await
        .unwrap();
    assert_eq!(head.metadata().and_then(|m| m.get("sha256")), Some(&stored.sha256));
    assert_eq!(head.content_type(), Some("audio/mpeg"));
    assert_eq!(store.stat(&key).await.unwrap(), Some(stored));

    // An empty recording is still an object.
    let empty = recording_key("acme");
    let stored = upload(&store, &empty, &[], 1).await;
    assert_eq!(stored.size, 0);
    assert_eq!(store.stat(&empty).await.unwrap().map(|s| s.size), Some(0));
}

#[tokio::test]
async fn s3_stat_hashes_objects_that_carry_no_hash() {
    let (client, bucket) = moto::fresh_bucket().await;
    let store = S3Recordings::new(client.clone(), bucket.clone());
    let key = recording_key("acme");
    let bytes = audio(100_000);
    client
        .put_object()
        .bucket(&bucket)
        .key(key.object_key())
        .content_type("audio/wav")
        .body(bytes.clone().into())
        .send()
        .await
        .unwrap();
    let stat = store.stat(&key).await.unwrap().expect("stored");
    assert_eq!(stat.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(stat.size, bytes.len() as u64);
    assert_eq!(stat.content_type, "audio/wav");
    assert_eq!(store.stat(&recording_key("acme")).await.unwrap(), None);
}

#[tokio::test]
async fn s3_abort_leaves_nothing_behind() {
    let (client, bucket) = moto::fresh_bucket().await;
    let store = S3Recordings::new(client.clone(), bucket.clone()).with_part_size(MIN_PART_SIZE);
    let key = recording_key("acme");

    let mut upload = store.begin(&key, "audio/mpeg").await.unwrap();
    upload.write(Bytes::from(audio(MIN_PART_SIZE + 10))).await.unwrap();
    assert_eq!(pending_uploads(&client, &bucket).await, 1, "a part went up");
    upload.abort().await.unwrap();

    assert_eq!(
        pending_uploads(&client, &bucket).await,
        0,
        "no pending multipart upload"
    );
    assert_eq!(store.stat(&key).await.unwrap(), None, "no object");

    // Aborting before anything went up is fine too.
    let mut upload = store.begin(&key, "audio/mpeg").await.unwrap();
    upload.write(Bytes::from_static(b"abc")).await.unwrap();
    upload.abort().await.unwrap();
    assert_eq!(store.stat(&key).await.unwrap(), None);
}

#[tokio::test]
async fn s3_playback_is_a_presigned_link_that_serves_the_bytes() {
    let (client, bucket) = moto::fresh_bucket().await;
    let store = S3Recordings::new(client, bucket);
    let key = recording_key("acme");
    let bytes = audio(250_000);
    upload(&store, &key, &bytes, 100_000).await;

    let Playback::Redirect(url) = store.playback(&key, Duration::from_secs(300)).await.unwrap() else {
        panic!("S3 playback is a redirect");
    };
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    let response = reqwest::get(&url).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let missing = store.playback(&recording_key("acme"), Duration::from_secs(60)).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "missing recordings have no link"
    );
}
