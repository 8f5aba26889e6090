//! The reference dialer (`web/`) in a real browser: Debian's Chromium driven
//! by playwright-core, against the local server binary (the build of this
//! test profile) in sandbox mode (`--sandbox`) on free ports. The scenarios
//! are `web/tests/browser/*.test.mjs`, run with node's test runner; this test
//! gives them the binary. Only the page's Device is a twin (it drives the
//! sandbox's simulated browser device); everything else is real: sign-in
//! tokens from `switchboard agent-token`, the REST calls, the live events
//! socket, Twilio's side as the sandbox plays it (its REST API, signed
//! webhooks, the customers and callers, recordings), rendering. Screenshots
//! go to `target/dialer-screenshots/` (`DIALER_SCREENSHOTS=docs/screenshots`
//! refreshes the README's), the figures to `target/dialer-timings.json`.
//!
//! `scripts/test.sh` installs what it needs (Node.js packages in `web/`,
//! Debian's `chromium`) and runs it as its own stage.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The whole browser suite; a scenario that hangs fails instead of stalling the run.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the browser tests need Debian's chromium (scripts/test.sh installs it; or set CHROMIUM)",
        path.display()
    );
    path
}

#[test]
fn the_dialer_works_in_a_real_browser() {
    let web = root().join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run scripts/test.sh (it runs `npm ci` in web/)"
    );
    let browser = chromium();
    let timings = root().join("target/dialer-timings.json");
    let _ = std::fs::remove_file(&timings);

    let started = Instant::now();
    let mut node = std::process::Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-timeout=120000",
            "--test-force-exit",
            "--test-reporter=spec",
        ])
        .args(browser_tests(&web))
        // While working on one scenario: DIALER_TEST_NAME_PATTERN=<regex>.
        .args(std::env::var("DIALER_TEST_NAME_PATTERN").map(|p| format!("--test-name-pattern={p}")))
        .current_dir(&web)
        .env("SWITCHBOARD_BIN", env!("CARGO_BIN_EXE_switchboard"))
        .env("CHROMIUM", &browser)
        .env("DIALER_SCREENSHOTS", screenshots())
        .env("DIALER_TIMINGS", &timings)
        .stdin(Stdio::null())
        // Its own process group: on a timeout the servers and browsers it
        // started go with it.
        .process_group(0)
        .spawn()
        .expect("node: the browser tests need Node.js 20+ (README, Test it)");
    let status = loop {
        if let Some(status) = node.try_wait().expect("node ran") {
            break status;
        }
        if started.elapsed() > SUITE_TIMEOUT {
            let group = format!("-{}", node.id());
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .status();
            let _ = node.wait();
            panic!("the browser tests ran over {SUITE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("browser tests: {:.1} s", started.elapsed().as_secs_f64());
    assert!(status.success(), "the browser tests failed (their report is above)");

    // The budget the page is held to, measured by the browser (unless a
    // pattern left the sign-in scenarios out while working on another).
    if std::env::var_os("DIALER_TEST_NAME_PATTERN").is_some() && !timings.exists() {
        eprintln!("the sign-in form was not timed (DIALER_TEST_NAME_PATTERN)");
        return;
    }
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&timings).expect("target/dialer-timings.json")).expect("JSON");
    let visible = figures["signInFormVisibleMs"].as_array().expect("signInFormVisibleMs");
    assert!(!visible.is_empty() && visible.iter().all(|ms| ms.as_u64().is_some_and(|ms| ms <= 1000)));
}

/// Where the screenshots go: `target/dialer-screenshots`, or (to refresh the
/// README's) `DIALER_SCREENSHOTS=docs/screenshots`, relative to the workspace.
fn screenshots() -> PathBuf {
    std::env::var_os("DIALER_SCREENSHOTS")
        .map_or_else(|| root().join("target/dialer-screenshots"), |dir| root().join(dir))
}

/// The scenario files, in name order.
fn browser_tests(web: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(web.join("tests/browser"))
        .expect("web/tests/browser")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.mjs"))
        .map(|name| format!("tests/browser/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no browser tests in web/tests/browser");
    files
}
