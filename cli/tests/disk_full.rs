//! Full and read-only disks. One directory of a job (its checkpoints, its output topic, its
//! part files) lies on a small tmpfs that a ballast file fills up to a few hundred KiB; the
//! job must fail with one clear error naming what it could not write, must have committed
//! only whole results (none twice), and once the ballast is gone a `--restore latest` must
//! complete the output exactly once. A read-only disk under a restore must fail as clearly and leave a later restore whole.
//!
//! Mounting needs privileges, so each test runs again inside a user and mount namespace of
//! its own (`unshare -rm`), where it may mount a tmpfs that vanishes with it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_part_of, assert_same, checkpoint_args, wait_within, write_events, Output};

/// Set in the copy of a test that runs inside its own mount namespace.
const IN_NAMESPACE: &str = "WEIR_TEST_IN_MOUNT_NAMESPACE";
/// The longest a run may take (an undisturbed one takes about a second).
const RUN_DEADLINE: Duration = Duration::from_secs(60);
const EVENTS: u64 = 20_000;
/// Events per second per worker: a run lasts about two seconds, 40 checkpoints.
const RATE: u64 = 5_000;

/// Runs the test `name` of this file inside a user and mount namespace of its own, where
/// `body` may mount file systems; in that copy, runs `body`.
fn in_mount_namespace(name: &str, body: impl FnOnce()) {
    if std::env::var_os(IN_NAMESPACE).is_some() {
        return body();
    }
    // A machine that forbids user namespaces (some containers do) cannot run these tests:
    // say so loudly rather than fail every other test's landing on it.
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .output();
    if let Some(reason) = match &probe {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
        Err(error) => Some(error.to_string()),
    } {
        eprintln!("SKIPPED {name}: no user and mount namespace here (unshare: {reason})");
        return;
    }
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(IN_NAMESPACE, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run unshare (util-linux): {error}"));
    wait_within(&mut child, 4 * RUN_DEADLINE, name);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} in its own mount namespace failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small tmpfs mounted for the life of the value, filled by a ballast file up to `free`
/// bytes.
struct Tmpfs {
    dir: PathBuf,
    ballast: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, free: usize) -> Tmpfs {
        const SIZE: usize = 16 << 20;
        std::fs::create_dir_all(dir).unwrap();
        mount(
            &["-t", "tmpfs", "-o", &format!("size={SIZE}"), "tmpfs"],
            dir,
        );
        let ballast = dir.join("ballast");
        std::fs::write(&ballast, vec![0xaa; SIZE - free]).unwrap();
        Tmpfs {
            dir: dir.to_owned(),
            ballast,
        }
    }

    /// Gives the space back.
    fn free(&self) {
        std::fs::remove_file(&self.ballast).unwrap();
    }

    /// Remounts the file system read-only (`true`) or writable.
    fn read_only(&self, read_only: bool) {
        let options = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        mount(&["-o", options], &self.dir);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn mount(args: &[&str], dir: &Path) {
    let status = Command::new("mount").args(args).arg(dir).status().unwrap();
    assert!(status.success(), "mount {args:?} {} failed", dir.display());
}

/// `query` from `events` into `out` with checkpoints in `checkpoints`, paced to span many
/// checkpoints; `restore` adds `--restore latest`.
fn args(query: &str, output: Output, out: &str, checkpoints: &str, restore: bool) -> Vec<String> {
    let mut args = common::run_args(query, &output.location(out));
    args.extend(checkpoint_args(checkpoints, "50ms", RATE));
    // State stays off the small disk: what fills it is the directory under test.
    let state = args.iter().position(|arg| arg == "--state-dir").unwrap() + 1;
    args[state] = "state".into();
    if restore {
        args.extend(["--restore".into(), "latest".into()]);
    }
    args
}

/// Runs `weir` within the deadline: whether it succeeded, and its standard error.
fn run(dir: &Path, args: &[String], env: &[(&str, &str)]) -> (bool, String) {
    let (status, stderr) = common::run_within(dir, args, env, RUN_DEADLINE, &args.join(" "));
    (status.success(), stderr)
}

/// The one error line of a failed run, which must contain `reason` and `names`.
fn assert_one_clear_error(stderr: &str, reason: &str, names: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "the run panicked: {stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert!(
        errors.len() == 1 && errors[0].contains(reason) && errors[0].contains(names),
        "expected one error line naming {names:?} and {reason:?}: {stderr}"
    );
}

/// The events, and the output of `query` over them without failures.
fn reference(dir: &Path, query: &str) -> BTreeMap<String, usize> {
    write_events(dir, EVENTS);
    let (ok, stderr) = run(dir, &common::run_args(query, "log:reference"), &[]);
    assert!(ok, "the reference run failed: {stderr}");
    let reference = common::committed_to_topic(&dir.join("reference"));
    assert!(!reference.is_empty(), "{query} produced no results");
    reference
}

/// `query` with its directory `full` (its checkpoints or its output) on a disk with `free`
/// bytes: it fails with one error naming `full`, and restores exactly once after space
/// returns.
fn disk_full(query: &str, output: Output, full: &str, free: usize) {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(dir.path(), query);
    let disk = Tmpfs::mount(&dir.path().join("small"), free);
    let (out, checkpoints) = match full {
        "checkpoints" => ("out".to_owned(), "small/checkpoints".to_owned()),
        _ => ("small/out".to_owned(), "checkpoints".to_owned()),
    };
    let (ok, stderr) = run(
        dir.path(),
        &args(query, output, &out, &checkpoints, false),
        &[],
    );
    assert!(!ok, "the run did not fill the disk ({free} bytes free)");
    assert_one_clear_error(&stderr, "No space left on device", &format!("small/{full}"));
    let committed = |dir: &Path| {
        if dir.join(&out).exists() {
            output.committed(&dir.join(&out))
        } else {
            BTreeMap::new()
        }
    };
    let before = committed(dir.path());
    assert_part_of(&reference, &before);

    disk.free();
    let (ok, restored) = run(
        dir.path(),
        &args(query, output, &out, &checkpoints, true),
        &[],
    );
    assert!(ok, "the restore after space returned failed: {restored}");
    assert_same(
        &reference,
        &committed(dir.path()),
        "restored after a full disk",
    );
    println!(
        "{query}, {full} full ({free} bytes free): {} of {} rows committed; restored exactly once; {}",
        before.values().sum::<usize>(),
        reference.values().sum::<usize>(),
        stderr.lines().find(|line| line.starts_with("error: ")).unwrap_or_default()
    );
}

#[test]
fn a_full_checkpoint_disk_fails_clearly_and_restores_exactly_once() {
    in_mount_namespace(
        "a_full_checkpoint_disk_fails_clearly_and_restores_exactly_once",
        || disk_full("q5", Output::Log, "checkpoints", 640 << 10),
    );
}

#[test]
fn a_full_output_topic_disk_fails_clearly_and_restores_exactly_once() {
    in_mount_namespace(
        "a_full_output_topic_disk_fails_clearly_and_restores_exactly_once",
        || disk_full("q0", Output::Log, "out", 1 << 20),
    );
}

#[test]
fn a_full_part_files_disk_fails_clearly_and_restores_exactly_once() {
    in_mount_namespace(
        "a_full_part_files_disk_fails_clearly_and_restores_exactly_once",
        || disk_full("q0", Output::Files, "out", 1 << 20),
    );
}

/// A job killed in the middle of a commit, its checkpoints and output on one disk: a restore
/// while that disk is read-only fails with one clear error; once it is writable again, a
/// restore completes the output exactly once.
#[test]
fn a_restore_onto_a_read_only_disk_fails_clearly_then_restores_exactly_once() {
    in_mount_namespace(
        "a_restore_onto_a_read_only_disk_fails_clearly_then_restores_exactly_once",
        || {
            let dir = tempfile::tempdir().unwrap();
            let reference = reference(dir.path(), "q0");
            let disk = Tmpfs::mount(&dir.path().join("small"), 8 << 20);
            let args = |restore| args("q0", Output::Log, "small/out", "small/checkpoints", restore);
            let crash = [
                ("WEIR_CRASH_POINT", "log_sink.commit_marked"),
                ("WEIR_CRASH_AT", "9"),
            ];
            let (ok, stderr) = run(dir.path(), &args(false), &crash);
            assert!(
                !ok && stderr.contains("crash point"),
                "not killed: {stderr}"
            );

            disk.read_only(true);
            let (ok, stderr) = run(dir.path(), &args(true), &[]);
            assert!(!ok, "a restore onto a read-only disk succeeded");
            assert_one_clear_error(&stderr, "Read-only file system", "small/");
            println!("{}", stderr.trim());

            disk.read_only(false);
            let (ok, stderr) = run(dir.path(), &args(true), &[]);
            assert!(ok, "the restore onto the writable disk failed: {stderr}");
            assert_same(
                &reference,
                &common::committed_to_topic(&dir.path().join("small/out")),
                "restored after a read-only disk",
            );
        },
    );
}
