//! A fault proxy for AWS on loopback: it stands between the SDK and moto,
//! forwards every request, and fails some the way AWS fails them: 5xx and
//! throttling errors in each service's own error shape (JSON for DynamoDB,
//! KMS and SQS, XML for S3), attempts that hang, connections dropped before
//! an answer, and answers lost after the request was applied.
//!
//! Which requests fail is either scripted (`fail_next`: the next matching
//! requests, for deterministic tests) or drawn at random at a rate (`set_rate`:
//! the fault campaign), per service. The service is read from the request's
//! SigV4 credential scope (`…/us-east-1/dynamodb/aws4_request`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The services Switchboard calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    DynamoDb,
    Kms,
    S3,
    Sqs,
    /// Anything else (the proxy forwards it untouched).
    Other,
}

impl Service {
    pub const ALL: [Service; 4] = [Service::DynamoDb, Service::Kms, Service::S3, Service::Sqs];

    /// The service a signed request is for, from its credential scope.
    fn of(request: &Request<Incoming>) -> Self {
        let scope = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|credential| credential.split(['/', ',']).nth(3));
        match scope {
            Some("dynamodb") => Self::DynamoDb,
            Some("kms") => Self::Kms,
            Some("s3") => Self::S3,
            Some("sqs") => Self::Sqs,
            _ => Self::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::DynamoDb => "DynamoDB",
            Self::Kms => "KMS",
            Self::S3 => "S3",
            Self::Sqs => "SQS",
            Self::Other => "other",
        }
    }
}

/// How one request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsFault {
    /// 500 with the service's internal-error body; nothing forwarded.
    ServerError,
    /// 503 with the service's unavailable body; nothing forwarded.
    Unavailable,
    /// The service's throttling error (400 `ThrottlingException` and kin,
    /// S3's 503 `SlowDown`); nothing forwarded.
    Throttle,
    /// No answer for this long, then the connection is closed; nothing
    /// forwarded. Longer than an attempt's timeout, so the SDK gives up first.
    Hang(Duration),
    /// The connection is closed without an answer; nothing forwarded.
    Reset,
    /// Forwarded and applied, then answered 500: the answer was lost.
    LostAnswer,
}

impl AwsFault {
    pub fn name(self) -> &'static str {
        match self {
            Self::ServerError => "500",
            Self::Unavailable => "503",
            Self::Throttle => "throttle",
            Self::Hang(_) => "hang",
            Self::Reset => "reset",
            Self::LostAnswer => "lost answer",
        }
    }
}

/// Requests seen and faults injected, per service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    pub requests: u64,
    pub faults: u64,
}

struct Scripted {
    service: Service,
    fault: AwsFault,
    times: usize,
}

struct Plan {
    scripted: VecDeque<Scripted>,
    /// Per request, the chance it fails, and how (picked evenly).
    rate: f64,
    services: Vec<Service>,
    faults: Vec<AwsFault>,
    rng: fastrand::Rng,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    plan: Mutex<Plan>,
    counts: [(AtomicU64, AtomicU64); 5],
}

/// The proxy, serving until dropped.
pub struct AwsFaultProxy {
    shared: Arc<Shared>,
    address: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for AwsFaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn index(service: Service) -> usize {
    match service {
        Service::DynamoDb => 0,
        Service::Kms => 1,
        Service::S3 => 2,
        Service::Sqs => 3,
        Service::Other => 4,
    }
}

impl AwsFaultProxy {
    /// Listens on a free loopback port, forwarding to `upstream` (moto's URL).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .map_err(std::io::Error::other)?,
            plan: Mutex::new(Plan {
                scripted: VecDeque::new(),
                rate: 0.0,
                services: Service::ALL.to_vec(),
                faults: Vec::new(),
                rng: fastrand::Rng::with_seed(1),
            }),
            counts: Default::default(),
        });
        let serving = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { shared.handle(request).await }
                    });
                    // A `Reset` ends the connection with an error: expected.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            shared,
            address,
            server,
        })
    }

    /// The URL to give the SDK as its endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// SDK configuration through the proxy, with the SDK limits the
    /// functions run with (`switchboard_aws::with_limits`) and moto's test
    /// credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        switchboard_aws::with_limits(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(self.url())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    "testing", "testing", None, None, "faults",
                )),
        )
        .load()
        .await
    }

    /// The next `times` requests to `service` fail with `fault`, before any
    /// random fault.
    pub fn fail_next(&self, service: Service, fault: AwsFault, times: usize) {
        self.shared
            .plan()
            .scripted
            .push_back(Scripted { service, fault, times });
    }

    /// From now on each request to one of `services` fails with probability
    /// `rate`, with one of `faults` (evenly), drawn from `seed`. A rate of 0
    /// (or no faults) stops it.
    pub fn set_rate(&self, rate: f64, services: &[Service], faults: &[AwsFault], seed: u64) {
        let mut plan = self.shared.plan();
        plan.rate = rate.clamp(0.0, 1.0);
        plan.services = services.to_vec();
        plan.faults = faults.to_vec();
        plan.rng = fastrand::Rng::with_seed(seed);
    }

    /// No more faults, scripted or random.
    pub fn heal(&self) {
        let mut plan = self.shared.plan();
        plan.scripted.clear();
        plan.rate = 0.0;
    }

    pub fn counts(&self, service: Service) -> ProxyCounts {
        let (requests, faults) = &self.shared.counts[index(service)];
        ProxyCounts {
            requests: requests.load(Ordering::Relaxed),
            faults: faults.load(Ordering::Relaxed),
        }
    }
}

/// A request the proxy fails by closing the connection (hyper closes it
/// when the service fails).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

impl Shared {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fault_for(&self, service: Service) -> Option<AwsFault> {
        let mut guard = self.plan();
        let plan = &mut *guard;
        if let Some(position) = plan.scripted.iter().position(|s| s.service == service) {
            let scripted = &mut plan.scripted[position];
            let fault = scripted.fault;
            scripted.times -= 1;
            if scripted.times == 0 {
                plan.scripted.remove(position);
            }
            return Some(fault);
        }
        if plan.faults.is_empty() || !plan.services.contains(&service) || plan.rng.f64() >= plan.rate {
            return None;
        }
        let pick = plan.rng.usize(..plan.faults.len());
        Some(plan.faults[pick])
    }

    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        let service = Service::of(&request);
        let (requests, faults) = &self.counts[index(service)];
        requests.fetch_add(1, Ordering::Relaxed);
        let fault = self.fault_for(service);
        if fault.is_some() {
            faults.fetch_add(1, Ordering::Relaxed);
        }
        match fault {
            Some(AwsFault::Hang(how_long)) => {
                tokio::time::sleep(how_long).await;
                return Err(Dropped);
            }
            Some(AwsFault::Reset) => return Err(Dropped),
            Some(fault @ (AwsFault::ServerError | AwsFault::Unavailable | AwsFault::Throttle)) => {
                return Ok(error_response(service, fault));
            }
            Some(AwsFault::LostAnswer) | None => {}
        }
        let forwarded = self.forward(request).await;
        match fault {
            Some(AwsFault::LostAnswer) => Ok(error_response(service, AwsFault::ServerError)),
            _ => Ok(forwarded.unwrap_or_else(|error| {
                let mut response = Response::new(Full::new(Bytes::from(error.to_string())));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            })),
        }
    }

    async fn forward(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, reqwest::Error> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut upstream = self.http.request(parts.method, format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name.as_str()) {
                upstream = upstream.header(name, value);
            }
        }
        let answer = upstream.body(body).send().await?;
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if !is_hop_by_hop(name.as_str()) {
                response = response.header(name, value);
            }
        }
        let body = answer.bytes().await?;
        Ok(response.body(Full::new(body)).unwrap_or_default())
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "host" | "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "te" | "upgrade"
    )
}

/// What AWS answers for `fault`, in `service`'s own shape.
fn error_response(service: Service, fault: AwsFault) -> Response<Full<Bytes>> {
    let (status, code, message) = match (service, fault) {
        (Service::S3, AwsFault::Throttle) => (503, "SlowDown", "Please reduce your request rate."),
        (Service::S3, AwsFault::Unavailable) => (503, "ServiceUnavailable", "Service is unable to handle request."),
        (Service::S3, _) => (
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (Service::DynamoDb, AwsFault::Throttle) => (
            400,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        ),
        (Service::DynamoDb, AwsFault::Unavailable) => (
            503,
            "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
            "Service unavailable",
        ),
        (Service::DynamoDb, _) => (
            500,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
        ),
        (Service::Kms, AwsFault::Throttle) => (400, "ThrottlingException", "Rate exceeded"),
        (Service::Kms, AwsFault::Unavailable) => (503, "KMSInternalException", "Service unavailable"),
        (Service::Kms, _) => (500, "KMSInternalException", "Internal failure"),
        (Service::Sqs | Service::Other, AwsFault::Throttle) => (400, "ThrottlingException", "Rate exceeded"),
        (Service::Sqs | Service::Other, AwsFault::Unavailable) => (503, "ServiceUnavailable", "Service unavailable"),
        (Service::Sqs | Service::Other, _) => (500, "InternalError", "Internal failure"),
    };
    let request_id = format!("fault-{:016x}", fastrand::u64(..));
    let (content_type, body) = match service {
        Service::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
                 <RequestId>{request_id}</RequestId></Error>"
            ),
        ),
        Service::Kms => (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ),
        _ => (
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id.clone());
        headers.insert("x-amz-request-id", id);
    }
    if service == Service::Sqs {
        // SQS's JSON protocol names the query-compatible code here too.
        let short = code.rsplit('#').next().unwrap_or(code);
        if let Ok(value) = HeaderValue::from_str(&format!("{short};Sender")) {
            headers.insert("x-amzn-query-error", value);
        }
    }
    response
}
