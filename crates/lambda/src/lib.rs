//! What every Lambda function's `main` runs: tracing, the context built once
//! per cold start from the AWS adapters, then one event after another
//! through the route table (HTTP functions) or the copy (the queue consumer).

use std::convert::Infallible;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use bytes::Bytes;
pub use lambda_http::Error;

pub mod live;
use lambda_http::RequestExt;
use switchboard::api::{Body, Request, Response};
use switchboard::app::{App, StartupError};
use switchboard::config::{Backend, Config};
use switchboard::jobs::CopyJob;
use switchboard::recordings::copy;
use switchboard::routes::Router;
use switchboard::telemetry::{self, error_chain};
use switchboard_aws::AwsResources;
use tracing::Instrument;

/// The whole `main` of a function binary.
pub async fn run(function: &'static str) -> Result<(), Error> {
    telemetry::init();
    let router = Router::for_function(function)?;
    let app = start(function).await?;
    let (app, router) = (&app, &router);
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| async move {
        Ok::<_, Infallible>(into_lambda(router.dispatch(app, from_lambda(event)).await))
    }))
    .await
}

/// The whole `main` of the queue consumer: the `recording-copy` function,
/// fed by SQS, reporting failed messages back for redelivery.
pub async fn run_recording_copier() -> Result<(), Error> {
    telemetry::init();
    let app = start("recording-copy").await?;
    let app = &app;
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::lambda_runtime::LambdaEvent<SqsEvent>| async move {
            Ok::<_, Infallible>(handle_sqs_batch(app, event.payload).await)
        },
    ))
    .await
}

/// The context, from the environment and the AWS adapters it names.
async fn start(function: &str) -> Result<App, StartupError> {
    Ok(start_with_sdk(function).await?.0)
}

/// The context, the SDK's configuration it was built from, and its table
/// (the same client as the context's store).
async fn start_with_sdk(
    function: &str,
) -> Result<(App, aws_config::SdkConfig, switchboard_aws::DynamoStore), StartupError> {
    let started = async {
        let config = Config::from_env()?;
        let Backend::Aws {
            table,
            kms_key_id,
            recordings_bucket,
            recording_queue_url,
        } = config.backend.clone()
        else {
            return Err(StartupError::Unsupported(
                "a Lambda function runs on DynamoDB: set SWITCHBOARD_STORE=dynamodb".into(),
            ));
        };
        let resources = AwsResources {
            table,
            kms_key_id,
            recordings_bucket,
            recording_queue_url,
        };
        let sdk = switchboard_aws::sdk_config().await;
        let table = switchboard_aws::table(&sdk, &resources);
        let app = App::new(config, switchboard_aws::open_on_table(&sdk, &resources, table.clone()))?;
        Ok((app, sdk, table))
    }
    .await;
    started.inspect_err(|error| tracing::error!(error = %error_chain(error), function, "cannot start"))
}

/// One SQS batch of copy jobs. Failed copies are reported back so SQS
/// redelivers just them; a message that is not a job, or a job that can never
/// succeed, is logged and dropped instead of retried forever.
pub async fn handle_sqs_batch(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let job = match message.body.as_deref().map(serde_json::from_str::<CopyJob>) {
            Some(Ok(job)) => job,
            _ => {
                tracing::error!(message = %id, "dropping an SQS message that is not a copy job");
                continue;
            }
        };
        // Every line of this copy's logs names what it copies.
        let span = tracing::info_span!(
            "copy",
            message = %id,
            workspace = %job.workspace,
            call = %job.call,
            recording = %job.recording,
        );
        match copy::copy_recording(app, &job).instrument(span).await {
            Ok(_) => {}
            Err(error) if error.is_permanent() => {
                tracing::error!(error = %error_chain(&error), recording = %job.recording, "dropping a copy that cannot succeed");
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), recording = %job.recording, "recording copy failed; SQS will retry");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
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
