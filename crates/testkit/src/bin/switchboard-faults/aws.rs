//! Part 3: DynamoDB, S3, KMS and SQS failing. A fault proxy stands between
//! the SDK and moto (`switchboard_testkit::aws_faults`): 5xx and throttling
//! errors in each service's own shape, hung attempts, dropped connections,
//! answers lost after the request was applied. The local server runs on the
//! AWS adapters (`SWITCHBOARD_STORE=dynamodb`, `--sandbox`) through it, and
//! so does the recording copy (`copy_recording`, what the `recording-copy`
//! function runs) fed from the SQS queue. Checked: bounded retries then a
//! clear 503 (never a 500), every acknowledged write there once the faults
//! stop, every copy reported done in S3 whole, webhooks answered well
//! inside Twilio's 15 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sha2::Digest;
use switchboard::jobs::CopyJob;
use switchboard::recordings::copy::{Copied, copy_recording};
use switchboard_aws::AwsResources;
use switchboard_testkit::aws_faults::{AwsFault, AwsFaultProxy, Service};

use crate::Knobs;
use crate::common::{Api, Row, Server, Tally, free_address, fresh_dir, run_part, statuses_text};
use crate::kill::wait_stored;
use crate::ledger::Ledger;
use crate::load::{Load, Mix, People, connect_workspace, sandbox_account};

pub const FAULT: &str = "DynamoDB, S3, KMS and SQS failing (fault proxy before moto)";

/// The share of requests to each service that fail while faults are on.
const RATE: f64 = 0.15;
/// What a hung attempt waits before its connection is closed: far longer
/// than the SDK's attempt timeout.
const HANG: Duration = Duration::from_secs(20);
/// Twilio's limit for a webhook's answer.
const TWILIO_LIMIT: Duration = Duration::from_secs(15);

pub async fn run(knobs: &Knobs) -> Row {
    run_part(FAULT, async {
        match knobs.moto_url.as_deref() {
            None => {
                eprintln!(
                    "\n!!!!!!!!\nfaults: the AWS part DID NOT RUN: no moto (SWITCHBOARD_FAULTS_MOTO_URL)\n!!!!!!!!\n"
                );
                Ok(Row::not_run(
                    FAULT,
                    "no moto: set SWITCHBOARD_FAULTS_MOTO_URL (scripts/faults.sh starts one)",
                ))
            }
            Some(moto) => campaign(knobs, moto).await,
        }
    })
    .await
}

async fn campaign(knobs: &Knobs, moto: &str) -> Result<Row, String> {
    let dir = fresh_dir(&knobs.out, "aws")?;
    let log = dir.join("server.log");

    // The resources, made on moto directly.
    let direct = switchboard_testkit::moto::sdk_config_for(moto).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&direct);
    let table = switchboard_testkit::moto::unique_name("sb-faults");
    switchboard_aws::dynamodb::create_table(&dynamodb, &table)
        .await
        .map_err(|e| format!("creating the table on moto at {moto}: {e}"))?;
    let key = aws_sdk_kms::Client::new(&direct)
        .create_key()
        .send()
        .await
        .map_err(|e| format!("KMS CreateKey on moto: {e:?}"))?;
    let kms_key_id = key.key_metadata().map(|m| m.key_id().to_owned()).unwrap_or_default();
    let s3_direct = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&direct)
            .force_path_style(true)
            .build(),
    );
    let bucket = switchboard_testkit::moto::unique_name("sb-faults");
    s3_direct
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| format!("S3 CreateBucket on moto: {e:?}"))?;
    let sqs_direct = aws_sdk_sqs::Client::new(&direct);
    let queue_url = sqs_direct
        .create_queue()
        .queue_name(switchboard_testkit::moto::unique_name("sb-faults"))
        .send()
        .await
        .map_err(|e| format!("SQS CreateQueue on moto: {e:?}"))?
        .queue_url()
        .unwrap_or_default()
        .to_owned();

    let proxy = Arc::new(
        AwsFaultProxy::start(moto)
            .await
            .map_err(|e| format!("the fault proxy: {e}"))?,
    );
    let sim_address = free_address();
    let address = free_address();
    let vars = vec![
        ("SWITCHBOARD_DATA_DIR", dir.join("data").display().to_string()),
        ("SWITCHBOARD_STORE", "dynamodb".to_owned()),
        ("SWITCHBOARD_TABLE", table.clone()),
        ("SWITCHBOARD_KMS_KEY_ID", kms_key_id.clone()),
        ("SWITCHBOARD_RECORDINGS_BUCKET", bucket.clone()),
        ("SWITCHBOARD_RECORDING_QUEUE_URL", queue_url.clone()),
        ("SWITCHBOARD_SANDBOX_TWILIO_LISTEN", sim_address.clone()),
        ("AWS_ENDPOINT_URL", proxy.url()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let mut server = Server::start(Server::command(&address, &["--sandbox"], &vars), &address, &log).await?;
    let api = Api::new(&server.base());
    let account = sandbox_account(&api).await?;
    connect_workspace(&api, &account, json!({})).await?;
    api.send(Method::POST, "/sandbox/timers", "", Some(&json!({"scale": 0.05})))
        .await;

    // The recording copies, as the `recording-copy` function runs them,
    // on the same adapters through the proxy.
    let resources = AwsResources {
        table,
        kms_key_id,
        recordings_bucket: Some(bucket.clone()),
        recording_queue_url: Some(queue_url.clone()),
    };
    let proxied = proxy.sdk_config().await;
    let config = switchboard_testkit::config(
        &dir,
        &[
            ("SWITCHBOARD_STORE", "dynamodb"),
            ("SWITCHBOARD_TABLE", &resources.table),
            ("SWITCHBOARD_KMS_KEY_ID", &resources.kms_key_id),
            ("SWITCHBOARD_TWILIO_API_URL", &format!("http://{sim_address}")),
        ],
    );
    let copier = Arc::new(
        switchboard::app::App::new(config, switchboard_aws::open(&proxied, &resources))
            .map_err(|e| format!("the copier's app: {e}"))?,
    );
    let copies = Arc::new(Copies::default());
    let copying = Arc::new(AtomicBool::new(true));
    let copy_task = tokio::spawn(copy_loop(
        Arc::clone(&copier),
        sqs_direct.clone(),
        queue_url.clone(),
        Arc::clone(&copies),
        Arc::clone(&copying),
    ));

    let ledger = Arc::new(Ledger::default());
    let tally = Arc::new(Tally::default());
    let people = People::Sandbox { api: api.clone() };
    let load = Arc::new(Load::new(
        api.clone(),
        people,
        account.clone(),
        Arc::clone(&ledger),
        Arc::clone(&tally),
        &format!("aws{}", knobs.seed),
    ));
    let running = load.start(Mix::EVERY_FLOW);
    let phase = Duration::from_secs_f64(knobs.phase_seconds);
    tokio::time::sleep(phase / 2).await;
    let faults = [
        AwsFault::ServerError,
        AwsFault::Unavailable,
        AwsFault::Throttle,
        AwsFault::Hang(HANG),
        AwsFault::Reset,
        AwsFault::LostAnswer,
    ];
    proxy.set_rate(RATE, &Service::ALL, &faults, knobs.seed);
    tokio::time::sleep(phase * 2).await;
    let sample = crate::disk::sim_webhooks(&api).await;
    proxy.heal();
    tokio::time::sleep(phase / 2).await;
    load.finish(running).await;

    let mut problems = Vec::new();
    let recordings = ledger.recordings();
    let pending = wait_stored(&api, &recordings, Duration::from_secs(60)).await;
    copying.store(false, Ordering::Relaxed);
    let _ = copy_task.await;
    let verified = ledger.verify(&api).await;
    let objects = check_objects(&s3_direct, &bucket, &copies).await;
    let in_flight = s3_direct
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .map(|l| l.uploads().len())
        .unwrap_or_default();
    let stopped = server.stop();

    if !pending.is_empty() {
        problems.push(format!(
            "{} acknowledged recordings not stored after the faults stopped: {:?}",
            pending.len(),
            pending.iter().take(5).collect::<Vec<_>>()
        ));
    }
    problems.extend(verified.problem());
    problems.extend(objects.problems.iter().cloned());
    problems.extend(tally.undocumented_problem());
    if sample.undocumented > 0 {
        problems.push(format!("the simulated Twilio's webhooks: {:?}", sample.examples));
    }
    let (slowest, what) = tally.slowest();
    if slowest >= TWILIO_LIMIT {
        problems.push(format!("{what} took {slowest:?}, past Twilio's 15 s"));
    }
    if !stopped {
        problems.push("the server did not stop cleanly".into());
    }
    let injected: Vec<String> = Service::ALL
        .iter()
        .map(|s| {
            let counts = proxy.counts(*s);
            format!("{} {} of {}", s.name(), counts.faults, counts.requests)
        })
        .collect();
    let total_faults: u64 = Service::ALL.iter().map(|s| proxy.counts(*s).faults).sum();
    let figures = format!(
        "{:.0}% of each service's requests failed (500, 503, throttling, attempts hung {} s, resets, answers lost \
         after the request was applied): {}; answers: {}; slowest answer {:.2} s ({what}); the simulated Twilio's \
         last {} webhooks: {}; recording copies: {} stored through S3 ({} attempts failed and were retried), {}; \
         multipart uploads left open: {in_flight}{}",
        RATE * 100.0,
        HANG.as_secs(),
        injected.join(", "),
        statuses_text(&tally.statuses()),
        slowest.as_secs_f64(),
        sample.seen,
        sample.statuses,
        copies.stored(),
        copies.failed(),
        objects.summary,
        tally.undocumented_note(),
    );
    Ok(Row {
        fault: FAULT.into(),
        injected: total_faults.to_string(),
        requests: tally.get("requests"),
        acknowledged: ledger.acknowledged(),
        lost: verified.lost,
        figures,
        problems,
        seconds: 0.0,
    })
}

/// What the copier stored, by object key: (size, SHA-256).
#[derive(Default)]
struct Copies {
    stored: std::sync::Mutex<BTreeMap<String, (u64, String)>>,
    failed: std::sync::atomic::AtomicU64,
}

impl Copies {
    fn stored(&self) -> usize {
        self.stored.lock().map(|s| s.len()).unwrap_or_default()
    }

    fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Takes copy jobs off the queue (straight from moto: the consumer's side
/// is the Lambda runtime's, not ours) and runs each, as `recording-copy`
/// does; a failed one comes back a second later.
async fn copy_loop(
    app: Arc<switchboard::app::App>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    copies: Arc<Copies>,
    running: Arc<AtomicBool>,
) {
    while running.load(Ordering::Relaxed) {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await;
        let Ok(received) = received else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for message in received.messages() {
            let Some(job) = message.body().and_then(|b| serde_json::from_str::<CopyJob>(b).ok()) else {
                continue;
            };
            let handle = message.receipt_handle().unwrap_or_default();
            let retry = match copy_recording(&app, &job).await {
                Ok(Copied::Stored(object)) => {
                    let key = format!("recordings/{}/{}/{}.mp3", job.workspace, job.call, job.recording);
                    if let Ok(mut stored) = copies.stored.lock() {
                        stored.insert(key, (object.size, object.sha256));
                    }
                    false
                }
                Ok(_) => false,
                Err(error) => !error.is_permanent(),
            };
            if retry {
                copies.failed.fetch_add(1, Ordering::Relaxed);
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(1)
                    .send()
                    .await;
            } else {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

struct ObjectCheck {
    summary: String,
    problems: Vec<String>,
}

/// Every copy reported stored is in the bucket, whole (its size and
/// SHA-256), and nothing else is.
async fn check_objects(s3: &aws_sdk_s3::Client, bucket: &str, copies: &Copies) -> ObjectCheck {
    let stored = copies.stored.lock().map(|s| s.clone()).unwrap_or_default();
    let mut problems = Vec::new();
    let mut whole = 0;
    for (key, (size, sha)) in &stored {
        match s3.get_object().bucket(bucket).key(key).send().await {
            Ok(object) => {
                let bytes = object.body.collect().await.map(|b| b.into_bytes()).unwrap_or_default();
                if bytes.len() as u64 == *size && hex::encode(sha2::Sha256::digest(&bytes)) == *sha {
                    whole += 1;
                } else {
                    problems.push(format!("{key}: {} bytes in S3, not the {size} copied", bytes.len()));
                }
            }
            Err(error) => problems.push(format!("{key}: reported stored, not in S3: {error:?}")),
        }
    }
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .map(|l| l.contents().len())
        .unwrap_or_default();
    ObjectCheck {
        summary: format!(
            "{whole} of {} read back whole, {listed} objects in the bucket",
            stored.len()
        ),
        problems,
    }
}
