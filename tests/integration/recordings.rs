//! Recordings: the callback, the queued copy from Twilio into S3 (moto),
//! failures and retries, and playback.

use std::sync::Arc;
use switchboard_testkit::moto;

use http::Method;
use switchboard::ids::{AgentId, WorkspaceId};
use switchboard::jobs::CopyJob;
use switchboard::model::calls::{CallSession, Direction};
use switchboard::model::recordings::RecordingStatus;
use switchboard::ports::DurableQueue;
use switchboard::recordings::copy::{Copied, CopyError, copy_recording};
use switchboard::time::Timestamp;
use switchboard_aws::S3Recordings;
use switchboard_testkit::harness::*;
use switchboard_testkit::media::{Media, MediaServer, sha256_of};

const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const MIB: u64 = 1024 * 1024;
const RECORDING: &str = "RE0123456789abcdef0123456789abcdef";

struct Recorded {
    t: TestApp,
    media: MediaServer,
    s3: aws_sdk_s3::Client,
    bucket: String,
    session: CallSession,
}

async fn setup(delete_twilio_copy: bool) -> Recorded {
    let media = MediaServer::start().await;
    let mut t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", media.uri())]).await;
    let (s3, bucket) = moto::fresh_bucket().await;
    t.app.recordings = Some(Arc::new(
        S3Recordings::new(s3.clone(), bucket.clone()).with_part_size(5 * MIB as usize),
    ));
    let mut workspace = t.seed_workspace("acme", &account("acme"), AUTH_TOKEN).await;
    workspace.settings.delete_twilio_recording_after_copy = delete_twilio_copy;
    t.app.store.put_workspace(&workspace).await.unwrap();
    let session = CallSession::new(
        workspace.id.clone(),
        Direction::Outbound,
        Some(AgentId::parse("alice").unwrap()),
        "+14155550100".into(),
        "+14155550199".into(),
        Timestamp::now(),
    );
    t.app.store.create_call(&session).await.unwrap();
    Recorded {
        t,
        media,
        s3,
        bucket,
        session,
    }
}

impl Recorded {
    async fn callback(&self, status: &str) -> Reply {
        let account = account("acme").to_string();
        let params = [
            ("AccountSid", account.as_str()),
            ("CallSid", "CA0123456789abcdef0123456789abcdef"),
            ("RecordingSid", RECORDING),
            ("RecordingStatus", status),
            ("RecordingDuration", "60"),
            ("RecordingChannels", "2"),
            ("RecordingSource", "Conference"),
        ];
        let path = format!("/twilio/recording?callId={}", self.session.id);
        self.t.call(twilio_post(&path, &params, AUTH_TOKEN)).await
    }

    fn job(&self) -> CopyJob {
        CopyJob {
            workspace: self.session.workspace.clone(),
            call: self.session.id.clone(),
            recording: RECORDING.parse().unwrap(),
        }
    }

    /// Runs every queued job once, in order, as the local worker would.
    async fn drain(&self) -> Vec<Result<Copied, CopyError>> {
        let queue = self.t.queue.clone();
        let mut results = Vec::new();
        while let Some((key, queued)) = queue.due_job(Timestamp::now()).await.unwrap() {
            results.push(copy_recording(&self.t.app, &queued.job).await);
            queue.finish_job(&key).await.unwrap();
        }
        results
    }

    async fn recording(&self) -> switchboard::model::recordings::Recording {
        let ws = WorkspaceId::parse("acme").unwrap();
        let session = self.t.app.store.get_call(&ws, &self.session.id).await.unwrap().unwrap();
        session.recordings[RECORDING].clone()
    }

    async fn objects(&self) -> Vec<String> {
        let listed = self.s3.list_objects_v2().bucket(&self.bucket).send().await.unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    async fn pending_uploads(&self) -> usize {
        let listed = self
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        listed.uploads().len()
    }

    fn key(&self) -> String {
        format!("recordings/acme/{}/{RECORDING}.mp3", self.session.id)
    }
}

#[tokio::test]
async fn a_recording_is_copied_whole_once_even_from_duplicate_callbacks() {
    let r = setup(false).await;
    let len = 12 * MIB + 123; // three 5 MiB parts
    r.media.serve(RECORDING, Media::Audio { len, fail_after: None });

    // Two identical callbacks at the same moment.
    let (a, b) = tokio::join!(r.callback("completed"), r.callback("completed"));
    assert_eq!((a.status(), b.status()), (200, 200), "{} {}", a.text(), b.text());
    assert!(a.text().starts_with("<?xml"), "answered with TwiML at once");

    let results = r.drain().await;
    let stored: Vec<_> = results.iter().filter(|c| matches!(c, Ok(Copied::Stored(_)))).collect();
    assert_eq!(stored.len(), 1, "{results:?}");
    assert!(results.iter().all(|c| c.is_ok()), "{results:?}");
    assert_eq!(r.media.downloads(), 1, "a stored recording is not downloaded again");

    assert_eq!(r.objects().await, [r.key()], "one object");
    let head = r.s3.head_object().bucket(&r.bucket).key(r.key()).send().await.unwrap();
    assert!(
        head.e_tag().unwrap_or_default().contains("-3"),
        "multipart in 3 parts: {:?}",
        head.e_tag()
    );
    assert_eq!(head.content_type(), Some("audio/mpeg"));
    let body =
        r.s3.get_object()
            .bucket(&r.bucket)
            .key(r.key())
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.into_bytes()));
    assert_eq!(sha, sha256_of(len), "the object arrived whole");

    let recording = r.recording().await;
    assert_eq!(recording.status, RecordingStatus::Stored);
    assert_eq!(recording.size, Some(len));
    assert_eq!(recording.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(recording.channels, Some(2));
    assert_eq!(recording.duration_seconds, Some(60));
    assert_eq!(recording.object_key.as_deref(), Some(r.key().as_str()));
    assert!(!recording.twilio_deleted);

    // A late duplicate callback queues nothing new.
    assert_eq!(r.callback("completed").await.status(), 200);
    assert!(r.drain().await.is_empty());
}

#[tokio::test]
async fn twilio_errors_store_nothing_are_recorded_and_a_retry_succeeds() {
    let r = setup(false).await;
    assert_eq!(r.callback("completed").await.status(), 200);
    // Not there yet: Twilio answers 404.
    let first = r.drain().await;
    assert!(matches!(first.as_slice(), [Err(CopyError::Download(_))]), "{first:?}");
    assert!(r.objects().await.is_empty());
    let recording = r.recording().await;
    assert_eq!(recording.status, RecordingStatus::Pending);
    assert_eq!(recording.failed_attempts, 1);
    assert!(
        recording
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("not found"),
        "{recording:?}"
    );

    // An XML error page with a 200: not audio, not stored.
    r.media.serve(RECORDING, Media::XmlError);
    assert!(matches!(
        copy_recording(&r.t.app, &r.job()).await,
        Err(CopyError::NotAudio(_))
    ));
    assert!(r.objects().await.is_empty());
    assert_eq!(r.recording().await.failed_attempts, 2);

    r.media.serve(
        RECORDING,
        Media::Audio {
            len: MIB,
            fail_after: None,
        },
    );
    assert!(matches!(
        copy_recording(&r.t.app, &r.job()).await,
        Ok(Copied::Stored(_))
    ));
    assert_eq!(r.objects().await, [r.key()]);
    let recording = r.recording().await;
    assert_eq!(recording.status, RecordingStatus::Stored);
    assert_eq!(recording.last_error, None);
}

#[tokio::test]
async fn a_download_cut_off_half_way_aborts_the_upload() {
    let r = setup(true).await;
    r.callback("completed").await;
    r.media.serve(
        RECORDING,
        Media::Audio {
            len: 12 * MIB,
            fail_after: Some(7 * MIB),
        },
    );
    let results = r.drain().await;
    assert!(
        matches!(results.as_slice(), [Err(CopyError::Transfer(_))]),
        "{results:?}"
    );
    assert!(r.objects().await.is_empty(), "nothing half-written is visible");
    assert_eq!(r.pending_uploads().await, 0, "the multipart upload was aborted");
    assert!(r.media.deleted().is_empty(), "Twilio's copy is kept");

    r.media.serve(
        RECORDING,
        Media::Audio {
            len: 12 * MIB,
            fail_after: None,
        },
    );
    assert!(matches!(
        copy_recording(&r.t.app, &r.job()).await,
        Ok(Copied::Stored(_))
    ));
    assert_eq!(r.media.deleted(), [RECORDING], "deleted at Twilio once ours verified");
    assert!(r.recording().await.twilio_deleted);
}

/// Twilio refusing the delete leaves our copy stored and Twilio's in place;
/// the job fails (to be retried), and a retry deletes it without copying again.
#[tokio::test]
async fn a_failed_delete_of_twilios_copy_is_retried_until_it_is_gone() {
    let r = setup(true).await;
    r.media.serve(
        RECORDING,
        Media::Audio {
            len: MIB,
            fail_after: None,
        },
    );
    // The client tries a delete three times (5xx are retried): all fail.
    r.media.fail_deletes(3);
    r.callback("completed").await;
    let first = r.drain().await;
    assert!(matches!(first.as_slice(), [Err(CopyError::Delete(_))]), "{first:?}");
    let recording = r.recording().await;
    assert_eq!(recording.status, RecordingStatus::Stored, "ours is stored");
    assert!(!recording.twilio_deleted);
    assert!(
        recording
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("deleting Twilio's copy")),
        "{:?}",
        recording.last_error
    );
    assert!(r.media.deleted().is_empty(), "Twilio's copy is still there");

    // Twilio sends the callback again (or SQS redelivers): the job runs again.
    assert_eq!(r.callback("completed").await.status(), 200);
    let retried = r.drain().await;
    assert!(
        matches!(retried.as_slice(), [Ok(Copied::DeletedAtTwilio)]),
        "{retried:?}"
    );
    assert_eq!(r.media.deleted(), [RECORDING]);
    assert_eq!(r.media.downloads(), 1, "the retry does not download again");
    let recording = r.recording().await;
    assert!(recording.twilio_deleted);
    assert_eq!(recording.last_error, None);

    // Done: another callback queues nothing.
    assert_eq!(r.callback("completed").await.status(), 200);
    assert!(r.drain().await.is_empty());
}

#[tokio::test]
async fn storage_failing_keeps_twilios_copy_and_a_retry_succeeds() {
    let r = setup(true).await;
    r.callback("completed").await;
    r.media.serve(
        RECORDING,
        Media::Audio {
            len: 6 * MIB,
            fail_after: None,
        },
    );
    // The bucket is gone.
    r.s3.delete_bucket().bucket(&r.bucket).send().await.unwrap();
    let results = r.drain().await;
    assert!(
        matches!(results.as_slice(), [Err(CopyError::Storage(_))]),
        "{results:?}"
    );
    assert!(r.media.deleted().is_empty(), "Twilio's copy is kept");
    assert_eq!(r.recording().await.status, RecordingStatus::Pending);

    // It comes back; the retry copies and only then deletes Twilio's copy.
    r.s3.create_bucket().bucket(&r.bucket).send().await.unwrap();
    assert!(matches!(
        copy_recording(&r.t.app, &r.job()).await,
        Ok(Copied::Stored(_))
    ));
    assert_eq!(r.objects().await, [r.key()]);
    assert_eq!(r.pending_uploads().await, 0);
    assert_eq!(r.media.deleted(), [RECORDING]);
}

#[tokio::test]
async fn absent_and_failed_recordings_are_noted_and_not_copied() {
    let r = setup(false).await;
    assert_eq!(r.callback("absent").await.status(), 200);
    assert_eq!(r.recording().await.status, RecordingStatus::Absent);
    assert!(r.drain().await.is_empty());
    assert_eq!(r.callback("in-progress").await.status(), 200);
}

#[tokio::test]
async fn bad_recording_callbacks_write_nothing() {
    let r = setup(false).await;
    let account = account("acme").to_string();
    let path = format!("/twilio/recording?callId={}", r.session.id);
    let forged = twilio_post(
        &path,
        &[("AccountSid", &account), ("RecordingSid", RECORDING)],
        "wrong-token",
    );
    assert_eq!(r.t.call(forged).await.status(), 403);
    // (path, parameters besides AccountSid, expected status)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: [Case; 3] = [
        (&path, vec![("RecordingStatus", "completed")], 400),
        // A status Twilio may add later: acknowledged, nothing kept.
        (
            &path,
            vec![("RecordingSid", RECORDING), ("RecordingStatus", "exploded")],
            200,
        ),
        (
            "/twilio/recording?callId=01ARZ3NDEKTSV4RRFFQ69G5FAV",
            vec![("RecordingSid", RECORDING), ("RecordingStatus", "completed")],
            404,
        ),
    ];
    for (path, mut params, status) in cases {
        params.push(("AccountSid", &account));
        let reply = r.t.call(twilio_post(path, &params, AUTH_TOKEN)).await;
        assert_eq!(reply.status(), status, "{path} {params:?}");
    }
    let ws = WorkspaceId::parse("acme").unwrap();
    let session = r.t.app.store.get_call(&ws, &r.session.id).await.unwrap().unwrap();
    assert!(session.recordings.is_empty());
    assert!(r.drain().await.is_empty());
}

#[tokio::test]
async fn playback_is_a_short_lived_link_for_the_workspace_only() {
    let r = setup(false).await;
    let path = format!("/calls/{}/recording", r.session.id);
    let alice = agent_jwt("acme", "alice", "agent");
    assert_eq!(
        r.t.call(with_bearer(request(Method::GET, &path), &alice))
            .await
            .status(),
        404,
        "nothing stored yet"
    );

    r.media.serve(
        RECORDING,
        Media::Audio {
            len: MIB,
            fail_after: None,
        },
    );
    r.callback("completed").await;
    r.drain().await;
    let reply = r.t.call(with_bearer(request(Method::GET, &path), &alice)).await;
    assert_eq!(reply.status(), 302, "{}", reply.text());
    let location = reply.header("location").unwrap().to_owned();
    assert!(location.contains("X-Amz-Expires=300"), "{location}");
    let audio = reqwest::get(&location).await.unwrap().bytes().await.unwrap();
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&audio)),
        sha256_of(MIB)
    );

    // Another workspace's agent, even an admin, gets a 404.
    let other = agent_jwt("globex", "mallory", "admin");
    assert_eq!(
        r.t.call(with_bearer(request(Method::GET, &path), &other))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn the_local_worker_retries_later_and_then_copies() {
    use switchboard::recordings::worker::run_due;
    let r = setup(false).await;
    let queue = r.t.queue.clone();
    r.callback("completed").await;
    // Not at Twilio yet: the job stays queued, due again in 2 s.
    assert_eq!(run_due(&r.t.app, queue.as_ref()).await.unwrap(), 1);
    let (_, queued) = queue
        .due_job(Timestamp::now().plus_seconds(3))
        .await
        .unwrap()
        .expect("still queued");
    assert_eq!(queued.attempts, 1);
    assert!(queued.not_before > Timestamp::now(), "retried later, not at once");
    assert_eq!(
        run_due(&r.t.app, queue.as_ref()).await.unwrap(),
        0,
        "nothing is due yet"
    );

    r.media.serve(
        RECORDING,
        Media::Audio {
            len: MIB,
            fail_after: None,
        },
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(run_due(&r.t.app, queue.as_ref()).await.unwrap(), 1);
    assert_eq!(r.recording().await.status, RecordingStatus::Stored);
    assert!(
        queue
            .due_job(Timestamp::now().plus_seconds(3600))
            .await
            .unwrap()
            .is_none(),
        "done jobs leave the queue"
    );
}

/// The AWS path of a copy: jobs sent to SQS (moto) by the queue adapter,
/// received and handed over as Lambda delivers an SQS batch, run by the
/// `recording-copy` function's handler. Only the failed copy comes back for
/// redelivery; a message that is no job, or a job that can never succeed, is
/// dropped.
#[tokio::test]
async fn copies_run_from_sqs_and_only_failed_copies_come_back() {
    use aws_lambda_events::event::sqs::SqsEvent;
    use switchboard::model::recordings::Recording;
    use switchboard::ports::JobQueue;
    use switchboard_aws::SqsJobQueue;

    let r = setup(false).await;
    let (sqs, url) = moto::fresh_queue().await;
    let queue = SqsJobQueue::new(sqs.clone(), url.clone());
    // Two recordings of the call: Twilio serves one and not the other.
    const MISSING: &str = "RE00000000000000000000000000000404";
    r.media.serve(
        RECORDING,
        Media::Audio {
            len: MIB,
            fail_after: None,
        },
    );
    for sid in [RECORDING, MISSING] {
        let recording = Recording::new(sid.parse().unwrap(), RecordingStatus::Pending, Timestamp::now());
        let put =
            r.t.app
                .store
                .put_recording(&r.session.workspace, &r.session.id, &recording);
        assert!(put.await.unwrap());
    }
    let missing = CopyJob {
        recording: MISSING.parse().unwrap(),
        ..r.job()
    };
    let unknown_call = CopyJob {
        call: switchboard::ids::CallId::generate(),
        ..r.job()
    };
    for job in [r.job(), missing, unknown_call] {
        queue.enqueue(&job).await.unwrap();
    }
    sqs.send_message()
        .queue_url(&url)
        .message_body("not a job")
        .send()
        .await
        .unwrap();

    let received = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let records: Vec<serde_json::Value> = received
        .messages()
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": {}, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:copies",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    assert_eq!(records.len(), 4, "every message sent is received");
    let by_body = |needle: &str| {
        records
            .iter()
            .find(|m| m["body"].as_str().is_some_and(|b| b.contains(needle)))
            .map(|m| m["messageId"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let failing = by_body(MISSING);
    let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": records})).unwrap();

    let response = switchboard_lambda::handle_sqs_batch(&r.t.app, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [failing.as_str()],
        "only the copy that can succeed later comes back"
    );
    assert_eq!(r.recording().await.status, RecordingStatus::Stored);
    assert_eq!(r.objects().await, [r.key()]);
}
