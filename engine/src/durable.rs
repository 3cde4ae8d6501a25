//! File-system steps that survive a power loss, shared by checkpoints and the connectors'
//! exactly-once sinks: a file or directory created, renamed or removed is only durable once
//! the directory holding it is synced.

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

/// Makes the entries of `dir` (files and directories created, renamed or removed in it)
/// durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
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
}
