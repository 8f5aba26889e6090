//! Logs: JSON lines through `tracing`, one per event, with the request's span
//! fields (request id, workspace, call SID) on every line. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber once; later calls are no-ops (tests call it freely).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}
