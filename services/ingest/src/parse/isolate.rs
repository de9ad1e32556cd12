//! Parsing in a worker process with limits, so that a hostile or broken file can take down
//! only its own reader: a crash, a hang or a runaway allocation fails that document with a
//! reason and the server goes on.
//!
//! The worker machinery (starting the running binary as a confined worker, reading its
//! answer, telling why it died) is `lectern_runtime::worker`'s; this is ingest's job for
//! it: the worker reads one stored original, parses it in process, and writes the outcome
//! as JSON on stdout. Binaries that ingest list [`PARSE_JOB`] in their `main`'s call of
//! `lectern_runtime::worker::serve_if_worker`.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lectern_core::{DocumentParser, ParseError, ParsedDocument};
use lectern_runtime::worker::{self, Death, Job};

pub use lectern_runtime::worker::Isolation;

use super::{Ocr, Parsers};

/// The job of parsing one stored file.
pub const PARSE_JOB: Job = Job {
    name: "parse",
    run: parse_job,
    reads: parse_reads,
};

/// Parses the file at `path` in a worker. `Err` only when no worker could be started
/// (not the file's fault; the job is retried); a file that kills or stalls its worker is
/// an `Ok(Err(reason))`.
/// `timeout` bounds the worker's wall-clock time, and its CPU time too.
pub(super) async fn parse(
    isolation: &Isolation,
    parsers: &Parsers,
    path: &Path,
    media_type: &str,
) -> std::io::Result<Result<ParsedDocument, ParseError>> {
    let timeout = parsers.timeout;
    let secs = timeout.as_secs().max(1).to_string();
    let ocr = serde_json::to_string(&parsers.ocr).map_err(std::io::Error::other)?;
    let mut args = vec![
        path.as_os_str(),
        OsStr::new(media_type),
        OsStr::new(&secs),
        OsStr::new(&ocr),
    ];
    if let Some(lib) = &parsers.pdfium {
        args.push(lib.as_os_str());
    }
    // The answer is the document as JSON: bounded by what the worker itself may hold.
    let max_answer =
        usize::try_from(isolation.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    let answer = worker::run(isolation, PARSE_JOB.name, args, &[], timeout, max_answer).await?;
    Ok(match answer {
        Ok(answer) => serde_json::from_slice(&answer).unwrap_or_else(|e| {
            Err(ParseError::Crashed(format!(
                "its answer was unreadable: {e}"
            )))
        }),
        Err(death) => {
            tracing::warn!(file = %path.display(), ?death, "a parse worker died");
            Err(parse_error(death, isolation.memory_mb, timeout))
        }
    })
}

/// Why a parse worker died, in the owner's words.
fn parse_error(death: Death, memory_mb: u64, timeout: Duration) -> ParseError {
    match death {
        Death::OutOfMemory => ParseError::TooLarge(format!(
            "reading the file needed more than the {memory_mb} MB of memory a document may use"
        )),
        Death::Timeout => ParseError::Timeout(timeout.as_secs()),
        Death::Killed => ParseError::TooLarge(
            "the system stopped the reader, most often because the machine ran out of memory while reading the file".into(),
        ),
        Death::Signal(signal) => ParseError::Crashed(format!(
            "signal {signal}; the file is damaged, or needs more than the {memory_mb} MB of memory a document may use"
        )),
        Death::Exit(code) => ParseError::Crashed(format!("exit status {code}")),
        Death::AnswerTooLarge => ParseError::TooLarge(format!(
            "the text read from the file is more than the {memory_mb} MB a document may use"
        )),
    }
}

/// What the parse job reads: its file, OCR's program and data, the PDFium library.
fn parse_reads(args: &[OsString]) -> Vec<PathBuf> {
    let [path, _, _, ocr, rest @ ..] = args else {
        return Vec::new();
    };
    std::iter::once(PathBuf::from(path))
        .chain(Ocr::paths_in_arg(ocr))
        .chain(rest.first().map(PathBuf::from))
        .collect()
}

/// The parse job: `<file> <media type> <seconds> <OCR settings as JSON> [PDFium
/// library]`; the outcome as JSON.
fn parse_job(args: &[OsString], out: &mut dyn Write) -> Result<(), String> {
    let [path, media_type, secs, ocr, rest @ ..] = args else {
        return Err("usage: parse FILE MEDIA-TYPE SECONDS OCR [PDFIUM]".into());
    };
    let secs = secs.to_str().and_then(|s| s.parse::<u64>().ok());
    let ocr = Ocr::from_arg(ocr);
    let (Some(media_type), Some(secs), Some(ocr)) = (media_type.to_str(), secs, ocr) else {
        return Err(
            "the media type must be text, the time limit a number and OCR's settings JSON".into(),
        );
    };
    let parsers = Parsers {
        pdfium: rest.first().map(PathBuf::from),
        timeout: Duration::from_secs(secs),
        isolation: None,
        ocr,
    };
    let outcome = match worker::escape_fault() {
        Some(said) => Err(ParseError::Malformed(said)),
        None => std::fs::read(path)
            .map_err(|e| ParseError::Malformed(format!("the stored file cannot be read: {e}")))
            .and_then(|bytes| parsers.parse(&bytes, media_type)),
    };
    serde_json::to_writer(out, &outcome).map_err(|e| format!("cannot write the outcome: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_worker_is_explained_in_the_owners_words() {
        let minute = Duration::from_secs(60);
        let oom = parse_error(Death::OutOfMemory, 512, minute);
        assert!(oom.to_string().contains("512 MB of memory"), "{oom}");
        assert_eq!(
            parse_error(Death::Timeout, 512, minute),
            ParseError::Timeout(60)
        );
        let crash = parse_error(Death::Signal(11), 512, minute);
        assert!(matches!(crash, ParseError::Crashed(_)), "{crash:?}");
        assert!(crash.to_string().contains("crash (signal 11"), "{crash}");
        let killed = parse_error(Death::Killed, 512, minute);
        assert!(matches!(killed, ParseError::TooLarge(_)), "{killed:?}");
        assert!(killed.to_string().contains("ran out of memory"), "{killed}");
        let flood = parse_error(Death::AnswerTooLarge, 512, minute);
        assert!(matches!(flood, ParseError::TooLarge(_)), "{flood:?}");
    }
}
