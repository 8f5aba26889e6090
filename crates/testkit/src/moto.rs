//! Shared harness for the tests that talk to AWS services through moto in
//! server mode: SDK clients aimed at it, and a fresh table, bucket or KMS key
//! per test so tests never see each other's data.
//!
//! The moto endpoint comes from `SWITCHBOARD_TEST_MOTO_URL`. Without it these
//! tests fail loudly (they are never skipped): `scripts/test.sh` starts moto
//! and sets it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

pub const MOTO_URL_VAR: &str = "SWITCHBOARD_TEST_MOTO_URL";

/// The moto server's base URL, or a panic that says how to get one.
pub fn moto_url() -> String {
    match std::env::var(MOTO_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!(
            "{MOTO_URL_VAR} is not set. These tests run against moto in server mode and are never skipped: \
             run them with scripts/test.sh (it installs and starts moto), or start \
             `python3 -m moto.server -p 5055` yourself and set {MOTO_URL_VAR}=http://127.0.0.1:5055"
        ),
    }
}

/// SDK configuration for `endpoint`: region us-east-1, static test
/// credentials, nothing read from the environment or profile files.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "switchboard-tests"))
        .load()
        .await
}

pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(&moto_url()).await
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

pub async fn kms() -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&sdk_config().await)
}

pub async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config().await)
}

/// A fresh queue, its client and its URL.
pub async fn fresh_queue() -> (aws_sdk_sqs::Client, String) {
    let client = sqs().await;
    let name = unique_name("sb-test");
    let created = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_or_else(|err| panic!("creating queue {name} in moto: {err:?}"));
    let url = created.queue_url().expect("CreateQueue returns the URL").to_owned();
    (client, url)
}

/// Path-style addressing: moto serves every bucket on one host.
pub async fn s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A name no other test (in this or a concurrent run) uses: lowercase
/// letters, digits and dashes, valid for tables and buckets alike.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// A fresh table with the adapter's schema, and its client.
pub async fn fresh_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = dynamodb().await;
    let table = unique_name("sb-test");
    switchboard_aws::dynamodb::create_table(&client, &table)
        .await
        .unwrap_or_else(|err| panic!("creating table {table} in moto: {err}"));
    (client, table)
}

/// A fresh bucket, and its client.
pub async fn fresh_bucket() -> (aws_sdk_s3::Client, String) {
    let client = s3().await;
    let bucket = unique_name("sb-test");
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|err| panic!("creating bucket {bucket} in moto: {err:?}"));
    (client, bucket)
}

/// A fresh symmetric KMS key, and its client.
pub async fn fresh_kms_key() -> (aws_sdk_kms::Client, String) {
    let client = kms().await;
    let key = client
        .create_key()
        .description(unique_name("sb-test"))
        .send()
        .await
        .unwrap_or_else(|err| panic!("creating a KMS key in moto: {err:?}"));
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .expect("CreateKey returns key metadata");
    (client, key_id)
}
