//! For tests of Lectern's crates: the small real model from `scripts/fetch-assets.sh llm`,
//! and llama.cpp's own server from `scripts/fetch-assets.sh llama-server` on loopback.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LlamaEngine, LlamaOptions};

fn asset(env: &str, group: &str) -> PathBuf {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{env} is not set: run `scripts/fetch-assets.sh {group}` (scripts/test.sh does)")
    });
    assert!(path.exists(), "{env}={} does not exist", path.display());
    path
}

/// SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB): fast enough for every test.
pub fn smollm2_path() -> PathBuf {
    asset("LECTERN_SMOLLM2_MODEL", "llm")
}

pub fn smollm2_options() -> LlamaOptions {
    let mut options = LlamaOptions::new(smollm2_path());
    options.context_length = 2048;
    options.threads = 2;
    options
}

/// The engine on SmolLM2, loaded once per test binary (as a process loads it once).
pub fn smollm2() -> std::sync::Arc<LlamaEngine> {
    static ENGINE: std::sync::OnceLock<std::sync::Arc<LlamaEngine>> = std::sync::OnceLock::new();
    ENGINE
        .get_or_init(|| {
            std::sync::Arc::new(LlamaEngine::load(&smollm2_options()).expect("load SmolLM2"))
        })
        .clone()
}

/// llama.cpp's server on a free loopback port, stopped on drop.
pub struct LlamaServer {
    child: Child,
    pub base_url: String,
}

impl LlamaServer {
    /// Starts the server (`LECTERN_LLAMA_SERVER`, built by `scripts/build-llama-server.sh`)
    /// with `model` and waits (up to two minutes) until it is healthy.
    pub fn start(model: &std::path::Path, threads: u32, parallel: u32) -> Self {
        let exe = std::env::var_os("LECTERN_LLAMA_SERVER")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .unwrap_or_else(|| panic!("LECTERN_LLAMA_SERVER is not set or missing: run scripts/build-llama-server.sh (scripts/test.sh does)"));
        let dir = exe.parent().expect("a folder").to_owned();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&exe)
            .env("LD_LIBRARY_PATH", &dir)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("-m")
            .arg(model)
            .args([
                "-c",
                "4096",
                "-t",
                &threads.to_string(),
                "-np",
                &parallel.to_string(),
            ])
            .args(["-ngl", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}/v1"),
        };
        let health = format!("http://127.0.0.1:{port}/health");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut server = server;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("llama-server exited while starting: {status}");
            }
            let ok = probe::get_ok(&health);
            if ok {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "llama-server did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod probe {
    /// A plain HTTP/1.0 GET over a socket: whether it answered 200 (no blocking client
    /// needed for one health probe).
    pub fn get_ok(url: &str) -> bool {
        use std::io::{Read, Write};
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(mut stream) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
            return false;
        }
        let mut head = [0u8; 16];
        stream.read(&mut head).is_ok_and(|n| {
            head[..n].starts_with(b"HTTP/1.1 200") || head[..n].starts_with(b"HTTP/1.0 200")
        })
    }
}

/// A language model that answers from a script, for unit tests of the logic around the
/// [`Generator`](crate::Generator) seam: each call takes the next reply (the last one
/// repeats), streams it word by word, and records the request. Tokens are counted as
/// words, and the context window is what the test says.
pub struct ScriptedGenerator {
    info: crate::ModelInfo,
    replies: std::sync::Mutex<std::collections::VecDeque<Result<String, String>>>,
    requests: std::sync::Mutex<Vec<crate::GenerationRequest>>,
}

impl ScriptedGenerator {
    /// Replies in order; `Err(message)` makes that call fail as an unavailable model, or
    /// as a busy one when the message starts with "busy".
    pub fn new(context_length: u32, replies: Vec<Result<String, String>>) -> Self {
        Self {
            info: crate::ModelInfo {
                id: "scripted".into(),
                context_length,
            },
            replies: std::sync::Mutex::new(replies.into()),
            requests: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The model that always answers `reply`.
    pub fn answering(reply: &str) -> Self {
        Self::new(4096, vec![Ok(reply.to_owned())])
    }

    /// The requests it received, in order.
    pub fn requests(&self) -> Vec<crate::GenerationRequest> {
        self.requests.lock().expect("requests").clone()
    }
}

#[async_trait::async_trait]
impl crate::Generator for ScriptedGenerator {
    fn info(&self) -> &crate::ModelInfo {
        &self.info
    }

    async fn count_tokens(&self, messages: &[crate::ChatMessage]) -> lectern_core::Result<u32> {
        Ok(messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u32)
            .sum())
    }

    async fn generate(
        &self,
        request: crate::GenerationRequest,
        tokens: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> lectern_core::Result<crate::GenerationStats> {
        let prompt_tokens = self.count_tokens(&request.messages).await?;
        let text = self.reply(request)?;
        let started = Instant::now();
        let mut completion_tokens = 0;
        let mut finish = crate::FinishReason::Stop;
        for (i, word) in text.split_inclusive(' ').enumerate() {
            completion_tokens += 1;
            if tokens.send(word.to_owned()).is_err() {
                finish = crate::FinishReason::Cancelled;
                break;
            }
            if i == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok(crate::GenerationStats {
            prompt_tokens,
            cached_prompt_tokens: 0,
            completion_tokens,
            first_token: (completion_tokens > 0).then(|| started.elapsed()),
            total: started.elapsed(),
            finish,
            drafted_tokens: 0,
            accepted_tokens: 0,
        })
    }

    /// The next reply read as the probability of the first choice (the rest share what
    /// is left); a reply that is no number gives the first choice 0.
    async fn choose(
        &self,
        messages: &[crate::ChatMessage],
        choices: &[&str],
    ) -> lectern_core::Result<Vec<f32>> {
        let reply = self.reply(crate::GenerationRequest {
            messages: messages.to_vec(),
            max_tokens: 1,
            temperature: 0.0,
            seed: 0,
        })?;
        let first = reply.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
        let others = (1.0 - first) / (choices.len().max(2) - 1) as f32;
        Ok((0..choices.len())
            .map(|i| if i == 0 { first } else { others })
            .collect())
    }
}

impl ScriptedGenerator {
    /// Records the request and takes the next reply.
    fn reply(&self, request: crate::GenerationRequest) -> lectern_core::Result<String> {
        self.requests.lock().expect("requests").push(request);
        let reply = {
            let mut replies = self.replies.lock().expect("replies");
            if replies.len() > 1 {
                replies.pop_front()
            } else {
                replies.front().cloned()
            }
        }
        .unwrap_or_else(|| Ok(String::new()));
        reply.map_err(|message| {
            if message.starts_with("busy") {
                lectern_core::Error::Busy {
                    message,
                    retry_after: 5,
                }
            } else {
                lectern_core::Error::unavailable(message, std::io::Error::other("scripted failure"))
            }
        })
    }
}
