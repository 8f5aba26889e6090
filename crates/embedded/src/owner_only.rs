//! Files and directories only their owner may read: the data directory holds
//! call logs, texts, recordings and the secret key, so directories are 0700
//! and files 0600 whatever the umask, and ones found looser (made by an
//! earlier version, or by hand) are tightened when the store opens them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// The mode of the directories Switchboard creates.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the files Switchboard creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents as 0700, or tightens it if it is
/// already there and open to others (its existing parents are left alone).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    create_missing_dirs(dir)?;
    restrict(dir)
}

/// Creates `dir` and its missing parents as 0700; existing ones are left as
/// they are (for a directory that may be someone else's, like the one a
/// standalone key file is put in).
pub fn create_missing_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Opens `path` for reading and writing, creating it as 0600 if it is not
/// there (an existing file keeps its content), and tightens it if it is open
/// to others.
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    restrict(path)?;
    Ok(file)
}

/// Takes every permission of the group and of others away from `path`,
/// keeping the owner's; a no-op when there is none to take.
#[cfg(unix)]
pub fn restrict(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let tightened = mode & 0o700;
    fs::set_permissions(path, fs::Permissions::from_mode(tightened))?;
    tracing::warn!(
        path = %path.display(),
        from = format!("{:o}", mode & 0o7777),
        to = format!("{tightened:o}"),
        "was accessible to other users; made it private to its owner"
    );
    Ok(())
}

#[cfg(not(unix))]
pub fn restrict(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_directories_and_files_are_the_owners_only() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("a/b/c");
        create_dir(&nested).unwrap();
        for dir in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&root.path().join(dir)), DIR_MODE, "{dir}");
        }
        let file = nested.join("f");
        create_file(&file).unwrap();
        assert_eq!(mode(&file), FILE_MODE);
    }

    #[test]
    fn looser_ones_are_tightened_and_tighter_ones_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("f");
        fs::write(&file, b"kept").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();

        create_dir(&dir).unwrap();
        create_file(&file).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read(&file).unwrap(), b"kept", "an existing file keeps its content");

        // Read-only for the owner stays read-only: only others lose access.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();
        restrict(&file).unwrap();
        assert_eq!(mode(&file), 0o400);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).unwrap();
        restrict(&file).unwrap();
        assert_eq!(mode(&file), 0o400);
    }
}
