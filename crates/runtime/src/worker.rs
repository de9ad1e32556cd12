//! Worker processes: a job on untrusted input (parsing an uploaded file, drawing a page of
//! a PDF) run in a child process with limits, so that a hostile or broken input can take
//! down only its own worker: a crash, a hang or a runaway allocation becomes a [`Death`]
//! that the service words for its user, and the server goes on.
//!
//! The child is the running binary itself (`lectern`, `lectern-ingest`, `lectern-web`),
//! started with [`WORKER_ARG`] and a job's name: [`serve_if_worker`] at the top of `main`
//! turns it into a one-shot worker before anything else starts. The worker limits its own
//! data memory and CPU time (`setrlimit`), cannot open sockets (a seccomp filter makes
//! `socket(2)` fail) and gets an empty environment; it reads its input from its arguments
//! or its standard input, and writes one answer on its standard output, which the parent
//! reads up to a bound. The parent kills it when the wall-clock limit passes.
//!
//! This module is the generic part; each service keeps its own job (what the worker does,
//! the answer's format, the words for a death): ingest's parse job, the web app's render job.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The first argument that makes a Lectern binary a worker; the job's name follows.
pub const WORKER_ARG: &str = "__lectern-worker";

/// Makes every worker misbehave on purpose, for the tests of what the parent does then:
/// `abort` (a crash), `hang`, or `escape` (the job answers what its attempts to get out of
/// its confinement gave, see [`escape_fault`]).
pub const FAULT_ENV: &str = "LECTERN_TEST_PARSER_FAULT";

/// Environment variables a worker keeps (it gets none of the server's secrets).
const KEPT_ENV: [&str; 3] = ["PATH", "LD_LIBRARY_PATH", FAULT_ENV];

/// How much of a worker's standard error is kept, for its death's reason and the log.
const STDERR_KEPT: usize = 4096;

/// What allocators print when an allocation fails.
const OUT_OF_MEMORY: [&str; 4] = [
    "memory allocation of",
    "bad_alloc",
    "out of memory",
    "Out of memory",
];

/// A kind of job that a binary's workers do.
#[derive(Clone, Copy)]
pub struct Job {
    /// The job's name on the worker's command line.
    pub name: &'static str,
    /// Does the job in the confined worker: `args` are the job's own arguments, its input
    /// (when it has one) is on standard input, and its answer goes to `out`. An `Err` is a
    /// wrong command line or an answer that could not be written: the worker says it on
    /// standard error and exits with status 4. What went wrong with the input itself is
    /// part of the answer.
    pub run: fn(args: &[OsString], out: &mut dyn Write) -> Result<(), String>,
    /// The files and folders outside the system's own (see [`SYSTEM_READABLE`]) that the
    /// job reads, given its arguments: its input file, the PDFium library, OCR's program
    /// and language data. The worker can read nothing else.
    pub reads: fn(args: &[OsString]) -> Vec<PathBuf>,
}

/// What every worker may read: the system's programs, libraries, fonts and time zones,
/// its own process's files, and the CPU's description (OpenMP sizes itself by it). Not
/// the rest of `/proc` (another process's environment holds the server's secrets), not
/// `/home`, `/var`, `/srv` or `/opt` (Lectern's data and settings), nor the rest of `/etc`.
pub const SYSTEM_READABLE: [&str; 14] = [
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/fonts",
    "/etc/localtime",
    "/dev/null",
    "/dev/urandom",
    "/proc/self",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
];

struct Host {
    program: PathBuf,
    jobs: Vec<&'static str>,
}

static HOST: OnceLock<Host> = OnceLock::new();

/// Call first in `main`, before any runtime or thread starts, with the jobs this binary
/// can do: when the process was started as a worker it does that job and exits;
/// otherwise it records this executable as the program that [`host_program`] offers for
/// those jobs.
pub fn serve_if_worker(jobs: &[Job]) {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(OsStr::new(WORKER_ARG)) {
        std::process::exit(serve(jobs, args.collect()));
    }
    if let Ok(program) = std::env::current_exe() {
        let _ = HOST.set(Host {
            program,
            jobs: jobs.iter().map(|job| job.name).collect(),
        });
    }
}

/// The executable that can run workers for `job`: set when this process's `main` called
/// [`serve_if_worker`] with that job. Test binaries don't, and do the job in process.
pub fn host_program(job: &str) -> Option<PathBuf> {
    HOST.get()
        .filter(|host| host.jobs.iter().any(|name| *name == job))
        .map(|host| host.program.clone())
}

/// How workers are started and bounded.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// A binary whose `main` calls [`serve_if_worker`] with the job.
    pub program: PathBuf,
    /// Most data memory (heap and private mappings) of one worker.
    pub memory_mb: u64,
}

/// Why a worker gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// It needed more memory than its limit (its allocator said so before it died).
    OutOfMemory,
    /// It used up its CPU time, or its wall-clock time (and was killed).
    Timeout,
    /// Something outside killed it (SIGKILL, which the CPU limit never sends: its SIGXCPU
    /// ends the worker first): most often the kernel's out-of-memory killer, when the
    /// machine as a whole ran short of memory.
    Killed,
    /// Another signal ended it: a crash.
    Signal(i32),
    /// It exited with this failure status: a wrong command line, no answer written, or
    /// the worker could not confine itself.
    Exit(i32),
    /// Its answer was longer than the bound (and it was killed).
    AnswerTooLarge,
}

/// The CPU time limit of a worker whose wall-clock limit is `timeout`.
fn cpu_secs(timeout: Duration) -> u64 {
    timeout.as_secs().max(1)
}

/// Runs `job` in a worker: `args` are the job's own arguments and `input` (unless empty)
/// goes to its standard input. `timeout` bounds the worker's wall-clock time, and its CPU
/// time too; its answer may be at most `max_answer` bytes.
///
/// `Err` only when no worker could be started or its pipes failed (not the input's
/// fault); a worker that dies, stalls or says too much is an `Ok(Err(death))`.
pub async fn run<I, S>(
    isolation: &Isolation,
    job: &str,
    args: I,
    input: &[u8],
    timeout: Duration,
    max_answer: usize,
) -> std::io::Result<Result<Vec<u8>, Death>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = tokio::process::Command::new(&isolation.program);
    command
        .arg(WORKER_ARG)
        .arg(job)
        .arg(isolation.memory_mb.to_string())
        .arg(cpu_secs(timeout).to_string())
        .args(args)
        .env_clear();
    for key in KEPT_ENV {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command
        .stdin(if input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // A group of its own, so that what the worker starts (Tesseract, for OCR) is killed
    // with it when it is stopped early.
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn()?;
    let mut group = Group(child.id());
    let stdin = child.stdin.take();
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(std::io::Error::other(
            "the worker's output is not connected",
        ));
    };
    let exchange = async {
        let feed = async move {
            if let Some(mut stdin) = stdin {
                // A worker that dies before it has read its input breaks the pipe; its
                // exit status says why. Dropping `stdin` ends the input.
                let _ = stdin.write_all(input).await;
            }
            Ok::<(), Stop>(())
        };
        let answer = async {
            read_bounded(&mut stdout, max_answer)
                .await
                .map_err(Stop::Io)?
                .ok_or(Stop::TooLarge)
        };
        let errors = async { read_head(&mut stderr, STDERR_KEPT).await.map_err(Stop::Io) };
        let ((), answer, errors) = tokio::try_join!(feed, answer, errors)?;
        let status = child.wait().await.map_err(Stop::Io)?;
        Ok::<_, Stop>((status, answer, errors))
    };
    // On an early return the child is dropped, which kills it; tokio reaps it.
    let (status, answer, errors) = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return Ok(Err(Death::Timeout)),
        Ok(Err(Stop::TooLarge)) => return Ok(Err(Death::AnswerTooLarge)),
        Ok(Err(Stop::Io(e))) => return Err(e),
        Ok(Ok(done)) => done,
    };
    // It ended by itself, having waited for what it started: its group is not killed (its
    // id may already be another's).
    group.0 = None;
    if status.success() {
        return Ok(Ok(answer));
    }
    let errors = String::from_utf8_lossy(&errors);
    tracing::warn!(job, %status, stderr = %errors.trim(), "a worker died");
    Ok(Err(death_of(status, &errors)))
}

/// A worker's process group, killed when dropped (a worker stopped early takes what it
/// started with it); `None` once there is nothing to kill.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(id) = self.0.and_then(|id| i32::try_from(id).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(id),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Why reading a worker's answer stopped early.
enum Stop {
    Io(std::io::Error),
    TooLarge,
}

/// Reads `from` to its end, at most `max` bytes; `None` when there is more.
async fn read_bounded(
    from: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut read = Vec::new();
    from.take((max as u64).saturating_add(1))
        .read_to_end(&mut read)
        .await?;
    Ok((read.len() <= max).then_some(read))
}

/// Reads `from` to its end (so that the writer never blocks on it) and keeps its first
/// `keep` bytes.
async fn read_head(from: &mut (impl AsyncRead + Unpin), keep: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = from.read(&mut chunk).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Why a worker died, from its exit status and what it said on standard error.
fn death_of(status: ExitStatus, stderr: &str) -> Death {
    if OUT_OF_MEMORY.iter().any(|m| stderr.contains(m)) {
        return Death::OutOfMemory;
    }
    match signal_of(status) {
        // The CPU limit: SIGXCPU at the soft limit, which ends the worker.
        Some(24) => Death::Timeout,
        Some(9) => Death::Killed,
        Some(signal) => Death::Signal(signal),
        None => Death::Exit(status.code().unwrap_or(-1)),
    }
}

#[cfg(unix)]
fn signal_of(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[cfg(not(unix))]
fn signal_of(_: ExitStatus) -> Option<i32> {
    None
}

/// What [`escape_fault`] answers where every attempt is refused (Linux with Landlock 6 or
/// later): the sockets by seccomp, the rest by Landlock.
pub const ESCAPE_REFUSED: &str = "no socket: Permission denied (os error 13); \
no file written: Permission denied (os error 13); \
the server's environment unread: Permission denied (os error 13); \
no signal to the server: Operation not permitted";

/// The tests' fault `escape` ([`FAULT_ENV`]): what a worker taken over by a hostile file
/// would try, and what each attempt gave (each must be refused): opening a socket, writing
/// a file, reading the server's environment (its parent's, where secrets are), and
/// signalling the server. `None` without that fault. A job answers it as its input's
/// failure, so that the test can read it.
pub fn escape_fault() -> Option<String> {
    if std::env::var(FAULT_ENV).as_deref() != Ok("escape") {
        return None;
    }
    let socket = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(_) => "a socket was opened".to_owned(),
        Err(e) => format!("no socket: {e}"),
    };
    let path = std::env::temp_dir().join(format!("lectern-worker-{}", std::process::id()));
    let written = match std::fs::write(&path, b"escaped") {
        Ok(()) => {
            let _ = std::fs::remove_file(&path);
            "a file was written".to_owned()
        }
        Err(e) => format!("no file written: {e}"),
    };
    let server = std::os::unix::process::parent_id();
    let read = match std::fs::read(format!("/proc/{server}/environ")) {
        Ok(_) => "the server's environment was read".to_owned(),
        Err(e) => format!("the server's environment unread: {e}"),
    };
    Some(format!(
        "{socket}; {written}; {read}; {}",
        signal_server(server)
    ))
}

/// What sending the server signal 0 (no signal, only the check) gave.
#[cfg(target_os = "linux")]
fn signal_server(server: u32) -> String {
    let pid = nix::unistd::Pid::from_raw(server as i32);
    match nix::sys::signal::kill(pid, None) {
        Ok(()) => "the server could be signalled".to_owned(),
        Err(e) => format!("no signal to the server: {}", e.desc()),
    }
}

#[cfg(not(target_os = "linux"))]
fn signal_server(_server: u32) -> String {
    "no signal to the server: not checked here".to_owned()
}

/// The worker: `<job> <memory MB> <CPU seconds> [the job's arguments...]`.
fn serve(jobs: &[Job], args: Vec<OsString>) -> i32 {
    let [name, memory_mb, cpu_secs, rest @ ..] = args.as_slice() else {
        eprintln!("usage: {WORKER_ARG} JOB MEMORY-MB CPU-SECONDS [ARGUMENTS...]");
        return 2;
    };
    let Some(job) = jobs
        .iter()
        .find(|job| OsStr::new(job.name) == name.as_os_str())
    else {
        eprintln!(
            "{WORKER_ARG}: this program does no job {:?}",
            name.to_string_lossy()
        );
        return 2;
    };
    let number = |s: &OsString| s.to_str().and_then(|s| s.parse::<u64>().ok());
    let (Some(memory_mb), Some(cpu_secs)) = (number(memory_mb), number(cpu_secs)) else {
        eprintln!("{WORKER_ARG}: the limits must be numbers");
        return 2;
    };
    let mut readable: Vec<PathBuf> = SYSTEM_READABLE.iter().map(PathBuf::from).collect();
    // The folders the dynamic loader may look in for the libraries loaded later (PDFium).
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        readable.extend(std::env::split_paths(&paths).filter(|p| p.is_absolute()));
    }
    readable.extend((job.reads)(rest));
    if let Err(e) = confine(memory_mb, cpu_secs, &readable) {
        eprintln!("{WORKER_ARG}: cannot confine the worker: {e}");
        return 3;
    }
    match std::env::var(FAULT_ENV).as_deref() {
        Ok("abort") => std::process::abort(),
        Ok("hang") => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
        _ => {}
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let done = (job.run)(rest, &mut out);
    let done = done.and_then(|()| {
        out.flush()
            .map_err(|e| format!("cannot write the answer: {e}"))
    });
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{WORKER_ARG} {}: {e}", job.name);
            4
        }
    }
}

/// Limits this (single-threaded) process: data memory, CPU time, no core dumps, no sockets,
/// no io_uring, no reading of other processes; and, where the kernel has Landlock, no file
/// written anywhere, nothing read but `readable`, no TCP, and no signal to a process
/// outside the worker (the server runs as the same user).
#[cfg(target_os = "linux")]
fn confine(memory_mb: u64, cpu_secs: u64, readable: &[PathBuf]) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    use seccompiler::{SeccompAction, SeccompFilter};

    let bytes = memory_mb.saturating_mul(1024 * 1024);
    // RLIMIT_DATA, not RLIMIT_AS: allocators reserve address space they never use.
    setrlimit(Resource::RLIMIT_DATA, bytes, bytes).map_err(|e| format!("memory limit: {e}"))?;
    setrlimit(Resource::RLIMIT_CPU, cpu_secs, cpu_secs + 1)
        .map_err(|e| format!("CPU limit: {e}"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("core limit: {e}"))?;
    landlock(readable).map_err(|e| format!("Landlock: {e}"))?;
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e:?}"))?;
    // No sockets, nor the ways around that rule: io_uring opens sockets without socket(2),
    // and ptrace or process_vm_readv would read the server's memory (the same user).
    let denied = [
        nix::libc::SYS_socket,
        nix::libc::SYS_io_uring_setup,
        nix::libc::SYS_ptrace,
        nix::libc::SYS_process_vm_readv,
        nix::libc::SYS_process_vm_writev,
    ];
    let filter = SeccompFilter::new(
        denied.into_iter().map(|call| (call, Vec::new())).collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(nix::libc::EACCES as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    let program: seccompiler::BpfProgram =
        filter.try_into().map_err(|e| format!("seccomp: {e:?}"))?;
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))
}

/// The Landlock domain of a worker: every file-system access handled (so refused unless
/// a rule grants it), read access granted beneath `readable` (paths that do not exist are
/// passed over) and writing to `/dev/null`; TCP handled with no port granted; signals
/// and abstract sockets scoped to the worker and its children (Tesseract). Best effort:
/// a kernel without Landlock, or with an older version, enforces what it knows, and the
/// rest of the confinement still holds.
#[cfg(target_os = "linux")]
fn landlock(readable: &[PathBuf]) -> Result<(), landlock::RulesetError> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
        path_beneath_rules,
    };
    let abi = ABI::V6;
    Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(readable, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(
            ["/dev/null"],
            AccessFs::from_read(abi) | AccessFs::WriteFile,
        ))?
        .restrict_self()?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn confine(_memory_mb: u64, _cpu_secs: u64, _readable: &[PathBuf]) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn killed_by(signal: i32) -> ExitStatus {
        std::os::unix::process::ExitStatusExt::from_raw(signal)
    }

    #[cfg(unix)]
    #[test]
    fn a_dead_worker_is_told_from_its_status_and_last_words() {
        assert_eq!(
            death_of(
                killed_by(6),
                "memory allocation of 1073741824 bytes failed\n"
            ),
            Death::OutOfMemory
        );
        assert_eq!(death_of(killed_by(24), ""), Death::Timeout);
        assert_eq!(death_of(killed_by(9), ""), Death::Killed);
        assert_eq!(death_of(killed_by(11), ""), Death::Signal(11));
        assert_eq!(death_of(killed_by(3 << 8), "usage"), Death::Exit(3));
    }

    /// Stand-ins for a worker binary: shell scripts, which get the same command line and
    /// pipes as a worker (and are not confined, which the services' tests check).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_worker_gets_its_job_and_input_and_is_bounded_in_time_and_answer() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        // All scripts are written before any is started: a script still open for
        // writing in a child being started cannot be executed ("text file busy").
        let script = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Isolation {
                program: path,
                memory_mb: 64,
            }
        };
        let echo = script(
            "echo",
            "printf '%s|%s|%s|%s|' \"$1\" \"$2\" \"$3\" \"$5\"\nexec cat",
        );
        let chatty = script("chatty", "head -c 5000 /dev/zero");
        let hang = script("hang", "exec sleep 30");
        let crash = script("crash", "ulimit -c 0\nkill -SEGV $$");
        let oom = script(
            "oom",
            "ulimit -c 0\necho 'memory allocation of 4096 bytes failed' >&2\nkill -ABRT $$",
        );
        let second = Duration::from_secs(1);
        let ten = Duration::from_secs(10);

        let answer = run(&echo, "draw", ["page-7"], b"the input", ten, 1000)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(answer.unwrap()).unwrap(),
            format!("{WORKER_ARG}|draw|64|page-7|the input")
        );
        assert_eq!(
            run(&chatty, "draw", [""; 0], b"", ten, 4999).await.unwrap(),
            Err(Death::AnswerTooLarge)
        );
        assert_eq!(
            run(&chatty, "draw", [""; 0], b"", ten, 5000)
                .await
                .unwrap()
                .map(|a| a.len()),
            Ok(5000)
        );
        let started = std::time::Instant::now();
        assert_eq!(
            run(&hang, "draw", [""; 0], b"", second, 1000)
                .await
                .unwrap(),
            Err(Death::Timeout)
        );
        assert!(started.elapsed() < Duration::from_secs(5), "killed on time");
        assert_eq!(
            run(&crash, "draw", [""; 0], b"", ten, 1000).await.unwrap(),
            Err(Death::Signal(11))
        );
        assert_eq!(
            run(&oom, "draw", [""; 0], b"", ten, 1000).await.unwrap(),
            Err(Death::OutOfMemory)
        );
        let missing = Isolation {
            program: dir.path().join("missing"),
            memory_mb: 64,
        };
        assert!(
            run(&missing, "draw", [""; 0], b"", ten, 1000)
                .await
                .is_err(),
            "no worker started: not the input's fault"
        );
    }
}
