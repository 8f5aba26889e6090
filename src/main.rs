//! Switchboard on one machine: every route of the route table on one HTTP
//! listener, on the embedded store by default. The handlers are the very ones
//! the Lambda functions run.

mod agent_token;
mod live;
mod sandbox;
mod web;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use http::{HeaderName, Method, header};
use switchboard::api::{self, ApiError, MAX_BODY_BYTES};
use switchboard::app::{App, StartupError};
use switchboard::config::{Backend, Config};
use switchboard::events::Hub;
use switchboard::ports::{Adapters, ChangeFeed, DurableQueue};
use switchboard::recordings::worker::run_local_worker;
use switchboard::routes::{ROUTES, Router};
use switchboard::telemetry::{self, error_chain};
use switchboard_aws::AwsResources;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeFile;

#[derive(Parser)]
#[command(version, about = "Switchboard: a Twilio Voice softphone backend, on one machine")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Sandbox mode: Twilio simulated on this machine (README, "Try it
    /// without a Twilio account"). Never in production.
    #[arg(long, env = "SWITCHBOARD_SANDBOX", value_parser = clap::builder::BoolishValueParser::new())]
    sandbox: bool,
    #[command(subcommand)]
    command: Option<agent_token::Command>,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let mut args = Args::parse();
    if let Some(command) = args.command.take() {
        return agent_token::main(command).await;
    }
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = error_chain(error.as_ref());
            tracing::error!(%error, "switchboard stopped");
            eprintln!("switchboard: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(args.listen).await?;
    let bound = listener.local_addr()?;
    // Without a public URL, webhooks are signed for the local address (enough
    // for tests and for a tunnel that preserves the Host).
    let local_url = format!("http://{bound}");
    let sandbox = match args.sandbox {
        true => Some(sandbox::Sandbox::start(&data_dir()).await?),
        false => None,
    };
    let config = Config::from_lookup(|name| {
        sandbox
            .as_ref()
            .and_then(|s| s.config_var(name))
            .or_else(|| std::env::var(name).ok())
            .or_else(|| (name == "SWITCHBOARD_PUBLIC_URL").then(|| local_url.clone()))
    })?;
    let public_url = config.public_url.clone();
    let (adapters, local) = open_adapters(&config.backend).await?;
    let app = Arc::new(App::new(config, adapters)?);
    let router = Arc::new(Router::all());
    web::serve(sandbox.is_some(), &app.config.auth.role_claim);

    for route in ROUTES.iter().filter(|r| r.handler.is_twilio()) {
        tracing::info!(url = %public_url.join(route.path), "{}", route.summary);
    }
    tracing::info!(address = %bound, public_url = public_url.as_str(), "switchboard listening");

    // Recording copies queued by callbacks run here, after the response.
    let worker = local
        .clone()
        .map(|store| tokio::spawn(run_local_worker(app.clone(), store as Arc<dyn DurableQueue>)));
    // Live events: every change the store makes durable, to the sockets.
    let hub = local.map(|store| {
        let hub = live::hub();
        let feed = store.subscribe();
        let forwarding = hub.clone();
        tokio::spawn(async move { forwarding.run(feed).await });
        hub
    });

    // Browser dialers are served from another origin (a dev server, an app).
    // Agents authenticate with bearer tokens, never cookies, so any origin may call.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .max_age(std::time::Duration::from_secs(600));
    let sandbox_routes = sandbox.map_or_else(axum::Router::new, |s| s.routes(app.clone()));
    let service = axum::Router::new()
        .fallback(handle)
        .route(switchboard::paths::EVENTS, axum::routing::get(live::events))
        .with_state((app, router, hub))
        .merge(sandbox_routes)
        .layer(cors);
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Unfinished jobs stay queued in the store and resume on the next start.
    if let Some(worker) = worker {
        worker.abort();
    }
    tracing::info!("switchboard stopped cleanly");
    Ok(())
}

/// `SWITCHBOARD_DATA_DIR`, where the sandbox keeps its accounts.
fn data_dir() -> std::path::PathBuf {
    std::env::var("SWITCHBOARD_DATA_DIR")
        .ok()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| switchboard::config::DEFAULT_DATA_DIR.into())
        .into()
}

/// The adapters the configuration names: the embedded store (also the
/// durable queue this process drains and the feed of its live events), or
/// AWS.
async fn open_adapters(
    backend: &Backend,
) -> Result<(Adapters, Option<Arc<switchboard_embedded::EmbeddedStore>>), StartupError> {
    match backend {
        Backend::Embedded { data_dir, cache_mb } => {
            let options = switchboard_embedded::StoreOptions::with_cache_mb(*cache_mb);
            let (adapters, store) = switchboard_embedded::open_with(data_dir, options)?;
            Ok((adapters, Some(store)))
        }
        Backend::Aws {
            table,
            kms_key_id,
            recordings_bucket,
            recording_queue_url,
        } => {
            let resources = AwsResources {
                table: table.clone(),
                kms_key_id: kms_key_id.clone(),
                recordings_bucket: recordings_bucket.clone(),
                recording_queue_url: recording_queue_url.clone(),
            };
            let sdk = switchboard_aws::sdk_config().await;
            Ok((switchboard_aws::open(&sdk, &resources), None))
        }
    }
}

type State = (Arc<App>, Arc<Router>, Option<Arc<Hub>>);

async fn handle(
    axum::extract::State((app, router, _hub)): axum::extract::State<State>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    // One byte over the limit is enough to know the request is too large.
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(body) => body,
        Err(_) => return into_axum(ApiError::PayloadTooLarge.into_response(), http::HeaderMap::new()).await,
    };
    // Kept for files: `Range` and conditional headers are answered by ServeFile.
    let headers = parts.headers.clone();
    let request = api::Request {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        params: Vec::new(),
        request_id: ulid::Ulid::new().to_string(),
    };
    let response = router.dispatch(&app, request).await;
    into_axum(response, headers).await
}

pub(crate) async fn into_axum(response: api::Response, request_headers: http::HeaderMap) -> axum::response::Response {
    use tower::ServiceExt;

    let (parts, body) = response.into_parts();
    match body {
        api::Body::Full(bytes) => axum::response::Response::from_parts(parts, axum::body::Body::from(bytes)),
        api::Body::File { path, content_type } => {
            let mut file_request = http::Request::new(axum::body::Body::empty());
            *file_request.headers_mut() = request_headers;
            match ServeFile::new(path).oneshot(file_request).await {
                Ok(file) => {
                    let (mut file_parts, file_body) = file.into_parts();
                    for (name, value) in &parts.headers {
                        file_parts.headers.insert(name, value.clone());
                    }
                    if file_parts.status.is_success()
                        && let Ok(value) = http::HeaderValue::from_str(&content_type)
                    {
                        file_parts.headers.insert(header::CONTENT_TYPE, value);
                    }
                    axum::response::Response::from_parts(file_parts, axum::body::Body::new(file_body))
                }
                Err(error) => {
                    tracing::error!(%error, "could not serve a recording file");
                    axum::response::Response::from_parts(parts, axum::body::Body::empty())
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
