//! The live-event functions: the WebSocket API's `$connect`, `$disconnect`
//! and `$default` routes, and the fan-out fed by the table's DynamoDB Stream.

use std::convert::Infallible;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::encodings::Body;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use switchboard::app::{App, StartupError};
use switchboard::auth::AuthError;
use switchboard::events::{self, EventsError};
use switchboard::telemetry::{self, error_chain};
use switchboard::time::Timestamp;
use switchboard_aws::{ApiGatewaySockets, DynamoStore};

use crate::{Error, start_with_sdk};

/// What the live-event functions work with: the context (sign-in), the
/// table's connections, and the sockets (for the functions that post).
pub struct Live {
    pub app: App,
    pub connections: DynamoStore,
    pub sockets: Option<ApiGatewaySockets>,
}

async fn start(function: &str, posts: bool) -> Result<Live, StartupError> {
    let (app, sdk, connections) = start_with_sdk(function).await?;
    let sockets = match (&app.config.events_endpoint, posts) {
        (Some(endpoint), true) => Some(ApiGatewaySockets::new(&sdk, endpoint.as_str())),
        (None, true) => {
            let error =
                StartupError::Unsupported("this function posts to sockets: set SWITCHBOARD_EVENTS_ENDPOINT".into());
            tracing::error!(error = %error, function, "cannot start");
            return Err(error);
        }
        (_, false) => None,
    };
    Ok(Live {
        connections,
        app,
        sockets,
    })
}

impl Live {
    fn sockets(&self) -> &ApiGatewaySockets {
        self.sockets.as_ref().expect("started with sockets")
    }
}

fn answer(status: u16, body: &str) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.body = Some(Body::Text(body.to_owned()));
    response.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn failed(error: &EventsError) -> ApiGatewayProxyResponse {
    match error {
        EventsError::Unauthorized(AuthError::KeysUnavailable(_)) | EventsError::Store(_) | EventsError::Socket(_) => {
            tracing::error!(error = %error_chain(error), "a live-event route failed");
            answer(
                503,
                r#"{"error":{"code":"unavailable","message":"temporarily unavailable, retry shortly"}}"#,
            )
        }
        EventsError::Unauthorized(reason) => {
            // What was wrong, never the token itself.
            tracing::info!(reason = %reason, "a socket was refused");
            let body = serde_json::json!({"error": {"code": "unauthorized", "message": reason.to_string()}});
            answer(401, &body.to_string())
        }
    }
}

fn connection_id(request: &ApiGatewayWebsocketProxyRequest) -> &str {
    request.request_context.connection_id.as_deref().unwrap_or_default()
}

/// `$connect`: 200 with the socket kept, 401 with the reason, 503.
pub async fn connect(live: &Live, request: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let token = request.query_string_parameters.first("token");
    match events::connect(
        &live.app.auth,
        &live.connections,
        connection_id(&request),
        token,
        Timestamp::now(),
    )
    .await
    {
        Ok(_) => answer(200, "{}"),
        Err(error) => failed(&error),
    }
}

pub async fn disconnect(live: &Live, request: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    match events::disconnect(&live.connections, connection_id(&request)).await {
        Ok(()) => answer(200, "{}"),
        Err(error) => failed(&error),
    }
}

pub async fn message(live: &Live, request: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let body = request.body.as_deref().unwrap_or_default();
    match events::on_message(
        &live.connections,
        live.sockets(),
        connection_id(&request),
        body,
        Timestamp::now(),
    )
    .await
    {
        Ok(()) => answer(200, "{}"),
        Err(error) => failed(&error),
    }
}

/// One batch of stream records: each session or message item that changed is
/// posted to its workspace's sockets. A record that is not one (the filter
/// should let none through) or does not read is logged and skipped: a live
/// event lost is caught up by the client's listing, a batch retried forever
/// would hold up all the others.
pub async fn fan_out(live: &Live, event: StreamEvent) {
    for record in event.records {
        let change = match switchboard_aws::dynamodb::change_from_image(record.change.new_image) {
            Some(Ok(change)) => change,
            Some(Err(error)) => {
                tracing::error!(error = %error_chain(&error), "a changed item could not be read");
                continue;
            }
            None => continue,
        };
        match events::fan_out(&live.connections, live.sockets(), &change, Timestamp::now()).await {
            Ok(done) => tracing::info!(
                workspace = %change.workspace(),
                sent = done.sent,
                removed = done.removed,
                failed = done.failed,
                "fanned out a change"
            ),
            Err(error) => tracing::error!(error = %error_chain(&error), "could not list the workspace's sockets"),
        }
    }
}

/// The whole `main` of `events-connect`, `events-disconnect` or
/// `events-default`.
pub async fn run_socket_route(function: &'static str) -> Result<(), Error> {
    telemetry::init();
    let route = match function {
        "events-connect" => Route::Connect,
        "events-disconnect" => Route::Disconnect,
        "events-default" => Route::Message,
        other => return Err(format!("{other} serves no WebSocket route").into()),
    };
    let live = start(function, route == Route::Message).await?;
    let live = &live;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            let answer = match route {
                Route::Connect => connect(live, event.payload).await,
                Route::Disconnect => disconnect(live, event.payload).await,
                Route::Message => message(live, event.payload).await,
            };
            Ok::<_, Infallible>(answer)
        },
    ))
    .await
}

/// The WebSocket API's routes, one function each.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Connect,
    Disconnect,
    Message,
}

/// The whole `main` of `events-fanout`.
pub async fn run_fan_out() -> Result<(), Error> {
    telemetry::init();
    let live = start("events-fanout", true).await?;
    let live = &live;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StreamEvent>| async move {
        fan_out(live, event.payload).await;
        Ok::<_, Infallible>(())
    }))
    .await
}
