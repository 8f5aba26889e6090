//! The API contract: an OpenAPI 3.1 document of every agent, admin and
//! public route, built from the route table (`routes::openapi` hands it the
//! table's rows), so its paths, methods, summaries and access rules are the
//! table's own and cannot drift from what is served.
//!
//! What the table does not know, each operation's request body, query and
//! header parameters, responses, error codes and links, is kept here in
//! [`contracts`], keyed by method and path. The tests below fail if a route
//! of the table has no contract or a contract names no route; the JSON shapes
//! are checked against the model's own values (tests/integration/openapi.rs)
//! and against the running server by Schemathesis (`scripts/fuzz-api.sh`).
//! The live events of the WebSocket are described as schemas of the same
//! document (`LiveEvent`, `Ping`, `Pong`; `x-live-events` says how to open
//! the socket). Twilio's webhooks are not part of it: Twilio calls them,
//! under Twilio's own contract.

use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No sign-in (`GET /health`, `GET /openapi.json`).
    Public,
    /// Any signed-in agent of the workspace.
    Agent,
    /// Agents with the `admin` role.
    Admin,
}

/// One row of the route table, as the document needs it.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// `GET`, `POST`, … as the table writes it.
    pub method: &'static str,
    /// A `matchit` pattern, which is also OpenAPI's: `/calls/{callId}`.
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
}

/// What the route table cannot say about one operation.
pub(crate) struct Contract {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) operation_id: &'static str,
    tag: &'static str,
    /// More than the summary: who may, what happens.
    description: &'static str,
    /// Query and header parameters (path parameters come from the path).
    parameters: Vec<Value>,
    /// The JSON request body's schema, if the handler reads one.
    body: Option<Value>,
    /// Answers other than the JSON errors: status → OpenAPI response object.
    replies: Vec<(u16, Value)>,
    /// The error codes the handler itself can answer, by status; those of
    /// the gate (sign-in, role, body size and type, the store) are added for
    /// every operation of its kind.
    errors: Vec<(u16, Vec<&'static str>)>,
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A closed object: these properties, those required, nothing else.
fn object(required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

/// `schema` or `null`.
fn or_null(schema: Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some(kind) => {
            let mut nullable = schema.clone();
            nullable["type"] = json!([kind, "null"]);
            nullable
        }
        None => json!({ "oneOf": [schema, { "type": "null" }] }),
    }
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn timestamp() -> Value {
    schema("Timestamp")
}

/// A JSON response whose body is `body`.
fn reply(description: &str, body: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": body } },
    })
}

/// `Cache-Control: no-store` on an answer that carries a credential or account details.
fn no_store(mut response: Value) -> Value {
    response["headers"] = json!({
        "Cache-Control": {
            "description": "`no-store`: the answer carries credentials or account details.",
            "required": true,
            "schema": { "type": "string", "const": "no-store" },
        },
    });
    response
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// The `Idempotency-Key` header of the routes that read it.
fn idempotency_key(what: &str) -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": format!(
            "Recommended. The same key from the same agent within 24 hours {what}; \
             a key reused for a different request is 409 `idempotency_key_reused`. \
             1 to 255 visible ASCII characters."
        ),
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$" },
    })
}

/// What can be done with a call, from any answer that names it (`callId` in
/// its body): kept once under `components.links`, referred to by each answer.
const CALL_LINKS: [(&str, &str, &str, Option<&str>); 13] = [
    ("GetCall", "getCall", "The call with its timeline.", None),
    ("AnnotateCall", "annotateCall", "Notes and disposition.", None),
    ("HoldCall", "holdCall", "Put the customer on hold, or back.", None),
    ("HangUpCall", "hangUpCall", "End the call.", None),
    ("TransferCall", "transferCall", "Transfer the call.", None),
    (
        "CompleteTransfer",
        "completeTransfer",
        "Hand a warm transfer over.",
        None,
    ),
    ("CancelTransfer", "cancelTransfer", "Call the transfer off.", None),
    ("MonitorCall", "monitorCall", "Listen in, whisper or barge in.", None),
    ("StopMonitoring", "stopMonitoring", "The supervisor leaves.", None),
    (
        "MuteCustomer",
        "muteParticipant",
        "Mute the customer.",
        Some("customer"),
    ),
    (
        "MuteAgent",
        "muteParticipant",
        "Mute the first agent leg (supervisors and admins).",
        Some("agent-1"),
    ),
    (
        "PauseRecording",
        "pauseRecording",
        "Pause or resume the recording.",
        None,
    ),
    ("PlayRecording", "playRecording", "The call's recording.", None),
];

/// Where a link finds the call: an answer about one call, or the newest of
/// a page of the call log.
#[derive(Clone, Copy)]
enum CallSource {
    Answer,
    NewestListed,
}

impl CallSource {
    const ALL: [CallSource; 2] = [CallSource::Answer, CallSource::NewestListed];

    fn expression(self) -> &'static str {
        match self {
            Self::Answer => "$response.body#/callId",
            Self::NewestListed => "$response.body#/calls/0/callId",
        }
    }

    fn link_name(self, name: &str) -> String {
        match self {
            Self::Answer => name.to_owned(),
            Self::NewestListed => format!("Newest{name}"),
        }
    }
}

fn link_components() -> Value {
    let mut links = Map::new();
    for source in CallSource::ALL {
        for (name, operation, description, label) in CALL_LINKS {
            let mut parameters = json!({ "callId": source.expression() });
            if let Some(label) = label {
                parameters["label"] = json!(label);
            }
            let description = match source {
                CallSource::Answer => description.to_owned(),
                CallSource::NewestListed => format!("{description} The newest call of the page."),
            };
            links.insert(
                source.link_name(name),
                json!({ "operationId": operation, "parameters": parameters, "description": description }),
            );
        }
    }
    Value::Object(links)
}

/// The links of an answer naming a call; a participant's (mute) only where
/// the call is listed with them: a call just placed has none yet.
fn call_links(source: CallSource, with_participants: bool) -> Value {
    let mut links = Map::new();
    for (name, _, _, label) in CALL_LINKS {
        if label.is_some() && !with_participants {
            continue;
        }
        let name = source.link_name(name);
        links.insert(name.clone(), json!({ "$ref": format!("#/components/links/{name}") }));
    }
    Value::Object(links)
}

fn with_links(mut response: Value, links: Value) -> Value {
    response["links"] = links;
    response
}

/// Every operation's contract, in the route table's order.
pub(crate) fn contracts() -> Vec<Contract> {
    let call_reply =
        |status_text: &str, body: Value| with_links(reply(status_text, body), call_links(CallSource::Answer, false));
    vec![
        Contract {
            method: "GET",
            path: "/openapi.json",
            operation_id: "getContract",
            tag: "service",
            description: "This document: OpenAPI 3.1, generated from the route table. The repository keeps the same \
                          file (`openapi.json`) for client generators.",
            parameters: vec![],
            body: None,
            replies: vec![(200, reply("The OpenAPI document.", json!({ "type": "object" })))],
            errors: vec![],
        },
        Contract {
            method: "GET",
            path: "/health",
            operation_id: "getHealth",
            tag: "service",
            description: "Up or down, nothing more, for uptime checks: one cheap read of the store. No sign-in.",
            parameters: vec![],
            body: None,
            replies: vec![
                (200, reply("The service and its store answer.", schema("Health"))),
                (503, reply("The store cannot be reached.", schema("Health"))),
            ],
            errors: vec![],
        },
        Contract {
            method: "POST",
            path: "/token",
            operation_id: "issueToken",
            tag: "token",
            description: "A Twilio Voice access token for the signed-in agent's browser (never longer-lived than \
                          the sign-in token that asked), and the URL of the live-event socket.",
            parameters: vec![],
            body: None,
            replies: vec![(200, no_store(reply("The access token.", schema("VoiceToken"))))],
            errors: vec![(409, vec!["twilio_not_configured"])],
        },
        Contract {
            method: "PUT",
            path: "/workspace/twilio",
            operation_id: "configureTwilio",
            tag: "workspace",
            description: "Admin only. Connects the workspace's Twilio account in one idempotent call: checks the \
                          credentials, keeps or creates the API key, finds or creates the TwiML App, points every \
                          number at Switchboard, reads each back, and stores the result. Settings not sent are kept.",
            parameters: vec![],
            body: Some(schema("TwilioConfiguration")),
            replies: vec![
                (200, no_store(reply("Everything is in place.", schema("WiringReport")))),
                (
                    502,
                    no_store(reply(
                        "Twilio failed: a report with `complete: false` and the error `twilio_incomplete` \
                         (some resources could not be set; call again), or an error `upstream_error` naming \
                         the step Twilio failed at.",
                        json!({ "oneOf": [schema("WiringReport"), error_schema(&["upstream_error"])] }),
                    )),
                ),
            ],
            errors: vec![
                (
                    400,
                    vec!["bad_request", "twilio_credentials_rejected", "twilio_account_inactive"],
                ),
                (409, vec!["account_in_use", "conflict"]),
            ],
        },
        Contract {
            method: "GET",
            path: "/workspace/twilio",
            operation_id: "getTwilioWiring",
            tag: "workspace",
            description: "Admin only. What is stored (never a secret) and a live drift check of the TwiML App and \
                          every number; `{\"configured\": false}` before the first configuration.",
            parameters: vec![],
            body: None,
            replies: vec![(200, reply("The wiring.", schema("TwilioWiring")))],
            errors: vec![],
        },
        Contract {
            method: "DELETE",
            path: "/workspace/twilio",
            operation_id: "clearTwilio",
            tag: "workspace",
            description: "Admin only. Empties the numbers' webhooks, deletes the TwiML App and the API key, and \
                          forgets the credentials and numbers (call history and recordings stay). If a Twilio step \
                          fails nothing is forgotten, unless `force=true`.",
            parameters: vec![query(
                "force",
                "Forget the account even when Twilio refuses a step (for credentials Twilio no longer accepts).",
                boolean(),
            )],
            body: None,
            replies: vec![
                (200, reply("Cleared (or nothing was connected).", schema("ClearReport"))),
                (
                    502,
                    reply(
                        "Some Twilio resources could not be removed: `cleared: false`, the error \
                         `twilio_incomplete`; nothing was forgotten.",
                        schema("ClearReport"),
                    ),
                ),
            ],
            errors: vec![],
        },
        Contract {
            method: "GET",
            path: "/workspace/numbers",
            operation_id: "listNumbers",
            tag: "numbers",
            description: "The workspace's numbers (as its Twilio account lists them) with their agents and labels.",
            parameters: vec![],
            body: None,
            replies: vec![(
                200,
                reply(
                    "The numbers.",
                    object(
                        &["numbers"],
                        json!({ "numbers": { "type": "array", "items": schema("Number") } }),
                    ),
                ),
            )],
            errors: vec![],
        },
        Contract {
            method: "PUT",
            path: "/workspace/numbers/{number}",
            operation_id: "assignNumber",
            tag: "numbers",
            description: "Admin only. Who rings for inbound calls to the number and may call and text from it (a \
                          number with no agents is a shared line anyone may use), and its label.",
            parameters: vec![],
            body: Some(schema("NumberAssignment")),
            replies: vec![(200, reply("The number as stored.", schema("Number")))],
            errors: vec![(404, vec!["not_found"])],
        },
        Contract {
            method: "POST",
            path: "/calls",
            operation_id: "placeCall",
            tag: "calls",
            description: "Stores an outbound call session; nothing rings until the agent's browser connects with \
                          `device.connect({params: connectParams})` (within 2 minutes, else the session is \
                          abandoned). The caller ID is `from` if the agent may use it, else the agent's own number, \
                          else the workspace's `callerId`.",
            parameters: vec![idempotency_key("returns the same session, also when requests race")],
            body: Some(schema("NewCall")),
            replies: vec![(
                201,
                with_links(
                    reply("The session, ready for the browser to connect.", schema("CallCreated")),
                    call_links(CallSource::Answer, false),
                ),
            )],
            errors: vec![
                (403, vec!["forbidden"]),
                (
                    409,
                    vec![
                        "twilio_not_configured",
                        "no_caller_id",
                        "idempotency_key_reused",
                        "conflict",
                    ],
                ),
            ],
        },
        Contract {
            method: "GET",
            path: "/calls",
            operation_id: "listCalls",
            tag: "calls",
            description: "The workspace's call log, newest first, filtered by `agent`, `direction` and `status`; or, \
                          with `updatedAfter` (and no filter), every call that changed at or after that moment, \
                          oldest change first: how a client catches up on live events.",
            parameters: vec![
                query("agent", "Calls of this agent.", schema("AgentId")),
                query("direction", "Outbound or inbound calls.", schema("Direction")),
                query("status", "Calls in this state.", schema("CallState")),
                query(
                    "updatedAfter",
                    "Changes at or after this moment (RFC 3339); not combined with a filter.",
                    json!({ "type": "string", "format": "date-time" }),
                ),
                limit_parameter(),
                cursor_parameter(),
            ],
            body: None,
            replies: vec![(
                200,
                with_links(
                    reply(
                        "A page of calls.",
                        object(
                            &["calls", "next"],
                            json!({ "calls": { "type": "array", "items": schema("Call") }, "next": or_null(string()) }),
                        ),
                    ),
                    call_links(CallSource::NewestListed, true),
                ),
            )],
            errors: vec![],
        },
        Contract {
            method: "GET",
            path: "/calls/{callId}",
            operation_id: "getCall",
            tag: "calls",
            description: "One call of the workspace with its timeline (another workspace's call is 404).",
            parameters: vec![],
            body: None,
            replies: vec![(
                200,
                with_links(
                    reply("The call.", schema("CallWithTimeline")),
                    call_links(CallSource::Answer, true),
                ),
            )],
            errors: vec![(404, vec!["not_found"])],
        },
        Contract {
            method: "PATCH",
            path: "/calls/{callId}",
            operation_id: "annotateCall",
            tag: "calls",
            description: "Notes and disposition. The call's agent or an admin.",
            parameters: vec![],
            body: Some(schema("CallAnnotation")),
            replies: vec![(200, call_reply("The call.", schema("Call")))],
            errors: vec![(403, vec!["forbidden"]), (404, vec!["not_found"])],
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/hold",
            operation_id: "holdCall",
            tag: "call control",
            description: "The customer hears hold music, or comes back. The call's agent or an admin; a connected \
                          call only.",
            parameters: vec![],
            body: Some(object(&["hold"], json!({ "hold": boolean() }))),
            replies: vec![(
                200,
                call_reply(
                    "Done.",
                    object(
                        &["callId", "hold"],
                        json!({ "callId": schema("CallId"), "hold": boolean() }),
                    ),
                ),
            )],
            errors: call_control_errors(&["not_holdable"]),
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/hangup",
            operation_id: "hangUpCall",
            tag: "call control",
            description: "Ends the call for everyone in it; a call not dialed yet never will be. The call's agent or \
                          an admin. The state moves on as Twilio reports it.",
            parameters: vec![],
            body: None,
            replies: vec![(
                202,
                reply(
                    "Asked; the call's state now.",
                    object(
                        &["callId", "state"],
                        json!({ "callId": schema("CallId"), "state": schema("CallState") }),
                    ),
                ),
            )],
            errors: call_control_errors(&[]),
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/transfer",
            operation_id: "transferCall",
            tag: "call control",
            description: "Rings the target (an agent's browser, or a number) into the call. Warm: the customer waits \
                          on hold until `/transfer/complete`; cold: the call is handed over once the target joins. \
                          The call's agent or an admin; a connected call, one transfer at a time.",
            parameters: vec![],
            body: Some(schema("TransferRequest")),
            replies: vec![(
                202,
                call_reply(
                    "The target is ringing.",
                    object(
                        &["callId", "transfer"],
                        json!({ "callId": schema("CallId"), "transfer": or_null(schema("Transfer")) }),
                    ),
                ),
            )],
            errors: call_control_errors(&["not_transferable", "no_caller_id"]),
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/transfer/complete",
            operation_id: "completeTransfer",
            tag: "call control",
            description: "A warm transfer's target has joined: the customer comes off hold, the transferring agent \
                          leaves, the call is the target's.",
            parameters: vec![],
            body: None,
            replies: vec![(
                200,
                call_reply(
                    "Handed over.",
                    object(
                        &["callId", "transfer", "agent"],
                        json!({
                            "callId": schema("CallId"),
                            "transfer": or_null(schema("Transfer")),
                            "agent": or_null(schema("AgentId")),
                        }),
                    ),
                ),
            )],
            errors: call_control_errors(&["no_transfer", "transfer_not_answered"]),
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/transfer/cancel",
            operation_id: "cancelTransfer",
            tag: "call control",
            description: "The target is hung up, the customer comes off hold, the call stays with its agent.",
            parameters: vec![],
            body: None,
            replies: vec![(
                200,
                call_reply(
                    "Called off.",
                    object(
                        &["callId", "transfer"],
                        json!({ "callId": schema("CallId"), "transfer": or_null(schema("Transfer")) }),
                    ),
                ),
            )],
            errors: call_control_errors(&["no_transfer"]),
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/monitor",
            operation_id: "monitorCall",
            tag: "call control",
            description: "Supervisors and admins. Rings the supervisor's browser into a connected call (202), or \
                          changes the mode of the leg they have in it (200; 202 while it still rings).",
            parameters: vec![],
            body: Some(object(&["mode"], json!({ "mode": schema("MonitorMode") }))),
            replies: {
                let body = object(
                    &["callId", "participant"],
                    json!({ "callId": schema("CallId"), "participant": or_null(schema("Participant")) }),
                );
                vec![
                    (200, call_reply("The mode changed.", body.clone())),
                    (202, call_reply("The supervisor's browser rings.", body)),
                ]
            },
            errors: call_control_errors(&["not_connected", "no_agent"]),
        },
        Contract {
            method: "DELETE",
            path: "/calls/{callId}/monitor",
            operation_id: "stopMonitoring",
            tag: "call control",
            description: "Supervisors and admins: their own supervisor leg leaves the call (or stops ringing).",
            parameters: vec![],
            body: None,
            replies: vec![(
                200,
                reply(
                    "Left.",
                    object(
                        &["callId", "label"],
                        json!({ "callId": schema("CallId"), "label": string() }),
                    ),
                ),
            )],
            errors: call_control_errors(&["not_monitoring"]),
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/participants/{label}/mute",
            operation_id: "muteParticipant",
            tag: "call control",
            description: "Mutes or unmutes one participant (`customer`, `agent-1`, `transfer-1`, …, as the call \
                          lists them). Supervisors and admins may mute anyone; the call's agent the customer or a \
                          transfer target.",
            parameters: vec![],
            body: Some(object(&["muted"], json!({ "muted": boolean() }))),
            replies: vec![(
                200,
                call_reply(
                    "Done.",
                    object(
                        &["callId", "label", "muted"],
                        json!({ "callId": schema("CallId"), "label": string(), "muted": boolean() }),
                    ),
                ),
            )],
            errors: call_control_errors(&["not_in_conference"]),
        },
        Contract {
            method: "POST",
            path: "/calls/{callId}/recording",
            operation_id: "pauseRecording",
            tag: "call control",
            description: "Pauses the recording of a connected, recorded call (what is said meanwhile is left out) or \
                          resumes it. The call's agent, a supervisor or an admin.",
            parameters: vec![],
            body: Some(object(
                &["action"],
                json!({ "action": { "type": "string", "enum": ["pause", "resume"] } }),
            )),
            replies: vec![(
                200,
                call_reply(
                    "Done.",
                    object(
                        &["callId", "recordingPaused"],
                        json!({ "callId": schema("CallId"), "recordingPaused": boolean() }),
                    ),
                ),
            )],
            errors: call_control_errors(&["not_recording"]),
        },
        Contract {
            method: "GET",
            path: "/calls/{callId}/recording",
            operation_id: "playRecording",
            tag: "recordings",
            description: "The call's newest stored recording (or the one named): in AWS a redirect to a link valid \
                          5 minutes; on the local server the audio itself, with `Range` for seeking.",
            parameters: vec![query(
                "recording",
                "A recording of the call other than the newest.",
                schema("RecordingSid"),
            )],
            body: None,
            replies: vec![
                (
                    200,
                    json!({
                        "description": "The audio (local server).",
                        "content": { "audio/*": { "schema": { "type": "string", "contentMediaType": "audio/*" } } },
                    }),
                ),
                (
                    206,
                    json!({
                        "description": "Part of the audio, as a `Range` header asked (local server).",
                        "content": { "audio/*": { "schema": { "type": "string", "contentMediaType": "audio/*" } } },
                    }),
                ),
                (
                    302,
                    json!({
                        "description": "A link to the audio, valid 5 minutes (AWS).",
                        "headers": {
                            "Location": { "required": true, "schema": { "type": "string", "format": "uri" } },
                        },
                    }),
                ),
            ],
            errors: vec![(404, vec!["not_found"])],
        },
        Contract {
            method: "GET",
            path: "/messages",
            operation_id: "listMessages",
            tag: "messages",
            description: "The workspace's texts, newest first, filtered by our `number` and the `counterpart`; or, \
                          with `updatedAfter` (and no filter), every text that changed at or after that moment, \
                          oldest change first.",
            parameters: vec![
                query(
                    "number",
                    "Texts to or from this number of the workspace.",
                    schema("E164"),
                ),
                query(
                    "counterpart",
                    "Texts with this party: a number, a short code or an alphanumeric sender.",
                    json!({ "type": "string", "minLength": 1, "maxLength": 64, "pattern": CONTROL_FREE }),
                ),
                query(
                    "updatedAfter",
                    "Changes at or after this moment (RFC 3339); not combined with a filter.",
                    json!({ "type": "string", "format": "date-time" }),
                ),
                limit_parameter(),
                cursor_parameter(),
            ],
            body: None,
            replies: vec![(
                200,
                reply(
                    "A page of texts.",
                    object(
                        &["messages", "next"],
                        json!({ "messages": { "type": "array", "items": schema("Message") }, "next": or_null(string()) }),
                    ),
                ),
            )],
            errors: vec![],
        },
        Contract {
            method: "POST",
            path: "/messages",
            operation_id: "sendMessage",
            tag: "messages",
            description: "Sends a text from a number the agent may use. With an `Idempotency-Key` it is sent at most \
                          once: a key whose outcome is unknown is never sent again (409 `idempotency_key_in_use`).",
            parameters: vec![idempotency_key("answers with the one message")],
            body: Some(schema("NewMessage")),
            replies: vec![(201, reply("The text, as Twilio took it.", schema("Message")))],
            errors: vec![
                (400, vec!["bad_request", "invalid_number"]),
                (403, vec!["forbidden"]),
                (
                    409,
                    vec![
                        "twilio_not_configured",
                        "idempotency_key_reused",
                        "idempotency_key_in_use",
                    ],
                ),
                (502, vec!["upstream_error"]),
            ],
        },
    ]
}

/// What every call-control route can answer besides `codes` (409).
fn call_control_errors(codes: &[&'static str]) -> Vec<(u16, Vec<&'static str>)> {
    let mut conflicts = vec!["twilio_not_configured"];
    conflicts.extend_from_slice(codes);
    vec![
        (400, vec!["bad_request"]),
        (403, vec!["forbidden"]),
        (404, vec!["not_found"]),
        (409, conflicts),
        (502, vec!["upstream_error"]),
    ]
}

fn limit_parameter() -> Value {
    query(
        "limit",
        "How many per page (default 25).",
        json!({ "type": "integer", "minimum": 1, "maximum": 100 }),
    )
}

fn cursor_parameter() -> Value {
    query(
        "cursor",
        "The `next` of the previous page.",
        json!({ "type": "string", "minLength": 1 }),
    )
}

/// No control characters (Unicode's `Cc`), as the handlers check.
const CONTROL_FREE: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// The JSON error, its `code` one of `codes`.
fn error_schema(codes: &[&str]) -> Value {
    json!({
        "allOf": [
            schema("Error"),
            {
                "type": "object",
                "properties": { "error": { "type": "object", "properties": { "code": { "enum": codes } } } },
            },
        ],
    })
}

/// The errors most operations share, kept once under `components.responses`:
/// name, status, code.
const COMMON_ERRORS: [(&str, u16, &str); 8] = [
    ("BadRequest", 400, "bad_request"),
    ("Unauthorized", 401, "unauthorized"),
    ("Forbidden", 403, "forbidden"),
    ("NotFound", 404, "not_found"),
    ("PayloadTooLarge", 413, "payload_too_large"),
    ("UnsupportedMediaType", 415, "unsupported_media_type"),
    ("UpstreamError", 502, "upstream_error"),
    ("Unavailable", 503, "unavailable"),
];

/// An error response: `status`, its code one of `codes`.
fn error_response(status: u16, codes: &[&str]) -> Value {
    let mut response = reply(
        &format!("{} (`{}`)", error_description(status), codes.join("`, `")),
        error_schema(codes),
    );
    if status == 401 {
        response["headers"] = json!({
            "WWW-Authenticate": { "required": true, "schema": { "type": "string", "const": "Bearer" } },
        });
    }
    response
}

fn response_components() -> Value {
    let mut responses = Map::new();
    for (name, status, code) in COMMON_ERRORS {
        responses.insert(name.to_owned(), error_response(status, &[code]));
    }
    Value::Object(responses)
}

/// What each status of the gate means, for the error responses' descriptions.
fn error_description(status: u16) -> &'static str {
    match status {
        400 => "The request is not valid: `error.message` says what is wrong.",
        401 => "No bearer token, or one that is expired, wrongly signed, not yet valid or names no workspace.",
        403 => "Not allowed: the route needs another role, or the call or number is not the agent's.",
        404 => "No such resource in the agent's workspace.",
        409 => "The request conflicts with the workspace's state: `error.code` says how.",
        413 => "The request body is larger than 64 KiB.",
        415 => "The request body must be `application/json`.",
        502 => "Twilio failed: `error.message` names the step.",
        503 => "The store, the secrets or the identity provider's keys are unavailable: retry shortly.",
        _ => "An error.",
    }
}

/// The document: `operations` are the route table's rows that are part of
/// the API (agent, admin and public routes), each with its contract.
pub fn document(operations: &[Operation]) -> Value {
    let contracts = contracts();
    let mut paths = Map::new();
    for operation in operations {
        let contract = contracts
            .iter()
            .find(|c| c.method == operation.method && c.path == operation.path);
        let item = paths.entry(operation.path.to_owned()).or_insert_with(|| json!({}));
        if let Some(parameters) = path_parameters(operation.path) {
            item["parameters"] = parameters;
        }
        item[operation.method.to_ascii_lowercase()] = operation_object(operation, contract);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "The backend for browser softphones on Twilio Voice.",
            "description": DESCRIPTION,
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "servers": [{ "url": "/", "description": "The API's own origin (the local server, or the HTTP API in AWS)." }],
        "tags": [
            { "name": "service", "description": "Health and this contract." },
            { "name": "token", "description": "Voice access tokens." },
            { "name": "workspace", "description": "The workspace's Twilio account (admins)." },
            { "name": "numbers", "description": "The workspace's numbers and who answers them." },
            { "name": "calls", "description": "Placing calls and the call log." },
            { "name": "call control", "description": "Hold, hang up, transfer, supervise, mute, pause the recording." },
            { "name": "recordings", "description": "Playing recordings back." },
            { "name": "messages", "description": "Texts." },
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The agent's sign-in token from the company's identity provider (HS256 with the \
                                    shared secret, or RS256/ES256 from its JWKS), naming the workspace and the role \
                                    (`admin`, `supervisor`, or an agent) in the configured claims.",
                },
            },
            "schemas": component_schemas(),
            "responses": response_components(),
            "links": link_components(),
        },
        "x-live-events": {
            "description": "A WebSocket per signed-in browser: open the `eventsUrl` of `POST /token` with \
                            `?token=<the sign-in token>` (checked as a bearer token is, before the upgrade: 401 \
                            otherwise). The server sends a `LiveEvent` for every change to a call or text of the \
                            workspace, the object whole, and answers the client's `Ping` with a `Pong`. It closes \
                            the socket with 4001 when the sign-in token expires and 4002 when the client falls too \
                            far behind (in AWS also after two hours); on reconnect, list what changed with \
                            `updatedAfter` (`GET /calls`, `GET /messages`).",
            "query": { "token": "The agent's sign-in token (a JWT)." },
            "serverMessages": { "oneOf": [schema("LiveEvent"), schema("Pong")] },
            "clientMessages": schema("Ping"),
            "closeCodes": {
                "4001": "the sign-in token expired: sign in again and reconnect",
                "4002": "too far behind: reconnect and list what changed (updatedAfter)",
            },
        },
    })
}

const DESCRIPTION: &str = "Agents sign in with their company's identity provider and send its token as \
    `Authorization: Bearer <JWT>`. Every error is `{\"error\": {\"code\", \"message\"}}` with the status and \
    code each operation lists; a wrong method on a path is 405 with `Allow`; an empty query value \
    (`?limit=`) is 400, never read as absent. Call ids are ULIDs; phone numbers \
    are E.164 (`+14155550100`); times are RFC 3339 UTC with milliseconds. Live events (a WebSocket) are \
    described under `x-live-events` and by the schemas `LiveEvent`, `Ping` and `Pong`.";

fn path_parameters(path: &str) -> Option<Value> {
    let names: Vec<&str> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    if names.is_empty() {
        return None;
    }
    let parameters: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let (schema, description) = match name {
                "callId" => (schema("CallId"), "The call's id (`callId`)."),
                "number" => (
                    schema("E164"),
                    "One of the workspace's numbers, E.164 (`%2B` for the `+`).",
                ),
                "label" => (
                    json!({ "type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-z]+(-[0-9]+)?$" }),
                    "The participant's label, as the call lists it (`customer`, `agent-1`, `transfer-1`, …).",
                ),
                _ => (string(), "A path parameter."),
            };
            json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
        })
        .collect();
    Some(Value::Array(parameters))
}

fn operation_object(operation: &Operation, contract: Option<&Contract>) -> Value {
    let mut object = Map::new();
    object.insert("summary".into(), json!(operation.summary));
    let mut errors: Vec<(u16, Vec<&str>)> = Vec::new();
    let mut add = |status: u16, codes: &[&'static str]| match errors.iter_mut().find(|(s, _)| *s == status) {
        Some((_, list)) => {
            for code in codes {
                if !list.contains(code) {
                    list.push(code);
                }
            }
        }
        None => errors.push((status, codes.to_vec())),
    };
    // The gate: the router refuses large bodies of every route; sign-in and
    // the store stand before every agent route.
    add(413, &["payload_too_large"]);
    if operation.access != Access::Public {
        add(401, &["unauthorized"]);
        add(503, &["unavailable"]);
    }
    if operation.access == Access::Admin {
        add(403, &["forbidden"]);
    }
    if operation.path.contains('{') {
        add(400, &["bad_request"]);
    }
    if let Some(contract) = contract {
        object.insert("operationId".into(), json!(contract.operation_id));
        object.insert("tags".into(), json!([contract.tag]));
        object.insert("description".into(), json!(contract.description));
        if !contract.parameters.is_empty() {
            object.insert("parameters".into(), json!(contract.parameters));
            add(400, &["bad_request"]);
        }
        if let Some(body) = &contract.body {
            object.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": body } } }),
            );
            add(400, &["bad_request"]);
            add(415, &["unsupported_media_type"]);
        }
        for (status, codes) in &contract.errors {
            add(*status, codes);
        }
    }
    let mut responses = Map::new();
    for (status, response) in contract.map(|c| c.replies.as_slice()).unwrap_or_default() {
        responses.insert(status.to_string(), response.clone());
    }
    errors.sort_by_key(|(status, _)| *status);
    for (status, codes) in errors {
        let key = status.to_string();
        if let Some(reply) = responses.get_mut(&key) {
            // A status with a body of its own (a report) may also be a plain
            // error: the codes go into its description.
            let extra = format!(" Or an error: {}.", codes.join(", "));
            if let Some(description) = reply["description"].as_str() {
                reply["description"] = json!(format!("{description}{extra}"));
            }
            continue;
        }
        let common = COMMON_ERRORS
            .iter()
            .find(|(_, common_status, code)| *common_status == status && codes == [*code]);
        let response = match common {
            Some((name, ..)) => json!({ "$ref": format!("#/components/responses/{name}") }),
            None => error_response(status, &codes),
        };
        responses.insert(key, response);
    }
    object.insert("responses".into(), Value::Object(responses));
    match operation.access {
        Access::Public => {
            object.insert("security".into(), json!([]));
        }
        Access::Agent | Access::Admin => {
            object.insert("security".into(), json!([{ "bearer": [] }]));
        }
    }
    object.insert(
        "x-access".into(),
        json!(match operation.access {
            Access::Public => "public",
            Access::Agent => "agent",
            Access::Admin => "admin",
        }),
    );
    Value::Object(object)
}

/// The shapes the API answers with and reads, by name.
fn component_schemas() -> Value {
    let state_names = json!([
        "created",
        "dialing",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "no-answer",
        "failed",
        "canceled",
        "abandoned"
    ]);
    let leg_states = json!([
        "ringing",
        "answered",
        "joined",
        "left",
        "no-answer",
        "busy",
        "failed",
        "canceled",
        "refused"
    ]);
    let sid = |prefix: &str| json!({ "type": "string", "pattern": format!("^{prefix}[0-9a-fA-F]{{32}}$") });
    let call = object(&CALL_FIELDS, call_properties());
    let mut call_with_timeline = call.clone();
    call_with_timeline["required"] = json!([CALL_FIELDS.as_slice(), &["timeline"]].concat());
    call_with_timeline["properties"]["timeline"] = json!({ "type": "array", "items": schema("TimelineEvent") });
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        object(&["error"], json!({ "error": schema("ErrorDetail") })),
    );
    schemas.insert("ErrorDetail".into(), object(&["code", "message"], json!({
            "code": { "type": "string", "description": "Stable, for programs: `unauthorized`, `not_found`, `twilio_not_configured`, …" },
            "message": { "type": "string", "description": "For people; never a secret." },
        })));
    schemas.insert(
        "Health".into(),
        object(
            &["status"],
            json!({ "status": { "type": "string", "enum": ["up", "down"] } }),
        ),
    );
    schemas.insert(
        "Timestamp".into(),
        json!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339, UTC, exactly three fraction digits: text order is time order.",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
            "examples": ["2026-11-30T10:31:02.041Z"],
        }),
    );
    schemas.insert(
        "E164".into(),
        json!({
            "type": "string",
            "description": "A phone number in E.164 form, checked against libphonenumber's numbering plans.",
            "pattern": "^\\+[1-9][0-9]{1,14}$",
            "examples": ["+14155550100"],
        }),
    );
    schemas.insert(
        "AgentId".into(),
        json!({
            "type": "string",
            "description": "An agent, as the identity provider's `sub` claim names them.",
            "minLength": 1,
            "maxLength": 255,
            "pattern": CONTROL_FREE,
        }),
    );
    schemas.insert(
        "CallId".into(),
        json!({
            "type": "string",
            "description": "A call session's id: a ULID.",
            "pattern": "^[0-7][0-9A-HJKMNP-TV-Z]{25}$",
            "examples": ["01JDZ8V7T3ZK5Q0M8X2C4N6P9R"],
        }),
    );
    schemas.insert("CallSid".into(), sid("CA"));
    schemas.insert("ConferenceSid".into(), sid("CF"));
    schemas.insert("RecordingSid".into(), sid("RE"));
    schemas.insert(
        "MessageSid".into(),
        json!({ "type": "string", "pattern": "^(SM|MM)[0-9a-fA-F]{32}$" }),
    );
    schemas.insert(
        "Direction".into(),
        json!({ "type": "string", "enum": ["outbound", "inbound"] }),
    );
    schemas.insert(
        "CallState".into(),
        json!({
            "type": "string",
            "enum": state_names,
            "description": "Forward only: created → dialing → ringing → in-progress → a final state.",
        }),
    );
    schemas.insert("LegState".into(), json!({ "type": "string", "enum": leg_states }));
    schemas.insert("MonitorMode".into(), json!({
            "type": "string",
            "enum": ["listen", "whisper", "barge"],
            "description": "listen: hears everyone, heard by nobody; whisper: heard by the call's agent only; barge: a full participant.",
        }));
    schemas.insert("VoiceToken".into(), object(&["token", "identity", "expiresIn", "eventsUrl"], json!({
            "token": { "type": "string", "description": "A Twilio Voice access token (a JWT) for the Voice SDK." },
            "identity": { "type": "string", "description": "The client identity calls ring (`agent_…`)." },
            "expiresIn": { "type": "integer", "minimum": 1, "description": "Seconds." },
            "eventsUrl": { "type": "string", "format": "uri", "description": "The live-event WebSocket (`?token=` the sign-in token)." },
        })));
    schemas.insert("TwilioConfiguration".into(), json!({
            "type": "object",
            "required": ["accountSid", "authToken"],
            "additionalProperties": false,
            "properties": {
                "accountSid": sid("AC"),
                "authToken": {
                    "type": "string",
                    "description": "The account's Auth Token (stored sealed, never shown again).",
                    "pattern": "^\\s*\\S{1,128}\\s*$",
                },
                "callerId": or_null(json!({ "$ref": "#/components/schemas/E164", "description": "The caller ID of agents without a number of their own." })),
                "record": or_null(json!({ "type": "boolean", "description": "Record calls." })),
                "deleteTwilioRecordingAfterCopy": or_null(json!({ "type": "boolean", "description": "Delete Twilio's copy once ours is verified." })),
                "smsAutoReply": or_null(json!({ "type": "string", "maxLength": 1600, "description": "Answer inbound texts with this; empty: no answer." })),
                "ringSeconds": or_null(json!({ "type": "integer", "minimum": 5, "maximum": 120, "description": "How long agents ring for an inbound call before voicemail (default 20)." })),
                "waitUrl": or_null(json!({
                    "type": "string",
                    "maxLength": 1024,
                    "anyOf": [{ "pattern": "^\\s*$" }, { "pattern": "^\\s*[hH][tT][tT][pP][sS]?://[^\\s/?#]+[^\\s]*\\s*$" }],
                    "description": "What an inbound caller hears while waiting: an http(s) URL of audio or TwiML; empty: Twilio's music.",
                })),
            },
        }));
    schemas.insert("ResourceReport".into(), json!({
            "type": "object",
            "required": ["kind", "result"],
            "additionalProperties": false,
            "properties": {
                "kind": { "type": "string", "enum": ["apiKey", "twimlApp", "phoneNumber"] },
                "sid": string(),
                "number": string(),
                "result": { "type": "string", "enum": ["created", "updated", "unchanged", "deleted", "cleared", "absent", "failed"] },
                "reason": string(),
            },
        }));
    schemas.insert(
        "WiringReport".into(),
        json!({
            "type": "object",
            "required": ["workspace", "accountSid", "complete", "resources"],
            "additionalProperties": false,
            "properties": {
                "workspace": string(),
                "accountSid": sid("AC"),
                "complete": boolean(),
                "resources": { "type": "array", "items": schema("ResourceReport") },
                "error": { "$ref": "#/components/schemas/ErrorDetail", "description": "With `complete: false` only." },
            },
        }),
    );
    schemas.insert(
        "ClearReport".into(),
        json!({
            "type": "object",
            "required": ["cleared", "resources"],
            "additionalProperties": false,
            "properties": {
                "cleared": boolean(),
                "resources": { "type": "array", "items": schema("ResourceReport") },
                "error": { "$ref": "#/components/schemas/ErrorDetail", "description": "With `cleared: false` only." },
            },
        }),
    );
    schemas.insert(
        "TwilioWiring".into(),
        json!({
            "oneOf": [
                object(&["configured"], json!({ "configured": { "const": false } })),
                object(
                    &["configured", "accountSid", "apiKeySid", "twimlAppSid", "callerId", "record",
                      "deleteTwilioRecordingAfterCopy", "smsAutoReply", "ringSeconds", "waitUrl", "numbers", "drift"],
                    json!({
                        "configured": { "const": true },
                        "accountSid": sid("AC"),
                        "apiKeySid": or_null(sid("SK")),
                        "twimlAppSid": or_null(sid("AP")),
                        "callerId": or_null(schema("E164")),
                        "record": boolean(),
                        "deleteTwilioRecordingAfterCopy": boolean(),
                        "smsAutoReply": or_null(string()),
                        "ringSeconds": { "type": "integer" },
                        "waitUrl": or_null(string()),
                        "numbers": { "type": "array", "items": schema("Number") },
                        "drift": schema("Drift"),
                    }),
                ),
            ],
        }),
    );
    schemas.insert("Drift".into(), json!({
            "description": "Whether Twilio still holds what was configured (`checked: false` when Twilio could not be asked).",
            "oneOf": [
                object(&["checked", "error"], json!({ "checked": { "const": false }, "error": string() })),
                object(
                    &["checked", "inSync", "twimlApp", "numbers", "unmanagedNumbers"],
                    json!({
                        "checked": { "const": true },
                        "inSync": boolean(),
                        "twimlApp": {
                            "type": "object",
                            "required": ["inSync"],
                            "additionalProperties": false,
                            "properties": {
                                "sid": string(),
                                "inSync": boolean(),
                                "missing": boolean(),
                                "voiceUrl": or_null(string()),
                                "statusCallback": or_null(string()),
                            },
                        },
                        "numbers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["number", "sid", "inSync"],
                                "additionalProperties": false,
                                "properties": {
                                    "number": schema("E164"),
                                    "sid": or_null(string()),
                                    "inSync": boolean(),
                                    "missing": boolean(),
                                    "voiceUrl": or_null(string()),
                                    "statusCallback": or_null(string()),
                                    "smsUrl": or_null(string()),
                                    "voiceApplicationSid": or_null(string()),
                                },
                            },
                        },
                        "unmanagedNumbers": { "type": "array", "items": string() },
                    }),
                ),
            ],
        }));
    schemas.insert("Number".into(), object(&["number", "sid", "agents", "label"], json!({
            "number": schema("E164"),
            "sid": or_null(sid("PN")),
            "agents": { "type": "array", "items": schema("AgentId"), "description": "Who rings and may use it; none: a shared line." },
            "label": or_null(string()),
        })));
    schemas.insert("NumberAssignment".into(), object(&["agents"], json!({
            "agents": { "type": "array", "maxItems": 200, "items": schema("AgentId") },
            "label": or_null(json!({ "type": "string", "maxLength": 64, "pattern": CONTROL_FREE, "description": "Trimmed; empty: none." })),
        })));
    schemas.insert("NewCall".into(), object(&["to"], json!({
            "to": schema("E164"),
            "from": or_null(json!({ "$ref": "#/components/schemas/E164", "description": "A workspace number the agent may call from." })),
        })));
    schemas.insert(
        "CallCreated".into(),
        object(
            &["callId", "conference", "from", "to", "connectParams"],
            json!({
                "callId": schema("CallId"),
                "conference": { "type": "string", "description": "The conference's name." },
                "from": string(),
                "to": string(),
                "connectParams": object(&["callId"], json!({ "callId": schema("CallId") })),
            }),
        ),
    );
    schemas.insert(
        "CallAnnotation".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "description": "At least one of the two.",
            "properties": {
                "notes": or_null(json!({ "type": "string", "maxLength": 4000 })),
                "disposition": or_null(json!({ "type": "string", "maxLength": 64, "pattern": CONTROL_FREE })),
            },
            "anyOf": [
                { "required": ["notes"], "properties": { "notes": string() } },
                { "required": ["disposition"], "properties": { "disposition": string() } },
            ],
        }),
    );
    schemas.insert(
        "TransferTarget".into(),
        json!({
            "oneOf": [
                object(&["agent"], json!({ "agent": schema("AgentId") })),
                object(&["number"], json!({ "number": schema("E164") })),
            ],
        }),
    );
    schemas.insert(
        "TransferRequest".into(),
        object(
            &["to", "mode"],
            json!({
                "to": schema("TransferTarget"),
                "mode": { "type": "string", "enum": ["warm", "cold"] },
            }),
        ),
    );
    schemas.insert(
        "Transfer".into(),
        object(
            &["label", "mode", "to", "state", "by", "fromLabel", "startedAt"],
            json!({
                "label": { "type": "string", "description": "The target's participant label (`transfer-1`, …)." },
                "mode": { "type": "string", "enum": ["warm", "cold"] },
                "to": schema("TransferTarget"),
                "state": { "type": "string", "enum": ["ringing", "talking", "completed", "failed", "canceled"] },
                "by": schema("AgentId"),
                "fromLabel": or_null(string()),
                "startedAt": timestamp(),
            }),
        ),
    );
    schemas.insert(
        "Participant".into(),
        object(
            &[
                "label", "role", "agent", "number", "callSid", "state", "held", "muted", "reached", "monitor",
            ],
            json!({
                "label": string(),
                "role": { "type": "string", "enum": ["customer", "agent", "supervisor", "transfer"] },
                "agent": or_null(schema("AgentId")),
                "number": or_null(string()),
                "callSid": or_null(schema("CallSid")),
                "state": schema("LegState"),
                "held": boolean(),
                "muted": boolean(),
                "reached": {
                    "type": "object",
                    "description": "The first moment each leg state was reached.",
                    "propertyNames": schema("LegState"),
                    "additionalProperties": timestamp(),
                },
                "monitor": or_null(schema("MonitorMode")),
            }),
        ),
    );
    schemas.insert(
        "Recording".into(),
        object(
            &[
                "sid",
                "status",
                "source",
                "channels",
                "durationSeconds",
                "objectKey",
                "size",
                "sha256",
                "contentType",
                "failedAttempts",
                "lastError",
                "twilioDeleted",
                "receivedAt",
                "storedAt",
            ],
            json!({
                "sid": schema("RecordingSid"),
                "status": { "type": "string", "enum": ["pending", "stored", "absent", "failed"] },
                "source": or_null(string()),
                "channels": or_null(json!({ "type": "integer", "minimum": 0 })),
                "durationSeconds": or_null(json!({ "type": "integer", "minimum": 0 })),
                "objectKey": or_null(string()),
                "size": or_null(json!({ "type": "integer", "minimum": 0 })),
                "sha256": or_null(json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" })),
                "contentType": or_null(string()),
                "failedAttempts": { "type": "integer", "minimum": 0 },
                "lastError": or_null(string()),
                "twilioDeleted": boolean(),
                "receivedAt": timestamp(),
                "storedAt": or_null(timestamp()),
            }),
        ),
    );
    schemas.insert("TimelineEvent".into(), object(&["key", "at", "kind", "detail"], json!({
            "key": string(),
            "at": timestamp(),
            "kind": { "type": "string", "examples": ["initiated", "participant-join", "customer-held", "transfer-started"] },
            "detail": { "type": "object", "additionalProperties": string() },
        })));
    schemas.insert("Call".into(), call);
    schemas.insert("CallWithTimeline".into(), call_with_timeline);
    schemas.insert("NewMessage".into(), object(&["to", "from", "body"], json!({
            "to": schema("E164"),
            "from": { "$ref": "#/components/schemas/E164", "description": "A workspace number the agent may text from." },
            "body": { "type": "string", "minLength": 1, "maxLength": 1600, "pattern": "\\S" },
        })));
    schemas.insert("Message".into(), object(
            &["sid", "direction", "from", "to", "body", "mediaUrls", "status", "agent", "createdAt", "updatedAt"],
            json!({
                "sid": schema("MessageSid"),
                "direction": schema("Direction"),
                "from": string(),
                "to": string(),
                "body": string(),
                "mediaUrls": { "type": "array", "items": string() },
                "status": {
                    "type": "string",
                    "description": "Twilio's status; it only moves forward. A status Twilio adds later is kept as sent.",
                    "examples": ["queued", "sent", "delivered", "undelivered", "failed", "received", "read"],
                },
                "agent": or_null(schema("AgentId")),
                "createdAt": timestamp(),
                "updatedAt": timestamp(),
            }),
        ));
    schemas.insert("LiveEvent".into(), json!({
            "description": "A change, pushed on the live-event socket: the object whole, as the listings show it. Replace your copy by id when `data.updatedAt` is newer.",
            "oneOf": [
                object(&["type", "data"], json!({ "type": { "const": "call" }, "data": schema("Call") })),
                object(&["type", "data"], json!({ "type": { "const": "message" }, "data": schema("Message") })),
            ],
        }));
    schemas.insert(
        "Ping".into(),
        json!({
            "type": "object",
            "description": "Sent by the client every few minutes (idle sockets are dropped); answered with a Pong.",
            "required": ["action"],
            "properties": { "action": { "const": "ping" } },
        }),
    );
    schemas.insert("Pong".into(), object(&["type"], json!({ "type": { "const": "pong" } })));
    Value::Object(schemas)
}

/// A call as `views::call` renders a session: every field, `null` when unset.
const CALL_FIELDS: [&str; 24] = [
    "callId",
    "direction",
    "agent",
    "from",
    "to",
    "conference",
    "state",
    "reached",
    "createdAt",
    "updatedAt",
    "agentCallSid",
    "customerCallSid",
    "conferenceSid",
    "endReason",
    "durationSeconds",
    "notes",
    "disposition",
    "recordings",
    "participants",
    "answeredBy",
    "agentLabel",
    "transfer",
    "recorded",
    "recordingPaused",
];

/// The properties of a call as `views::call` renders a session.
fn call_properties() -> Value {
    json!({
        "callId": schema("CallId"),
        "direction": schema("Direction"),
        "agent": or_null(schema("AgentId")),
        "from": string(),
        "to": string(),
        "conference": string(),
        "state": schema("CallState"),
        "reached": {
            "type": "object",
            "description": "The first moment each state was reached.",
            "propertyNames": schema("CallState"),
            "additionalProperties": timestamp(),
        },
        "createdAt": timestamp(),
        "updatedAt": { "$ref": "#/components/schemas/Timestamp", "description": "Grows with every change." },
        "agentCallSid": or_null(schema("CallSid")),
        "customerCallSid": or_null(schema("CallSid")),
        "conferenceSid": or_null(schema("ConferenceSid")),
        "endReason": or_null(string()),
        "durationSeconds": or_null(json!({ "type": "integer", "minimum": 0 })),
        "notes": or_null(string()),
        "disposition": or_null(string()),
        "recordings": {
            "type": "object",
            "description": "By RecordingSid.",
            "additionalProperties": schema("Recording"),
        },
        "participants": {
            "type": "object",
            "description": "Every leg, by label (`customer`, `agent-1`, `transfer-1`, `supervisor-1`, …).",
            "additionalProperties": schema("Participant"),
        },
        "answeredBy": or_null(string()),
        "agentLabel": or_null(string()),
        "transfer": or_null(schema("Transfer")),
        "recorded": boolean(),
        "recordingPaused": boolean(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::routes::{self, Handler, ROUTES};

    fn api_routes() -> BTreeSet<(String, &'static str)> {
        ROUTES
            .iter()
            .filter(|r| matches!(r.handler, Handler::Agent(_) | Handler::Admin(_) | Handler::Public(_)))
            .map(|r| (r.method.as_str().to_owned(), r.path))
            .collect()
    }

    #[test]
    fn every_api_route_has_a_contract_and_every_contract_a_route() {
        let with_contract: BTreeSet<(String, &'static str)> =
            contracts().iter().map(|c| (c.method.to_owned(), c.path)).collect();
        let routes = api_routes();
        let missing: Vec<_> = routes.difference(&with_contract).collect();
        let stray: Vec<_> = with_contract.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes of ROUTES without a contract in openapi.rs: {missing:?}"
        );
        assert!(
            stray.is_empty(),
            "contracts in openapi.rs naming no agent route: {stray:?}"
        );
        assert_eq!(
            with_contract.len(),
            contracts().len(),
            "one contract per method and path"
        );
    }

    #[test]
    fn the_document_has_every_api_route_and_nothing_else() {
        let document = routes::openapi();
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters") {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let routes: BTreeSet<(String, String)> = api_routes().into_iter().map(|(m, p)| (m, p.to_owned())).collect();
        assert_eq!(documented, routes);
        // Twilio's webhooks, the socket and the dialer's pages are not agent routes.
        assert!(
            !document["paths"]
                .as_object()
                .unwrap()
                .keys()
                .any(|p| p.starts_with("/twilio/"))
        );
    }

    #[test]
    fn operation_ids_are_unique_and_links_name_operations_and_parameters() {
        let document = routes::openapi();
        let mut ids = BTreeSet::new();
        let mut parameters_of = std::collections::BTreeMap::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            let path_parameters: Vec<String> = item["parameters"]
                .as_array()
                .map(|list| list.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            for (method, operation) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters") {
                let id = operation["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}: operationId"));
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
                parameters_of.insert(id.to_owned(), path_parameters.clone());
                for status in operation["responses"].as_object().unwrap().keys() {
                    assert!(status.parse::<u16>().is_ok(), "{method} {path}: response {status}");
                }
            }
        }
        let mut links = 0;
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                for response in operation["responses"].as_object().into_iter().flat_map(|r| r.values()) {
                    for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                        let link = match link["$ref"].as_str() {
                            Some(target) => document.pointer(target.trim_start_matches('#')).unwrap(),
                            None => link,
                        };
                        let target = link["operationId"].as_str().unwrap();
                        let wanted = parameters_of.get(target).unwrap_or_else(|| panic!("link to {target}"));
                        for name in link["parameters"].as_object().unwrap().keys() {
                            assert!(wanted.contains(name), "link to {target}: no parameter {name}");
                        }
                        links += 1;
                    }
                }
            }
        }
        assert!(links >= 12, "POST /calls links to what can be done with the call");
    }

    #[test]
    fn every_reference_resolves() {
        let document = routes::openapi();
        fn walk(value: &Value, document: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').expect("local references only");
                        assert!(document.pointer(pointer).is_some(), "{target} resolves to nothing");
                    }
                    map.values().for_each(|v| walk(v, document));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, document)),
                _ => {}
            }
        }
        walk(&document, &document);
    }

    #[test]
    fn agent_routes_are_secured_and_errors_documented() {
        let document = routes::openapi();
        for route in ROUTES {
            let (admin, public) = match route.handler {
                Handler::Agent(_) => (false, false),
                Handler::Admin(_) => (true, false),
                Handler::Public(_) => (false, true),
                _ => continue,
            };
            let operation = &document["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            let label = format!("{} {}", route.method, route.path);
            assert_eq!(operation["summary"], route.summary, "{label}: the table's summary");
            let responses = operation["responses"].as_object().unwrap();
            // A shared error is referred to: its status must still be the key.
            for (status, response) in responses {
                if let Some(target) = response["$ref"].as_str() {
                    let shared = document.pointer(target.trim_start_matches('#')).unwrap();
                    let code = shared["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"][0].as_str().unwrap();
                    let (_, common_status, _) = COMMON_ERRORS.iter().find(|(_, _, c)| *c == code).unwrap();
                    assert_eq!(status, &common_status.to_string(), "{label}: {target}");
                }
            }
            assert!(responses.contains_key("413"), "{label}: 413");
            if public {
                assert_eq!(operation["security"], json!([]), "{label}");
                continue;
            }
            assert_eq!(operation["security"], json!([{ "bearer": [] }]), "{label}");
            for status in ["401", "503"] {
                assert!(responses.contains_key(status), "{label}: {status}");
            }
            if admin {
                assert_eq!(operation["x-access"], "admin");
                assert!(
                    responses.contains_key("403"),
                    "{label}: admin routes are 403 for agents"
                );
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("415"), "{label}: 415");
                assert!(responses.contains_key("400"), "{label}: 400");
            }
        }
    }
}
