//! Ringing the agents of an inbound call into its conference, and stopping
//! them once someone answered or the caller left.
//!
//! Each agent's browser is rung with a call of its own over the Calls API,
//! whose `Url` Twilio fetches when the agent accepts: that is where the
//! first answer wins and a late one is refused (a leg created with the
//! Participants API would join the conference on answer, with no say). Calls
//! created over REST are paced by the account's calls-per-second limit (one a
//! second by default), so the agents of a number start ringing up to a
//! second apart each; README "Calls" has the figures.

use futures_util::future::join_all;

use crate::api::ApiError;
use crate::app::App;
use crate::calls::{answer_url, join_url, status_url};
use crate::ids::{AgentId, CallSid};
use crate::model::calls::{CallSession, LegState, Role};
use crate::phone::E164;
use crate::ports::StoreError;
use crate::telemetry::error_chain;
use crate::time::Timestamp;
use crate::twilio::access_token::client_address;
use crate::twilio::rest::{EndCall, NewCall, TwilioClient, TwilioError};
use crate::webhook::WebhookError;
use crate::workspace::Workspace;

/// The "do this once" step that rings the agents (Twilio may ask for the
/// inbound TwiML twice; the agents ring once).
pub const RING_AGENTS: &str = "ring-agents";

/// Rings `agents` for `session`, once. False if no agent could be rung at
/// all (the caller then goes to voicemail).
pub async fn ring_agents(
    app: &App,
    workspace: &Workspace,
    session: &CallSession,
    agents: &[AgentId],
) -> Result<bool, WebhookError> {
    let now = Timestamp::now();
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            if s.claim(RING_AGENTS, now) {
                for agent in agents {
                    let label = s.next_label(Role::Agent);
                    s.add_participant(&label, Role::Agent, Some(agent.clone()), None, now);
                }
            }
        })
        .await?;
    if modified.before.steps.contains_key(RING_AGENTS) {
        // Rung already: whether anyone still can answer is the session's.
        return Ok(!modified.after.nobody_answered());
    }
    let session = modified.after;
    let client = app.twilio_for(workspace).await?;
    // What the agent's browser shows as the caller: the caller's number,
    // else (a withheld number) the number they called.
    let from = E164::from_canonical(&session.from).map_or_else(|_| session.to.clone(), |n| n.to_string());
    let ring_seconds = workspace.settings.ring_seconds();
    let rung: Vec<(String, AgentId)> = session
        .participants
        .values()
        .filter(|p| p.role == Role::Agent)
        .filter_map(|p| Some((p.label.clone(), p.agent.clone()?)))
        .collect();
    let placed = join_all(rung.iter().map(|(label, agent)| {
        let to = client_address(
            agent,
            &[
                ("callId", session.id.as_str()),
                ("from", &session.from),
                ("kind", "inbound"),
            ],
        );
        let url = answer_url(app, &session.id, label);
        let status = status_url(app, &session.id, Some(&format!("agent&label={label}")));
        let client = &client;
        let from = &from;
        async move {
            client
                .create_call(&NewCall {
                    to: &to,
                    from,
                    url: &url,
                    status_callback: &status,
                    timeout_seconds: ring_seconds,
                })
                .await
        }
    }))
    .await;
    let mut legs: Vec<(String, Result<CallSid, String>)> = Vec::new();
    for ((label, _), result) in rung.iter().zip(placed) {
        legs.push((label.clone(), result.map(|call| call.sid).map_err(|e| error_chain(&e))));
    }
    for (label, leg) in &legs {
        match leg {
            Ok(sid) => app.store.link_call_sid(&session.workspace, sid, &session.id).await?,
            Err(error) => tracing::warn!(call = %session.id, %label, %error, "an agent could not be rung"),
        }
    }
    let failed_at = Timestamp::now();
    let modified = app
        .store
        .modify_call(&session.workspace, &session.id, &|s| {
            for (label, leg) in &legs {
                match leg {
                    Ok(sid) => {
                        s.link_participant(label, sid);
                    }
                    Err(_) => {
                        s.move_participant(label, LegState::Failed, failed_at);
                    }
                }
            }
        })
        .await?;
    Ok(!modified.after.nobody_answered())
}

/// Stops every agent leg of `session` still ringing (best effort: a leg
/// that was answered or ended meanwhile is no error).
pub async fn stop_ringing(app: &App, workspace: &Workspace, session: &CallSession) {
    let ringing: Vec<CallSid> = session
        .ringing_agents()
        .iter()
        .filter(|p| session.answered_by.as_deref() != Some(p.label.as_str()))
        .filter_map(|p| p.call_sid.clone())
        .collect();
    if ringing.is_empty() {
        return;
    }
    let client = match app.twilio_for(workspace).await {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(call = %session.id, error = %error_chain(&error), "could not stop the agents ringing");
            return;
        }
    };
    let stopped = join_all(ringing.iter().map(|sid| client.end_call(sid, EndCall::Cancel))).await;
    for (sid, result) in ringing.iter().zip(stopped) {
        if let Err(error) = result {
            tracing::info!(call = %session.id, leg = %sid, error = %error_chain(&error), "an agent leg had stopped ringing already");
        }
    }
}

/// Why a leg could not be rung into a call.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(transparent)]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RingError {
    /// As an agent route answers it: Twilio's refusal is a 502 naming `step`.
    pub fn into_api(self, step: &'static str) -> ApiError {
        match self {
            Self::Twilio(error) => ApiError::upstream(step)(error),
            Self::Store(error) => error.into(),
        }
    }
}

/// Rings `to` into the call as its participant `label` (a transfer target,
/// `leg` `transfer`; a supervisor, `supervisor`): a call of its own over the
/// Calls API whose answer fetches the join TwiML, its leg linked to the
/// session. A leg that cannot be rung is marked failed.
pub async fn ring_into_call(
    app: &App,
    workspace: &Workspace,
    client: &TwilioClient,
    session: &CallSession,
    (label, leg): (&str, &str),
    to: &str,
    from: &str,
) -> Result<CallSid, RingError> {
    let (ws, id) = (&session.workspace, &session.id);
    let placed = client
        .create_call(&NewCall {
            to,
            from,
            url: &join_url(app, id, label),
            status_callback: &status_url(app, id, Some(&format!("{leg}&label={label}"))),
            timeout_seconds: workspace.settings.ring_seconds(),
        })
        .await;
    match placed {
        Ok(call) => {
            app.store.link_call_sid(ws, &call.sid, id).await?;
            app.store
                .modify_call(ws, id, &|s| {
                    s.link_participant(label, &call.sid);
                })
                .await?;
            Ok(call.sid)
        }
        Err(error) => {
            let failed_at = Timestamp::now();
            app.store
                .modify_call(ws, id, &|s| {
                    s.move_participant(label, LegState::Failed, failed_at);
                })
                .await?;
            Err(error.into())
        }
    }
}
