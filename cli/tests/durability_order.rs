//! The power-loss test of the commit path: checks, in a real system-call trace, that weir makes
//! its checkpoints and its exactly-once output durable in the order the epoch protocol relies on
//! (docs/architecture.md, "Checkpoints" and "The epoch protocol, step by step").
//!
//! A kill (SIGKILL) loses nothing the kernel already has, so the kill test and the crash-point
//! sweep cannot see a missing `fsync`: a power loss can. Here `weir nexmark run` (q5, two
//! workers, 100 ms checkpoints) runs under `strace -f`, once into a four-partition log topic
//! with 256-byte segments (commits cross segment rolls) and once into a directory of part files.
//! The checker then replays the trace: it follows every process's descriptor table (threads
//! share one) to know which file each `write` and `fsync` is about, resolves relative paths
//! against the run's working directory, and follows names through renames and links.
//!
//! **The commit path** is every path at or under the checkpoint directory or the output (the
//! topic with its partitions and `.transactions`, or the part-file directory). A file is
//! *synced* once an `fsync` or `fdatasync` returned on any descriptor of it; a directory once
//! an `fsync` returned on a descriptor opened on it. The rules:
//!
//! 1. **Data before publish.** When a file is renamed or hard-linked to a name on the commit
//!    path, every write to it (`write`, `pwrite64`, `writev`, `ftruncate`, an `O_TRUNC` open,
//!    ...) has been synced.
//! 2. **Directory after publish.** An *entry change* on the commit path (a rename, counted in
//!    the directories of both names; a hard link; the creation of a file, an `O_CREAT` open of
//!    a name that did not exist, unless the file is renamed later in the trace, which makes it
//!    a temporary; an `mkdir`; an `unlink` or `rmdir`) is *pending* in its parent directory D
//!    for the thread that made it, until that thread syncs D. When the thread takes its next
//!    *publishing step* in another directory than D, and when the trace ends, nothing may be
//!    pending for it in D. Publishing steps are:
//!    - a rename to a name on the commit path (a step in the new name's directory);
//!    - a write of the log sink's commit history `TOPIC/.transactions/history`;
//!    - an append to a segment of the output topic, a step in every partition directory of
//!      the topic: data may reach the disk as soon as it is written, so what comes before the
//!      appends (the commit's `.committing` marker) must be durable by then, while a segment
//!      created by a roll need only be durable before the history line (a repeated commit
//!      completes each partition on its own, from the offsets in its marker).
//!
//!    Steps in D itself may come first: one sync of D after a step's last rename makes them
//!    all durable. The roots are on the commit path too, so an `mkdir` of the checkpoint
//!    directory or of the part-file directory is pending in the directory that holds it.
//!    Exempt are the entry changes the protocol lets a power loss undo:
//!    - the creation of a checkpoint's `COMMIT` marker, which only tells the sinks of running
//!      processes that they may commit: a restore finds complete checkpoints by
//!      `MANIFEST.json`, synced before the marker is created;
//!    - any change of a topic partition's `.writer.lock` (an advisory lock, no data) or of a
//!      segment's `.index` (only a hint: a missing one reads as empty, and the last segment's
//!      is rebuilt whenever the partition is opened: connectors/src/log/segment.rs);
//!    - the removal of a commit's `epoch-N.committing` marker once the removal of
//!      `epoch-N.txn` was synced (the restore deletes a marker without its transaction as a
//!      finished commit: connectors/src/log/transaction.rs);
//!    - the removal of anything in a checkpoint directory `chk-N`, and of `chk-N` itself, once
//!      the removal of `chk-N/MANIFEST.json` was synced (garbage collection: a half-deleted
//!      checkpoint has no manifest and a restore ignores it).
//!
//!    **Removal order:** removing a marker or part of a checkpoint as in the last two cases
//!    while the removal it follows is still pending (in any thread) is a violation: a
//!    transaction that came back without its marker would be committed again from the start,
//!    a manifest without its checkpoint's files would be restored.
//! 3. **The log sink's commit order.** A commit (connectors/src/log/transaction.rs) writes its
//!    marker, appends the epoch's records, appends a line to the commit history, and removes
//!    the transaction. When it writes the history line (the ends of the partitions after the
//!    commit), no segment of the output topic (`partition-P/*.log`) has a write that is not
//!    synced: the history says the records are in place. When it removes the transaction
//!    `epoch-N.txn`, the history has no write that is not synced: a commit whose transaction
//!    is gone is never repeated, and a restore cuts the topic back to the history's ends.
//!
//! The checker does not see writes through memory maps (weir maps no files), and it counts
//! only `fsync` and `fdatasync` as syncs (not `sync_file_range`, `syncfs` or `sync`). The
//! input and output topics are created by the test before the traced run: creating a topic is
//! not part of the epoch protocol and is not checked.
//!
//! **Found by this test** (and fixed): weir created the checkpoint directory and the
//! part-file directory without syncing the directory that holds them, so a power loss in a
//! job's first run could lose the whole checkpoint directory while the output kept what was
//! committed (a topic would then receive it again from a fresh start). Both now go through
//! `weir_engine::durable::create_dir_all`, which syncs the parent of every directory it
//! creates.
//!
//! The file reads top to bottom: the two traced runs; reading the trace (`parse_trace`, one
//! `Call` per system call); the file system as the trace shows it (`Model::apply` turns calls
//! into `Event`s on named files, following descriptors, threads and renames); the rules
//! (`Checker::apply`, one branch per kind of event); and the unit tests of the checker.
//!
//! A violation names the rule, the file and the trace lines involved; the whole trace of a
//! run is kept in `CARGO_TARGET_TMPDIR` for reading. The unit tests at the end feed the checker
//! small hand-written traces that break each rule, so a checker that finds nothing in weir's
//! trace is known to be able to find something. `strace` must be installed (scripts/setup.sh
//! installs it); without it the test fails, it does not skip.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::checkpoint_args;
use weir::log::{LogConfig, Topic, ValueFormat};
use weir_nexmark::{write_events_to_topic, GeneratorConfig};

/// Input events, and their pace in event time: 200 per second make about a hundred q5 results,
/// enough to roll the output's small segments many times.
const EVENTS: u64 = 40_000;
const EVENTS_PER_SECOND: u64 = 200;
/// Events per second per worker that a run reads: about two and a half seconds, two dozen
/// checkpoints of 100 ms.
const RATE_PER_WORKER: u64 = 8_000;
const CHECKPOINT_INTERVAL: &str = "100ms";
/// Bytes per segment of the output topic: a few records (about 64 bytes each).
const SEGMENT_BYTES: u64 = 256;
/// The longest a traced run may take before the test calls it hung.
const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// What strace records: every call that opens, writes, syncs, closes or renames a file, changes
/// a directory, duplicates a descriptor or starts a thread or process. The checker refuses a
/// call it does not model, so this list and [`Model::apply`] must change together.
const TRACED_CALLS: &str = "open,openat,creat,close,dup,dup2,dup3,fcntl,\
write,pwrite64,writev,pwritev,pwritev2,ftruncate,truncate,fallocate,copy_file_range,sendfile,\
fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat,rmdir,mkdir,mkdirat,\
chdir,fchdir,clone,clone3,fork,vfork";

#[test]
fn commits_to_a_log_topic_are_durable_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    };
    Topic::create(dir.path().join("out"), 4, ValueFormat::Json, config).unwrap();
    let report = traced_run(dir.path(), "log:out", "log-topic", true);
    let counts = &report.counts;
    assert!(
        counts.history_writes >= 10 && counts.segment_rolls >= 10,
        "the run committed too little to test anything: {counts:?}"
    );
    report.assert_no_violations();
}

#[test]
fn commits_to_part_files_are_durable_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let report = traced_run(dir.path(), "out", "part-files", false);
    let counts = &report.counts;
    assert!(
        counts.renames >= 20,
        "the run committed too little to test anything: {counts:?}"
    );
    report.assert_no_violations();
}

/// Writes the input topic `dir/events`: four partitions of Nexmark events.
fn write_input(dir: &Path) {
    let config = GeneratorConfig {
        rate: EVENTS_PER_SECOND,
        ..GeneratorConfig::default()
    };
    write_events_to_topic(dir.join("events"), 4, &config, EVENTS, &Default::default()).unwrap();
}

/// Runs q5 from `dir/events` into `out` with checkpoints in `dir/checkpoints` under strace,
/// checks the trace, and keeps it as `CARGO_TARGET_TMPDIR/durability_order-NAME.strace`.
fn traced_run(dir: &Path, out: &str, name: &str, topic: bool) -> Report {
    require_strace();
    let existing = existing_names(dir);
    let trace =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("durability_order-{name}.strace"));
    let mut args = common::run_args("q5", out);
    args.extend(checkpoint_args(
        "checkpoints",
        CHECKPOINT_INTERVAL,
        RATE_PER_WORKER,
    ));
    let started = Instant::now();
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-s", "0", "-o"])
        .arg(&trace)
        .args(["-e", &format!("trace={TRACED_CALLS}")])
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_weir"))
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a hung run is killed with strace.
        .process_group(0)
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            panic!(
                "weir {} hung under strace for {RUN_DEADLINE:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "weir {} under strace failed: {stderr}",
        args.join(" ")
    );
    let ran = started.elapsed();

    let text = std::fs::read_to_string(&trace).unwrap();
    let commit_path = CommitPath {
        checkpoints: dir.join("checkpoints"),
        output: dir.join(out.trim_start_matches("log:")),
        topic,
    };
    let report = check(&text, dir, &existing, &commit_path)
        .unwrap_or_else(|error| panic!("{}: {error}", trace.display()));
    println!(
        "{name}: traced run {ran:.1?}, checked in {:.1?}; {:?}; trace {}",
        started.elapsed() - ran,
        report.counts,
        trace.display()
    );
    Report {
        trace,
        what: name.to_owned(),
        ..report
    }
}

/// Fails unless `strace` runs: the test must not pass without looking.
fn require_strace() {
    let works = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        works,
        "strace is missing: this test checks weir's system calls with it; run scripts/setup.sh, \
         which installs it"
    );
}

/// Every file and directory under `dir` (and `dir` itself), with whether it is a directory:
/// what exists before the traced run, so that an `O_CREAT` open of one creates nothing.
fn existing_names(dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut names = vec![(dir.to_owned(), true)];
    let mut next = 0;
    while next < names.len() {
        let (path, is_dir) = names[next].clone();
        next += 1;
        if is_dir {
            for entry in std::fs::read_dir(&path).unwrap() {
                let entry = entry.unwrap();
                names.push((entry.path(), entry.file_type().unwrap().is_dir()));
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// Reading the trace: one `Call` per completed system call.

/// A thread's id, as `strace -f` prints it at the start of each line.
type Tid = u32;

/// One system call of the trace, both halves joined if another thread's call came between.
#[derive(Debug)]
struct Call {
    /// The line (from 1) where the call completed.
    line: usize,
    tid: Tid,
    name: String,
    args: Vec<String>,
    /// The return value; `None` when the call did not return (`= ?`).
    result: Option<i64>,
    /// The call as strace printed it.
    text: String,
}

impl Call {
    fn succeeded(&self) -> bool {
        self.result.is_some_and(|result| result >= 0)
    }

    /// An error about this call, naming its line.
    fn error(&self, what: impl std::fmt::Display) -> String {
        format!("trace line {}: {what}: `{}`", self.line, self.text)
    }

    fn arg(&self, index: usize) -> Result<&str, String> {
        self.args
            .get(index)
            .map(String::as_str)
            .ok_or_else(|| self.error(format!("no argument {}", index + 1)))
    }

    fn fd_arg(&self, index: usize) -> Result<i64, String> {
        let arg = self.arg(index)?;
        arg.parse()
            .map_err(|_| self.error(format!("`{arg}` is not a descriptor")))
    }

    /// A path argument: a quoted string, C escapes undone.
    fn path_arg(&self, index: usize) -> Result<PathBuf, String> {
        let arg = self.arg(index)?;
        unquote(arg)
            .map(|bytes| PathBuf::from(std::ffi::OsString::from_vec(bytes)))
            .map_err(|why| self.error(format!("argument {}: {why}", index + 1)))
    }

    /// The result as a descriptor.
    fn new_fd(&self) -> Result<i64, String> {
        self.result.ok_or_else(|| self.error("no result"))
    }
}

/// The calls of a trace written by `strace -f -o`, in the order they completed. A call that
/// strace printed in two halves (`<unfinished ...>`, then `<... NAME resumed>`) becomes one
/// call at the line of its second half (a `close` at the line of its first). Signal and exit
/// lines are skipped.
fn parse_trace(text: &str) -> Result<Vec<Call>, String> {
    // Per thread, the first half of its unfinished call (`None`: a close, already counted).
    let mut unfinished: HashMap<Tid, Option<String>> = HashMap::new();
    let mut calls = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let bad = |why: &str| format!("trace line {line}: {why}: `{raw}`");
        let (tid, rest) = raw
            .trim_start()
            .split_once(' ')
            .ok_or_else(|| bad("no thread id"))?;
        let tid: Tid = tid.parse().map_err(|_| bad("no thread id"))?;
        let rest = rest.trim_start();
        if rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        let whole = if let Some(first_half) = rest.strip_suffix(" <unfinished ...>") {
            // The kernel frees a descriptor as `close` begins, so another thread's `open` may
            // get it before this `close` returns: a close counts where it starts.
            if first_half.starts_with("close(") {
                calls.push(parse_call(line, tid, format!("{first_half}) = 0"))?);
                unfinished.insert(tid, None);
            } else {
                unfinished.insert(tid, Some(first_half.to_owned()));
            }
            continue;
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let (_, second_half) = resumed
                .split_once(" resumed>")
                .ok_or_else(|| bad("a resumed call without `resumed>`"))?;
            let first_half = unfinished
                .remove(&tid)
                .ok_or_else(|| bad("this thread has no unfinished call to resume"))?;
            let Some(first_half) = first_half else {
                continue; // A close, counted where it started.
            };
            format!("{first_half}{second_half}")
        } else {
            rest.to_owned()
        };
        calls.push(parse_call(line, tid, whole)?);
    }
    Ok(calls)
}

/// One call, `name(arg, ...) = result`.
fn parse_call(line: usize, tid: Tid, text: String) -> Result<Call, String> {
    let bad = |why: &str| format!("trace line {line}: {why}: `{text}`");
    let open = text.find('(').ok_or_else(|| bad("no argument list"))?;
    let name = &text[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("no call name"));
    }
    let (call, result) = text.rsplit_once(" = ").ok_or_else(|| bad("no result"))?;
    let inner = call
        .trim_end()
        .get(open + 1..)
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| bad("the argument list is not closed"))?;
    let args = split_args(inner).map_err(|why| bad(&why))?;
    let result = match result.split_whitespace().next() {
        Some("?") => None,
        Some(number) => Some(
            match number.strip_prefix("0x") {
                Some(hex) => i64::from_str_radix(hex, 16),
                None => number.parse(),
            }
            .map_err(|_| bad("the result is not a number"))?,
        ),
        None => return Err(bad("no result")),
    };
    Ok(Call {
        line,
        tid,
        name: name.to_owned(),
        args,
        result,
        text,
    })
}

/// Splits an argument list at its top-level commas (not inside strings, `{}`, `[]`, `()`).
fn split_args(inner: &str) -> Result<Vec<String>, String> {
    let (mut args, mut current) = (Vec::new(), String::new());
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for c in inner.chars() {
        if in_string {
            current.push(c);
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced `{c}`"))?
            }
            ',' if depth == 0 => {
                args.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if in_string || depth != 0 {
        return Err("an unclosed string or bracket".into());
    }
    if !current.trim().is_empty() || !args.is_empty() {
        args.push(current.trim().to_owned());
    }
    Ok(args)
}

/// The bytes of a string argument as strace prints it: `"..."` with C escapes. A string cut
/// short (`"..."...`, by `-s`) is an error: its path would be wrong.
fn unquote(arg: &str) -> Result<Vec<u8>, String> {
    let body = arg
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(|| format!("`{arg}` is not a whole quoted string"))?;
    let bytes = body.as_bytes();
    let mut unquoted = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        at += 1;
        if byte != b'\\' {
            unquoted.push(byte);
            continue;
        }
        let escape_at = at;
        let bad = || format!("`{arg}`: a bad escape at byte {escape_at}");
        let kind = *bytes.get(at).ok_or_else(bad)?;
        at += 1;
        unquoted.push(match kind {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'v' => 0x0b,
            b'f' => 0x0c,
            b'x' => escaped_number(bytes, &mut at, 16, 2).ok_or_else(bad)?,
            b'0'..=b'7' => {
                at -= 1;
                escaped_number(bytes, &mut at, 8, 3).ok_or_else(bad)?
            }
            other => other,
        });
    }
    Ok(unquoted)
}

/// The number of at most `most` digits at `bytes[*at..]`, moving `at` past them.
fn escaped_number(bytes: &[u8], at: &mut usize, radix: u32, most: usize) -> Option<u8> {
    let rest = bytes.get(*at..)?;
    let digits = rest
        .iter()
        .take(most)
        .take_while(|byte| (**byte as char).is_digit(radix))
        .count();
    let value = u8::from_str_radix(std::str::from_utf8(&rest[..digits]).ok()?, radix).ok()?;
    *at += digits;
    Some(value)
}

// ---------------------------------------------------------------------------------------------
// The file system as the trace shows it: calls become `Event`s on named files.

/// A file or directory, the same through renames and links (an inode, as far as the trace
/// shows).
type FileId = u64;

/// What a call did, as the rules need it.
#[derive(Debug)]
enum Op {
    /// An `O_CREAT` open that made a new name.
    Create,
    /// New data: a write, a truncation, an `O_TRUNC` open of an existing file.
    Write,
    /// `fsync` or `fdatasync`.
    Sync,
    Mkdir,
    /// `unlink` or `rmdir`.
    Remove,
    /// The event's path is the new name.
    Rename {
        from: PathBuf,
    },
    /// The event's path is the new name.
    Link {
        from: PathBuf,
    },
}

/// One call's effect on one file.
#[derive(Debug)]
struct Event {
    line: usize,
    tid: Tid,
    text: String,
    op: Op,
    /// The name acted on, absolute (the new name of a rename or link).
    path: PathBuf,
    file: FileId,
}

/// What the trace has shown so far: names, descriptors, threads.
struct Model {
    cwd: PathBuf,
    /// The file each existing name stands for.
    names: HashMap<PathBuf, FileId>,
    next_file: FileId,
    /// Descriptor tables: descriptor to the name it was opened by, and its file.
    tables: Vec<HashMap<i64, (PathBuf, FileId)>>,
    /// The descriptor table of each thread seen.
    table_of: HashMap<Tid, usize>,
    /// Each thread or process started in the trace: its parent, and whether it shares the
    /// parent's descriptor table (`CLONE_FILES`, as threads do) or got a copy (a process).
    parents: HashMap<Tid, (Tid, bool)>,
}

impl Model {
    fn new(cwd: &Path, existing: &[(PathBuf, bool)], calls: &[Call]) -> Model {
        let mut model = Model {
            cwd: cwd.to_owned(),
            names: HashMap::new(),
            next_file: 0,
            tables: Vec::new(),
            table_of: HashMap::new(),
            parents: HashMap::new(),
        };
        for (path, _) in existing {
            model.file_of(path);
        }
        // Found first: a new thread's calls may come before its parent's `clone` returns.
        for call in calls {
            if matches!(call.name.as_str(), "clone" | "clone3" | "fork" | "vfork") {
                if let Some(child) = call.result.filter(|tid| *tid > 0) {
                    let shares =
                        call.name.starts_with("clone") && call.text.contains("CLONE_FILES");
                    model.parents.insert(child as Tid, (call.tid, shares));
                }
            }
        }
        model
    }

    /// The file `path` names, a new one if the model has not seen the name.
    fn file_of(&mut self, path: &Path) -> FileId {
        if let Some(file) = self.names.get(path) {
            return *file;
        }
        let file = self.new_file();
        self.names.insert(path.to_owned(), file);
        file
    }

    fn new_file(&mut self) -> FileId {
        self.next_file += 1;
        self.next_file
    }

    /// The descriptor table of `tid`: its parent's if it shares it, a copy of its parent's
    /// if it is a process of its own, an empty one for the process strace started.
    fn table(&mut self, tid: Tid) -> usize {
        if let Some(table) = self.table_of.get(&tid) {
            return *table;
        }
        let table = match self.parents.get(&tid).copied() {
            Some((parent, true)) => self.table(parent),
            Some((parent, false)) => {
                let parent_table = self.table(parent);
                let copy = self.tables[parent_table].clone();
                self.tables.push(copy);
                self.tables.len() - 1
            }
            None => {
                self.tables.push(HashMap::new());
                self.tables.len() - 1
            }
        };
        self.table_of.insert(tid, table);
        table
    }

    /// The file open as `fd` in `call`'s thread; `None` for a descriptor the trace did not
    /// open (a pipe, a socket, standard output).
    fn open_file(&mut self, call: &Call, fd: i64) -> Option<(PathBuf, FileId)> {
        let table = self.table(call.tid);
        self.tables[table].get(&fd).cloned()
    }

    /// The absolute path of `call`'s argument `path_index`, relative to the directory
    /// descriptor in argument `dirfd_index` (`AT_FDCWD` or none: the working directory).
    fn path(
        &mut self,
        call: &Call,
        dirfd_index: Option<usize>,
        path_index: usize,
    ) -> Result<PathBuf, String> {
        let path = call.path_arg(path_index)?;
        let base = match dirfd_index {
            _ if path.is_absolute() => PathBuf::new(),
            None => self.cwd.clone(),
            Some(index) if call.arg(index)? == "AT_FDCWD" => self.cwd.clone(),
            Some(index) => {
                let fd = call.fd_arg(index)?;
                let (dir, _) = self.open_file(call, fd).ok_or_else(|| {
                    call.error(format!("descriptor {fd} was not opened in the trace"))
                })?;
                dir
            }
        };
        Ok(normalize(&base.join(path)))
    }

    /// Applies one call: updates names and descriptors, and returns what it did to a file.
    fn apply(&mut self, call: &Call) -> Result<Option<Event>, String> {
        if !call.succeeded() {
            return Ok(None);
        }
        let event = |op: Op, path: PathBuf, file: FileId| {
            Ok(Some(Event {
                line: call.line,
                tid: call.tid,
                text: call.text.clone(),
                op,
                path,
                file,
            }))
        };
        let on_fd = |model: &mut Model, fd_index: usize, op: Op| -> Result<Option<Event>, String> {
            let fd = call.fd_arg(fd_index)?;
            match model.open_file(call, fd) {
                Some((path, file)) => event(op, path, file),
                None => Ok(None),
            }
        };
        match call.name.as_str() {
            "open" | "openat" | "creat" => {
                let (path, flags) = match call.name.as_str() {
                    "open" => (self.path(call, None, 0)?, call.arg(1)?),
                    "openat" => (self.path(call, Some(0), 1)?, call.arg(2)?),
                    _ => (self.path(call, None, 0)?, "O_CREAT|O_WRONLY|O_TRUNC"),
                };
                let flag = |name: &str| flags.split('|').any(|flag| flag == name);
                let created = flag("O_CREAT") && !self.names.contains_key(&path);
                let file = self.file_of(&path);
                let table = self.table(call.tid);
                self.tables[table].insert(call.new_fd()?, (path.clone(), file));
                match (created, flag("O_TRUNC")) {
                    (true, _) => event(Op::Create, path, file),
                    (false, true) => event(Op::Write, path, file),
                    (false, false) => Ok(None),
                }
            }
            "close" => {
                let table = self.table(call.tid);
                self.tables[table].remove(&call.fd_arg(0)?);
                Ok(None)
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                let new = match call.name.as_str() {
                    "fcntl" if !call.arg(1)?.starts_with("F_DUPFD") => return Ok(None),
                    "dup2" | "dup3" => call.fd_arg(1)?,
                    _ => call.new_fd()?,
                };
                let table = self.table(call.tid);
                match self.tables[table].get(&call.fd_arg(0)?).cloned() {
                    Some(open) => self.tables[table].insert(new, open),
                    None => self.tables[table].remove(&new),
                };
                Ok(None)
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "ftruncate"
            | "fallocate" | "sendfile" => on_fd(self, 0, Op::Write),
            "copy_file_range" => on_fd(self, 2, Op::Write),
            "truncate" => {
                let path = self.path(call, None, 0)?;
                let file = self.file_of(&path);
                event(Op::Write, path, file)
            }
            "fsync" | "fdatasync" => on_fd(self, 0, Op::Sync),
            "rename" | "renameat" | "renameat2" | "link" | "linkat" => {
                let (from, to) = if call.name.ends_with("at") || call.name == "renameat2" {
                    (self.path(call, Some(0), 1)?, self.path(call, Some(2), 3)?)
                } else {
                    (self.path(call, None, 0)?, self.path(call, None, 1)?)
                };
                if call.name.starts_with("link") {
                    let file = self.file_of(&from);
                    self.names.insert(to.clone(), file);
                    return event(Op::Link { from }, to, file);
                }
                let file = self.names.remove(&from).unwrap_or_else(|| self.new_file());
                self.names.insert(to.clone(), file);
                self.move_children(&from, &to);
                event(Op::Rename { from }, to, file)
            }
            "unlink" | "unlinkat" | "rmdir" => {
                let path = match call.name.as_str() {
                    "unlinkat" => self.path(call, Some(0), 1)?,
                    _ => self.path(call, None, 0)?,
                };
                let file = self.names.remove(&path).unwrap_or_else(|| self.new_file());
                event(Op::Remove, path, file)
            }
            "mkdir" | "mkdirat" => {
                let path = match call.name.as_str() {
                    "mkdirat" => self.path(call, Some(0), 1)?,
                    _ => self.path(call, None, 0)?,
                };
                let file = self.new_file();
                self.names.insert(path.clone(), file);
                event(Op::Mkdir, path, file)
            }
            // Found by `Model::new`.
            "clone" | "clone3" | "fork" | "vfork" => Ok(None),
            "chdir" | "fchdir" => Err(call.error(
                "the working directory changed, but the checker resolves relative paths \
                 against the one the run started in",
            )),
            other => Err(call.error(format!("the checker does not model `{other}`"))),
        }
    }

    /// After a directory was renamed: the names and descriptors under it move with it.
    fn move_children(&mut self, from: &Path, to: &Path) {
        let moved: Vec<PathBuf> = self
            .names
            .keys()
            .filter(|name| name.starts_with(from) && *name != from)
            .cloned()
            .collect();
        for name in moved {
            if let (Some(file), Ok(rest)) = (self.names.remove(&name), name.strip_prefix(from)) {
                self.names.insert(to.join(rest), file);
            }
        }
        for table in &mut self.tables {
            for (path, _) in table.values_mut() {
                if let Ok(rest) = path.strip_prefix(from) {
                    *path = to.join(rest);
                }
            }
        }
    }
}

/// `path` without `.` and `..` components (lexically: the run makes no symbolic links).
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

// ---------------------------------------------------------------------------------------------
// The rules.

/// Where the commit path of a run lies.
struct CommitPath {
    /// The checkpoint directory, holding `chk-N` directories.
    checkpoints: PathBuf,
    /// The output: a topic directory or a directory of part files.
    output: PathBuf,
    /// Whether `output` is a log topic.
    topic: bool,
}

impl CommitPath {
    fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.checkpoints) || path.starts_with(&self.output)
    }

    /// The log sink's commit history.
    fn history(&self) -> Option<PathBuf> {
        self.topic
            .then(|| self.output.join(".transactions").join("history"))
    }

    /// Whether `path` is a segment of the output topic, `TOPIC/partition-P/BASE.log`.
    fn is_segment(&self, path: &Path) -> bool {
        self.topic
            && path.extension().is_some_and(|extension| extension == "log")
            && is_partition(&self.output, parent(path))
    }

    /// Whether `path` is a prepared transaction of the output topic, `.transactions/*.txn`.
    fn is_transaction(&self, path: &Path) -> bool {
        self.topic
            && path.parent() == Some(self.output.join(".transactions").as_path())
            && path.extension().is_some_and(|extension| extension == "txn")
    }

    /// Whether `path` is a file of the output topic that needs no durable entry: a segment's
    /// `.index` (only a hint: a missing one reads as empty) or a partition's `.writer.lock`.
    fn is_hint(&self, path: &Path) -> bool {
        self.topic
            && is_partition(&self.output, parent(path))
            && (path
                .extension()
                .is_some_and(|extension| extension == "index")
                || path.file_name().is_some_and(|name| name == ".writer.lock"))
    }

    /// The checkpoint directory `chk-N` that `path` is or is under.
    fn checkpoint_of(&self, path: &Path) -> Option<PathBuf> {
        let rest = path.strip_prefix(&self.checkpoints).ok()?;
        let first = rest.components().next()?;
        first
            .as_os_str()
            .to_string_lossy()
            .starts_with("chk-")
            .then(|| self.checkpoints.join(first))
    }
}

/// How many of each step the commit path saw.
#[derive(Debug, Default)]
#[allow(dead_code)] // Read through `Debug`.
struct Counts {
    calls: usize,
    writes: usize,
    file_syncs: usize,
    directory_syncs: usize,
    renames: usize,
    links: usize,
    /// `O_CREAT` opens that made a new name.
    creates: usize,
    /// Of the creates, those of files renamed later.
    temporaries: usize,
    mkdirs: usize,
    removals: usize,
    history_writes: usize,
    /// Writes to segments of the output topic.
    appends: usize,
    segment_rolls: usize,
    /// Entry changes that rule 2 lets go unsynced (its exemptions).
    tolerated: usize,
}

/// What the checker found.
#[derive(Debug, Default)]
struct Report {
    counts: Counts,
    violations: Vec<String>,
    /// Where the trace is kept, and which run it is (for the failure message).
    trace: PathBuf,
    what: String,
}

impl Report {
    fn assert_no_violations(&self) {
        assert!(
            self.violations.is_empty(),
            "{} durability-order violation(s) in the run into {} (trace: {}; the rules are in the \
             documentation of cli/tests/durability_order.rs):\n{}",
            self.violations.len(),
            self.what,
            self.trace.display(),
            self.violations.join("\n")
        );
    }
}

/// An entry change that its directory has not been synced for yet.
#[derive(Debug)]
struct Pending {
    dir: PathBuf,
    path: PathBuf,
    /// What happened to the entry, for the message: "created", "removed", "renamed into
    /// place", ...
    what: &'static str,
    line: usize,
    text: String,
}

/// Checks the rules over a trace; see the module documentation. `existing` lists what is
/// there before the run, `cwd` is the run's working directory.
fn check(
    trace: &str,
    cwd: &Path,
    existing: &[(PathBuf, bool)],
    commit_path: &CommitPath,
) -> Result<Report, String> {
    let calls = parse_trace(trace)?;
    let mut model = Model::new(cwd, existing, &calls);
    let mut events = Vec::new();
    for call in &calls {
        events.extend(model.apply(call)?);
    }
    let mut checker = Checker {
        commit_path,
        renamed: events
            .iter()
            .filter(|event| matches!(event.op, Op::Rename { .. }))
            .map(|event| event.file)
            .collect(),
        directories: existing
            .iter()
            .filter(|(_, is_dir)| *is_dir)
            .map(|(path, _)| path.clone())
            .collect(),
        unsynced_writes: HashMap::new(),
        pending: HashMap::new(),
        durably_removed: HashSet::new(),
        report: Report::default(),
    };
    checker.report.counts.calls = calls.len();
    for event in &events {
        checker.apply(event);
    }
    checker.finish();
    Ok(checker.report)
}

/// The state the rules need while the events are replayed.
struct Checker<'a> {
    commit_path: &'a CommitPath,
    /// Files renamed somewhere in the trace: creating one creates a temporary.
    renamed: HashSet<FileId>,
    /// The directories known (to tell a directory sync from a file sync in the counts).
    directories: HashSet<PathBuf>,
    /// Per file, its name and the first write not synced yet (line, text).
    unsynced_writes: HashMap<FileId, (PathBuf, usize, String)>,
    /// Per thread, its entry changes whose directory it has not synced yet, oldest first.
    pending: HashMap<Tid, Vec<Pending>>,
    /// Names whose removal is durable (their directory synced after it).
    durably_removed: HashSet<PathBuf>,
    report: Report,
}

impl Checker<'_> {
    fn apply(&mut self, event: &Event) {
        let on_commit_path = self.commit_path.contains(&event.path);
        match &event.op {
            Op::Write => {
                if on_commit_path {
                    self.report.counts.writes += 1;
                }
                if Some(&event.path) == self.commit_path.history().as_ref() {
                    self.report.counts.history_writes += 1;
                    self.history_written(event);
                }
                if self.commit_path.is_segment(&event.path) {
                    self.report.counts.appends += 1;
                    // A step in every partition: a repeated commit completes each partition
                    // on its own, from the offsets in the commit's marker.
                    let topic = self.commit_path.output.clone();
                    self.publishing_step(event, |pending| is_partition(&topic, pending));
                }
                self.unsynced_writes
                    .entry(event.file)
                    .or_insert_with(|| (event.path.clone(), event.line, event.text.clone()));
            }
            Op::Sync => {
                self.unsynced_writes.remove(&event.file);
                if on_commit_path && self.directories.contains(&event.path) {
                    self.report.counts.directory_syncs += 1;
                } else if on_commit_path {
                    self.report.counts.file_syncs += 1;
                }
                self.directory_synced(event);
            }
            Op::Rename { from } => {
                if self.directories.remove(from) {
                    self.directories.insert(event.path.clone());
                }
                if on_commit_path {
                    self.report.counts.renames += 1;
                    self.data_synced_before(event, "renamed");
                    let dir = parent(&event.path).to_owned();
                    self.publishing_step(event, |pending| pending == dir);
                    self.entry_changed(event, &event.path, "renamed into place");
                }
                if self.commit_path.contains(from) && parent(from) != parent(&event.path) {
                    self.entry_changed(event, from, "renamed away");
                }
            }
            Op::Link { .. } if on_commit_path => {
                self.report.counts.links += 1;
                self.data_synced_before(event, "hard-linked");
                self.entry_changed(event, &event.path, "linked");
            }
            Op::Create if on_commit_path => {
                self.report.counts.creates += 1;
                if self.commit_path.is_segment(&event.path) {
                    self.report.counts.segment_rolls += 1;
                }
                let commit_marker = event.path.file_name().is_some_and(|name| name == "COMMIT")
                    && self.commit_path.checkpoint_of(&event.path).as_deref()
                        == event.path.parent();
                if self.renamed.contains(&event.file) {
                    self.report.counts.temporaries += 1;
                } else if commit_marker {
                    self.report.counts.tolerated += 1;
                } else {
                    self.entry_changed(event, &event.path, "created");
                }
            }
            Op::Mkdir => {
                self.directories.insert(event.path.clone());
                if on_commit_path {
                    self.report.counts.mkdirs += 1;
                    self.entry_changed(event, &event.path, "made (mkdir)");
                }
            }
            Op::Remove => {
                self.directories.remove(&event.path);
                // Its data no longer matters (a link made earlier was checked when it was made).
                self.unsynced_writes.remove(&event.file);
                if self.commit_path.is_transaction(&event.path) {
                    self.transaction_removed(event);
                }
                if on_commit_path {
                    self.report.counts.removals += 1;
                    self.removed(event);
                }
            }
            Op::Link { .. } | Op::Create => {}
        }
        if matches!(
            event.op,
            Op::Create | Op::Mkdir | Op::Rename { .. } | Op::Link { .. }
        ) {
            self.durably_removed.remove(&event.path);
        }
    }

    /// Rule 1: a file renamed or linked into the commit path has no unsynced write.
    fn data_synced_before(&mut self, event: &Event, how: &str) {
        if let Some((name, line, text)) = self.unsynced_writes.get(&event.file) {
            self.report.violations.push(format!(
                "data before publish: {} was {how} to {} (trace line {}: `{}`) with a write \
                 not synced since (trace line {line}: `{text}`, to {})",
                source_of(event).display(),
                event.path.display(),
                event.line,
                event.text,
                name.display(),
            ));
        }
    }

    /// Rule 2, first half: records an entry change of `path` as pending in its directory.
    fn entry_changed(&mut self, event: &Event, path: &Path, what: &'static str) {
        if self.commit_path.is_hint(path) {
            self.report.counts.tolerated += 1;
            return;
        }
        self.pending.entry(event.tid).or_default().push(Pending {
            dir: parent(path).to_owned(),
            path: path.to_owned(),
            what,
            line: event.line,
            text: event.text.clone(),
        });
    }

    /// Rule 2, second half: a publishing step finds nothing of its thread pending in a
    /// directory that is not part of the step.
    fn publishing_step(&mut self, event: &Event, part_of_step: impl Fn(&Path) -> bool) {
        let pending = self.pending.entry(event.tid).or_default();
        let (late, kept): (Vec<_>, Vec<_>) = pending
            .drain(..)
            .partition(|change| !part_of_step(&change.dir));
        *pending = kept;
        for change in late {
            self.report.violations.push(format!(
                "directory after publish: {} was {} (trace line {}: `{}`), but its directory \
                 {} was not synced before the same thread's next publishing step, on {} \
                 (trace line {}: `{}`)",
                change.path.display(),
                change.what,
                change.line,
                change.text,
                change.dir.display(),
                event.path.display(),
                event.line,
                event.text,
            ));
        }
    }

    /// A sync of `event.path` makes its thread's pending changes in that directory durable.
    fn directory_synced(&mut self, event: &Event) {
        let Some(pending) = self.pending.get_mut(&event.tid) else {
            return;
        };
        let (synced, kept): (Vec<_>, Vec<_>) = pending.drain(..).partition(|p| p.dir == event.path);
        *pending = kept;
        for change in synced {
            if change.what == "removed" {
                self.durably_removed.insert(change.path);
            }
        }
    }

    /// Rule 3, second half: the history is synced when a commit removes its transaction.
    fn transaction_removed(&mut self, event: &Event) {
        let history = self.commit_path.history();
        let unsynced = self
            .unsynced_writes
            .values()
            .find(|(name, _, _)| Some(name) == history.as_ref());
        if let Some((name, line, text)) = unsynced {
            self.report.violations.push(format!(
                "commit order: the history {} has a write (trace line {line}: `{text}`) not \
                 synced when the transaction {} is removed (trace line {}: `{}`)",
                name.display(),
                event.path.display(),
                event.line,
                event.text,
            ));
        }
    }

    /// Rule 3, first half, and the history write as a publishing step of rule 2.
    fn history_written(&mut self, event: &Event) {
        let mut unsynced: Vec<_> = self
            .unsynced_writes
            .values()
            .filter(|(name, _, _)| self.commit_path.is_segment(name))
            .collect();
        unsynced.sort_by_key(|(_, line, _)| *line);
        for (name, line, text) in unsynced {
            self.report.violations.push(format!(
                "commit order: segment {} has a write (trace line {line}: \
                 `{text}`) not synced when the commit history is written (trace line {}: `{}`)",
                name.display(),
                event.line,
                event.text,
            ));
        }
        let dir = parent(&event.path).to_owned();
        self.publishing_step(event, |pending| pending == dir);
    }

    /// A removal on the commit path: pending, or one the protocol lets a power loss undo once
    /// the removal it follows is durable (see the module documentation).
    fn removed(&mut self, event: &Event) {
        let Some(first) = self.comes_after(&event.path) else {
            return self.entry_changed(event, &event.path, "removed");
        };
        if self.durably_removed.contains(&first) {
            self.report.counts.tolerated += 1;
            return;
        }
        let pending = self.pending.values().flatten();
        let first_removal = pending.filter(|change| change.path == first).last();
        match first_removal {
            Some(change) => self.report.violations.push(format!(
                "removal order: {} was removed (trace line {}: `{}`) while the removal of {} \
                 (trace line {}: `{}`) was not synced yet",
                event.path.display(),
                event.line,
                event.text,
                first.display(),
                change.line,
                change.text,
            )),
            None => self.entry_changed(event, &event.path, "removed"),
        }
    }

    /// The removal after which the removal of `path` may be undone by a power loss: a commit
    /// marker's after its transaction's, anything of a checkpoint after its manifest's.
    fn comes_after(&self, path: &Path) -> Option<PathBuf> {
        if path
            .extension()
            .is_some_and(|extension| extension == "committing")
        {
            return Some(path.with_extension("txn"));
        }
        let manifest = self.commit_path.checkpoint_of(path)?.join("MANIFEST.json");
        (path != manifest).then_some(manifest)
    }

    /// The end of the trace: nothing may still be pending.
    fn finish(&mut self) {
        let mut left: Vec<Pending> = self.pending.drain().flat_map(|(_, p)| p).collect();
        left.sort_by_key(|change| change.line);
        for change in left {
            self.report.violations.push(format!(
                "directory after publish: {} was {} (trace line {}: `{}`), but its directory \
                 {} was not synced by that thread before the trace ends",
                change.path.display(),
                change.what,
                change.line,
                change.text,
                change.dir.display(),
            ));
        }
    }
}

/// Whether `dir` is a partition directory of the topic in `topic`, `TOPIC/partition-P`.
fn is_partition(topic: &Path, dir: &Path) -> bool {
    dir.parent() == Some(topic)
        && dir
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("partition-"))
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(path)
}

/// The old name of a renamed or linked file.
fn source_of(event: &Event) -> &Path {
    match &event.op {
        Op::Rename { from } | Op::Link { from } => from,
        _ => &event.path,
    }
}

// ---------------------------------------------------------------------------------------------
// The checker on small hand-written traces: it must find what is wrong in them.

mod checker {
    use super::*;

    /// A run in `/w` with checkpoints in `/w/chk` and the topic `/w/out`, which exist with
    /// `chk-1`, the topic's `.transactions` (with a history and the transaction of epoch 1)
    /// and `partition-0` (with its first segment) before the trace.
    fn check_snippet(trace: &str) -> Report {
        let directories = [
            "/w",
            "/w/chk",
            "/w/chk/chk-1",
            "/w/out",
            "/w/out/.transactions",
            "/w/out/partition-0",
        ];
        let files = [
            "/w/out/.transactions/history",
            "/w/out/.transactions/epoch-1.txn",
            "/w/out/partition-0/00000000000000000000.log",
        ];
        let existing: Vec<(PathBuf, bool)> = directories
            .iter()
            .map(|path| (PathBuf::from(path), true))
            .chain(files.iter().map(|path| (PathBuf::from(path), false)))
            .collect();
        let commit_path = CommitPath {
            checkpoints: "/w/chk".into(),
            output: "/w/out".into(),
            topic: true,
        };
        check(trace, Path::new("/w"), &existing, &commit_path).unwrap()
    }

    /// Fails unless the only violation found is of `rule` and mentions each of `mentions`.
    fn assert_one_violation(report: &Report, rule: &str, mentions: &[&str]) {
        assert_eq!(report.violations.len(), 1, "{:#?}", report.violations);
        let violation = &report.violations[0];
        assert!(violation.starts_with(rule), "{violation}");
        for mention in mentions {
            assert!(
                violation.contains(mention),
                "no `{mention}` in: {violation}"
            );
        }
    }

    /// A worker manifest written the way `layout::write_atomically` does, by thread 11 of
    /// process 10 (with a call of another thread in between, as `strace -f` prints them).
    const GOOD: &str = r#"10 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD, child_tid=0x1} => {parent_tid=[11]}, 88) = 11
11 openat(AT_FDCWD, "chk/chk-1/worker-0.tmp", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3
11 write(3, ""..., 120 <unfinished ...>
10 write(1, ""..., 5) = 5
11 <... write resumed>) = 120
11 fsync(3) = 0
11 rename("chk/chk-1/worker-0.tmp", "chk/chk-1/worker-0.json") = 0
11 openat(AT_FDCWD, "chk/chk-1", O_RDONLY|O_CLOEXEC) = 4
11 fsync(4) = 0
11 close(4) = 0
11 close(3) = 0
"#;

    #[test]
    fn accepts_a_durable_rename() {
        let report = check_snippet(GOOD);
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
        assert_eq!(report.counts.renames, 1);
        assert_eq!(report.counts.file_syncs, 1);
        assert_eq!(report.counts.directory_syncs, 1);
    }

    #[test]
    fn finds_a_rename_before_its_data_is_synced() {
        let trace = GOOD.replace("11 fsync(3) = 0\n", "");
        let report = check_snippet(&trace);
        assert_one_violation(
            &report,
            "data before publish",
            &[
                "/w/chk/chk-1/worker-0.tmp was renamed to /w/chk/chk-1/worker-0.json",
                "trace line 6: `rename(",
                "trace line 5: `write(3",
            ],
        );
    }

    #[test]
    fn finds_a_write_after_the_sync() {
        let trace = GOOD.replace(
            "11 fsync(3) = 0\n",
            "11 fsync(3) = 0\n11 pwrite64(3, \"\"..., 4, 0) = 4\n",
        );
        let report = check_snippet(&trace);
        assert_one_violation(
            &report,
            "data before publish",
            &["trace line 7: `pwrite64(3"],
        );
    }

    #[test]
    fn finds_a_rename_whose_directory_is_never_synced() {
        let trace = GOOD.replace("11 fsync(4) = 0\n", "");
        let report = check_snippet(&trace);
        assert_one_violation(
            &report,
            "directory after publish",
            &[
                "/w/chk/chk-1/worker-0.json was renamed into place (trace line 7:",
                "directory /w/chk/chk-1 was not synced by that thread before the trace ends",
            ],
        );
    }

    #[test]
    fn finds_a_next_step_before_the_directory_sync() {
        // The directory is synced, but only after the thread published in another directory.
        let trace = r#"7 openat(AT_FDCWD, "/w/out/.transactions/current.pending", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
7 write(3, ""..., 10) = 10
7 fdatasync(3) = 0
7 rename("/w/out/.transactions/current.pending", "/w/out/.transactions/epoch-1.txn") = 0
7 openat(AT_FDCWD, "chk/chk-1/MANIFEST.tmp", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4
7 fsync(4) = 0
7 rename("chk/chk-1/MANIFEST.tmp", "chk/chk-1/MANIFEST.json") = 0
7 openat(AT_FDCWD, "/w/out/.transactions", O_RDONLY) = 5
7 fsync(5) = 0
7 openat(AT_FDCWD, "chk/chk-1", O_RDONLY) = 6
7 fsync(6) = 0
"#;
        let report = check_snippet(trace);
        assert_one_violation(
            &report,
            "directory after publish",
            &[
                "/w/out/.transactions/epoch-1.txn was renamed into place (trace line 4:",
                "next publishing step, on /w/chk/chk-1/MANIFEST.json (trace line 7: `rename(",
            ],
        );
    }

    #[test]
    fn another_threads_sync_does_not_count() {
        let trace = GOOD.replace("11 fsync(4) = 0", "10 fsync(4) = 0");
        let report = check_snippet(&trace);
        assert_one_violation(&report, "directory after publish", &["worker-0.json"]);
    }

    #[test]
    fn follows_descriptors_relative_to_a_directory() {
        // remove_dir_all's way: unlinkat relative to a descriptor of the directory.
        let trace = r#"5 openat(AT_FDCWD, "out/partition-0", O_RDONLY|O_DIRECTORY) = 8
5 unlinkat(8, "00000000000000000000.log", 0) = 0
5 close(8) = 0
"#;
        let report = check_snippet(trace);
        assert_one_violation(
            &report,
            "directory after publish",
            &["/w/out/partition-0/00000000000000000000.log was removed (trace line 2:"],
        );
    }

    /// A commit of the log sink as `Transactions::commit` makes it, into a topic of one
    /// partition.
    const COMMIT: &str = r#"5 openat(AT_FDCWD, "out/.transactions/epoch-1.tmp", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
5 write(3, ""..., 9) = 9
5 fsync(3) = 0
5 rename("out/.transactions/epoch-1.tmp", "out/.transactions/epoch-1.committing") = 0
5 openat(AT_FDCWD, "out/.transactions", O_RDONLY) = 4
5 fsync(4) = 0
5 close(4) = 0
5 write(6, ""..., 64) = 64
5 fdatasync(6) = 0
5 openat(AT_FDCWD, "out/.transactions/history", O_WRONLY|O_CREAT|O_APPEND, 0666) = 7
5 write(7, ""..., 30) = 30
5 fdatasync(7) = 0
5 close(7) = 0
5 unlink("out/.transactions/epoch-1.txn") = 0
5 openat(AT_FDCWD, "out/.transactions", O_RDONLY) = 4
5 fsync(4) = 0
5 close(4) = 0
5 unlink("out/.transactions/epoch-1.committing") = 0
"#;

    /// [`COMMIT`] without its line `number` (from 1), after the segment was opened as
    /// descriptor 6.
    fn commit_without(number: usize) -> String {
        let open = "5 openat(AT_FDCWD, \"out/partition-0/00000000000000000000.log\", \
                    O_WRONLY|O_APPEND) = 6\n";
        let lines = COMMIT.lines().enumerate();
        let kept = lines.filter(|(index, _)| index + 1 != number);
        open.to_owned()
            + &kept
                .map(|(_, line)| format!("{line}\n"))
                .collect::<String>()
    }

    #[test]
    fn accepts_a_log_commit() {
        let report = check_snippet(&commit_without(0));
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
        assert_eq!(report.counts.appends, 1);
        assert_eq!(report.counts.history_writes, 1);
        // The marker's removal, once the transaction's is durable.
        assert_eq!(report.counts.tolerated, 1);
    }

    #[test]
    fn finds_an_append_before_the_commit_marker_is_durable() {
        let report = check_snippet(&commit_without(6));
        assert_one_violation(
            &report,
            "directory after publish",
            &[
                "/w/out/.transactions/epoch-1.committing was renamed into place (trace line 5:",
                "next publishing step, on /w/out/partition-0/00000000000000000000.log (trace \
                 line 8: `write(6",
            ],
        );
    }

    #[test]
    fn finds_a_history_line_before_the_appends_are_synced() {
        let report = check_snippet(&commit_without(9));
        assert_one_violation(
            &report,
            "commit order: segment /w/out/partition-0/00000000000000000000.log",
            &["(trace line 9: `write(6", "(trace line 11: `write(7"],
        );
    }

    #[test]
    fn finds_a_transaction_removed_before_the_history_is_synced() {
        let report = check_snippet(&commit_without(12));
        assert_one_violation(
            &report,
            "commit order: the history /w/out/.transactions/history",
            &[
                "(trace line 12: `write(7",
                "transaction /w/out/.transactions/epoch-1.txn is removed (trace line 14:",
            ],
        );
    }

    #[test]
    fn finds_a_commit_marker_removed_before_its_transaction() {
        // Without the sync between the two removals, the marker's may reach the disk first.
        let report = check_snippet(&commit_without(16));
        assert_eq!(report.violations.len(), 2, "{:#?}", report.violations);
        assert!(
            report.violations[0].starts_with(
                "removal order: /w/out/.transactions/epoch-1.committing was removed (trace line \
                 18:"
            ) && report.violations[0].contains("epoch-1.txn (trace line 15:"),
            "{}",
            report.violations[0]
        );
        assert!(report.violations[1].contains("epoch-1.txn was removed (trace line 15:"));
    }

    #[test]
    fn lets_garbage_collection_leave_the_rest_unsynced() {
        let trace = r#"5 unlink("chk/chk-1/COMMIT") = 0
5 unlink("chk/chk-1/MANIFEST.json") = 0
5 openat(AT_FDCWD, "chk/chk-1", O_RDONLY) = 3
5 fsync(3) = 0
5 close(3) = 0
5 unlinkat(AT_FDCWD, "chk/chk-1/worker-0.json", 0) = 0
5 unlinkat(AT_FDCWD, "chk/chk-1", AT_REMOVEDIR) = 0
"#;
        let report = check_snippet(trace);
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
        // Without the sync of the manifest's removal, the rest may reach the disk first, and
        // the removals of the marker and the manifest are never synced.
        let report = check_snippet(&trace.replace("5 fsync(3) = 0\n", ""));
        let rules: Vec<&str> = report
            .violations
            .iter()
            .map(|violation| violation.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            rules,
            [
                "removal order",
                "removal order",
                "directory after publish",
                "directory after publish"
            ],
            "{:#?}",
            report.violations
        );
    }

    #[test]
    fn a_thread_shares_its_process_descriptors_and_a_process_copies_them() {
        // Thread 2 syncs the descriptor its process opened; process 30 (a fork) closes its copy,
        // which leaves the parent's open.
        let trace = r#"1 openat(AT_FDCWD, "chk/chk-1/x.tmp", O_WRONLY|O_CREAT, 0666) = 3
1 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD) = 30
30 close(3) = 0
1 clone3({flags=CLONE_VM|CLONE_FILES|CLONE_THREAD} => {parent_tid=[2]}, 88) = 2
1 write(3, ""..., 9) = 9
2 fsync(3) = 0
2 rename("chk/chk-1/x.tmp", "chk/chk-1/x") = 0
2 openat(AT_FDCWD, "chk/chk-1", O_RDONLY) = 4
2 fsync(4) = 0
"#;
        let report = check_snippet(trace);
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
    }

    #[test]
    fn a_descriptor_is_free_once_its_close_begins() {
        // Thread 2 gets descriptor 3 while thread 1's close of it has not returned yet.
        let trace = r#"1 clone3({flags=CLONE_VM|CLONE_FILES|CLONE_THREAD} => {parent_tid=[2]}, 88) = 2
1 openat(AT_FDCWD, "chk/chk-1/a", O_RDONLY) = 3
1 close(3 <unfinished ...>
2 openat(AT_FDCWD, "chk/chk-1/b.tmp", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
1 <... close resumed>) = 0
2 write(3, ""..., 4) = 4
2 fsync(3) = 0
2 rename("chk/chk-1/b.tmp", "chk/chk-1/b") = 0
2 openat(AT_FDCWD, "chk/chk-1", O_RDONLY) = 4
2 fsync(4) = 0
"#;
        let report = check_snippet(trace);
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
        assert_eq!(report.counts.file_syncs, 1);
    }

    #[test]
    fn names_the_line_it_cannot_read() {
        let trace = format!("{GOOD}11 rename(\"chk/chk-1/a\"...\n");
        let error = check(
            &trace,
            Path::new("/w"),
            &[],
            &CommitPath {
                checkpoints: "/w/chk".into(),
                output: "/w/out".into(),
                topic: false,
            },
        )
        .unwrap_err();
        assert!(error.starts_with("trace line 12: "), "{error}");
        let error = parse_trace("11 <... write resumed>) = 1\n").unwrap_err();
        assert!(
            error.contains("trace line 1: this thread has no unfinished call"),
            "{error}"
        );
        let error = parse_trace("11 rename(\"a\"..., \"b\") = 0\n")
            .and_then(|calls| calls[0].path_arg(0))
            .unwrap_err();
        assert!(error.starts_with("trace line 1: argument 1:"), "{error}");
    }

    #[test]
    fn undoes_string_escapes() {
        assert_eq!(
            unquote(r#""a\"b\\c\n\x41\101\0""#).unwrap(),
            b"a\"b\\c\nAA\0"
        );
        assert!(unquote(r#""cut"..."#).is_err());
    }
}
