//! What every AWS adapter shares: one way to describe an SDK failure.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// `"<Service> <Operation>: <code>: <message> (request id …)"` for a service
/// error, the cause chain for anything else (no connection, a timeout): what
/// an operator needs, and never a request's payload.
pub fn describe<E, R>(service: &str, op: &str, err: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let detail = match err.as_service_error() {
        Some(error) => {
            let mut detail = format!(
                "{}: {}",
                error.code().unwrap_or("unknown error"),
                error.message().unwrap_or("no message")
            );
            if let Some(id) = error.meta().extra("aws_request_id") {
                detail.push_str(&format!(" (request id {id})"));
            }
            detail
        }
        None => DisplayErrorContext(err).to_string(),
    };
    format!("{service} {op}: {detail}")
}
