//! Micro-benchmarks of the webhook path (criterion; medians in
//! `target/criterion/<group>/<name>/new/estimates.json`):
//!
//! - `library/signature_validation`: `X-Twilio-Signature` of a typical call
//!   status callback (12 parameters), checked as the webhook gate checks it
//!   (with the workspace's kept signing key); `..._new_key`: the same with
//!   the HMAC key set up from the Auth Token first;
//! - `library/access_token`: a Voice access token minted (JWT HS256);
//! - `library/twiml_agent_leg`, `library/twiml_customer_leg`: the TwiML of
//!   both legs of an outbound call, built and rendered;
//! - `route_table/status_callback`: a signed status callback end to end
//!   through the route table on the embedded store (workspace lookup, Auth
//!   Token unsealed, signature, session, timeline event written and on disk,
//!   state machine); `route_table/status_callback_duplicate`: the same
//!   callback delivered again (every read and check, nothing to write).
//!
//! `scripts/bench.sh` runs it and checks the budgets (README, "Performance").

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use switchboard::ids::{AccountSid, ApiKeySid, ApplicationSid};
use switchboard::routes::Router;
use switchboard::twilio::access_token::{self, VoiceGrant};
use switchboard::twilio::signature;
use switchboard::twilio::twiml::{Conference, Dial, Response};
use switchboard_testkit::bench::*;

fn library(c: &mut Criterion) {
    let mut group = c.benchmark_group("library");

    // The URL and form of the sample status callback (events/status-callback).
    let url = format!("{PUBLIC_URL}{}", status_callback_path());
    let params = status_callback_params("ringing", 1);
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sig = sign(&url, &params);
    // What the webhook gate does per request: the workspace's signing key is
    // kept (webhook::SigningKeys), the URL and parameters are hashed.
    let key = signature::SigningKey::new(AUTH_TOKEN.as_bytes());
    assert!(key.verify_form(&url, &pairs, &sig));
    group.bench_function("signature_validation", |b| {
        b.iter(|| black_box(&key).verify_form(black_box(&url), black_box(&pairs), black_box(&sig)))
    });
    // The same with the key set up from the Auth Token each time, as the
    // helper library's validateRequest does (and the gate on a key-cache miss).
    group.bench_function("signature_validation_new_key", |b| {
        b.iter(|| {
            signature::verify_form(
                black_box(AUTH_TOKEN.as_bytes()),
                black_box(&url),
                black_box(&pairs),
                black_box(&sig),
            )
        })
    });

    let account: AccountSid = sid("AC", WORKSPACE);
    let key: ApiKeySid = sid("SK", WORKSPACE);
    let app_sid: ApplicationSid = sid("AP", WORKSPACE);
    let grant = VoiceGrant {
        account_sid: &account,
        api_key_sid: &key,
        api_key_secret: b"api-key-secret-of-acme",
        application_sid: &app_sid,
        identity: "agent_alice",
        lifetime: Duration::from_secs(3600),
    };
    group.bench_function("access_token", |b| {
        b.iter(|| access_token::mint(black_box(&grant), black_box(1_767_225_600)))
    });

    // What the agent TwiML answers for a recorded outbound call, and the
    // customer TwiML (shared/src/calls/voice.rs).
    let conference = format!("sb-{CALL_ID}");
    let status_url = format!("{PUBLIC_URL}/twilio/status?callId={CALL_ID}");
    let recording_url = format!("{PUBLIC_URL}/twilio/recording?callId={CALL_ID}");
    group.bench_function("twiml_agent_leg", |b| {
        b.iter(|| {
            Response::new()
                .dial(
                    Dial::new().conference(
                        Conference::new(black_box(&conference))
                            .start_conference_on_enter(true)
                            .end_conference_on_exit(true)
                            .beep(false)
                            .status_callback(black_box(&status_url), &["start", "end", "join", "leave"])
                            .record_from_start(black_box(&recording_url)),
                    ),
                )
                .to_xml()
        })
    });
    group.bench_function("twiml_customer_leg", |b| {
        b.iter(|| {
            Response::new()
                .dial(
                    Dial::new().conference(
                        Conference::new(black_box(&conference))
                            .start_conference_on_enter(true)
                            .end_conference_on_exit(true)
                            .beep(false),
                    ),
                )
                .to_xml()
        })
    });
    group.finish();
}

fn route_table(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = runtime.block_on(async {
        let app = app(dir.path(), &[]).await;
        seed(&app).await;
        app
    });
    let router = Router::all();
    // The sample event: the customer's phone rings. The first delivery moves
    // the call to `ringing`; every later one is the duplicate Twilio may
    // send, which must leave the session as it is (still every read, the
    // signature, and the conditional writes run).
    let request = twilio_post(&status_callback_path(), &status_callback_params("ringing", 1));
    let first = runtime.block_on(router.dispatch(&app, request.clone()));
    assert_eq!(first.status(), 200, "the status callback is accepted");

    // Counted, not asserted, inside the timed part; checked at the end, so a
    // refused request cannot pass for a fast one.
    let refused = AtomicUsize::new(0);
    let mut group = c.benchmark_group("route_table");
    // A callback the server has not seen: a fresh sequence number, so one
    // timeline event is written and made durable (an fsync) before the answer.
    let mut sequence = 1;
    group.bench_function("status_callback", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                sequence += 1;
                twilio_post(&status_callback_path(), &status_callback_params("ringing", sequence))
            },
            |request| async {
                let response = router.dispatch(&app, request).await;
                if response.status() != 200 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                response
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("status_callback_duplicate", |b| {
        b.to_async(&runtime).iter_batched(
            || request.clone(),
            |request| async {
                let response = router.dispatch(&app, request).await;
                if response.status() != 200 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                response
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "status callbacks answered other than 200"
    );
}

criterion_group!(benches, library, route_table);
criterion_main!(benches);
