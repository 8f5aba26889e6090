//! The route table, written once. The local server serves all of it; each
//! Lambda function serves the rows that name it; the SAM template is checked
//! against it. Access rules live in the handler's kind, so a route cannot be
//! wired to the wrong gate.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use http::{Method, StatusCode, header};
use tracing::Instrument;

use crate::api::{self, ApiError, MAX_BODY_BYTES, Request, Response};
use crate::app::App;
use crate::auth::{Agent, Role};
use crate::openapi;
use crate::paths;
use crate::twilio::twiml;
use crate::webhook::{self, Webhook, WebhookError};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type AgentHandler = for<'a> fn(&'a App, Agent, Request) -> BoxFuture<'a, Result<Response, ApiError>>;
pub type WebhookHandler = for<'a> fn(&'a App, Webhook, Request) -> BoxFuture<'a, Result<Response, WebhookError>>;
pub type PublicHandler = for<'a> fn(&'a App, Request) -> BoxFuture<'a, Response>;

/// Who may call a route, and how its failures are answered.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Any signed-in agent; errors are JSON.
    Agent(AgentHandler),
    /// Agents with the `admin` role; errors are JSON.
    Admin(AgentHandler),
    /// A Twilio voice webhook: signature checked; errors are TwiML that says
    /// something short and hangs up (a 500 would play "an application error").
    TwilioVoice(WebhookHandler),
    /// A Twilio status, event or messaging callback: signature checked; errors
    /// are an empty TwiML document with a status that says what went wrong.
    TwilioCallback(WebhookHandler),
    /// The live-event socket: the local server upgrades the request to a
    /// WebSocket before it reaches the table (a plain request is 426); in AWS
    /// it is the WebSocket API's `$connect` ([`SOCKET_ROUTES`]).
    Socket,
    /// A file of the reference dialer (`web/dist`): public, no sign-in. Only
    /// the entry points that serve the page embed it and hand it over with
    /// [`serve_pages`] (the local server, the `web` function), so no other
    /// function carries the bundle; without it the route is 404.
    Page,
    /// A public route of the API (`GET /health`, `GET /openapi.json`): no
    /// sign-in, and an answer for everything (it cannot fail as a request).
    Public(PublicHandler),
}

impl Handler {
    pub fn is_twilio(&self) -> bool {
        matches!(self, Self::TwilioVoice(_) | Self::TwilioCallback(_))
    }

    pub fn is_socket(&self) -> bool {
        matches!(self, Self::Socket)
    }
}

pub struct Route {
    pub method: Method,
    /// A `matchit` pattern: `/calls/{callId}`.
    pub path: &'static str,
    /// The Lambda function (folder under `functions/`) that serves it.
    pub function: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
}

pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: paths::EVENTS,
        function: "events-connect",
        summary: "live events: a WebSocket (`?token=` the sign-in token) that pushes every call and message change",
        handler: Handler::Socket,
    },
    Route {
        method: Method::POST,
        path: "/token",
        function: "token",
        summary: "a Twilio Voice access token for the signed-in agent",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::token::issue(app, agent, request))),
    },
    Route {
        method: Method::PUT,
        path: "/workspace/twilio",
        function: "configure",
        summary: "connect the workspace's Twilio account: API key, TwiML App, every number's webhooks",
        handler: Handler::Admin(|app, agent, request| Box::pin(crate::onboarding::configure(app, agent, request))),
    },
    Route {
        method: Method::GET,
        path: "/workspace/twilio",
        function: "configure",
        summary: "the workspace's Twilio wiring, with a live drift check",
        handler: Handler::Admin(|app, agent, request| Box::pin(crate::onboarding::check(app, agent, request))),
    },
    Route {
        method: Method::DELETE,
        path: "/workspace/twilio",
        function: "clear",
        summary: "point the numbers away, delete the TwiML App and API key, forget the credentials",
        handler: Handler::Admin(|app, agent, request| Box::pin(crate::onboarding::clear(app, agent, request))),
    },
    Route {
        method: Method::GET,
        path: "/workspace/numbers",
        function: "configure",
        summary: "the workspace's numbers and the agents who answer them",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::numbers::list(app, agent, request))),
    },
    Route {
        method: Method::PUT,
        path: "/workspace/numbers/{number}",
        function: "configure",
        summary: "set which agents ring for a number and may call from it",
        handler: Handler::Admin(|app, agent, request| Box::pin(crate::numbers::assign(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls",
        function: "outbound-call",
        summary: "start an outbound call: a session the agent's browser then connects to",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::outbound::place(app, agent, request))),
    },
    Route {
        method: Method::GET,
        path: "/calls",
        function: "calls",
        summary: "the call log, newest first",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::control::list(app, agent, request))),
    },
    Route {
        method: Method::GET,
        path: "/calls/{callId}",
        function: "calls",
        summary: "one call with its timeline",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::control::get(app, agent, request))),
    },
    Route {
        method: Method::PATCH,
        path: "/calls/{callId}",
        function: "calls",
        summary: "notes and disposition",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::control::annotate(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/hold",
        function: "calls",
        summary: "put the customer on hold, or back",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::control::hold(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/hangup",
        function: "calls",
        summary: "end the call for everyone",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::control::hangup(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/transfer",
        function: "calls",
        summary: "transfer the call to an agent or a number, warm or cold",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::transfer::start(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/transfer/complete",
        function: "calls",
        summary: "hand a warm transfer over: the customer comes off hold, the transferring agent leaves",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::transfer::complete(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/transfer/cancel",
        function: "calls",
        summary: "call the transfer off: the target is hung up, the customer comes off hold",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::transfer::cancel(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/monitor",
        function: "calls",
        summary: "a supervisor listens in, whispers to the agent, or barges in (or changes mode)",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::monitor::start(app, agent, request))),
    },
    Route {
        method: Method::DELETE,
        path: "/calls/{callId}/monitor",
        function: "calls",
        summary: "the supervisor's own leg leaves the call",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::monitor::stop(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/participants/{label}/mute",
        function: "calls",
        summary: "mute or unmute one participant of the call",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::calls::conference::mute(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/calls/{callId}/recording",
        function: "calls",
        summary: "pause the call's recording (a card number is read aloud) or resume it",
        handler: Handler::Agent(|app, agent, request| {
            Box::pin(crate::calls::conference::pause_or_resume(app, agent, request))
        }),
    },
    Route {
        method: Method::GET,
        path: "/calls/{callId}/recording",
        function: "calls",
        summary: "play the call's recording: a short-lived link to our copy",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::recordings::playback(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: paths::RECORDING_CALLBACK,
        function: "recording-callback",
        summary: "recording status callback: the copy into our storage is queued",
        handler: Handler::TwilioCallback(|app, hook, request| {
            Box::pin(crate::recordings::callback(app, hook, request))
        }),
    },
    Route {
        method: Method::POST,
        path: paths::AGENT_TWIML,
        function: "agent-twiml",
        summary: "TwiML App Voice URL: the agent's browser joins the call's conference",
        handler: Handler::TwilioVoice(|app, hook, request| Box::pin(crate::calls::voice::agent(app, hook, request))),
    },
    Route {
        method: Method::POST,
        path: paths::JOIN_TWIML,
        function: "inbound-twiml",
        summary: "a transfer target or a supervisor answered: they join the call's conference",
        handler: Handler::TwilioVoice(|app, hook, request| Box::pin(crate::calls::voice::join(app, hook, request))),
    },
    Route {
        method: Method::POST,
        path: paths::CUSTOMER_TWIML,
        function: "customer-twiml",
        summary: "the answering customer joins the conference",
        handler: Handler::TwilioVoice(|app, hook, request| Box::pin(crate::calls::voice::customer(app, hook, request))),
    },
    Route {
        method: Method::POST,
        path: paths::INBOUND_TWIML,
        function: "inbound-twiml",
        summary: "numbers' Voice URL: the caller waits in the call's conference while the number's agents ring",
        handler: Handler::TwilioVoice(|app, hook, request| Box::pin(crate::calls::voice::inbound(app, hook, request))),
    },
    Route {
        method: Method::POST,
        path: paths::AGENT_ANSWER_TWIML,
        function: "inbound-twiml",
        summary: "an agent accepted an inbound call: the first joins the caller, a late one is told it was taken",
        handler: Handler::TwilioVoice(|app, hook, request| Box::pin(crate::calls::voice::answer(app, hook, request))),
    },
    Route {
        method: Method::POST,
        path: paths::VOICEMAIL_TWIML,
        function: "inbound-twiml",
        summary: "a caller nobody answered leaves a voicemail",
        handler: Handler::TwilioVoice(|app, hook, request| {
            Box::pin(crate::calls::voice::voicemail_twiml(app, hook, request))
        }),
    },
    Route {
        method: Method::POST,
        path: paths::STATUS_CALLBACK,
        function: "status-callback",
        summary: "numbers' and TwiML App's status callback: call progress and conference events",
        handler: Handler::TwilioCallback(|app, hook, request| {
            Box::pin(crate::calls::status::callback(app, hook, request))
        }),
    },
    Route {
        method: Method::GET,
        path: "/messages",
        function: "messages",
        summary: "the workspace's texts, newest first",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::sms::list(app, agent, request))),
    },
    Route {
        method: Method::POST,
        path: "/messages",
        function: "messages",
        summary: "send a text from a workspace number",
        handler: Handler::Agent(|app, agent, request| Box::pin(crate::sms::send(app, agent, request))),
    },
    // Texting webhooks answer failures like callbacks: an empty `<Response/>`
    // (valid messaging TwiML: no reply) with a status for Twilio's debugger;
    // the voice answer (`<Say>`, `<Hangup>`) is not messaging TwiML.
    Route {
        method: Method::POST,
        path: paths::SMS,
        function: "sms",
        summary: "numbers' SMS URL: keep the text, answer with the auto-reply if any",
        handler: Handler::TwilioCallback(|app, hook, request| Box::pin(crate::sms::receive(app, hook, request))),
    },
    Route {
        method: Method::POST,
        path: paths::SMS_STATUS,
        function: "sms",
        summary: "delivery status of the texts sent",
        handler: Handler::TwilioCallback(|app, hook, request| Box::pin(crate::sms::status(app, hook, request))),
    },
    Route {
        method: Method::GET,
        path: "/",
        function: "web",
        summary: "the reference browser dialer",
        handler: Handler::Page,
    },
    Route {
        method: Method::GET,
        path: "/assets/{file}",
        function: "web",
        summary: "the dialer's script and style sheet",
        handler: Handler::Page,
    },
    // Public, in the `web` function beside the dialer's pages: no function of
    // their own to deploy, and its role already has the one table read that
    // `/health` makes.
    Route {
        method: Method::GET,
        path: "/openapi.json",
        function: "web",
        summary: "the API contract: OpenAPI 3.1, generated from this table",
        handler: Handler::Public(|_app, _request| Box::pin(async { contract() })),
    },
    Route {
        method: Method::GET,
        path: "/health",
        function: "web",
        summary: "up or down, for uptime checks: one cheap read of the store",
        handler: Handler::Public(|app, _request| Box::pin(health(app))),
    },
];

/// A route of the WebSocket API (AWS) that serves live events.
pub struct SocketRoute {
    /// API Gateway's route key.
    pub route_key: &'static str,
    pub function: &'static str,
    pub summary: &'static str,
}

pub static SOCKET_ROUTES: &[SocketRoute] = &[
    SocketRoute {
        route_key: "$connect",
        function: "events-connect",
        summary: "signs the socket in with the `token` query parameter and keeps the connection",
    },
    SocketRoute {
        route_key: "$disconnect",
        function: "events-disconnect",
        summary: "forgets the connection",
    },
    SocketRoute {
        route_key: "$default",
        function: "events-default",
        summary: "answers `{\"action\":\"ping\"}` with `{\"type\":\"pong\"}`; closes an expired socket",
    },
];

/// Functions that serve no route: they consume a queue or a stream.
pub static WORKERS: &[(&str, &str)] = &[
    (
        "recording-copy",
        "copies recordings from Twilio into the recordings bucket (SQS consumer)",
    ),
    (
        "events-fanout",
        "posts every changed call and message to the workspace's sockets (DynamoDB stream consumer)",
    ),
];

/// The functions of the bundle, in table order, each once.
pub fn functions() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    let all = ROUTES
        .iter()
        .map(|r| r.function)
        .chain(SOCKET_ROUTES.iter().map(|r| r.function))
        .chain(WORKERS.iter().map(|(name, _)| *name));
    for name in all {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// One file of the dialer, as an entry point embeds it: `index.html` is the
/// page (`GET /`), the others are under `/assets/`.
pub struct PageFile {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

static PAGES: std::sync::OnceLock<Vec<(&'static PageFile, String)>> = std::sync::OnceLock::new();

/// Serves `files` on this process's [`Handler::Page`] routes (once, at
/// start; a second call changes nothing).
pub fn serve_pages(files: &'static [PageFile]) {
    use sha2::Digest;
    let _ = PAGES.set(
        files
            .iter()
            .map(|file| {
                (
                    file,
                    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(file.bytes)[..12])),
                )
            })
            .collect(),
    );
}

/// What the page may load: its own files, the API and sockets anywhere
/// (Twilio's, the WebSocket API's), recordings as blobs; it may be framed
/// (a CRM's side panel).
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self' blob: https:; connect-src 'self' https: wss: ws:; base-uri 'none'; form-action 'none'";

fn page(request: &Request) -> Response {
    let name = request.param("file").unwrap_or("index.html");
    let Some((file, etag)) = PAGES.get().and_then(|files| files.iter().find(|(f, _)| f.name == name)) else {
        return ApiError::NotFound(format!("no route for {}", request.path)).into_response();
    };
    // The names are fixed, so browsers check back (`no-cache`) and get a 304
    // until a new build changes the bytes.
    let unchanged = request
        .header(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        let mut response = http::Response::new(api::Body::Full(bytes::Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        api::with_type(StatusCode::OK, file.content_type, bytes::Bytes::from_static(file.bytes))
    };
    let headers = response.headers_mut();
    let fixed = [
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
    ];
    for (name, value) in fixed {
        headers.insert(name, http::HeaderValue::from_static(value));
    }
    if let Ok(value) = http::HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// The API contract (OpenAPI 3.1) of this table: every agent, admin and
/// public route, with what `openapi` keeps for each.
pub fn openapi() -> serde_json::Value {
    let operations: Vec<openapi::Operation> = ROUTES
        .iter()
        .filter_map(|route| {
            let access = match route.handler {
                Handler::Agent(_) => openapi::Access::Agent,
                Handler::Admin(_) => openapi::Access::Admin,
                Handler::Public(_) => openapi::Access::Public,
                Handler::TwilioVoice(_) | Handler::TwilioCallback(_) | Handler::Socket | Handler::Page => return None,
            };
            Some(openapi::Operation {
                method: route.method.as_str(),
                path: route.path,
                summary: route.summary,
                access,
            })
        })
        .collect();
    openapi::document(&operations)
}

/// `GET /openapi.json`: the document, made once per process.
fn contract() -> Response {
    static DOCUMENT: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| {
        // A `Value` always serialises.
        serde_json::to_vec_pretty(&openapi()).unwrap_or_default().into()
    });
    api::with_type(StatusCode::OK, "application/json", body.clone())
}

/// `GET /health`: up if the store answers a read (of a workspace that need
/// not exist: one key lookup), down otherwise. Nothing else is said.
async fn health(app: &App) -> Response {
    let read = match crate::ids::WorkspaceId::parse("health-check") {
        Ok(probe) => app
            .store
            .get_workspace(&probe)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let (status, word) = match read {
        Ok(()) => (StatusCode::OK, "up"),
        Err(error) => {
            tracing::warn!(%error, "health check: the store did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "down")
        }
    };
    api::no_store(api::json_response(status, &serde_json::json!({ "status": word })))
}

/// Matches requests against a set of routes and runs the matching handler.
pub struct Router {
    paths: matchit::Router<Vec<&'static Route>>,
}

#[derive(Debug, thiserror::Error)]
#[error("no route is served by function {0:?}")]
pub struct UnknownFunction(pub String);

impl Router {
    /// Every route: the local server.
    pub fn all() -> Self {
        Self::new(ROUTES.iter().collect())
    }

    /// The routes one Lambda function serves.
    pub fn for_function(function: &str) -> Result<Self, UnknownFunction> {
        let routes: Vec<&'static Route> = ROUTES.iter().filter(|r| r.function == function).collect();
        if routes.is_empty() {
            return Err(UnknownFunction(function.to_owned()));
        }
        Ok(Self::new(routes))
    }

    fn new(routes: Vec<&'static Route>) -> Self {
        let mut grouped: Vec<(&'static str, Vec<&'static Route>)> = Vec::new();
        for route in routes {
            match grouped.iter_mut().find(|(path, _)| *path == route.path) {
                Some((_, list)) => list.push(route),
                None => grouped.push((route.path, vec![route])),
            }
        }
        let mut paths = matchit::Router::new();
        for (path, list) in grouped {
            paths
                .insert(path, list)
                .unwrap_or_else(|e| panic!("route table: {path}: {e}"));
        }
        Self { paths }
    }

    /// Answers one request. Never panics on input; every failure is a response.
    pub async fn dispatch(&self, app: &App, request: Request) -> Response {
        let span = tracing::info_span!(
            "request",
            request_id = %request.request_id,
            method = %request.method,
            path = %request.path,
            workspace = tracing::field::Empty,
            call_sid = tracing::field::Empty,
        );
        async move {
            let started = Instant::now();
            let response = self.route(app, request).await;
            tracing::info!(
                status = response.status().as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "handled"
            );
            response
        }
        .instrument(span)
        .await
    }

    async fn route(&self, app: &App, mut request: Request) -> Response {
        let Ok(matched) = self.paths.at(&request.path) else {
            return ApiError::NotFound(format!("no route for {}", request.path)).into_response();
        };
        let routes = matched.value;
        let Some(route) = routes.iter().find(|r| r.method == request.method) else {
            let allow: Vec<&str> = routes.iter().map(|r| r.method.as_str()).collect();
            return ApiError::MethodNotAllowed(allow.join(", ")).into_response();
        };
        // Path segments arrive percent-encoded (`%2B14155550100`).
        let mut params = Vec::new();
        for (name, raw) in matched.params.iter() {
            match percent_encoding::percent_decode_str(raw).decode_utf8() {
                Ok(value) => params.push((name.to_owned(), value.into_owned())),
                Err(_) => return ApiError::BadRequest(format!("path parameter {name} is not UTF-8")).into_response(),
            }
        }
        request.params = params;

        if request.body.len() > MAX_BODY_BYTES {
            return ApiError::PayloadTooLarge.into_response();
        }

        match route.handler {
            Handler::Agent(handler) => run_agent(app, request, false, handler).await,
            Handler::Admin(handler) => run_agent(app, request, true, handler).await,
            Handler::TwilioVoice(handler) => match run_webhook(app, request, handler).await {
                Ok(response) => response,
                Err(error) => voice_error(error),
            },
            Handler::TwilioCallback(handler) => match run_webhook(app, request, handler).await {
                Ok(response) => response,
                Err(error) => callback_error(error),
            },
            Handler::Socket => ApiError::UpgradeRequired.into_response(),
            Handler::Page => page(&request),
            Handler::Public(handler) => handler(app, request).await,
        }
    }
}

async fn run_agent(app: &App, request: Request, admin_only: bool, handler: AgentHandler) -> Response {
    let agent = match app.auth.authenticate(request.header(header::AUTHORIZATION)).await {
        Ok(agent) => agent,
        Err(error) => return ApiError::from(error).into_response(),
    };
    tracing::Span::current().record("workspace", agent.workspace.as_str());
    if admin_only && agent.role != Role::Admin {
        return ApiError::Forbidden("this route needs the admin role".into()).into_response();
    }
    // Handlers read queries as Twilio's forms are read, an empty value as
    // absent; from an agent, `?updatedAfter=` is a mistake, not "no filter".
    if let Some((name, _)) = request.query_params().0.iter().find(|(_, value)| value.is_empty()) {
        let name: String = name.chars().take(40).collect();
        return ApiError::BadRequest(format!("query parameter {name:?} is empty")).into_response();
    }
    handler(app, agent, request)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn run_webhook(app: &App, request: Request, handler: WebhookHandler) -> Result<Response, WebhookError> {
    let webhook = webhook::verify(app, &request).await?;
    let span = tracing::Span::current();
    span.record("workspace", webhook.workspace.id.as_str());
    if let Some(call_sid) = webhook.params.get("CallSid") {
        span.record("call_sid", call_sid);
    }
    handler(app, webhook, request).await
}

fn voice_error(error: WebhookError) -> Response {
    let (status, say) = match &error {
        WebhookError::Forbidden => (StatusCode::FORBIDDEN, "This request could not be verified. Goodbye."),
        WebhookError::NotFound(_) => (StatusCode::OK, "Sorry, this call could not be found. Goodbye."),
        WebhookError::BadRequest(_) => (StatusCode::OK, "Sorry, this call could not be completed. Goodbye."),
        WebhookError::Unavailable(_) | WebhookError::Internal(_) => (
            StatusCode::OK,
            "Sorry, we are having trouble connecting your call. Please try again later.",
        ),
    };
    log_webhook_error(&error);
    let mut response = api::xml_response(twiml::Response::say_and_hang_up(say).to_xml());
    *response.status_mut() = status;
    response
}

/// Callbacks answer failures with an empty TwiML document and a status that
/// says what went wrong (Twilio's debugger shows it).
fn callback_error(error: WebhookError) -> Response {
    log_webhook_error(&error);
    let status = match error {
        WebhookError::Forbidden => StatusCode::FORBIDDEN,
        WebhookError::NotFound(_) => StatusCode::NOT_FOUND,
        WebhookError::BadRequest(_) => StatusCode::BAD_REQUEST,
        WebhookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        WebhookError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = api::xml_response(twiml::Response::new().to_xml());
    *response.status_mut() = status;
    response
}

fn log_webhook_error(error: &WebhookError) {
    match error {
        WebhookError::Unavailable(detail) | WebhookError::Internal(detail) => {
            tracing::error!(error = %detail, "webhook failed");
        }
        other => tracing::info!(error = %other, "webhook refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_well_formed() {
        let router = Router::all();
        for route in ROUTES {
            assert!(router.paths.at(route.path).is_ok(), "{}", route.path);
            assert!(route.path.starts_with('/'));
            assert!(!route.summary.is_empty());
            assert!(
                route.function.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "function names are folder names: {}",
                route.function
            );
            // Twilio webhooks live under /twilio/, agent routes never do.
            assert_eq!(
                route.handler.is_twilio(),
                route.path.starts_with("/twilio/"),
                "{}",
                route.path
            );
        }
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(
                seen.insert((route.method.clone(), route.path)),
                "duplicate {} {}",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn pages_are_served_with_their_type_a_validator_and_a_policy() {
        static FILES: &[PageFile] = &[
            PageFile {
                name: "index.html",
                content_type: "text/html; charset=utf-8",
                bytes: b"<!doctype html>",
            },
            PageFile {
                name: "app.js",
                content_type: "text/javascript; charset=utf-8",
                bytes: b"export {}",
            },
        ];
        serve_pages(FILES);
        let get = |path: &str, file: Option<&str>, if_none_match: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            if let Some(tag) = if_none_match {
                headers.insert(header::IF_NONE_MATCH, http::HeaderValue::from_str(tag).unwrap());
            }
            page(&Request {
                method: Method::GET,
                path: path.into(),
                query: None,
                headers,
                body: bytes::Bytes::new(),
                params: file
                    .map(|f| vec![("file".to_owned(), f.to_owned())])
                    .unwrap_or_default(),
                request_id: "test".into(),
            })
        };
        let index = get("/", None, None);
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(index.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(
            index.body(),
            &api::Body::Full(bytes::Bytes::from_static(b"<!doctype html>"))
        );
        let etag = index.headers()[header::ETAG].to_str().unwrap().to_owned();

        let script = get("/assets/app.js", Some("app.js"), Some(&etag));
        assert_eq!(script.status(), StatusCode::OK, "another file's tag is not this one's");
        assert_eq!(script.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        let again = get("/", None, Some(&format!("\"x\", {etag}")));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.body(), &api::Body::Full(bytes::Bytes::new()));

        assert_eq!(
            get("/assets/nope.js", Some("nope.js"), None).status(),
            StatusCode::NOT_FOUND
        );
        // Only the `web` function and the local server serve them.
        let pages: Vec<&str> = ROUTES
            .iter()
            .filter(|r| matches!(r.handler, Handler::Page))
            .map(|r| r.function)
            .collect();
        assert_eq!(pages, ["web", "web"]);
    }

    #[test]
    fn functions_are_listed_once() {
        let functions = functions();
        assert!(functions.contains(&"token"));
        let unique: std::collections::HashSet<_> = functions.iter().collect();
        assert_eq!(unique.len(), functions.len());
        assert!(Router::for_function("no-such-function").is_err());
    }
}
