//! The local secret box: AES-256-GCM under a key kept in a file, for the
//! embedded mode.
//!
//! Sealed layout: `[version][96-bit random nonce][ciphertext + 128-bit tag]`.
//! The version byte and the workspace id are the associated data, so a
//! ciphertext copied onto another workspace's record does not open.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use switchboard_model::ids::WorkspaceId;
use switchboard_model::ports::{SecretBox, SecretError};
use switchboard_model::sealed::Sealed;

const VERSION: u8 = 1;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Seals workspace secrets with one AES-256 key read from (or created in) a file.
pub struct LocalSecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for LocalSecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalSecretBox { .. }")
    }
}

impl LocalSecretBox {
    /// Reads the 32-byte key in `key_file`, or, if there is no such file,
    /// creates one (and its directory) with fresh random bytes, readable by
    /// the owner only. Blocks; call it once at startup.
    ///
    /// Losing the file makes every sealed secret unopenable: back it up with
    /// the data.
    pub fn open_or_create(key_file: &Path) -> io::Result<Self> {
        let key = match read_key(key_file) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(key_file)?,
            other => other?,
        };
        Ok(Self::from_key(&key))
    }

    /// A box over a key held elsewhere.
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }
}

#[async_trait]
impl SecretBox for LocalSecretBox {
    async fn seal(&self, workspace: &WorkspaceId, plaintext: &SecretString) -> Result<Sealed, SecretError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(workspace);
        let payload = Payload {
            msg: plaintext.expose_secret().as_bytes(),
            aad: &aad,
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| SecretError::Unavailable("AES-GCM could not seal the secret".into()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(Sealed(sealed))
    }

    async fn open(&self, workspace: &WorkspaceId, sealed: &Sealed) -> Result<SecretString, SecretError> {
        let Some((&VERSION, rest)) = sealed.0.split_first() else {
            return Err(SecretError::Unopenable);
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Unopenable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = associated_data(workspace);
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), payload)
                .map_err(|_| SecretError::Unopenable)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| SecretError::Unopenable)?;
        Ok(SecretString::from(text))
    }
}

/// What the tag binds besides the plaintext: the format version and the workspace.
fn associated_data(workspace: &WorkspaceId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + workspace.as_str().len());
    aad.push(VERSION);
    aad.extend_from_slice(workspace.as_str().as_bytes());
    aad
}

fn read_key(path: &Path) -> io::Result<Zeroizing<[u8; KEY_LEN]>> {
    let file = File::open(path).map_err(|e| context(e, "cannot open the secret key file", path))?;
    make_private(path);
    // One byte more than a key, to tell "too long" from "exactly right".
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    file.take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| context(e, "cannot read the secret key file", path))?;
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        let size = if bytes.len() > KEY_LEN {
            "more than 32 bytes".to_owned()
        } else {
            format!("{} bytes", bytes.len())
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the secret key file {} holds {size}; it must hold exactly 32 raw bytes \
                 (restore the right file, or remove it only if no secrets were sealed with it)",
                path.display()
            ),
        )
    })?;
    Ok(Zeroizing::new(key))
}

/// Writes a fresh key to a temporary file and links it into place, so the key
/// file appears whole or not at all, and a concurrent creator's key is never
/// overwritten (the loser reads the winner's).
fn create_key(path: &Path) -> io::Result<Zeroizing<[u8; KEY_LEN]>> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::owner_only::create_missing_dirs(&dir)
        .map_err(|e| context(e, "cannot create the directory for the secret key", &dir))?;

    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&Aes256Gcm::generate_key(&mut OsRng));

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", ulid::Ulid::new()));
    let written = write_private(&temp, key.as_slice()).and_then(|()| fs::hard_link(&temp, path));
    // The temporary name is never needed again, whatever happened.
    let _ = fs::remove_file(&temp);
    match written {
        Ok(()) => {
            sync_dir(&dir).map_err(|e| context(e, "cannot sync the directory of the secret key", &dir))?;
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(context(e, "cannot create the secret key file", path)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Tightens a key file others may read (made by hand, or copied in from a
/// backup); if that is not allowed (another user's file), says so and goes
/// on: the key is still needed to serve.
fn make_private(path: &Path) {
    if let Err(error) = crate::owner_only::restrict(path) {
        tracing::warn!(
            path = %path.display(),
            error = %error,
            "the secret key file may be accessible to other users and could not be made private; run chmod 600 on it"
        );
    }
}

fn context(error: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(id: &str) -> WorkspaceId {
        WorkspaceId::parse(id).unwrap()
    }

    fn secret(value: &str) -> SecretString {
        SecretString::from(value)
    }

    fn new_box() -> (tempfile::TempDir, LocalSecretBox) {
        let dir = tempfile::tempdir().unwrap();
        let sb = LocalSecretBox::open_or_create(&dir.path().join("secret.key")).unwrap();
        (dir, sb)
    }

    #[tokio::test]
    async fn round_trips() {
        let (_dir, sb) = new_box();
        for plaintext in ["", "an auth token 0123456789abcdef", "ünïcødé ✓"] {
            let sealed = sb.seal(&ws("acme"), &secret(plaintext)).await.unwrap();
            let opened = sb.open(&ws("acme"), &sealed).await.unwrap();
            assert_eq!(opened.expose_secret(), plaintext);
        }
    }

    #[tokio::test]
    async fn another_workspace_cannot_open_it() {
        let (_dir, sb) = new_box();
        let sealed = sb.seal(&ws("acme"), &secret("token")).await.unwrap();
        for other in ["acme-corp", "acm", "ACME"] {
            let result = sb.open(&ws(other), &sealed).await;
            assert!(matches!(result, Err(SecretError::Unopenable)), "{other}");
        }
    }

    #[tokio::test]
    async fn any_tampering_is_detected() {
        let (_dir, sb) = new_box();
        let sealed = sb.seal(&ws("acme"), &secret("token")).await.unwrap();
        for i in 0..sealed.0.len() {
            let mut tampered = sealed.clone();
            tampered.0[i] ^= 0x01;
            let result = sb.open(&ws("acme"), &tampered).await;
            assert!(matches!(result, Err(SecretError::Unopenable)), "byte {i} flipped");
        }
        for len in [0, 1, 1 + NONCE_LEN, sealed.0.len() - 1] {
            let truncated = Sealed(sealed.0[..len].to_vec());
            let result = sb.open(&ws("acme"), &truncated).await;
            assert!(matches!(result, Err(SecretError::Unopenable)), "truncated to {len}");
        }
    }

    #[tokio::test]
    async fn another_key_cannot_open_it() {
        let (_dir, sb) = new_box();
        let (_other_dir, other) = new_box();
        let sealed = sb.seal(&ws("acme"), &secret("token")).await.unwrap();
        assert!(matches!(
            other.open(&ws("acme"), &sealed).await,
            Err(SecretError::Unopenable)
        ));
    }

    #[tokio::test]
    async fn the_plaintext_never_appears_in_the_sealed_bytes_and_nonces_differ() {
        let (_dir, sb) = new_box();
        let plaintext = "super-secret-auth-token";
        let a = sb.seal(&ws("acme"), &secret(plaintext)).await.unwrap();
        let b = sb.seal(&ws("acme"), &secret(plaintext)).await.unwrap();
        for sealed in [&a, &b] {
            assert!(
                !sealed
                    .0
                    .windows(4)
                    .any(|w| plaintext.as_bytes().windows(4).any(|p| p == w))
            );
            assert_eq!(sealed.0[0], VERSION);
            assert_eq!(sealed.0.len(), 1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        }
        assert_ne!(a, b, "every seal uses a fresh nonce");
        assert!(!format!("{a:?}").contains(plaintext));
    }

    #[tokio::test]
    async fn the_key_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("secret.key");
        let first = LocalSecretBox::open_or_create(&path).unwrap();
        let sealed = first.seal(&ws("acme"), &secret("token")).await.unwrap();
        let key = fs::read(&path).unwrap();
        assert_eq!(key.len(), KEY_LEN);

        let second = LocalSecretBox::open_or_create(&path).unwrap();
        assert_eq!(
            second.open(&ws("acme"), &sealed).await.unwrap().expose_secret(),
            "token"
        );
        assert_eq!(fs::read(&path).unwrap(), key, "reopening does not replace the key");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        LocalSecretBox::open_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        LocalSecretBox::open_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        LocalSecretBox::open_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        for (bytes, says) in [
            (vec![7u8; 16], "16 bytes"),
            (vec![7u8; 33], "more than 32 bytes"),
            (vec![], "0 bytes"),
        ] {
            fs::write(&path, &bytes).unwrap();
            let err = LocalSecretBox::open_or_create(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let message = err.to_string();
            assert!(message.contains(says) && message.contains("exactly 32"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert_eq!(fs::read(&path).unwrap(), bytes, "a bad key file is never replaced");
        }
    }

    #[tokio::test]
    async fn an_existing_key_file_is_used_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        fs::write(&path, [9u8; KEY_LEN]).unwrap();
        let from_file = LocalSecretBox::open_or_create(&path).unwrap();
        let sealed = LocalSecretBox::from_key(&[9u8; KEY_LEN])
            .seal(&ws("acme"), &secret("token"))
            .await
            .unwrap();
        assert_eq!(
            from_file.open(&ws("acme"), &sealed).await.unwrap().expose_secret(),
            "token"
        );
    }

    #[tokio::test]
    async fn racing_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let boxes: Vec<LocalSecretBox> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| LocalSecretBox::open_or_create(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Whatever each racer holds in memory is the key on disk.
        let reopened = LocalSecretBox::open_or_create(&path).unwrap();
        for racer in &boxes {
            let sealed = racer.seal(&ws("acme"), &secret("token")).await.unwrap();
            assert_eq!(
                reopened.open(&ws("acme"), &sealed).await.unwrap().expose_secret(),
                "token"
            );
        }
    }
}
