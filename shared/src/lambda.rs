//! Running one function of the bundle under `lambda_http`: build the context
//! once per cold start, then answer every event through the route table.

use std::convert::Infallible;

use bytes::Bytes;
pub use lambda_http::Error;
use lambda_http::RequestExt;

use crate::api::{Body, Request, Response};
use crate::app::App;
use crate::config::Config;
use crate::routes::Router;
use crate::telemetry;

/// The whole `main` of a function binary.
pub async fn run(function: &'static str) -> Result<(), lambda_http::Error> {
    telemetry::init();
    let router = Router::for_function(function)?;
    let app = match Config::from_env() {
        Ok(config) => App::from_config(config).await,
        Err(error) => Err(error.into()),
    };
    let app = app.inspect_err(|error| tracing::error!(%error, function, "cannot start"))?;
    let (app, router) = (&app, &router);
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| async move {
        Ok::<_, Infallible>(into_lambda(router.dispatch(app, from_lambda(event)).await))
    }))
    .await
}

/// The whole `main` of a queue consumer: the `recording-copy` function, fed
/// by SQS, reporting failed messages back for redelivery.
pub async fn run_recording_copier() -> Result<(), Error> {
    telemetry::init();
    let app = match Config::from_env() {
        Ok(config) => App::from_config(config).await,
        Err(error) => Err(error.into()),
    };
    let app = app.inspect_err(|error| tracing::error!(%error, "cannot start"))?;
    let app = &app;
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::lambda_runtime::LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, Infallible>(crate::recordings::queue::handle_sqs_batch(app, event.payload).await)
        },
    ))
    .await
}

/// API Gateway's event as a core request. The path and query are the raw ones
/// (`rawPath`, `rawQueryString`), as Twilio's signature needs.
pub fn from_lambda(event: lambda_http::Request) -> Request {
    let request_id = event
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default();
    let (parts, body) = event.into_parts();
    let body = match body {
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    Request {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        params: Vec::new(),
        request_id,
    }
}

/// A core response as API Gateway's: text stays text, anything else is binary
/// (base64-encoded on the way out by `lambda_http`).
pub fn into_lambda(response: Response) -> lambda_http::Response<lambda_http::Body> {
    let (mut parts, body) = response.into_parts();
    let bytes = match body {
        Body::Full(bytes) => bytes,
        // Only the local recordings store plays files; a function has S3.
        Body::File { .. } => {
            tracing::error!("a function produced a local file body");
            parts.status = http::StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers.clear();
            Bytes::new()
        }
    };
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) => lambda_http::Body::Text(text),
        Err(error) => lambda_http::Body::Binary(error.into_bytes()),
    };
    lambda_http::Response::from_parts(parts, body)
}
