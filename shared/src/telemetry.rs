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

/// An error and every cause behind it, outermost first, joined with `: `:
/// "error sending request: client error (Connect): dns error: failed to
/// lookup address information". What a person needs to act on, in an answer
/// or a log line; a bare `to_string()` keeps only the first part.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let error = Outer(std::io::Error::other("the name did not resolve"));
        assert_eq!(error_chain(&error), "outer: the name did not resolve");
        let flat = std::io::Error::other("alone");
        assert_eq!(error_chain(&flat), "alone");
    }
}
