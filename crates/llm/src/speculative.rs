//! Speculative decoding for greedy answers: a cheap guess of the next few tokens (the
//! draft) is read by the model in the same batch as the token it would read anyway, and
//! every guessed token that is what the model would have chosen itself is kept. The answer
//! is exactly the greedy answer without drafting; only the number of decoding steps
//! changes. It pays on a CPU as on a GPU, because reading a few tokens in one batch costs
//! little more than reading one.
//!
//! Two sources of drafts:
//!
//! - [`lookup`] (prompt lookup): the tokens that followed the last few tokens where they
//!   occurred earlier in the prompt or the answer. An answer from sources copies their
//!   phrases, commands and numbers, so this guesses well, and costs nothing to make.
//! - [`DraftModel`]: a small model of the same family (same vocabulary) generating the
//!   draft greedily, in its own context, a sequence per sequence of the main one. It
//!   guesses more than the lookup, but reads every prompt too.

use std::collections::VecDeque;

use lectern_core::{Error, Result};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use super::llama::{common_prefix, context_params, most_likely};

/// The longest n-gram at the end of the history looked up, and the shortest.
const LOOKUP_LONGEST: usize = 4;
const LOOKUP_SHORTEST: usize = 2;

/// A draft model's guess is only offered while its own probability is at least this (as
/// llama.cpp's speculative example does): a guess the small model doubts is mostly wrong,
/// and every wrong token in the batch costs compute.
const DRAFT_MIN_PROBABILITY: f32 = 0.75;

/// Prompt lookup: the tokens that followed the latest earlier occurrence of the history's
/// last n tokens (the longest n from [`LOOKUP_LONGEST`] down to [`LOOKUP_SHORTEST`] that
/// occurs), at most `max` of them. Empty when no n-gram recurs.
pub(crate) fn lookup(history: &[LlamaToken], max: usize) -> Vec<LlamaToken> {
    if max == 0 {
        return Vec::new();
    }
    for n in (LOOKUP_SHORTEST..=LOOKUP_LONGEST).rev() {
        if history.len() <= n {
            continue;
        }
        let tail = &history[history.len() - n..];
        // The latest occurrence that is followed by at least one token.
        if let Some(start) = (0..history.len() - n)
            .rev()
            .find(|&s| &history[s..s + n] == tail)
        {
            let from = start + n;
            return history[from..(from + max).min(history.len())].to_vec();
        }
    }
    Vec::new()
}

/// What the model chose after a batch that read a token and then `draft`: `choice(j)` is
/// the model's own choice after the token and the first j drafted tokens. Returns the
/// tokens that the model would have generated one by one: the drafted tokens it agrees
/// with, then its own choice where it first disagrees (or after the whole draft).
pub(crate) fn accept(
    draft: &[LlamaToken],
    mut choice: impl FnMut(usize) -> LlamaToken,
) -> Vec<LlamaToken> {
    let mut out = Vec::with_capacity(draft.len() + 1);
    for (j, &guess) in draft.iter().enumerate() {
        let chosen = choice(j);
        out.push(chosen);
        if chosen != guess {
            return out;
        }
    }
    out.push(choice(draft.len()));
    out
}

/// The most likely token and its probability (the softmax of the logits).
fn most_likely_with_probability(logits: &[f32]) -> (LlamaToken, f32) {
    let best = most_likely(logits);
    let top = logits[best.0 as usize];
    let sum: f32 = logits.iter().map(|&l| (l - top).exp()).sum();
    (best, if sum > 0.0 { 1.0 / sum } else { 0.0 })
}

/// Where a sequence's drafts come from, in the engine thread.
pub(crate) enum Drafter<'m> {
    Off,
    Lookup,
    Model(Box<DraftModel<'m>>),
}

impl Drafter<'_> {
    pub(crate) fn is_off(&self) -> bool {
        matches!(self, Self::Off)
    }

    /// A draft per entry of `wants` (sequence, its tokens and the one it reads next, most
    /// tokens to draft), in order.
    pub(crate) fn propose(
        &mut self,
        wants: &[(usize, Vec<LlamaToken>, usize)],
    ) -> Vec<Vec<LlamaToken>> {
        match self {
            Self::Off => vec![Vec::new(); wants.len()],
            Self::Lookup => wants.iter().map(|(_, h, max)| lookup(h, *max)).collect(),
            Self::Model(m) => m.propose(wants),
        }
    }
}

/// A small model of the same family that drafts for the main one: one context with as
/// many sequences as the main context, each holding the same tokens as its counterpart
/// (brought up to date before each draft, re-using what it already holds).
pub(crate) struct DraftModel<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    batch_size: usize,
    /// The tokens whose KV each draft sequence holds.
    held: Vec<Vec<LlamaToken>>,
}

impl<'m> DraftModel<'m> {
    pub(crate) fn new(
        model: &'m LlamaModel,
        backend: &LlamaBackend,
        context_length: u32,
        sequences: u32,
        batch_size: u32,
        threads: i32,
    ) -> Result<Self> {
        let params = context_params(context_length, sequences, batch_size, threads);
        let ctx = model.new_context(backend, params).map_err(|e| {
            Error::Invalid(format!(
                "cannot create the draft model's context ({context_length} tokens x {sequences} sequences): {e}"
            ))
        })?;
        Ok(Self {
            model,
            ctx,
            batch: LlamaBatch::new(batch_size as usize, sequences as i32),
            batch_size: batch_size as usize,
            held: vec![Vec::new(); sequences as usize],
        })
    }

    /// Drafts for the sequences in `wants`: (sequence, the tokens it holds and the one it
    /// reads next, most tokens to draft). Returns a draft per entry of `wants`, in order;
    /// a draft that could not be made is empty (decoding goes on without it).
    pub(crate) fn propose(
        &mut self,
        wants: &[(usize, Vec<LlamaToken>, usize)],
    ) -> Vec<Vec<LlamaToken>> {
        match self.try_propose(wants) {
            Ok(drafts) => drafts,
            Err(e) => {
                tracing::warn!(error = %e, "the draft model failed; decoding goes on without drafts");
                for &(i, _, _) in wants {
                    self.ctx.clear_kv_cache_seq(Some(i as u32), None, None).ok();
                    self.held[i].clear();
                }
                vec![Vec::new(); wants.len()]
            }
        }
    }

    fn try_propose(
        &mut self,
        wants: &[(usize, Vec<LlamaToken>, usize)],
    ) -> std::result::Result<Vec<Vec<LlamaToken>>, String> {
        // Bring each draft sequence up to the main sequence: keep the common start, read
        // the rest (at least the last token, for its logits).
        let mut pending: Vec<VecDeque<LlamaToken>> = Vec::with_capacity(wants.len());
        for (i, history, _) in wants {
            let (i, held) = (*i, &mut self.held[*i]);
            let keep = common_prefix(held, history).min(history.len().saturating_sub(1));
            if keep < held.len()
                && !self
                    .ctx
                    .clear_kv_cache_seq(Some(i as u32), Some(keep as u32), None)
                    .unwrap_or(false)
            {
                self.ctx.clear_kv_cache_seq(Some(i as u32), None, None).ok();
                held.clear();
            }
            held.truncate(keep);
            pending.push(history[held.len()..].iter().copied().collect());
        }

        let mut drafts: Vec<Vec<LlamaToken>> = vec![Vec::new(); wants.len()];
        // Whether entry w still drafts (its last guess was confident and it wants more).
        let mut going: Vec<bool> = wants.iter().map(|w| w.2 > 0).collect();
        // Read what is pending, batch by batch; a sequence's first guess comes from the
        // batch that reads its last pending token.
        while pending.iter().any(|p| !p.is_empty()) {
            self.batch.clear();
            let mut rows: Vec<(usize, i32)> = Vec::new();
            let mut room = self.batch_size;
            for (w, queue) in pending.iter_mut().enumerate() {
                let seq = wants[w].0;
                while room > 0
                    && let Some(token) = queue.pop_front()
                {
                    let last = queue.is_empty();
                    if last {
                        rows.push((w, self.batch.n_tokens()));
                    }
                    let pos = self.held[seq].len() as i32;
                    self.batch
                        .add(token, pos, &[seq as i32], last)
                        .map_err(|e| e.to_string())?;
                    self.held[seq].push(token);
                    room -= 1;
                }
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| e.to_string())?;
            for (w, row) in rows {
                self.guess(w, row, &mut drafts, &mut going, wants);
            }
        }
        // Then one token per drafting sequence per step, until each has its draft.
        while going.iter().any(|&g| g) {
            self.batch.clear();
            let mut rows = Vec::new();
            for (w, draft) in drafts.iter().enumerate() {
                if !going[w] {
                    continue;
                }
                let seq = wants[w].0;
                let token = *draft.last().expect("a going draft has a guess");
                rows.push((w, self.batch.n_tokens()));
                let pos = self.held[seq].len() as i32;
                self.batch
                    .add(token, pos, &[seq as i32], true)
                    .map_err(|e| e.to_string())?;
                self.held[seq].push(token);
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| e.to_string())?;
            for (w, row) in rows {
                self.guess(w, row, &mut drafts, &mut going, wants);
            }
        }
        Ok(drafts)
    }

    /// Takes entry `w`'s next guess from the logits at `row`, if the draft model is sure
    /// enough of it.
    fn guess(
        &self,
        w: usize,
        row: i32,
        drafts: &mut [Vec<LlamaToken>],
        going: &mut [bool],
        wants: &[(usize, Vec<LlamaToken>, usize)],
    ) {
        if !going[w] {
            return;
        }
        let (token, p) = most_likely_with_probability(self.ctx.get_logits_ith(row));
        if p < DRAFT_MIN_PROBABILITY || self.model.vocab().is_eog(token) {
            going[w] = false;
            return;
        }
        drafts[w].push(token);
        going[w] = drafts[w].len() < wants[w].2;
    }
}

/// Checks that a draft model can draft for `model`: the same vocabulary, token by token.
pub(crate) fn check_vocabulary(model: &LlamaModel, draft: &LlamaModel) -> Result<()> {
    let (a, b) = (model.vocab(), draft.vocab());
    let n = a.n_tokens();
    // Every 97th token, and the last ones (where families add their special tokens).
    let differs = n != b.n_tokens()
        || (0..n)
            .step_by(97)
            .chain((n - 300).max(0)..n)
            .map(LlamaToken::new)
            .any(|t| a.token_to_piece(t, true, None) != b.token_to_piece(t, true, None));
    if differs {
        return Err(Error::Invalid(
            "the draft model (llm.draft_model_path) has another vocabulary than the model; use a smaller model of the same family".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ids: &[i32]) -> Vec<LlamaToken> {
        ids.iter().map(|&t| LlamaToken::new(t)).collect()
    }

    #[test]
    fn lookup_continues_the_latest_earlier_occurrence_of_the_longest_tail() {
        // "5 6 7" occurred twice; the latest is followed by 9 9.
        let h = tokens(&[1, 5, 6, 7, 8, 2, 5, 6, 7, 9, 9, 3, 5, 6, 7]);
        assert_eq!(lookup(&h, 2), tokens(&[9, 9]));
        assert_eq!(lookup(&h, 10), tokens(&[9, 9, 3, 5, 6, 7]));
        // Only a 2-gram recurs: it is used.
        let h = tokens(&[4, 1, 2, 3, 7, 1, 2]);
        assert_eq!(lookup(&h, 3), tokens(&[3, 7, 1]));
        // A single recurring token is not enough to guess from.
        assert!(lookup(&tokens(&[1, 2, 3, 4, 5, 3]), 3).is_empty());
        assert!(lookup(&tokens(&[1, 2]), 3).is_empty());
        assert!(lookup(&tokens(&[1, 2, 1, 2]), 0).is_empty());
    }

    #[test]
    fn accept_keeps_agreeing_guesses_then_the_models_own_choice() {
        let model = tokens(&[10, 11, 12, 13, 14]);
        let choice = |j: usize| model[j];
        // All guesses agree: they and the choice after them.
        assert_eq!(accept(&tokens(&[10, 11]), choice), tokens(&[10, 11, 12]));
        // The second guess is wrong: the first, then the model's token instead.
        assert_eq!(accept(&tokens(&[10, 99, 12]), choice), tokens(&[10, 11]));
        // The first is wrong: one token, as without a draft.
        assert_eq!(accept(&tokens(&[99]), choice), tokens(&[10]));
        assert_eq!(accept(&[], choice), tokens(&[10]));
    }

    #[test]
    fn probability_of_the_most_likely_token_is_its_softmax() {
        let (t, p) = most_likely_with_probability(&[0.0, 2.0_f32.ln() + 1.0, 1.0]);
        // exp: 1, 2e, e → p = 2e / (1 + 3e)
        let e = std::f32::consts::E;
        assert_eq!(t, LlamaToken::new(1));
        assert!((p - 2.0 * e / (1.0 + 3.0 * e)).abs() < 1e-5, "{p}");
    }
}
