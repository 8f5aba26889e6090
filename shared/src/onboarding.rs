//! Connecting a workspace's Twilio account in one idempotent call, checking it,
//! and undoing it in one call.
//!
//! `PUT /workspace/twilio` checks the credentials, makes sure there is a
//! working API key, a TwiML App pointing at the agent TwiML and every incoming
//! number pointing at Switchboard, reads each back, and stores the result. Each
//! step looks before it acts, so a second call changes nothing and a call after
//! a failure half-way picks up where the first stopped. Progress is stored as
//! soon as something is created: a new key's secret is shown only once.

use http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError, Request, Response, no_store};
use crate::app::App;
use crate::auth::Agent;
use crate::ids::{AccountSid, ApplicationSid, PhoneNumberSid, WorkspaceId};
use crate::paths;
use crate::phone::E164;
use crate::telemetry::error_chain;
use crate::twilio::rest::{Application, IncomingNumber, NumberWebhooks, TwilioClient, TwilioError, VoiceWebhooks};
use crate::workspace::{ApiKey, PhoneNumber, RING_SECONDS, TwilioAccount, Workspace};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigureBody {
    account_sid: AccountSid,
    auth_token: String,
    /// Typed by a person: checked with libphonenumber's rules below.
    #[serde(default)]
    caller_id: Option<String>,
    #[serde(default)]
    record: Option<bool>,
    #[serde(default)]
    delete_twilio_recording_after_copy: Option<bool>,
    /// Answer inbound texts with this; an empty string turns it off.
    #[serde(default)]
    sms_auto_reply: Option<String>,
    /// How long agents ring for an inbound call before voicemail (5 to 120 s).
    #[serde(default)]
    ring_seconds: Option<u32>,
    /// What an inbound caller hears while waiting (an http(s) URL of audio or
    /// TwiML); an empty string: Twilio's own hold music.
    #[serde(default)]
    wait_url: Option<String>,
}

/// What happened to one Twilio resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// Deleted at Twilio (clear).
    Deleted,
    /// Webhooks emptied (clear).
    Cleared,
    /// Already gone at Twilio (clear).
    Absent,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    ApiKey,
    TwimlApp,
    PhoneNumber,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceReport {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub result: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ResourceReport {
    fn new(kind: Kind, sid: impl ToString, result: Outcome) -> Self {
        Self {
            kind,
            sid: Some(sid.to_string()),
            number: None,
            result,
            reason: None,
        }
    }

    fn number(number: &IncomingNumber, result: Outcome) -> Self {
        Self {
            number: Some(number.phone_number.clone()),
            ..Self::new(Kind::PhoneNumber, &number.sid, result)
        }
    }

    fn failed(mut self, reason: impl ToString) -> Self {
        self.result = Outcome::Failed;
        self.reason = Some(reason.to_string());
        self
    }
}

/// The URLs Switchboard points Twilio at, from the configured public URL.
pub struct Wiring {
    pub app: VoiceWebhooks,
    pub numbers: NumberWebhooks,
}

impl Wiring {
    pub fn for_app(app: &App) -> Self {
        let url = |path| app.config.public_url.join(path);
        Self {
            app: VoiceWebhooks {
                voice_url: url(paths::AGENT_TWIML),
                status_callback: url(paths::STATUS_CALLBACK),
            },
            numbers: NumberWebhooks {
                voice_url: url(paths::INBOUND_TWIML),
                status_callback: url(paths::STATUS_CALLBACK),
                sms_url: url(paths::SMS),
            },
        }
    }
}

/// The TwiML App's friendly name: how a re-run finds the app it created even if
/// the stored SID was lost.
pub fn app_friendly_name(workspace: &WorkspaceId) -> String {
    format!("Switchboard {workspace}")
}

fn key_friendly_name(workspace: &WorkspaceId) -> String {
    format!("Switchboard {workspace} access tokens")
}

/// `PUT /workspace/twilio`.
pub async fn configure(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let body: ConfigureBody = request.json()?;
    let token = body.auth_token.trim();
    if token.is_empty() || token.len() > 128 || token.chars().any(char::is_whitespace) {
        return Err(ApiError::BadRequest(
            "authToken must be the account's Auth Token".into(),
        ));
    }
    if body.sms_auto_reply.as_ref().is_some_and(|r| r.chars().count() > 1600) {
        return Err(ApiError::BadRequest("smsAutoReply is at most 1600 characters".into()));
    }
    if body.ring_seconds.is_some_and(|s| !RING_SECONDS.contains(&s)) {
        return Err(ApiError::BadRequest(format!(
            "ringSeconds must be from {} to {}",
            RING_SECONDS.start(),
            RING_SECONDS.end()
        )));
    }
    let wait_url = match body.wait_url.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(raw) => match url::Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && raw.len() <= 1024 => Some(Some(raw.to_owned())),
            _ => return Err(ApiError::BadRequest("waitUrl must be an http(s) URL".into())),
        },
    };
    let caller_id = body
        .caller_id
        .as_deref()
        .map(E164::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("callerId: {e}")))?;
    let auth_token = SecretString::from(token.to_owned());
    let ws = agent.workspace;
    let account_sid = body.account_sid;

    // One Twilio account serves one workspace: webhooks name only the account.
    if let Some(owner) = app.store.workspace_by_account(&account_sid).await?
        && owner != ws
    {
        return Err(ApiError::Conflict {
            code: "account_in_use",
            message: "this Twilio account is connected to another workspace".into(),
        });
    }

    let twilio = app.twilio.with_auth_token(account_sid.clone(), auth_token.clone());
    check_credentials(&twilio).await?;

    let mut workspace = app
        .store
        .get_workspace(&ws)
        .await?
        .unwrap_or_else(|| Workspace::new(ws.clone()));
    // Keys and apps of a previous account are not this account's.
    let previous = workspace.twilio.take().filter(|t| t.account_sid == account_sid);
    let mut account = TwilioAccount {
        account_sid: account_sid.clone(),
        auth_token: app.secrets.seal(&ws, &auth_token).await?,
        api_key: previous.as_ref().and_then(|p| p.api_key.clone()),
        twiml_app_sid: previous.and_then(|p| p.twiml_app_sid),
    };
    if let Some(caller_id) = caller_id {
        workspace.settings.caller_id = Some(caller_id);
    }
    if let Some(record) = body.record {
        workspace.settings.record = record;
    }
    if let Some(delete) = body.delete_twilio_recording_after_copy {
        workspace.settings.delete_twilio_recording_after_copy = delete;
    }
    if let Some(reply) = body.sms_auto_reply {
        workspace.settings.sms_auto_reply = Some(reply.trim().to_owned()).filter(|r| !r.is_empty());
    }
    if let Some(seconds) = body.ring_seconds {
        workspace.settings.ring_seconds = Some(seconds);
    }
    if let Some(wait_url) = wait_url {
        workspace.settings.wait_url = wait_url;
    }

    let mut report = Vec::new();
    let wiring = Wiring::for_app(app);

    report.push(ensure_api_key(app, &twilio, &ws, &mut account).await?);
    save(app, &mut workspace, &account).await?;

    let (app_report, app_sid) = ensure_twiml_app(&twilio, &ws, account.twiml_app_sid.as_ref(), &wiring.app).await?;
    report.push(app_report);
    account.twiml_app_sid = Some(app_sid);
    save(app, &mut workspace, &account).await?;

    let numbers = twilio
        .list_incoming_numbers()
        .await
        .map_err(ApiError::upstream("list phone numbers"))?;
    let mut stored = Vec::new();
    for number in &numbers {
        let Ok(e164) = E164::parse(&number.phone_number) else {
            // Short codes and the like cannot take calls from agents.
            report.push(ResourceReport::number(number, Outcome::Failed).failed("not an E.164 phone number"));
            continue;
        };
        report.push(wire_number(&twilio, number, &wiring.numbers).await);
        stored.push(PhoneNumber {
            number: e164,
            sid: Some(number.sid.clone()),
            agents: Vec::new(),
            label: None,
        });
    }
    // The account's numbers, as Twilio lists them, are the one source of truth.
    app.store.replace_numbers(&ws, &stored).await?;

    let complete = report.iter().all(|r| r.result != Outcome::Failed);
    tracing::info!(workspace = %ws, account = %account_sid, complete, "configured the workspace's Twilio account");
    Ok(report_response(&ws, &account_sid, report, complete))
}

async fn check_credentials(twilio: &TwilioClient) -> Result<(), ApiError> {
    match twilio.fetch_account().await {
        Ok(account) if account.status.as_deref().is_none_or(|s| s == "active") => Ok(()),
        Ok(account) => Err(ApiError::Rejected {
            code: "twilio_account_inactive",
            message: format!(
                "the Twilio account is {}",
                account.status.as_deref().unwrap_or("not active")
            ),
        }),
        Err(TwilioError::Unauthorized { message } | TwilioError::NotFound { message }) => Err(ApiError::Rejected {
            code: "twilio_credentials_rejected",
            message: format!("Twilio refused the account SID and auth token: {message}"),
        }),
        Err(error) => Err(ApiError::upstream("check credentials")(error)),
    }
}

/// Keeps the stored API key if it still works, else creates one.
async fn ensure_api_key(
    app: &App,
    twilio: &TwilioClient,
    ws: &WorkspaceId,
    account: &mut TwilioAccount,
) -> Result<ResourceReport, ApiError> {
    if let Some(key) = &account.api_key {
        let secret = app.secrets.open(ws, &key.secret).await?;
        let with_key = app.twilio.with_api_key(account.account_sid.clone(), &key.sid, secret);
        match with_key.fetch_account().await {
            Ok(_) => return Ok(ResourceReport::new(Kind::ApiKey, &key.sid, Outcome::Unchanged)),
            // Revoked or deleted at Twilio: replace it.
            Err(TwilioError::Unauthorized { .. } | TwilioError::NotFound { .. }) => {
                let _ = twilio.delete_key(&key.sid).await;
            }
            Err(error) => return Err(ApiError::upstream("check API key")(error)),
        }
    }
    let created = twilio
        .create_key(&key_friendly_name(ws))
        .await
        .map_err(ApiError::upstream("create API key"))?;
    account.api_key = Some(ApiKey {
        secret: app.secrets.seal(ws, &created.secret).await?,
        sid: created.sid.clone(),
    });
    Ok(ResourceReport::new(Kind::ApiKey, &created.sid, Outcome::Created))
}

/// Finds the workspace's TwiML App (by stored SID, else by friendly name),
/// creates it if missing, and points it at the agent TwiML.
async fn ensure_twiml_app(
    twilio: &TwilioClient,
    ws: &WorkspaceId,
    stored: Option<&ApplicationSid>,
    wanted: &VoiceWebhooks,
) -> Result<(ResourceReport, ApplicationSid), ApiError> {
    let mut existing = match stored {
        Some(sid) => match twilio.fetch_application(sid).await {
            Ok(app) => Some(app),
            Err(TwilioError::NotFound { .. }) => None,
            Err(error) => return Err(ApiError::upstream("find TwiML App")(error)),
        },
        None => None,
    };
    if existing.is_none() {
        existing = twilio
            .find_applications(&app_friendly_name(ws))
            .await
            .map_err(ApiError::upstream("find TwiML App"))?
            .into_iter()
            .next();
    }
    let (sid, outcome) = match existing {
        Some(app) if wanted.matches(&app) => {
            return Ok((
                ResourceReport::new(Kind::TwimlApp, &app.sid, Outcome::Unchanged),
                app.sid,
            ));
        }
        Some(app) => {
            twilio
                .update_application(&app.sid, wanted)
                .await
                .map_err(ApiError::upstream("update TwiML App"))?;
            (app.sid, Outcome::Updated)
        }
        None => {
            let app: Application = twilio
                .create_application(&app_friendly_name(ws), wanted)
                .await
                .map_err(ApiError::upstream("create TwiML App"))?;
            (app.sid, Outcome::Created)
        }
    };
    // Read it back: what Twilio holds is what counts.
    let report = match twilio.fetch_application(&sid).await {
        Ok(app) if wanted.matches(&app) => ResourceReport::new(Kind::TwimlApp, &sid, outcome),
        Ok(_) => {
            ResourceReport::new(Kind::TwimlApp, &sid, outcome).failed("Twilio did not keep the URLs that were set")
        }
        Err(error) => ResourceReport::new(Kind::TwimlApp, &sid, outcome).failed(error_chain(&error)),
    };
    Ok((report, sid))
}

/// Points one number at Switchboard unless it already is, and reads it back.
async fn wire_number(twilio: &TwilioClient, number: &IncomingNumber, wanted: &NumberWebhooks) -> ResourceReport {
    if wanted.matches(number) {
        return ResourceReport::number(number, Outcome::Unchanged);
    }
    let has_application = number.voice_application_sid.as_deref().is_some_and(|s| !s.is_empty());
    if let Err(error) = twilio
        .update_incoming_number(&number.sid, wanted, has_application)
        .await
    {
        return ResourceReport::number(number, Outcome::Failed).failed(error_chain(&error));
    }
    match twilio.fetch_incoming_number(&number.sid).await {
        Ok(current) if wanted.matches(&current) => ResourceReport::number(number, Outcome::Updated),
        Ok(_) => ResourceReport::number(number, Outcome::Failed).failed("Twilio did not keep the URLs that were set"),
        Err(error) => ResourceReport::number(number, Outcome::Failed).failed(error_chain(&error)),
    }
}

async fn save(app: &App, workspace: &mut Workspace, account: &TwilioAccount) -> Result<(), ApiError> {
    workspace.twilio = Some(account.clone());
    app.store.put_workspace(workspace).await.map_err(ApiError::from)
}

fn report_response(ws: &WorkspaceId, account: &AccountSid, resources: Vec<ResourceReport>, complete: bool) -> Response {
    let mut body = serde_json::json!({
        "workspace": ws,
        "accountSid": account,
        "complete": complete,
        "resources": resources,
    });
    let status = if complete {
        StatusCode::OK
    } else {
        body["error"] = serde_json::json!({
            "code": "twilio_incomplete",
            "message": "some Twilio resources could not be set; see resources, then call again",
        });
        StatusCode::BAD_GATEWAY
    };
    no_store(api::json_response(status, &body))
}

/// `GET /workspace/twilio`: what is stored, and whether Twilio still matches it.
pub async fn check(app: &App, agent: Agent, _request: Request) -> Result<Response, ApiError> {
    let workspace = app.store.get_workspace(&agent.workspace).await?;
    let Some((workspace, twilio)) = workspace.and_then(|w| w.twilio.clone().map(|t| (w, t))) else {
        return Ok(api::json_response(
            StatusCode::OK,
            &serde_json::json!({"configured": false}),
        ));
    };
    let numbers = app.store.list_numbers(&workspace.id).await?;
    let client = app.twilio_for(&workspace).await?;
    let drift = match drift(&client, &Wiring::for_app(app), &twilio, &numbers).await {
        Ok(drift) => drift,
        Err(error) => serde_json::json!({"checked": false, "error": error_chain(&error)}),
    };
    Ok(no_store(api::json_response(
        StatusCode::OK,
        &serde_json::json!({
            "configured": true,
            "accountSid": twilio.account_sid,
            "apiKeySid": twilio.api_key.as_ref().map(|k| &k.sid),
            "twimlAppSid": twilio.twiml_app_sid,
            "callerId": workspace.settings.caller_id,
            "record": workspace.settings.record,
            "deleteTwilioRecordingAfterCopy": workspace.settings.delete_twilio_recording_after_copy,
            "smsAutoReply": workspace.settings.sms_auto_reply,
            "ringSeconds": workspace.settings.ring_seconds(),
            "waitUrl": workspace.settings.wait_url,
            "numbers": numbers,
            "drift": drift,
        }),
    )))
}

async fn drift(
    client: &TwilioClient,
    wiring: &Wiring,
    twilio: &TwilioAccount,
    stored: &[PhoneNumber],
) -> Result<serde_json::Value, TwilioError> {
    let app = match &twilio.twiml_app_sid {
        Some(sid) => match client.fetch_application(sid).await {
            Ok(app) => serde_json::json!({
                "sid": sid, "inSync": wiring.app.matches(&app),
                "voiceUrl": app.voice_url, "statusCallback": app.status_callback,
            }),
            Err(TwilioError::NotFound { .. }) => serde_json::json!({"sid": sid, "inSync": false, "missing": true}),
            Err(error) => return Err(error),
        },
        None => serde_json::json!({"inSync": false, "missing": true}),
    };
    let live = client.list_incoming_numbers().await?;
    let mut numbers = Vec::new();
    for number in stored {
        let current = live.iter().find(|n| Some(&n.sid) == number.sid.as_ref());
        numbers.push(match current {
            Some(n) => serde_json::json!({
                "number": number.number, "sid": n.sid, "inSync": wiring.numbers.matches(n),
                "voiceUrl": n.voice_url, "statusCallback": n.status_callback, "smsUrl": n.sms_url,
                "voiceApplicationSid": n.voice_application_sid,
            }),
            None => serde_json::json!({"number": number.number, "sid": number.sid, "inSync": false, "missing": true}),
        });
    }
    // Numbers bought since the last configure: a re-run wires them.
    let unmanaged: Vec<&str> = live
        .iter()
        .filter(|n| !stored.iter().any(|s| s.sid.as_ref() == Some(&n.sid)))
        .map(|n| n.phone_number.as_str())
        .collect();
    let in_sync = app["inSync"] == true && numbers.iter().all(|n| n["inSync"] == true) && unmanaged.is_empty();
    Ok(serde_json::json!({
        "checked": true,
        "inSync": in_sync,
        "twimlApp": app,
        "numbers": numbers,
        "unmanagedNumbers": unmanaged,
    }))
}

/// `DELETE /workspace/twilio`: points the numbers away from Switchboard,
/// deletes the TwiML App and the API key, and forgets the credentials and
/// numbers. Call history and recordings stay. If a Twilio step fails, nothing
/// is forgotten, so a repeat can finish the job; `?force=true` forgets anyway
/// (for credentials that Twilio no longer accepts).
pub async fn clear(app: &App, agent: Agent, request: Request) -> Result<Response, ApiError> {
    let force = request.query_flag("force")?;
    let ws = agent.workspace;
    let Some(mut workspace) = app.store.get_workspace(&ws).await? else {
        return Ok(cleared_response(Vec::new(), true));
    };
    let Some(twilio) = workspace.twilio.clone() else {
        return Ok(cleared_response(Vec::new(), true));
    };
    let client = app.twilio.for_account(app.secrets.as_ref(), &ws, &twilio).await?;
    let mut report = Vec::new();

    for number in app.store.list_numbers(&ws).await? {
        let Some(sid) = number.sid else { continue };
        report.push(clear_number(&client, &sid, &number.number).await);
    }
    if let Some(sid) = &twilio.twiml_app_sid {
        let outcome = deleted(client.delete_application(sid).await);
        report.push(with_reason(
            ResourceReport::new(Kind::TwimlApp, sid, Outcome::Deleted),
            outcome,
        ));
    }
    if let Some(key) = &twilio.api_key {
        let outcome = deleted(client.delete_key(&key.sid).await);
        report.push(with_reason(
            ResourceReport::new(Kind::ApiKey, &key.sid, Outcome::Deleted),
            outcome,
        ));
    }

    let complete = report.iter().all(|r| r.result != Outcome::Failed);
    if complete || force {
        app.store.replace_numbers(&ws, &[]).await?;
        workspace.twilio = None;
        app.store.put_workspace(&workspace).await?;
        tracing::info!(workspace = %ws, complete, "cleared the workspace's Twilio account");
    }
    Ok(cleared_response(report, complete || force))
}

async fn clear_number(client: &TwilioClient, sid: &PhoneNumberSid, number: &E164) -> ResourceReport {
    let report = ResourceReport {
        number: Some(number.to_string()),
        ..ResourceReport::new(Kind::PhoneNumber, sid, Outcome::Cleared)
    };
    let cleared = NumberWebhooks::cleared();
    match client.update_incoming_number(sid, &cleared, false).await {
        Ok(current) if cleared.matches(&current) => report,
        Ok(_) => report.failed("Twilio did not keep the emptied URLs"),
        // Released from the account: nothing left to point away.
        Err(TwilioError::NotFound { .. }) => ResourceReport {
            result: Outcome::Absent,
            ..report
        },
        Err(error) => report.failed(error_chain(&error)),
    }
}

fn deleted(result: Result<(), TwilioError>) -> Result<Outcome, TwilioError> {
    match result {
        Ok(()) => Ok(Outcome::Deleted),
        Err(TwilioError::NotFound { .. }) => Ok(Outcome::Absent),
        Err(error) => Err(error),
    }
}

fn with_reason(report: ResourceReport, outcome: Result<Outcome, TwilioError>) -> ResourceReport {
    match outcome {
        Ok(result) => ResourceReport { result, ..report },
        Err(error) => report.failed(error_chain(&error)),
    }
}

fn cleared_response(resources: Vec<ResourceReport>, cleared: bool) -> Response {
    let mut body = serde_json::json!({"cleared": cleared, "resources": resources});
    let status = if cleared {
        StatusCode::OK
    } else {
        body["error"] = serde_json::json!({
            "code": "twilio_incomplete",
            "message": "some Twilio resources could not be removed; nothing was forgotten, call again (or with ?force=true)",
        });
        StatusCode::BAD_GATEWAY
    };
    api::json_response(status, &body)
}
