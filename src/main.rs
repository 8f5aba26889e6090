//! Switchboard on one machine: every route of the route table on one HTTP
//! listener, on the embedded store by default. The handlers are the very ones
//! the Lambda functions run.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchboard::api::{self, ApiError, MAX_BODY_BYTES};
use switchboard::app::App;
use switchboard::config::Config;
use switchboard::routes::{ROUTES, Router};
use switchboard::telemetry;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(version, about = "Switchboard: a Twilio Voice softphone backend, on one machine")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let args = Args::parse();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
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
    let config = Config::from_lookup(|name| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "SWITCHBOARD_PUBLIC_URL").then(|| local_url.clone()))
    })?;
    let public_url = config.public_url.clone();
    let app = Arc::new(App::from_config(config).await?);
    let router = Arc::new(Router::all());

    for route in ROUTES.iter().filter(|r| r.handler.is_twilio()) {
        tracing::info!(url = %public_url.join(route.path), "{}", route.summary);
    }
    tracing::info!(address = %bound, public_url = public_url.as_str(), "switchboard listening");

    let service = axum::Router::new().fallback(handle).with_state((app, router));
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("switchboard stopped cleanly");
    Ok(())
}

type State = (Arc<App>, Arc<Router>);

async fn handle(
    axum::extract::State((app, router)): axum::extract::State<State>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    // One byte over the limit is enough to know the request is too large.
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(body) => body,
        Err(_) => return into_axum(ApiError::PayloadTooLarge.into_response()),
    };
    let request = api::Request {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        params: Vec::new(),
        request_id: ulid::Ulid::new().to_string(),
    };
    into_axum(router.dispatch(&app, request).await)
}

fn into_axum(response: api::Response) -> axum::response::Response {
    let (parts, api::Body::Full(bytes)) = response.into_parts();
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
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
