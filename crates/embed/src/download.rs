use std::io::Write;
use std::path::Path;

use lectern_core::{Error, Result};

/// The files a model folder needs: (name in the folder, path in the hub repository).
pub const MODEL_FILES: &[(&str, &str)] = &[
    ("model.onnx", "onnx/model_quantized.onnx"),
    ("tokenizer.json", "tokenizer.json"),
    ("config.json", "config.json"),
    ("special_tokens_map.json", "special_tokens_map.json"),
    ("tokenizer_config.json", "tokenizer_config.json"),
];

/// Fetches a model's files from a Hugging Face-style hub (`{endpoint}/{repo}/resolve/main/
/// {file}`) into `dest`, for users whose machines can reach one. `endpoint` defaults to
/// `HF_ENDPOINT` or the public hub. Files already present are kept. Each file is written
/// to a temporary name and renamed, so an interrupted download never leaves a partial
/// model behind.
pub fn download_model(repo: &str, dest: &Path, endpoint: Option<&str>) -> Result<()> {
    let endpoint = endpoint
        .map(str::to_owned)
        .or_else(|| std::env::var("HF_ENDPOINT").ok())
        .unwrap_or_else(|| "https://huggingface.co".into());
    std::fs::create_dir_all(dest)
        .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", dest.display())))?;
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("lectern/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal("cannot build an HTTP client", e))?;
    for (name, remote) in MODEL_FILES {
        let target = dest.join(name);
        if target.is_file() {
            continue;
        }
        let url = format!(
            "{}/{repo}/resolve/main/{remote}",
            endpoint.trim_end_matches('/')
        );
        tracing::info!(%url, "downloading model file");
        let mut response = client
            .get(&url)
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .map_err(|e| Error::unavailable(format!("cannot download {url}"), e))?;
        let partial = dest.join(format!("{name}.part"));
        let mut file = std::fs::File::create(&partial)
            .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", partial.display())))?;
        response
            .copy_to(&mut file)
            .map_err(|e| Error::unavailable(format!("download of {url} was interrupted"), e))?;
        file.flush()
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&partial, &target))
            .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", target.display())))?;
    }
    Ok(())
}
