//! A 200 MB recording streamed from a Twilio-like server into S3 (moto) with
//! the default 8 MiB parts: it arrives whole, and the copier's memory stays
//! bounded by about a part, not the recording. Its own test binary, so the
//! process's peak RSS is this copy's.

use std::sync::Arc;
use switchboard_testkit::moto;

use switchboard::jobs::CopyJob;
use switchboard::model::calls::{CallSession, Direction};
use switchboard::model::recordings::{Recording, RecordingStatus};
use switchboard::recordings::copy::{Copied, copy_recording};
use switchboard::time::Timestamp;
use switchboard_aws::S3Recordings;
use switchboard_testkit::harness::*;
use switchboard_testkit::media::{Media, MediaServer, sha256_of};

const MIB: u64 = 1024 * 1024;
const LEN: u64 = 200 * MIB;
/// The budget: a 1-hour dual-channel recording must fit a 128 MB Lambda.
const BUDGET: u64 = 64 * MIB;

/// Kilobytes of a `/proc/self/status` line (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn pending(sid: &str) -> Recording {
    Recording {
        sid: sid.parse().unwrap(),
        status: RecordingStatus::Pending,
        source: None,
        channels: Some(2),
        duration_seconds: None,
        object_key: None,
        size: None,
        sha256: None,
        content_type: None,
        failed_attempts: 0,
        last_error: None,
        twilio_deleted: false,
        received_at: Timestamp::now(),
        stored_at: None,
    }
}

#[tokio::test]
async fn copying_200_mb_keeps_memory_bounded() {
    let media = MediaServer::start().await;
    let mut t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", media.uri())]).await;
    let (s3, bucket) = moto::fresh_bucket().await;
    let recordings = S3Recordings::new(s3.clone(), bucket.clone());
    assert_eq!(recordings.part_size(), 8 * MIB as usize, "the production part size");
    t.app.recordings = Some(Arc::new(recordings));
    let workspace = t
        .seed_workspace("acme", &account("acme"), "0123456789abcdef0123456789abcdef")
        .await;
    let session = CallSession::new(
        workspace.id.clone(),
        Direction::Inbound,
        None,
        "+1".into(),
        "+2".into(),
        Timestamp::now(),
    );
    t.app.store.create_call(&session).await.unwrap();
    let job = |sid: &str| CopyJob {
        workspace: workspace.id.clone(),
        call: session.id.clone(),
        recording: sid.parse().unwrap(),
    };

    // Warm up every client and pool with a small copy first.
    let small = "RE00000000000000000000000000000001";
    let large = "RE00000000000000000000000000000002";
    for sid in [small, large] {
        t.app
            .store
            .put_recording(&workspace.id, &session.id, &pending(sid))
            .await
            .unwrap();
    }
    media.serve(
        small,
        Media::Audio {
            len: MIB,
            fail_after: None,
        },
    );
    assert!(matches!(
        copy_recording(&t.app, &job(small)).await,
        Ok(Copied::Stored(_))
    ));

    media.serve(
        large,
        Media::Audio {
            len: LEN,
            fail_after: None,
        },
    );
    // Reset the peak (VmHWM) to the current RSS, then copy.
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
    let before = status_kb("VmRSS:") * 1024;
    let started = std::time::Instant::now();
    let copied = copy_recording(&t.app, &job(large)).await.expect("the copy");
    let elapsed = started.elapsed();
    let peak = status_kb("VmHWM:") * 1024;
    let Copied::Stored(stored) = copied else {
        panic!("expected a stored copy, got {copied:?}")
    };
    assert_eq!(stored.size, LEN);
    assert_eq!(stored.sha256, sha256_of(LEN), "the object arrived whole");
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(format!("recordings/acme/{}/{large}.mp3", session.id))
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(LEN as i64));
    assert!(
        head.e_tag().unwrap_or_default().contains("-25"),
        "25 parts of 8 MiB: {:?}",
        head.e_tag()
    );

    let growth = peak.saturating_sub(before);
    println!(
        "copied {} MiB in {:.1} s; RSS before {:.1} MiB, peak {:.1} MiB, growth {:.1} MiB",
        LEN / MIB,
        elapsed.as_secs_f64(),
        before as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        growth as f64 / MIB as f64
    );
    assert!(growth < BUDGET, "peak RSS grew by {growth} bytes copying {LEN} bytes");
}
