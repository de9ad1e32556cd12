//! llama.cpp in this process.
//!
//! The key decision: one engine thread owns the model's one context with `parallel`
//! sequences, and interleaves every active request in each `llama_decode` batch
//! (continuous batching, the design of llama.cpp's own server). A request's prompt is fed
//! in `batch_size` pieces while other requests keep decoding, each sequence has its own
//! KV cache (`seq_id` = slot) and its own sampler, so requests never see each other's
//! tokens; more requests than slots wait in the queue. One context, not one per request,
//! because on a GPU the batched matrix products serve N streams for little more than the
//! cost of one, and on a CPU it bounds memory to one KV cache.
//!
//! A sequence keeps its KV cache when its request ends, with the tokens it holds. The next
//! request goes to the free sequence that shares the longest start with its prompt and
//! reads only the rest: the fixed instructions at the head of every prompt are read once,
//! not once per question (llama.cpp's server calls this prompt caching).

use std::cmp::Reverse;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lectern_core::{Error, Result};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LlamaBackendDeviceType, LogOptions, list_llama_ggml_backend_devices};
use tokio::sync::{mpsc, oneshot};

use crate::speculative::{DraftModel, Drafter, accept};
use crate::{ChatMessage, FinishReason, GenerationRequest, GenerationStats, Generator, ModelInfo};

/// How to load and run a GGUF model.
#[derive(Debug, Clone)]
pub struct LlamaOptions {
    pub model_path: PathBuf,
    /// Tokens per sequence (prompt and answer); capped at the model's training context.
    pub context_length: u32,
    /// Requests decoded together; more wait in the queue.
    pub parallel: u32,
    /// CPU threads for generation; 0 means one per core.
    pub threads: u32,
    /// Most tokens per `llama_decode` call (prompt processing is fed in such pieces).
    pub batch_size: u32,
    /// Layers offloaded to the GPU (needs the `cuda` feature and a GPU); 0 runs on the CPU.
    pub gpu_layers: u32,
    /// Which GPU holds the model when there are several.
    pub main_gpu: i32,
    /// Requests that may wait for a free sequence; more are refused as busy at once.
    pub queue_limit: u32,
    /// Where greedy answers get their drafts for speculative decoding (see
    /// [`crate::speculative`]).
    pub draft: Draft,
    /// Most tokens drafted per decoding step.
    pub draft_tokens: u32,
}

/// The source of speculative drafts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Draft {
    /// No speculation: one token per decoding step.
    #[default]
    Off,
    /// Prompt lookup: what followed the answer's last tokens earlier in the prompt.
    Lookup,
    /// A smaller GGUF model of the same family (the same vocabulary).
    Model(PathBuf),
}

impl LlamaOptions {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            context_length: 4096,
            parallel: 2,
            threads: 0,
            batch_size: 512,
            gpu_layers: 0,
            main_gpu: 0,
            queue_limit: 16,
            draft: Draft::Off,
            draft_tokens: 8,
        }
    }
}

/// llama.cpp's process-wide state, initialised once.
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(LogOptions::default());
            #[cfg(feature = "dynamic-backends")]
            load_backend_modules();
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::internal_msg(format!("llama.cpp did not start: {e}")))
}

/// llama.cpp's CPU variants and any GPU backend (`libggml-cuda.so`) are modules in a
/// `dynamic-backends` build: loaded from beside the executable (a bundle made by
/// scripts/build-gpu.sh), else from llama-cpp-sys-2's build folder (under cargo).
#[cfg(feature = "dynamic-backends")]
fn load_backend_modules() {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
    {
        llama_cpp_2::llama_backend::load_backends_from_path(&dir);
    }
    if list_llama_ggml_backend_devices().is_empty() {
        llama_cpp_2::llama_backend::load_backends();
    }
}

/// The GPUs llama.cpp can use in this build and on this machine.
pub fn gpu_devices() -> Vec<String> {
    list_llama_ggml_backend_devices()
        .into_iter()
        .filter(|d| {
            matches!(
                d.device_type,
                LlamaBackendDeviceType::Gpu | LlamaBackendDeviceType::IntegratedGpu
            )
        })
        .map(|d| {
            format!(
                "{} ({}, {} MiB free of {} MiB)",
                d.name,
                d.description,
                d.memory_free / 1_048_576,
                d.memory_total / 1_048_576
            )
        })
        .collect()
}

/// Text from documents and users must not smuggle in the template's control tokens (a
/// document holding "<|im_end|><|im_start|>system ..." would otherwise forge a turn, since
/// the rendered prompt is tokenized with special tokens parsed): a zero-width space breaks
/// every `<|...|>` token, and `[INST]`/`<s>` style markers are broken the same way.
pub fn defuse_special(text: &str) -> String {
    text.replace("<|", "<\u{200B}|")
        .replace("|>", "|\u{200B}>")
        .replace("[INST]", "[\u{200B}INST]")
        .replace("[/INST]", "[/\u{200B}INST]")
        .replace("<s>", "<\u{200B}s>")
        .replace("</s>", "</\u{200B}s>")
}

struct Job {
    /// Holds one place in the queue until the engine takes the job.
    place: Option<QueuePlace>,
    tokens: Vec<LlamaToken>,
    max_tokens: u32,
    temperature: f32,
    seed: u32,
    started: Instant,
    out: mpsc::UnboundedSender<String>,
    done: oneshot::Sender<Result<GenerationStats>>,
    /// Nothing is generated: the probabilities of these tokens after the prompt are sent
    /// instead ([`Generator::choose`]).
    probe: Option<(Vec<usize>, oneshot::Sender<Vec<f32>>)>,
}

/// A place in the engine's queue, given back when dropped (taken by the engine, or the
/// request refused).
struct QueuePlace(Arc<AtomicU32>);

impl QueuePlace {
    /// A place if fewer than `limit` requests wait.
    fn take(waiting: &Arc<AtomicU32>, limit: u32) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting.clone()))
    }
}

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A GGUF model loaded once and shared by every request of the process.
pub struct LlamaEngine {
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    info: ModelInfo,
    queue: std::sync::mpsc::Sender<Job>,
    /// Requests queued and not yet taken by the engine.
    waiting: Arc<AtomicU32>,
    queue_limit: u32,
    parallel: u32,
}

impl LlamaEngine {
    /// Loads the model and starts the engine thread. Fails with a clear reason when the
    /// file is missing or unreadable, or when GPU layers are asked for without a GPU.
    pub fn load(options: &LlamaOptions) -> Result<Self> {
        let path = &options.model_path;
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "the language model {} does not exist; fetch one with `scripts/fetch-assets.sh llm` or set llm.model_path",
                path.display()
            )));
        }
        let backend = backend()?;
        if options.gpu_layers > 0 {
            let gpus = gpu_devices();
            if gpus.is_empty() {
                return Err(Error::Invalid(format!(
                    "llm.gpu_layers is {} but no GPU is usable: {}; set llm.gpu_layers = 0 to run on the CPU",
                    options.gpu_layers,
                    if cfg!(feature = "cuda") {
                        "this build has CUDA, but no NVIDIA GPU or driver was found"
                    } else if cfg!(feature = "dynamic-backends") {
                        "no GPU module (libggml-cuda.so) beside the lectern binary loaded, or no NVIDIA GPU or driver was found"
                    } else {
                        "this build has no GPU backend (build with `--features cuda`)"
                    }
                )));
            }
            tracing::info!(gpus = ?gpus, "GPUs available to llama.cpp");
        }
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(options.gpu_layers)
            .with_main_gpu(options.main_gpu);
        let loaded = Instant::now();
        let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
            Error::Invalid(format!(
                "cannot load the language model {}: {e} (is it a GGUF file?)",
                path.display()
            ))
        })?;
        let template = match model.chat_template(None) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "the model has no chat template; using ChatML");
                LlamaChatTemplate::new("chatml").expect("a template name")
            }
        };
        let context_length = options.context_length.min(model.n_ctx_train()).max(256);
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let offloaded = options.gpu_layers.min(model.n_layer());
        tracing::info!(
            model = %path.display(),
            size_mib = model.size() / 1_048_576,
            params_m = model.n_params() / 1_000_000,
            layers = model.n_layer(),
            gpu_layers = offloaded,
            context_length,
            parallel = options.parallel,
            seconds = loaded.elapsed().as_secs_f32(),
            "language model loaded"
        );
        let draft = match &options.draft {
            Draft::Model(draft_path) => {
                let draft =
                    LlamaModel::load_from_file(backend, draft_path, &params).map_err(|e| {
                        Error::Invalid(format!(
                            "cannot load the draft model {} (llm.draft_model_path): {e}",
                            draft_path.display()
                        ))
                    })?;
                crate::speculative::check_vocabulary(&model, &draft)?;
                tracing::info!(
                    model = %draft_path.display(),
                    params_m = draft.n_params() / 1_000_000,
                    draft_tokens = options.draft_tokens,
                    "draft model loaded for speculative decoding"
                );
                Some(draft)
            }
            Draft::Lookup => {
                tracing::info!(
                    draft_tokens = options.draft_tokens,
                    "speculative decoding by prompt lookup"
                );
                None
            }
            Draft::Off => None,
        };
        let model = Arc::new(model);
        let (queue, jobs) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_model = model.clone();
        let opts = options.clone();
        std::thread::Builder::new()
            .name("lectern-llm".into())
            .spawn(move || {
                engine_thread(
                    &thread_model,
                    draft.as_ref(),
                    backend,
                    &opts,
                    context_length,
                    jobs,
                    ready_tx,
                )
            })
            .map_err(|e| Error::internal("cannot start the engine thread", e))?;
        ready_rx
            .recv()
            .map_err(|_| Error::internal_msg("the engine thread stopped while starting"))??;
        Ok(Self {
            model,
            template,
            info: ModelInfo { id, context_length },
            queue,
            waiting: Arc::new(AtomicU32::new(0)),
            queue_limit: options.queue_limit,
            parallel: options.parallel,
        })
    }

    /// Requests waiting for a free sequence now.
    pub fn queued(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }

    /// The chat rendered with the model's own template, ending with the assistant's turn.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        render(&self.model, &self.template, messages)
    }

    /// The prompt's tokens, worked out on the blocking pool: a long history takes
    /// milliseconds, which an async thread serving other requests must not spend.
    async fn tokenize(&self, messages: &[ChatMessage]) -> Result<Vec<LlamaToken>> {
        let model = self.model.clone();
        let template = self.template.clone();
        let messages = messages.to_vec();
        tokio::task::spawn_blocking(move || {
            let prompt = render(&model, &template, &messages)?;
            Ok(model.vocab().tokenize(prompt.as_bytes(), true, true))
        })
        .await
        .map_err(|e| Error::internal("tokenizing the prompt failed", e))?
    }
}

fn render(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<String> {
    let chat = messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.as_str().into(), defuse_special(&m.content)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("a message cannot be sent to the model: {e}")))?;
    model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| Error::internal("cannot apply the chat template", e))
}

#[async_trait]
impl Generator for LlamaEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32> {
        Ok(self.tokenize(messages).await?.len() as u32)
    }

    async fn generate(
        &self,
        request: GenerationRequest,
        tokens: mpsc::UnboundedSender<String>,
    ) -> Result<GenerationStats> {
        let result = self.submit(&request, tokens, None).await?;
        result
            .await
            .map_err(|_| Error::internal_msg("the language model engine has stopped"))?
    }

    async fn choose(&self, messages: &[ChatMessage], choices: &[&str]) -> Result<Vec<f32>> {
        let vocab = self.model.vocab();
        let tokens = choices
            .iter()
            .map(|choice| {
                vocab
                    .tokenize(choice.as_bytes(), false, false)
                    .first()
                    .map(|t| t.0 as usize)
                    .ok_or_else(|| Error::Invalid(format!("the choice {choice:?} has no token")))
            })
            .collect::<Result<Vec<_>>>()?;
        let request = GenerationRequest {
            messages: messages.to_vec(),
            max_tokens: 1,
            temperature: 0.0,
            seed: 0,
        };
        // The engine stops a request whose reader left: hold the reader until it ends.
        let (out, _reader) = mpsc::unbounded_channel();
        let (probed, probabilities) = oneshot::channel();
        let result = self.submit(&request, out, Some((tokens, probed))).await?;
        result
            .await
            .map_err(|_| Error::internal_msg("the language model engine has stopped"))??;
        probabilities
            .await
            .map_err(|_| Error::internal_msg("the language model gave no probabilities"))
    }
}

impl LlamaEngine {
    /// Queues a request (refused when the queue is full or the prompt too long); the
    /// receiver gets its end.
    async fn submit(
        &self,
        request: &GenerationRequest,
        out: mpsc::UnboundedSender<String>,
        probe: Option<(Vec<usize>, oneshot::Sender<Vec<f32>>)>,
    ) -> Result<oneshot::Receiver<Result<GenerationStats>>> {
        let started = Instant::now();
        let place =
            QueuePlace::take(&self.waiting, self.queue_limit).ok_or_else(|| Error::Busy {
                message: format!(
                    "the language model is busy: {} questions are being answered and {} wait",
                    self.parallel, self.queue_limit
                ),
                retry_after: 5,
            })?;
        let prompt = self.tokenize(&request.messages).await?;
        if prompt.len() as u32 >= self.info.context_length {
            return Err(Error::Invalid(format!(
                "the prompt takes {} tokens, more than the model's context of {}",
                prompt.len(),
                self.info.context_length
            )));
        }
        let (done, result) = oneshot::channel();
        self.queue
            .send(Job {
                place: Some(place),
                tokens: prompt,
                max_tokens: request.max_tokens,
                temperature: request.temperature,
                seed: request.seed,
                started,
                out,
                done,
                probe,
            })
            .map_err(|_| Error::internal_msg("the language model engine has stopped"))?;
        Ok(result)
    }
}

/// A request being served in one sequence of the shared context.
struct Slot {
    job: Job,
    /// None: greedy, read straight off the logits (see [`most_likely`]).
    sampler: Option<LlamaSampler>,
    /// Prompt tokens not yet fed.
    pending: std::collections::VecDeque<LlamaToken>,
    /// The next position in this sequence.
    pos: i32,
    /// The token to feed next while decoding.
    last: Option<LlamaToken>,
    /// The index in the current batch whose logits are this slot's, if any.
    logits_at: Option<i32>,
    prompt_tokens: u32,
    generated: u32,
    first_token: Option<Duration>,
    /// Bytes of a UTF-8 character split across tokens.
    partial: Vec<u8>,
    /// Prompt tokens whose KV was already in the sequence.
    cached: u32,
    /// Tokens guessed to follow `last`, read in the same batch (speculative decoding).
    draft: Vec<LlamaToken>,
    drafted: u32,
    accepted: u32,
}

impl Slot {
    /// A request in a sequence that already holds the first `cached` tokens of its prompt.
    fn new(job: Job, cached: usize) -> Self {
        let sampler = (job.temperature > 0.0).then(|| {
            LlamaSampler::chain_simple([
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(0.95, 1),
                LlamaSampler::min_p(0.05, 1),
                LlamaSampler::temp(job.temperature),
                LlamaSampler::dist(job.seed),
            ])
        });
        Self {
            prompt_tokens: job.tokens.len() as u32,
            pending: job.tokens[cached..].iter().copied().collect(),
            job,
            sampler,
            pos: cached as i32,
            last: None,
            logits_at: None,
            generated: 0,
            first_token: None,
            partial: Vec::new(),
            cached: cached as u32,
            draft: Vec::new(),
            drafted: 0,
            accepted: 0,
        }
    }

    fn stats(&self, finish: FinishReason) -> GenerationStats {
        GenerationStats {
            prompt_tokens: self.prompt_tokens,
            cached_prompt_tokens: self.cached,
            completion_tokens: self.generated,
            first_token: self.first_token,
            total: self.job.started.elapsed(),
            finish,
            drafted_tokens: self.drafted,
            accepted_tokens: self.accepted,
        }
    }

    /// Ends the request: sends any bytes still held, then its stats.
    fn finish(self, reason: FinishReason) {
        if !self.partial.is_empty() {
            let _ = self
                .job
                .out
                .send(String::from_utf8_lossy(&self.partial).into_owned());
        }
        let stats = self.stats(reason);
        let _ = self.job.done.send(Ok(stats));
    }

    /// Takes the token the model chose, to be read at position `at`: emits it and says
    /// whether the request ends with it.
    fn take(
        &mut self,
        token: LlamaToken,
        at: i32,
        vocab: &llama_cpp_2::vocab::LlamaVocab<'_>,
        context_length: u32,
    ) -> Option<FinishReason> {
        if vocab.is_eog(token) {
            return Some(FinishReason::Stop);
        }
        self.generated += 1;
        if self.first_token.is_none() {
            self.first_token = Some(self.job.started.elapsed());
        }
        let piece = vocab.token_to_piece(token, false, None);
        if !self.emit(&piece) {
            Some(FinishReason::Cancelled)
        } else if self.generated >= self.job.max_tokens || at as u32 + 1 >= context_length {
            Some(FinishReason::Length)
        } else {
            None
        }
    }

    /// Emits the complete UTF-8 characters among `bytes` (after any held partial bytes).
    fn emit(&mut self, bytes: &[u8]) -> bool {
        self.partial.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_some() => {
                // Invalid, not merely incomplete: replace it rather than hold it forever.
                let text = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                return self.job.out.send(text).is_ok();
            }
            Err(e) => e.valid_up_to(),
        };
        if valid == 0 {
            return !self.job.out.is_closed();
        }
        let rest = self.partial.split_off(valid);
        let text =
            String::from_utf8(std::mem::replace(&mut self.partial, rest)).expect("validated UTF-8");
        self.job.out.send(text).is_ok()
    }
}

fn engine_thread(
    model: &LlamaModel,
    draft_model: Option<&LlamaModel>,
    backend: &LlamaBackend,
    options: &LlamaOptions,
    context_length: u32,
    jobs: std::sync::mpsc::Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<()>>,
) {
    let batch_size = options.batch_size.max(32);
    // Every decoding sequence adds one token per step: the batch must hold them all.
    let parallel = options.parallel.clamp(1, batch_size);
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(4, |n| n.get() as i32)
    } else {
        options.threads as i32
    };
    let params = context_params(context_length, parallel, batch_size, threads);
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(Error::Invalid(format!(
                "cannot create the model's context ({context_length} tokens x {parallel} sequences): {e}; lower llm.context_length or llm.parallel"
            ))));
            return;
        }
    };
    let mut drafter = match (&options.draft, draft_model) {
        (Draft::Model(_), Some(m)) => {
            match DraftModel::new(m, backend, context_length, parallel, batch_size, threads) {
                Ok(d) => Drafter::Model(Box::new(d)),
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
        }
        (Draft::Lookup, _) => Drafter::Lookup,
        _ => Drafter::Off,
    };
    // Each decoding sequence reads its token and its draft in one batch.
    let draft_room = ((batch_size / parallel) as usize)
        .saturating_sub(1)
        .min(options.draft_tokens as usize);
    tracing::info!(
        threads,
        batch_size,
        sequences = parallel,
        draft_tokens = if drafter.is_off() { 0 } else { draft_room },
        "language model context ready"
    );
    let _ = ready.send(Ok(()));
    let vocab = model.vocab();
    let mut batch = LlamaBatch::new(batch_size as usize, parallel as i32);
    let mut slots: Vec<Option<Slot>> = (0..parallel).map(|_| None).collect();
    // The tokens whose KV each sequence holds; kept when its request ends.
    let mut held: Vec<Vec<LlamaToken>> = vec![Vec::new(); slots.len()];

    loop {
        // Fill free slots: block for work only when nothing is running.
        let mut block = slots.iter().all(Option::is_none);
        while slots.iter().any(Option::is_none) {
            let mut next = if std::mem::take(&mut block) {
                match jobs.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return, // the engine was dropped
                }
            } else {
                jobs.try_recv().ok()
            };
            if let Some(job) = next.as_mut() {
                job.place = None; // out of the queue: room for another
            }
            match next {
                // A client that left while queued costs nothing.
                Some(job) if job.out.is_closed() => {
                    Slot::new(job, 0).finish(FinishReason::Cancelled)
                }
                Some(job) => {
                    let i = (0..slots.len())
                        .filter(|&i| slots[i].is_none())
                        .max_by_key(|&i| (common_prefix(&held[i], &job.tokens), Reverse(i)))
                        .expect("a free sequence");
                    let cached = reuse(&mut ctx, i, &mut held[i], &job.tokens);
                    slots[i] = Some(Slot::new(job, cached));
                }
                None => break,
            }
        }
        // A client that left mid-prompt or mid-answer frees its sequence at once (what it
        // read stays cached).
        for entry in slots.iter_mut() {
            if entry.as_ref().is_some_and(|s| s.job.out.is_closed()) {
                entry
                    .take()
                    .expect("an active slot")
                    .finish(FinishReason::Cancelled);
            }
        }
        if slots.iter().all(Option::is_none) {
            continue;
        }

        // Drafts for the greedy sequences that decode (see crate::speculative).
        if draft_room > 0 && !drafter.is_off() {
            let wants: Vec<(usize, Vec<LlamaToken>, usize)> = slots
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| {
                    let slot = slot.as_ref()?;
                    let last = slot.last.filter(|_| slot.sampler.is_none())?;
                    // Room for the draft and the token after it, in the answer and the context.
                    let max = draft_room
                        .min(slot.job.max_tokens.saturating_sub(slot.generated + 1) as usize)
                        .min((context_length as usize).saturating_sub(slot.pos as usize + 3));
                    let mut history = Vec::with_capacity(held[i].len() + 1);
                    history.extend_from_slice(&held[i]);
                    history.push(last);
                    (max > 0).then_some((i, history, max))
                })
                .collect();
            if !wants.is_empty() {
                for ((i, _, _), draft) in wants.iter().zip(drafter.propose(&wants)) {
                    slots[*i].as_mut().expect("a decoding slot").draft = draft;
                }
            }
        }

        // One batch: decoding slots add their last token and any draft, prefilling slots
        // share the rest.
        batch.clear();
        let mut room = batch_size as usize;
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            slot.logits_at = None;
            if let Some(token) = slot.last.take() {
                slot.logits_at = Some(batch.n_tokens());
                for &token in std::iter::once(&token).chain(&slot.draft) {
                    batch
                        .add(token, slot.pos, &[i as i32], true)
                        .expect("room for a token and a draft per slot");
                    held[i].push(token);
                    slot.pos += 1;
                    room -= 1;
                }
            }
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            while room > 0
                && let Some(token) = slot.pending.pop_front()
            {
                let last = slot.pending.is_empty();
                if last {
                    slot.logits_at = Some(batch.n_tokens());
                }
                batch
                    .add(token, slot.pos, &[i as i32], last)
                    .expect("room checked");
                held[i].push(token);
                slot.pos += 1;
                room -= 1;
            }
        }
        if batch.n_tokens() == 0 {
            continue;
        }
        if let Err(e) = ctx.decode(&mut batch) {
            // A failed decode leaves every active sequence's cache in doubt: fail them all.
            for (i, slot) in slots.iter_mut().enumerate() {
                if let Some(slot) = slot.take() {
                    let _ = slot.job.done.send(Err(Error::internal(
                        "the language model failed to decode",
                        e.to_string(),
                    )));
                    ctx.clear_kv_cache_seq(Some(i as u32), None, None).ok();
                    held[i].clear();
                }
            }
            continue;
        }

        for (i, entry) in slots.iter_mut().enumerate() {
            let Some(slot) = entry else { continue };
            let Some(at) = slot.logits_at else { continue };
            if let Some((tokens, probed)) = slot.job.probe.take() {
                let _ = probed.send(crate::probabilities(ctx.get_logits_ith(at), &tokens));
                entry
                    .take()
                    .expect("an active slot")
                    .finish(FinishReason::Stop);
                continue;
            }
            let draft = std::mem::take(&mut slot.draft);
            let chosen = match slot.sampler.as_mut() {
                Some(sampler) => vec![sampler.sample(&ctx, at)],
                None => accept(&draft, |j| most_likely(ctx.get_logits_ith(at + j as i32))),
            };
            // Where the first chosen token is to be read.
            let base = slot.pos - draft.len() as i32;
            let mut finish = None;
            if !draft.is_empty() {
                slot.drafted += draft.len() as u32;
                slot.accepted += chosen.len() as u32 - 1;
                // The cache keeps the drafted tokens the model agreed with, no more.
                let valid = base + chosen.len() as i32 - 1;
                if valid < slot.pos {
                    if ctx
                        .clear_kv_cache_seq(Some(i as u32), Some(valid as u32), None)
                        .unwrap_or(false)
                    {
                        held[i].truncate(valid as usize);
                        slot.pos = valid;
                    } else {
                        ctx.clear_kv_cache_seq(Some(i as u32), None, None).ok();
                        held[i].clear();
                        let slot = entry.take().expect("an active slot");
                        let _ = slot.job.done.send(Err(Error::Invalid(
                            "this model's cache cannot be cut back, which speculative decoding needs; set llm.speculative = \"off\"".into(),
                        )));
                        continue;
                    }
                }
            }
            for (j, &token) in chosen.iter().enumerate() {
                finish = slot.take(token, base + j as i32, &vocab, context_length);
                if finish.is_some() {
                    break;
                }
            }
            match finish {
                Some(finish) => entry.take().expect("an active slot").finish(finish),
                None => slot.last = chosen.last().copied(),
            }
        }
    }
}

/// A context of `sequences` sequences of `context_length` tokens each, decoding batches of
/// up to `batch_size` tokens on `threads` threads.
pub(crate) fn context_params(
    context_length: u32,
    sequences: u32,
    batch_size: u32,
    threads: i32,
) -> LlamaContextParams {
    LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(context_length * sequences))
        .with_n_seq_max(sequences)
        .with_n_batch(batch_size)
        .with_n_ubatch(batch_size)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
}

/// Greedy decoding: the token with the highest logit, the first of equals (as llama.cpp's
/// greedy sampler picks). Read straight off the logits because llama.cpp's sampler first
/// copies the whole vocabulary into a fresh candidate array, for every token of every
/// sequence: on a GPU that copy is a good part of each decoding step.
pub(crate) fn most_likely(logits: &[f32]) -> LlamaToken {
    let mut best = 0;
    for (i, &logit) in logits.iter().enumerate() {
        if logit > logits[best] || (logits[best].is_nan() && !logit.is_nan()) {
            best = i;
        }
    }
    LlamaToken::new(best as i32)
}

pub(crate) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Keeps the longest start of `prompt` that sequence `i` already holds (never all of it:
/// the last prompt token is read again for its logits), drops the rest of its cache, and
/// says how many tokens were kept.
fn reuse(
    ctx: &mut LlamaContext<'_>,
    i: usize,
    held: &mut Vec<LlamaToken>,
    prompt: &[LlamaToken],
) -> usize {
    let keep = common_prefix(held, prompt).min(prompt.len().saturating_sub(1));
    let seq = Some(i as u32);
    if keep < held.len()
        && !ctx
            .clear_kv_cache_seq(seq, Some(keep as u32), None)
            .unwrap_or(false)
    {
        // A cache that cannot be cut at a position (recurrent models) is cleared whole.
        ctx.clear_kv_cache_seq(seq, None, None).ok();
        held.clear();
        return 0;
    }
    held.truncate(keep);
    keep
}

#[cfg(test)]
mod tests {
    use super::most_likely;
    use llama_cpp_2::token::LlamaToken;

    #[test]
    fn greedy_takes_the_first_of_the_highest_logits() {
        assert_eq!(most_likely(&[0.5, 2.0, -1.0, 2.0, 1.0]), LlamaToken::new(1));
        assert_eq!(most_likely(&[-3.0, -2.0]), LlamaToken::new(1));
        assert_eq!(most_likely(&[f32::NAN, 1.0]), LlamaToken::new(1));
    }
}
