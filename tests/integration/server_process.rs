//! The `switchboard` binary run as a user runs it, for the tests that drive
//! it over HTTP: on a free port, on the embedded store in a temporary
//! directory, with only the environment a test gives it.

use std::process::{Child, Command, Stdio};

/// A child process killed (and reaped) when dropped, so a failing test
/// leaves no server or emulator behind.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `switchboard`, stopped when dropped.
pub(crate) struct ServerProcess {
    _child: KillOnDrop,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// `switchboard --listen 127.0.0.1:0 <args>` with `vars`, signing in with
    /// `secret`; returns once it reports its address.
    pub(crate) fn start(args: &[&str], vars: &[(&str, &str)], secret: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .envs(vars.iter().copied())
            .env("SWITCHBOARD_AUTH_HS256_SECRET", secret)
            .env("SWITCHBOARD_DATA_DIR", dir.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let address = crate::local_server::listening_address(&mut child);
        Self {
            _child: KillOnDrop(child),
            base: format!("http://{address}"),
            _dir: dir,
        }
    }
}
