//! Parsing in a child process with limits, so that a hostile or broken file can take down
//! only its own reader: a crash, a hang or a runaway allocation fails that document with a
//! reason and the server goes on.
//!
//! The child is the running binary itself (`lectern` or `lectern-ingest`), started with
//! [`WORKER_ARG`]: [`serve_if_worker`] at the top of `main` turns it into a one-shot parse
//! worker before anything else starts. The worker limits its own data memory and CPU time
//! (`setrlimit`), cannot open sockets (a seccomp filter makes `socket(2)` fail) and gets an
//! empty environment, reads one stored original, parses it in process, and writes the
//! outcome as JSON on stdout. The parent kills it when the wall-clock limit passes.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use lectern_core::{DocumentParser, ParseError, ParsedDocument};

use super::Parsers;

/// The first argument that makes a Lectern binary a parse worker.
pub const WORKER_ARG: &str = "__lectern-parse-worker";

/// Environment variables the worker keeps (it gets none of the server's secrets).
/// `LECTERN_TEST_PARSER_FAULT` (`abort`, `hang`, or `socket` to try opening one) makes a
/// worker misbehave on purpose, for the tests of what the parent does then.
const KEPT_ENV: [&str; 3] = ["PATH", "LD_LIBRARY_PATH", "LECTERN_TEST_PARSER_FAULT"];

static HOST: OnceLock<PathBuf> = OnceLock::new();

/// Call first in `main`, before any runtime or thread starts: when the process was started
/// as a parse worker it does that job and exits; otherwise it records this executable as
/// the program that [`host_program`] offers for isolation.
pub fn serve_if_worker() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(OsStr::new(WORKER_ARG)) {
        std::process::exit(worker(args.collect()));
    }
    if let Ok(exe) = std::env::current_exe() {
        let _ = HOST.set(exe);
    }
}

/// The executable that can run parse workers: set when this process's `main` called
/// [`serve_if_worker`]. Test binaries don't, and parse in process.
pub fn host_program() -> Option<PathBuf> {
    HOST.get().cloned()
}

/// How parse workers are started and bounded.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// A binary whose `main` calls [`serve_if_worker`].
    pub program: PathBuf,
    /// Most data memory (heap and private mappings) of one worker.
    pub memory_mb: u64,
}

/// Parses the file at `path` in a worker. `Err` only when no worker could be started
/// (not the file's fault; the job is retried); a file that kills or stalls its worker is
/// an `Ok(Err(reason))`.
/// `timeout` bounds the worker's wall-clock time, and its CPU time too.
pub(super) async fn parse(
    isolation: &Isolation,
    pdfium: Option<&Path>,
    timeout: Duration,
    path: &Path,
    media_type: &str,
) -> std::io::Result<Result<ParsedDocument, ParseError>> {
    let cpu_secs = timeout.as_secs().max(1);
    let mut command = tokio::process::Command::new(&isolation.program);
    command
        .arg(WORKER_ARG)
        .arg(path)
        .arg(media_type)
        .arg(isolation.memory_mb.to_string())
        .arg(cpu_secs.to_string());
    if let Some(lib) = pdfium {
        command.arg(lib);
    }
    command.env_clear();
    for key in KEPT_ENV {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    // On timeout the child is dropped, which kills it; tokio reaps it.
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => return Ok(Err(ParseError::Timeout(timeout.as_secs()))),
        Ok(output) => output?,
    };
    if output.status.success() {
        return Ok(serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            Err(ParseError::Crashed(format!(
                "its answer was unreadable: {e}"
            )))
        }));
    }
    let stderr = String::from_utf8_lossy(&output.stderr[..output.stderr.len().min(4096)]);
    tracing::warn!(file = %path.display(), status = %output.status, stderr = %stderr.trim(), "a parse worker died");
    Ok(Err(death_reason(
        output.status,
        &stderr,
        isolation.memory_mb,
        cpu_secs,
    )))
}

/// Why a worker died, in the owner's words.
fn death_reason(status: ExitStatus, stderr: &str, memory_mb: u64, cpu_secs: u64) -> ParseError {
    let out_of_memory = [
        "memory allocation of",
        "bad_alloc",
        "out of memory",
        "Out of memory",
    ]
    .iter()
    .any(|m| stderr.contains(m));
    if out_of_memory {
        return ParseError::TooLarge(format!(
            "reading the file needed more than the {memory_mb} MB of memory a document may use"
        ));
    }
    match signal_of(status) {
        // The CPU limit: SIGXCPU at the soft limit, SIGKILL at the hard one.
        Some(24 | 9) => ParseError::Timeout(cpu_secs),
        Some(signal) => ParseError::Crashed(format!(
            "signal {signal}; the file is damaged, or needs more than the {memory_mb} MB of memory a document may use"
        )),
        None => ParseError::Crashed(format!("exit status {}", status.code().unwrap_or(-1))),
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

/// The worker: `<file> <media type> <memory MB> <CPU seconds> [PDFium library]`.
fn worker(args: Vec<OsString>) -> i32 {
    let [path, media_type, memory_mb, cpu_secs, rest @ ..] = args.as_slice() else {
        eprintln!("usage: {WORKER_ARG} FILE MEDIA-TYPE MEMORY-MB CPU-SECONDS [PDFIUM]");
        return 2;
    };
    let number = |s: &OsString| s.to_str().and_then(|s| s.parse::<u64>().ok());
    let (Some(memory_mb), Some(cpu_secs), Some(media_type)) =
        (number(memory_mb), number(cpu_secs), media_type.to_str())
    else {
        eprintln!("{WORKER_ARG}: the limits must be numbers and the media type text");
        return 2;
    };
    if let Err(e) = confine(memory_mb, cpu_secs) {
        eprintln!("{WORKER_ARG}: cannot confine the worker: {e}");
        return 3;
    }
    let parsers = Parsers {
        pdfium: rest.first().map(PathBuf::from),
        timeout: Duration::from_secs(cpu_secs),
        isolation: None,
    };
    let outcome = match std::env::var("LECTERN_TEST_PARSER_FAULT").as_deref() {
        Ok("abort") => std::process::abort(),
        Ok("hang") => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
        // What opening a socket gives here (it must be refused).
        Ok("socket") => Err(ParseError::Malformed(
            match std::net::TcpListener::bind("127.0.0.1:0") {
                Ok(_) => "a socket was opened".into(),
                Err(e) => format!("no socket: {e}"),
            },
        )),
        _ => std::fs::read(path)
            .map_err(|e| ParseError::Malformed(format!("the stored file cannot be read: {e}")))
            .and_then(|bytes| parsers.parse(&bytes, media_type)),
    };
    let stdout = std::io::stdout().lock();
    match serde_json::to_writer(std::io::BufWriter::new(stdout), &outcome) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{WORKER_ARG}: cannot write the outcome: {e}");
            4
        }
    }
}

/// Limits this (single-threaded) process: data memory, CPU time, no core dumps, no sockets.
#[cfg(target_os = "linux")]
fn confine(memory_mb: u64, cpu_secs: u64) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    use seccompiler::{SeccompAction, SeccompFilter};

    let bytes = memory_mb.saturating_mul(1024 * 1024);
    // RLIMIT_DATA, not RLIMIT_AS: allocators reserve address space they never use.
    setrlimit(Resource::RLIMIT_DATA, bytes, bytes).map_err(|e| format!("memory limit: {e}"))?;
    setrlimit(Resource::RLIMIT_CPU, cpu_secs, cpu_secs + 1)
        .map_err(|e| format!("CPU limit: {e}"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("core limit: {e}"))?;
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e:?}"))?;
    let filter = SeccompFilter::new(
        [(nix::libc::SYS_socket, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(nix::libc::EACCES as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    let program: seccompiler::BpfProgram =
        filter.try_into().map_err(|e| format!("seccomp: {e:?}"))?;
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))
}

#[cfg(not(target_os = "linux"))]
fn confine(_memory_mb: u64, _cpu_secs: u64) -> Result<(), String> {
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
    fn a_dead_worker_is_explained_in_the_owners_words() {
        let oom = death_reason(
            killed_by(6),
            "memory allocation of 1073741824 bytes failed\n",
            512,
            60,
        );
        assert!(oom.to_string().contains("512 MB of memory"), "{oom}");
        assert_eq!(
            death_reason(killed_by(24), "", 512, 60),
            ParseError::Timeout(60)
        );
        let crash = death_reason(killed_by(11), "", 512, 60);
        assert!(matches!(crash, ParseError::Crashed(_)), "{crash:?}");
        assert!(crash.to_string().contains("crash"), "{crash}");
    }
}
