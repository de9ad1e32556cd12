//! Sentence embeddings from a GGUF model, run by llama.cpp in this process: the engine
//! of `embedding.engine = "gguf"`, made for EmbeddingGemma-300M (over 100 languages,
//! 768 dimensions), which `scripts/fetch-assets.sh gemma` converts to GGUF.
//!
//! The model folder holds `model.gguf`, the `tokenizer.json` that chunks are counted with,
//! and optionally sentence-transformers' `config_sentence_transformers.json`, whose
//! `prompts.query` and `prompts.document` are put before questions and texts (EmbeddingGemma
//! is trained with `task: search result | query: ` and `title: none | text: `). A chunk's
//! context (its document's title and section) takes the place of `none` in the document
//! prompt, as the model card writes it: `title: {title | "none"} | text: {content}`.
//!
//! llama.cpp does the whole sentence-transformers pipeline in its graph: the
//! bidirectional encoder, the mean pooling the GGUF names, and EmbeddingGemma's two dense
//! projections; the vectors are L2-normalised here. Texts are read in batches of up to
//! `batch_tokens` tokens, one sequence each (a non-causal model reads a whole batch in one
//! micro-batch); a text longer than `max_tokens` is cut there.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Mutex;

use lectern_core::{Embedder, EmbeddingModelInfo, Error, InContext, Result};
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use crate::llama::backend;

/// The model file in a model folder.
pub const GGUF_MODEL: &str = "model.gguf";
/// sentence-transformers' settings beside it, with the query and document prompts.
const PROMPTS: &str = "config_sentence_transformers.json";
/// The document prompt's words for a text without a title, where a title goes.
const NO_TITLE: &str = "title: none";
/// Sequences read in one batch.
const MAX_SEQUENCES: usize = 64;

/// A GGUF embedding model. Calls are serialised: one batch already runs on every core.
pub struct GgufEmbedder {
    model: LlamaModel,
    info: EmbeddingModelInfo,
    query_prompt: String,
    document_prompt: String,
    /// Most tokens read in one batch (and so in one text).
    batch_tokens: usize,
    threads: i32,
    busy: Mutex<()>,
}

impl GgufEmbedder {
    /// Loads `model.gguf` from `dir`. `max_tokens` caps each text (0: the model's training
    /// context, at most 2,048); `threads` 0 means one per core.
    pub fn load(model_id: &str, dir: &Path, max_tokens: usize, threads: usize) -> Result<Self> {
        let path = dir.join(GGUF_MODEL);
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "no embedding model at {} (scripts/fetch-assets.sh gemma fetches and converts EmbeddingGemma)",
                path.display()
            )));
        }
        let model = LlamaModel::load_from_file(backend()?, &path, &LlamaModelParams::default())
            .map_err(|e| {
                Error::Invalid(format!(
                    "cannot load the embedding model {}: {e} (is it a GGUF file?)",
                    path.display()
                ))
            })?;
        let (query_prompt, document_prompt) = prompts(dir)?;
        let trained = model.n_ctx_train() as usize;
        let batch_tokens = match max_tokens {
            0 => trained.min(2048),
            n => n.min(trained),
        }
        .max(16);
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(4, |n| n.get()),
            n => n,
        } as i32;
        let info = EmbeddingModelInfo {
            id: model_id.to_owned(),
            dimension: model.n_embd_out() as usize,
        };
        Ok(Self {
            model,
            info,
            query_prompt,
            document_prompt,
            batch_tokens,
            threads,
            busy: Mutex::new(()),
        })
    }

    /// The vectors of `inputs`, each read as it is (its prompt already before it).
    fn run(&self, inputs: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let _one_at_a_time = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let vocab = self.model.vocab();
        let eos = vocab.eos();
        let inputs: Vec<Vec<LlamaToken>> = inputs
            .iter()
            .map(|input| {
                let mut tokens = vocab.tokenize(input.as_bytes(), true, false);
                if tokens.len() > self.batch_tokens {
                    tokens.truncate(self.batch_tokens - 1);
                    tokens.push(eos);
                }
                tokens
            })
            .collect();
        // The largest batch this call needs, so short calls (a question) make a small
        // context; a multiple of the sequences, or llama.cpp's worst-case graph, which it
        // rounds up to one, has fewer outputs than tokens for the mean pooling.
        let sequences = inputs.len().clamp(1, MAX_SEQUENCES) as u32;
        let needed = (inputs
            .iter()
            .map(Vec::len)
            .sum::<usize>()
            .clamp(16, self.batch_tokens) as u32)
            .next_multiple_of(sequences);
        let params = LlamaContextParams::default()
            .with_embeddings(true)
            .with_pooling_type(LlamaPoolingType::Unspecified)
            // Room for each sequence to be as long as the batch (llama.cpp splits the
            // context between them).
            .with_n_ctx(NonZeroU32::new(needed * sequences))
            .with_n_batch(needed)
            .with_n_ubatch(needed)
            .with_n_seq_max(sequences)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = self.model.new_context(backend()?, params).map_err(|e| {
            Error::internal_msg(format!("cannot create the embedding context: {e}"))
        })?;
        let mut batch = LlamaBatch::new(needed as usize, sequences as i32);
        let mut out = Vec::with_capacity(inputs.len());
        let mut pending = 0usize;
        for (i, tokens) in inputs.iter().enumerate() {
            if pending == sequences as usize
                || (pending > 0 && batch.n_tokens() as usize + tokens.len() > needed as usize)
            {
                read(&mut ctx, &mut batch, pending, &mut out)?;
                pending = 0;
            }
            batch
                .add_sequence(tokens, pending as i32, true)
                .map_err(|e| Error::internal_msg(format!("text {i} does not fit a batch: {e}")))?;
            pending += 1;
        }
        if pending > 0 {
            read(&mut ctx, &mut batch, pending, &mut out)?;
        }
        Ok(out)
    }
}

/// Reads the batch's `sequences` texts and appends their normalised vectors.
fn read(
    ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
    batch: &mut LlamaBatch,
    sequences: usize,
    out: &mut Vec<Vec<f32>>,
) -> Result<()> {
    ctx.decode(batch)
        .map_err(|e| Error::internal_msg(format!("the embedding model failed: {e}")))?;
    for seq in 0..sequences {
        let v = ctx
            .embeddings_seq_ith(seq as i32)
            .map_err(|e| Error::internal_msg(format!("the embedding model gave no vector: {e}")))?;
        out.push(normalised(v));
    }
    batch.clear();
    Ok(())
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

/// What the model reads of a text to be found with its context: in the document
/// prompt's place for a title where it has one (EmbeddingGemma is trained with
/// `title: {title} | text: {text}`, and `title: none` where there is no title),
/// otherwise on a line before the text.
fn document_input(prompt: &str, text: &InContext) -> String {
    match prompt.find(NO_TITLE) {
        Some(at) if !text.context.is_empty() => {
            let mut prompt = prompt.to_owned();
            prompt.replace_range(at..at + NO_TITLE.len(), &format!("title: {}", text.context));
            prompt + &text.text
        }
        _ => format!("{prompt}{}", text.joined()),
    }
}

/// Each text after `prompt`.
fn prompted(prompt: &str, texts: &[String]) -> Vec<String> {
    texts.iter().map(|t| format!("{prompt}{t}")).collect()
}

/// The query and document prompts of a sentence-transformers folder ("" where none).
fn prompts(dir: &Path) -> Result<(String, String)> {
    let path = dir.join(PROMPTS);
    if !path.is_file() {
        return Ok((String::new(), String::new()));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{} is not JSON: {e}", path.display())))?;
    let prompt = |name: &str| {
        config["prompts"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    Ok((prompt("query"), prompt("document")))
}

impl Embedder for GgufEmbedder {
    fn model(&self) -> &EmbeddingModelInfo {
        &self.info
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.run(prompted(&self.document_prompt, texts))
    }

    fn embed_queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.run(prompted(&self.query_prompt, texts))
    }

    fn embed_in_context(&self, texts: &[InContext]) -> Result<Vec<Vec<f32>>> {
        self.run(
            texts
                .iter()
                .map(|t| document_input(&self.document_prompt, t))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_out_of_unit_length() {
        let v = normalised(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalised(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn a_text_s_context_goes_where_the_prompt_has_a_place_for_its_title() {
        let text = |context: &str| InContext {
            context: context.to_owned(),
            text: "Slurs are entered with ( and ).".to_owned(),
        };
        let gemma = "title: none | text: ";
        assert_eq!(
            document_input(gemma, &text("Learning Manual — Slurs")),
            "title: Learning Manual — Slurs | text: Slurs are entered with ( and )."
        );
        assert_eq!(
            document_input(gemma, &text("")),
            "title: none | text: Slurs are entered with ( and )."
        );
        // A prompt without a place for a title: the context is a line before the text.
        assert_eq!(
            document_input("passage: ", &text("Slurs")),
            "passage: Slurs\nSlurs are entered with ( and )."
        );
        assert_eq!(
            document_input("", &text("")),
            "Slurs are entered with ( and )."
        );
    }

    #[test]
    fn prompts_are_read_from_sentence_transformers_settings() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(prompts(dir.path()).unwrap(), (String::new(), String::new()));
        std::fs::write(
            dir.path().join(PROMPTS),
            r#"{"prompts": {"query": "task: search result | query: ", "document": "title: none | text: ", "STS": "x"}}"#,
        )
        .unwrap();
        assert_eq!(
            prompts(dir.path()).unwrap(),
            (
                "task: search result | query: ".to_owned(),
                "title: none | text: ".to_owned()
            )
        );
        std::fs::write(dir.path().join(PROMPTS), "not json").unwrap();
        assert!(prompts(dir.path()).is_err());
    }
}
