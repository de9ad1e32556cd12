use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lectern_core::{Error, Result};
use ort::environment::Environment;

static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// Loads ONNX Runtime from `dylib` once per process and returns its environment.
///
/// ONNX Runtime can be loaded only once per process: a later call naming another library
/// is refused rather than silently using the first one.
pub fn onnx_runtime(dylib: &Path) -> Result<Environment> {
    // Held for the whole load: ONNX Runtime allows one environment per process, ever.
    let mut runtime = RUNTIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((loaded, env)) = runtime.as_ref() {
        return if loaded == dylib {
            Ok(env.clone())
        } else {
            Err(Error::Invalid(format!(
                "ONNX Runtime is already loaded from {}; cannot load {} as well",
                loaded.display(),
                dylib.display()
            )))
        };
    }
    if !dylib.is_file() {
        return Err(Error::Invalid(format!(
            "ONNX Runtime library not found at {} (run scripts/fetch-assets.sh, or set LECTERN_ORT_DYLIB)",
            dylib.display()
        )));
    }
    let builder = ort::init_from(dylib).map_err(|e| {
        Error::internal(
            format!("cannot load ONNX Runtime from {}", dylib.display()),
            e.to_string(),
        )
    })?;
    let env = builder
        .with_name("lectern")
        .build()
        .map_err(|e| Error::internal("cannot start ONNX Runtime", e.to_string()))?;
    *runtime = Some((dylib.to_owned(), env.clone()));
    Ok(env)
}
