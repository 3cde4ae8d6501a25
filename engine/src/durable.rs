//! File-system steps that survive a power loss, shared by checkpoints and the connectors'
//! exactly-once sinks: a file or directory created, renamed or removed is only durable once
//! the directory holding it is synced.

use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Makes the entries of `dir` (files and directories created, renamed or removed in it)
/// durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a
/// temporary file beside it (`path` with `.tmp` added), synced, renamed into place, and the
/// directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary_name = OsString::from(path.file_name().unwrap_or_default());
    temporary_name.push(".tmp");
    let temporary = path.with_file_name(temporary_name);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Creates `dir` and whatever parents it lacks, syncing the directory that holds each one it
/// creates, so the new directories survive a power loss. A directory that exists is left as
/// it is; one created meanwhile by another thread counts as created here (its parent is
/// synced again).
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    create_dir_all(parent)?;
    match std::fs::create_dir(dir) {
        Err(error) if error.kind() != ErrorKind::AlreadyExists => return Err(error),
        _ => {}
    }
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_parents_and_leaves_existing_directories() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let nested = root.path().join("a/b/c");
        create_dir_all(&nested).expect("created");
        assert!(nested.is_dir());
        create_dir_all(&nested).expect("an existing directory is fine");
        let file = root.path().join("a/file");
        std::fs::write(&file, b"x").expect("written");
        assert!(create_dir_all(&file.join("d")).is_err());
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let path = root.path().join("state.json");
        write_atomically(&path, b"one").expect("written");
        write_atomically(&path, b"two").expect("replaced");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(root.path()).expect("listed").count(), 1);
    }
}
