//! The HTTP boundary every handler shares: the request as handlers see it, the
//! response they give, and the API error type, mapped to a response once.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use crate::auth::AuthError;
use crate::ports::{ChangesQuery, SecretError, StoreError};
use crate::telemetry::error_chain;
use crate::time::Timestamp;
use crate::twilio::rest::TwilioError;
use crate::twilio::twiml;
use crate::twilio::webhooks::Params;

/// Bodies larger than this are refused with 413 before any handler runs.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request, independent of where it came from (API Gateway or the local server).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path as requested, without the query.
    pub path: String,
    /// The raw query string exactly as sent (needed for Twilio signatures).
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Path parameters from the route pattern (`{callId}` …).
    pub params: Vec<(String, String)>,
    /// The platform's request id, for logs.
    pub request_id: String,
}

impl Request {
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (path_and_query.to_owned(), None),
        };
        Self {
            method,
            path,
            query,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            params: Vec::new(),
            request_id: String::new(),
        }
    }

    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The query string's parameters (`?callId=…&limit=…`).
    pub fn query_params(&self) -> Params {
        Params::parse_form(self.query.as_deref().unwrap_or("").as_bytes())
    }

    /// A `true`/`false` query parameter, false when absent.
    pub fn query_flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.query_params().get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "{name} must be true or false, not {:?}",
                other.chars().take(16).collect::<String>()
            ))),
        }
    }

    /// The body as JSON of type `T`, or a 400/415 that says what is wrong.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let content_type = self.header(header::CONTENT_TYPE).unwrap_or("");
        if !content_type.is_empty() && !is_media_type(content_type, "application/json") {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        serde_json::from_slice(&self.body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// Whether a `Content-Type` value names `media_type` (`type/subtype`): its
/// media type compared without regard to case (RFC 9110), parameters
/// (`; charset=utf-8`) aside. A value that merely starts with it is another
/// type (`application/jsonp`).
pub fn is_media_type(content_type: &str, media_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(media_type)
}

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Listings return this many items unless `limit` asks otherwise.
pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 100;

impl Request {
    /// The `Idempotency-Key` header, scoped to `scope` and the agent (two
    /// agents' "1" are different requests; see [`scoped_idempotency_key`]);
    /// 400 if it is not 1 to 255 visible ASCII characters (a key that is
    /// not text, read as no key, would make the request quietly repeatable).
    pub fn idempotency_key(&self, scope: &str, agent: &crate::ids::AgentId) -> Result<Option<String>, ApiError> {
        let Some(raw) = self.headers.get("idempotency-key") else {
            return Ok(None);
        };
        match raw.to_str() {
            Ok(key) if !key.is_empty() && key.len() <= 255 && !key.chars().any(char::is_control) => {
                Ok(Some(scoped_idempotency_key(scope, agent, key)))
            }
            _ => Err(ApiError::BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
            )),
        }
    }
}

/// The stored form of an agent's `Idempotency-Key`, the one place it is
/// composed. Agent ids may hold any printable character, `:` included, so
/// the agent id goes in with its length in bytes: `alice` + `x:k9` and
/// `alice:x` + `k9` are different keys. The scope is one of our own words
/// (`calls`, `messages`), never free text.
///
/// The `v2/` tag keeps these apart from keys stored under the first scheme
/// (`{scope}:{agent}:{key}`, ambiguous), and from other records of the same
/// store (`inbound:{CallSid}`). Keys stored under the first scheme are never
/// matched again and simply expire after [`IDEMPOTENCY_TTL`]; no migration
/// is needed (a retry that straddles the upgrade makes a new request).
pub fn scoped_idempotency_key(scope: &str, agent: &crate::ids::AgentId, key: &str) -> String {
    debug_assert!(
        !scope.is_empty() && scope.bytes().all(|b| b.is_ascii_lowercase()),
        "an idempotency scope is a fixed lowercase word: {scope:?}"
    );
    let agent = agent.as_str();
    format!("v2/{scope}/{}/{agent}/{key}", agent.len())
}

/// A changes listing's query (`updatedAfter=<RFC 3339>&limit=&cursor=`), if
/// `updatedAfter` is there; 400 if it is not a time, or comes with one of
/// `filters` (a catch-up lists every change).
pub fn changes_query(params: &Params, filters: &[&str]) -> Result<Option<ChangesQuery>, ApiError> {
    let Some(raw) = params.get("updatedAfter") else {
        return Ok(None);
    };
    // A `+` sent unencoded in `+00:00` arrives as a space.
    let since = Timestamp::parse_rfc3339(&raw.replace(' ', "+")).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "updatedAfter={:?} is not an RFC 3339 time (for example 2026-01-01T12:00:00.000Z)",
            raw.chars().take(40).collect::<String>()
        ))
    })?;
    if let Some(filter) = filters.iter().find(|f| params.get(f).is_some()) {
        return Err(ApiError::BadRequest(format!(
            "updatedAfter lists every change; it cannot be combined with {filter}"
        )));
    }
    Ok(Some(ChangesQuery {
        since,
        limit: page_limit(params.get("limit"))?,
        cursor: params.get("cursor").map(str::to_owned),
    }))
}

/// A listing's `limit` query value: 1 to `MAX_PAGE`, `DEFAULT_PAGE` when absent.
pub fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("limit={raw:?} is not valid (1 to {MAX_PAGE})"))),
    }
}

/// A response body: bytes, or (on the local server) a file streamed from disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Full(Bytes),
    /// A local recording: the local server streams it, answering `Range`
    /// requests so a browser's `<audio>` can seek. Lambda never produces it.
    File {
        path: std::path::PathBuf,
        content_type: String,
    },
}

pub type Response = http::Response<Body>;

pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    // Serialising our own response types cannot fail; fall back to a bare 500.
    let body = serde_json::to_vec(value)
        .unwrap_or_else(|_| br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec());
    with_type(status, "application/json", body.into())
}

pub fn xml_response(xml: String) -> Response {
    with_type(StatusCode::OK, "text/xml; charset=utf-8", xml.into())
}

/// A TwiML document as Twilio's answer.
pub fn twiml(response: twiml::Response) -> Response {
    xml_response(response.to_xml())
}

/// The empty `<Response/>`: a callback acknowledged, nothing to do.
pub fn empty_twiml() -> Response {
    twiml(twiml::Response::new())
}

/// `Cache-Control: no-store` for responses that carry credentials.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut response = http::Response::new(Body::Full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Every way an API route (agent or admin) can fail, mapped to one JSON shape:
/// `{"error": {"code", "message"}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed; this path accepts {0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request that cannot be done as asked (`code` says why).
    #[error("{message}")]
    Rejected { code: &'static str, message: String },
    /// The request conflicts with the workspace's state (`code` says how).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("the request body must be {0}")]
    UnsupportedMediaType(&'static str),
    /// Twilio (or another service we call) failed at `step`.
    #[error("{step}: {message}")]
    Upstream { step: &'static str, message: String },
    #[error("this is a WebSocket: open it with an Upgrade request")]
    UpgradeRequired,
    #[error("temporarily unavailable, retry shortly")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Twilio failed at `step`: 502 that names the step and every cause.
    pub fn upstream(step: &'static str) -> impl Fn(TwilioError) -> Self {
        move |error| Self::Upstream {
            step,
            message: error_chain(&error),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(AuthError::KeysUnavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) | Self::Rejected { .. } => StatusCode::BAD_REQUEST,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(AuthError::KeysUnavailable(_)) => "unavailable",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::BadRequest(_) => "bad_request",
            Self::Conflict { code, .. } | Self::Rejected { code, .. } => code,
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Upstream { .. } => "upstream_error",
            Self::UpgradeRequired => "upgrade_required",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // Details go to the log only; the client gets the generic message.
            tracing::error!(code = self.code(), error = ?self, "request failed");
        }
        let mut response = json_response(
            status,
            &serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}}),
        );
        if let Self::MethodNotAllowed(allow) = &self
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        if let Self::Unauthorized(_) = &self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::InvalidCursor(detail) => Self::BadRequest(detail),
            StoreError::Conflict(message) => Self::Conflict {
                code: "conflict",
                message,
            },
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Corrupt(detail) => Self::Internal(detail),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(error: SecretError) -> Self {
        match error {
            SecretError::Unavailable(detail) => Self::Unavailable(detail),
            SecretError::Unopenable => Self::Internal("a stored secret could not be opened".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response) -> serde_json::Value {
        let Body::Full(bytes) = response.body() else {
            panic!("a file body");
        };
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn errors_map_to_status_and_json_once() {
        let response = ApiError::Unauthorized(AuthError::Missing).into_response();
        assert_eq!(response.status(), 401);
        assert_eq!(body_json(&response)["error"]["code"], "unauthorized");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");

        let response = ApiError::MethodNotAllowed("GET, POST".into()).into_response();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    }

    #[test]
    fn server_errors_do_not_leak_details() {
        let response = ApiError::from(StoreError::Unavailable("dynamodb at 10.0.0.1 said no".into())).into_response();
        assert_eq!(response.status(), 503);
        let body = body_json(&response);
        assert!(!body.to_string().contains("10.0.0.1"));
    }

    /// Each way the store fails is one documented answer: a full disk or a
    /// failing DynamoDB is 503 `unavailable` (retry shortly), never a 500.
    #[test]
    fn store_errors_map_to_their_documented_status() {
        for (error, status, code) in [
            (StoreError::Unavailable("disk full".into()), 503, "unavailable"),
            (StoreError::NotFound("call".into()), 404, "not_found"),
            (StoreError::InvalidCursor("zz".into()), 400, "bad_request"),
            (StoreError::Conflict("exists".into()), 409, "conflict"),
            (StoreError::Corrupt("bad json".into()), 500, "internal"),
        ] {
            let api = ApiError::from(error);
            assert_eq!((api.status().as_u16(), api.code()), (status, code), "{api:?}");
        }
        let secret = ApiError::from(SecretError::Unavailable("kms throttled".into()));
        assert_eq!(secret.status().as_u16(), 503);
    }

    #[test]
    fn idempotency_keys_of_two_agents_never_collide() {
        use crate::ids::AgentId;
        let agent = |id: &str| AgentId::parse(id).unwrap();
        let keyed = |agent_id: &str, key: &str| {
            let mut request = Request::new(Method::POST, "/calls");
            request
                .headers
                .insert("idempotency-key", HeaderValue::from_str(key).unwrap());
            request.idempotency_key("calls", &agent(agent_id)).unwrap().unwrap()
        };
        assert_ne!(keyed("alice", "x:k9"), keyed("alice:x", "k9"));
        assert_ne!(keyed("alice", "1/k9"), keyed("alice/1", "k9"));
        assert_ne!(keyed("5", "alice:x:k9"), keyed("alice", "x:k9"));
        assert_eq!(
            keyed("alice", "k9"),
            keyed("alice", "k9"),
            "the same request is the same key"
        );
        assert_ne!(
            scoped_idempotency_key("calls", &agent("alice"), "k9"),
            scoped_idempotency_key("messages", &agent("alice"), "k9"),
        );
        // Never a key of the first, ambiguous scheme, nor an inbound call's.
        let stored = keyed("alice", "k9");
        assert!(
            !stored.starts_with("calls:") && !stored.starts_with("inbound:"),
            "{stored}"
        );

        let mut no_header = Request::new(Method::POST, "/calls");
        assert_eq!(no_header.idempotency_key("calls", &agent("alice")).unwrap(), None);
        no_header
            .headers
            .insert("idempotency-key", HeaderValue::from_static(""));
        assert!(no_header.idempotency_key("calls", &agent("alice")).is_err());
        // Bytes that are no text are refused, not read as no key.
        no_header
            .headers
            .insert("idempotency-key", HeaderValue::from_bytes("café".as_bytes()).unwrap());
        assert!(no_header.idempotency_key("calls", &agent("alice")).is_err());
    }

    /// The composition is injective: the parts can be read back from the key.
    #[test]
    fn an_idempotency_key_can_be_read_back_into_its_parts() {
        use crate::ids::AgentId;
        for (agent, key) in [("alice", "x:k9"), ("alice:x", "k9"), ("a/3/b", "/"), ("é:", "12/x")] {
            let stored = scoped_idempotency_key("calls", &AgentId::parse(agent).unwrap(), key);
            let rest = stored.strip_prefix("v2/calls/").unwrap();
            let (len, rest) = rest.split_once('/').unwrap();
            let len: usize = len.parse().unwrap();
            assert_eq!(&rest[..len], agent);
            assert_eq!(&rest[len + 1..], key);
        }
    }

    #[test]
    fn json_bodies_are_checked() {
        let mut request = Request::new(Method::POST, "/x?a=1");
        assert_eq!(request.query.as_deref(), Some("a=1"));
        request.body = Bytes::from_static(b"{not json");
        assert!(matches!(
            request.json::<serde_json::Value>(),
            Err(ApiError::BadRequest(_))
        ));
        request
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(matches!(
            request.json::<serde_json::Value>(),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn the_json_type_is_a_media_type_not_a_prefix() {
        let with_type = |content_type: &'static str| {
            let mut request = Request::new(Method::POST, "/calls");
            request.body = Bytes::from_static(b"{}");
            request
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            request.json::<serde_json::Value>()
        };
        for accepted in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON; charset=UTF-8",
            "application/json ;charset=utf-8",
        ] {
            assert!(with_type(accepted).is_ok(), "{accepted}");
        }
        for refused in [
            "application/jsonXYZ",
            "application/json-seq",
            "application/jsonp; charset=utf-8",
        ] {
            assert!(
                matches!(with_type(refused), Err(ApiError::UnsupportedMediaType(_))),
                "{refused}"
            );
        }
    }
}
