//! Part 5: a soak of a million signed status callbacks on the local server
//! (embedded store, its default cache): each one new, so each writes a
//! timeline event durably. The server's resident memory and open files are
//! sampled throughout; after the first 100,000 they must stay flat (memory
//! within 10% of its value then, open files within a few).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard_testkit::bench::{Tenant, customer_callback_path, seed_data_dir};

use crate::Knobs;
use crate::common::{Api, Row, Server, free_address, fresh_dir, rss_and_fds, run_part};

pub const FAULT: &str = "soak: signed status callbacks on the local server";

/// The seeded calls the callbacks are spread over.
const CALLS: u64 = 2_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 32;
/// Where memory and open files are taken as the reference.
const REFERENCE: u64 = 100_000;
/// Open files may vary by this much (sockets coming and going).
const FD_SLACK: u64 = 16;

pub async fn run(knobs: &Knobs) -> Row {
    run_part(FAULT, campaign(knobs)).await
}

#[derive(Clone, Copy)]
struct Sample {
    seconds: f64,
    sent: u64,
    rss_kb: u64,
    fds: u64,
}

async fn campaign(knobs: &Knobs) -> Result<Row, String> {
    let total = knobs.soak_callbacks.max(REFERENCE + 1);
    let dir = fresh_dir(&knobs.out, "soak")?;
    let data = dir.join("data");
    let address = free_address();
    let public_url = format!("http://{address}");
    {
        let (data, public_url) = (data.clone(), public_url.clone());
        tokio::task::spawn_blocking(move || seed_data_dir(&data, &public_url, false, CALLS as u32))
            .await
            .map_err(|e| format!("seeding: {e}"))?;
    }
    let mut vars = vec![("SWITCHBOARD_DATA_DIR", data.display().to_string())];
    // The store's cache: the server's default unless this run sets one.
    let cache_mb = std::env::var("SWITCHBOARD_STORE_CACHE_MB")
        .ok()
        .filter(|v| !v.trim().is_empty());
    if let Some(cache_mb) = &cache_mb {
        vars.push(("SWITCHBOARD_STORE_CACHE_MB", cache_mb.clone()));
    }
    let mut server = Server::start(Server::command(&address, &[], &vars), &address, &dir.join("server.log")).await?;

    let acme = Arc::new(Tenant::acme());
    let calls: Arc<Vec<(String, String)>> = Arc::new((0..CALLS as u32).map(|k| acme.call(k)).collect());
    let api = Api::new(&public_url);
    let next = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let example = Arc::new(std::sync::Mutex::new(None::<String>));
    let worst_us = Arc::new(AtomicU64::new(0));

    let done = Arc::new(AtomicBool::new(false));
    let pid = server.pid();
    let sampler = {
        let (answered, done) = (Arc::clone(&answered), Arc::clone(&done));
        tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            loop {
                let finished = done.load(Ordering::Relaxed);
                if let Some((rss_kb, fds)) = rss_and_fds(pid) {
                    samples.push(Sample {
                        seconds: started.elapsed().as_secs_f64(),
                        sent: answered.load(Ordering::Relaxed),
                        rss_kb,
                        fds,
                    });
                }
                if finished {
                    return samples;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (api, calls, acme) = (api.clone(), Arc::clone(&calls), Arc::clone(&acme));
            let (next, answered, refused, example, worst_us) = (
                Arc::clone(&next),
                Arc::clone(&answered),
                Arc::clone(&refused),
                Arc::clone(&example),
                Arc::clone(&worst_us),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let (call_id, call_sid) = &calls[(i % CALLS) as usize];
                    let sequence = (i / CALLS + 1) as u32;
                    let status = ["initiated", "ringing", "in-progress"][(sequence.min(3) - 1) as usize];
                    let path = customer_callback_path(call_id);
                    let params = acme.callback_params(call_sid, status, sequence);
                    let answer = api.webhook(&path, &params, &acme.auth_token).await;
                    worst_us.fetch_max(answer.took.as_micros() as u64, Ordering::Relaxed);
                    if answer.status == 200 {
                        answered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                        // No answer at all: the error, in the body.
                        let what = reqwest::StatusCode::from_u16(answer.status)
                            .map_or(answer.body, |status| status.to_string());
                        if let Ok(mut example) = example.lock() {
                            example.get_or_insert(what);
                        }
                    }
                }
            })
        })
        .collect();
    let mut progress = 0;
    while next.load(Ordering::Relaxed) < total && workers.iter().any(|w| !w.is_finished()) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let sent = answered.load(Ordering::Relaxed);
        if sent >= progress + 100_000 {
            progress = sent - sent % 100_000;
            eprintln!(
                "faults: soak: {sent} callbacks in {:.0} s, {}",
                started.elapsed().as_secs_f64(),
                rss_and_fds(pid).map_or_else(String::new, |(rss, fds)| format!(
                    "RSS {:.1} MB, {fds} open files",
                    rss as f64 / 1024.0
                ))
            );
        }
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let samples = sampler.await.map_err(|e| e.to_string())?;
    let stopped = server.stop();
    // Every callback answered 200 is on its call's timeline.
    let lost = if refused.load(Ordering::Relaxed) == 0 {
        count_lost(&data, &calls, total).await?
    } else {
        0
    };

    let mut csv = std::fs::File::create(dir.join("samples.csv")).map_err(|e| e.to_string())?;
    let _ = writeln!(csv, "seconds,callbacks,rss_kb,open_files");
    for s in &samples {
        let _ = writeln!(csv, "{:.1},{},{},{}", s.seconds, s.sent, s.rss_kb, s.fds);
    }

    let mut problems = Vec::new();
    let answered = answered.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    if refused > 0 {
        problems.push(format!(
            "{refused} callbacks not answered 200 (first: {:?})",
            example.lock().ok().and_then(|e| e.clone())
        ));
    }
    let reference = samples.iter().find(|s| s.sent >= REFERENCE).copied();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.sent >= REFERENCE).collect();
    let (rss_max, fds_max) = after.iter().fold((0, 0), |(r, f), s| (r.max(s.rss_kb), f.max(s.fds)));
    let last = samples.last().copied();
    match reference {
        None => problems.push("no sample after the first 100,000 callbacks".into()),
        Some(reference) => {
            if rss_max as f64 > reference.rss_kb as f64 * 1.10 {
                problems.push(format!(
                    "memory grew: {:.1} MB after 100,000, up to {:.1} MB later (over 10%)",
                    reference.rss_kb as f64 / 1024.0,
                    rss_max as f64 / 1024.0
                ));
            }
            if fds_max > reference.fds + FD_SLACK {
                problems.push(format!(
                    "open files grew: {} after 100,000, up to {fds_max} later",
                    reference.fds
                ));
            }
        }
    }
    if !stopped {
        problems.push("the server did not stop cleanly".into());
    }
    if lost > 0 {
        problems.push(format!(
            "{lost} acknowledged callbacks are not on their call's timeline"
        ));
    }
    let milestones: Vec<String> = [REFERENCE, total / 4, total / 2, total * 3 / 4, total]
        .iter()
        .filter_map(|m| samples.iter().find(|s| s.sent >= *m).or(last.as_ref()).map(|s| (m, s)))
        .map(|(m, s)| format!("{}k: {:.1} MB/{} files", m / 1000, s.rss_kb as f64 / 1024.0, s.fds))
        .collect();
    let figures = format!(
        "{answered} answered 200 in {:.0} s ({:.0}/s, {CONCURRENCY} at a time, worst {:.0} ms); store cache: {}; RSS/open files at {}; after 100k: RSS max {:.1} MB (+{:.1}%), open files max {fds_max}; \
         samples in {}",
        elapsed.as_secs_f64(),
        answered as f64 / elapsed.as_secs_f64(),
        worst_us.load(Ordering::Relaxed) as f64 / 1000.0,
        cache_mb.map_or_else(
            || format!("the default, {} MiB", switchboard::config::DEFAULT_STORE_CACHE_MB),
            |mb| format!("{mb} MiB (SWITCHBOARD_STORE_CACHE_MB)")
        ),
        milestones.join(", "),
        rss_max as f64 / 1024.0,
        reference.map_or(0.0, |r| (rss_max as f64 / r.rss_kb as f64 - 1.0) * 100.0),
        dir.join("samples.csv").display(),
    );
    Ok(Row {
        fault: FAULT.into(),
        injected: format!("{total} callbacks"),
        requests: answered + refused,
        acknowledged: answered,
        lost,
        figures,
        problems,
        seconds: 0.0,
    })
}

/// Acknowledged callbacks missing from the timelines (the server stopped).
async fn count_lost(data: &std::path::Path, calls: &[(String, String)], total: u64) -> Result<u64, String> {
    use switchboard::ports::CallStore;
    let store = switchboard_embedded::EmbeddedStore::open(&data.join("store")).map_err(|e| e.to_string())?;
    let workspace = Tenant::acme().workspace();
    let mut lost = 0;
    for (k, (id, _)) in calls.iter().enumerate() {
        let id = switchboard::ids::CallId::parse(id).map_err(|e| e.to_string())?;
        let expected = (total - k as u64).div_ceil(CALLS);
        let found = store.timeline(&workspace, &id).await.map_err(|e| e.to_string())?.len() as u64;
        lost += expected.saturating_sub(found);
    }
    Ok(lost)
}
