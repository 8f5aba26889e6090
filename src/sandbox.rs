//! `switchboard --sandbox` (or `SWITCHBOARD_SANDBOX=1`): the whole product on
//! one machine without a Twilio account. A simulated Twilio (the
//! `switchboard-twilio-sim` crate, live) listens on a loopback port with
//! three sandbox accounts; this server's own Twilio client is pointed at it,
//! and it calls this server's webhooks, signed, through the normal gate.
//! The `/sandbox/…` routes (simulated people, the simulated browser device,
//! faults, timers) are mounted on this listener only: they are no route of
//! the route table, the template or the API document, and no Lambda
//! function has them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard::app::App;
use switchboard::twilio::access_token::agent_identity;
use switchboard_twilio_sim::sandbox::{self, Identify, Refusal};
use switchboard_twilio_sim::{DeviceOwner, Options, Sim};

/// Sandbox accounts, and the numbers of each.
const ACCOUNTS: usize = 3;
const NUMBERS_PER_ACCOUNT: usize = 3;
/// Where the accounts are kept under the data directory, so a restart keeps
/// them (workspaces connected to them stay connected).
const ACCOUNTS_FILE: &str = "sandbox-accounts.json";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the simulated Twilio could not listen")]
    Listen(#[source] std::io::Error),
    #[error("{var}: {reason}")]
    Config { var: &'static str, reason: String },
    #[error("the sandbox accounts file {path} could not be read or written")]
    Accounts {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredAccount {
    account_sid: String,
    auth_token: String,
}

/// Where the simulated Twilio listens (default: a free loopback port).
const LISTEN_VAR: &str = "SWITCHBOARD_SANDBOX_TWILIO_LISTEN";
/// A loopback proxy Switchboard's Twilio client goes through to reach the
/// simulated Twilio (the contract test puts Prism there, validating every
/// request and answer against Twilio's OpenAPI description).
const VIA_VAR: &str = "SWITCHBOARD_SANDBOX_TWILIO_VIA";

pub struct Sandbox {
    sim: Arc<Sim>,
    /// The base URL Switchboard's Twilio client uses.
    api_url: String,
}

impl Sandbox {
    /// Starts the simulated Twilio (live) with the sandbox accounts kept
    /// under `data_dir` (made on the first start), and says so loudly.
    pub async fn start(data_dir: &Path) -> Result<Self, SandboxError> {
        let accounts = accounts(data_dir)?;
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
        let listen = match var(LISTEN_VAR) {
            Some(raw) => raw
                .trim()
                .parse::<SocketAddr>()
                .ok()
                .filter(|a| a.ip().is_loopback())
                .ok_or_else(|| SandboxError::Config {
                    var: LISTEN_VAR,
                    reason: format!("{raw:?} is not a loopback address and port"),
                })?,
            None => SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        // Nothing of the sandbox may reach Twilio: a proxy must be local.
        let via = var(VIA_VAR)
            .map(|raw| {
                raw.trim()
                    .parse::<http::Uri>()
                    .ok()
                    .filter(|u| {
                        u.scheme_str() == Some("http") && matches!(u.host(), Some("127.0.0.1" | "localhost" | "[::1]"))
                    })
                    .map(|_| raw.trim().trim_end_matches('/').to_owned())
                    .ok_or_else(|| SandboxError::Config {
                        var: VIA_VAR,
                        reason: format!("{raw:?} is not an http URL on this machine"),
                    })
            })
            .transpose()?;
        let options = Options {
            listen,
            ..Options::live()
        };
        let sim = Sim::start(&accounts[0].account_sid, &accounts[0].auth_token, options)
            .await
            .map_err(SandboxError::Listen)?;
        for (n, account) in accounts.iter().enumerate() {
            sim.set_account(&account.account_sid, &account.auth_token);
            for k in 1..=NUMBERS_PER_ACCOUNT {
                sim.add_number_for(&account.account_sid, &sandbox_number(n + 1, k));
            }
        }
        tracing::warn!(
            twilio_api_url = %sim.uri(),
            "SANDBOX MODE: Twilio is simulated on this machine; no call, text or request reaches Twilio"
        );
        for account in sim.accounts() {
            tracing::warn!(
                account_sid = %account.account_sid,
                auth_token = %account.auth_token,
                numbers = %account.numbers.join(" "),
                "sandbox Twilio account (connect it with PUT /workspace/twilio)"
            );
        }
        let api_url = via.unwrap_or_else(|| sim.uri());
        Ok(Self {
            sim: Arc::new(sim),
            api_url,
        })
    }

    /// The configuration the sandbox sets: Switchboard's Twilio client
    /// talks to the simulated Twilio.
    pub fn config_var(&self, name: &str) -> Option<String> {
        (name == "SWITCHBOARD_TWILIO_API_URL").then(|| self.api_url.clone())
    }

    /// The `/sandbox/…` routes; the device routes sign agents in as every
    /// agent route does.
    pub fn routes(&self, app: Arc<App>) -> axum::Router {
        let identify: Identify = Arc::new(move |authorization: Option<String>| {
            let app = app.clone();
            Box::pin(async move { device_owner(&app, authorization.as_deref()).await })
        });
        sandbox::routes(self.sim.clone(), identify)
    }
}

/// The sandbox number `k` of account `n` (both from 1): +1 415 555 01nk.
fn sandbox_number(n: usize, k: usize) -> String {
    format!("+141555501{n}{k}")
}

/// The signed-in agent's device: their workspace's Twilio account and
/// their client identity.
async fn device_owner(app: &App, authorization: Option<&str>) -> Result<DeviceOwner, Refusal> {
    let agent = app.auth.authenticate(authorization).await.map_err(|error| Refusal {
        status: 401,
        code: "unauthorized".into(),
        message: error.to_string(),
    })?;
    let not_configured = || Refusal {
        status: 409,
        code: "twilio_not_configured".into(),
        message: "this workspace has no Twilio account yet: an admin must connect a sandbox account first with \
                  PUT /workspace/twilio"
            .into(),
    };
    let workspace = app
        .store
        .get_workspace(&agent.workspace)
        .await
        .map_err(|error| Refusal {
            status: 503,
            code: "unavailable".into(),
            message: error.to_string(),
        })?
        .ok_or_else(not_configured)?;
    let twilio = workspace.twilio.ok_or_else(not_configured)?;
    Ok(DeviceOwner {
        account_sid: twilio.account_sid.to_string(),
        identity: agent_identity(&agent.id),
    })
}

/// The sandbox accounts: read from the data directory, or made (Account SID
/// `AC` + 32 hex, Auth Token 32 hex, as Twilio's) and kept there.
fn accounts(data_dir: &Path) -> Result<Vec<StoredAccount>, SandboxError> {
    let path = data_dir.join(ACCOUNTS_FILE);
    let failed = |source| SandboxError::Accounts {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let accounts: Vec<StoredAccount> = serde_json::from_slice(&bytes)
                .map_err(|e| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            if accounts.len() == ACCOUNTS && accounts.iter().all(well_formed) {
                return Ok(accounts);
            }
            Err(failed(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not three sandbox accounts: delete the file to make new ones",
            )))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let accounts: Vec<StoredAccount> = (0..ACCOUNTS)
                .map(|_| StoredAccount {
                    account_sid: format!("AC{}", random_hex()),
                    auth_token: random_hex(),
                })
                .collect();
            std::fs::create_dir_all(data_dir).map_err(failed)?;
            let json = serde_json::to_vec_pretty(&accounts).unwrap_or_default();
            std::fs::write(&path, json).map_err(failed)?;
            Ok(accounts)
        }
        Err(error) => Err(failed(error)),
    }
}

fn well_formed(account: &StoredAccount) -> bool {
    let hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    account.account_sid.strip_prefix("AC").is_some_and(hex32) && hex32(&account.auth_token)
}

/// 32 random hex digits: the random parts of two ULIDs (80 bits each).
fn random_hex() -> String {
    let (a, b) = (ulid::Ulid::new().random(), ulid::Ulid::new().random());
    format!("{:032x}", (a << 48) ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let made = accounts(dir.path()).unwrap();
        assert_eq!(made.len(), 3);
        assert!(made.iter().all(well_formed));
        assert_ne!(made[0].account_sid, made[1].account_sid);
        let again = accounts(dir.path()).unwrap();
        let sids = |a: &[StoredAccount]| a.iter().map(|a| a.account_sid.clone()).collect::<Vec<_>>();
        assert_eq!(sids(&made), sids(&again));
        std::fs::write(dir.path().join(ACCOUNTS_FILE), "[]").unwrap();
        assert!(
            accounts(dir.path()).is_err(),
            "a damaged file is an error, not new accounts"
        );
    }

    #[test]
    fn numbers_are_the_documented_ones() {
        assert_eq!(sandbox_number(1, 1), "+14155550111");
        assert_eq!(sandbox_number(3, 2), "+14155550132");
    }
}
