//! What the tests of the `lectern` binary share: the binary on the embedded defaults in a
//! temporary data dir, a command that must succeed, and `lectern serve` in a child process.

#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `lectern --data-dir DIR` with the real models the tests fetched.
pub fn lectern(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern"));
    cmd.arg("--data-dir").arg(data_dir);
    with_test_env(&mut cmd);
    cmd
}

/// The environment of every `lectern` the tests run, also for a program that starts one
/// itself (an MCP client): the real models the tests fetched, the embedded defaults.
pub fn with_test_env(cmd: &mut Command) -> &mut Command {
    let model = lectern_embed::testing::default_options();
    cmd.env("LECTERN_EMBED_MODEL_DIR", model.model_dir)
        .env("LECTERN_ORT_DYLIB", model.ort_dylib)
        .env("LECTERN_LLM_MODEL", lectern_llm::testing::smollm2_path())
        .env("LECTERN_LLM__CONTEXT_LENGTH", "2048")
        .env("LECTERN_LLM__MAX_TOKENS", "64")
        .env_remove("LECTERN_DATABASE_URL")
        .env_remove("LECTERN_QDRANT_URL")
}

/// Runs `lectern ARGS` on `data_dir`, which must succeed; its standard output.
pub fn run_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = lectern(data_dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `CMD ingest --workspace Handbook --json PATH`, which must succeed; its report.
pub fn ingest_report(cmd: &mut Command, path: &Path) -> serde_json::Value {
    let out = cmd
        .args(["ingest", "--workspace", "Handbook", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lectern serve` in a child process, killed (SIGKILL) when dropped.
pub struct Served(pub std::process::Child);

impl Served {
    /// `lectern serve` on `data_dir` at 127.0.0.1:`port`, with `env` on top of the tests'.
    pub fn start(data_dir: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let mut cmd = lectern(data_dir);
        cmd.envs(env.iter().copied());
        Self(
            cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the server at `url` says it is ready (two minutes at most).
pub async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{url}/ready")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("lectern serve never became ready at {url}");
}
