//! Embedding throughput: Lectern's embedder (fastembed) against a raw ONNX Runtime session
//! run on the very same batches of real 200-400-token chunks, side by side in one run.
//!
//! `cargo bench -p lectern-embed --bench embed` (see docs/BENCHMARKS.md). The chunks are
//! cut from the licence texts every Debian system ships in /usr/share/common-licenses.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lectern_core::Embedder;
use lectern_embed::testing::default_options;
use lectern_embed::{FastEmbedder, onnx_runtime};
use ndarray::{Array2, Ix3};
use ort::session::Session;
use ort::value::TensorRef;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

const TEXTS: usize = 64;

/// Paragraph-aligned chunks of 200-400 tokens of real prose.
fn chunks(tokenizer: &Tokenizer) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["GPL-3", "Apache-2.0", "LGPL-3", "MPL-2.0", "GFDL-1.3"] {
        let Ok(text) = std::fs::read_to_string(Path::new("/usr/share/common-licenses").join(name))
        else {
            continue;
        };
        let mut current = String::new();
        for para in text.split("\n\n") {
            let para = para.split_whitespace().collect::<Vec<_>>().join(" ");
            if para.is_empty() {
                continue;
            }
            let candidate = if current.is_empty() {
                para.clone()
            } else {
                format!("{current}\n\n{para}")
            };
            let tokens = tokenizer
                .encode(candidate.as_str(), false)
                .map(|e| e.len())
                .unwrap_or(0);
            if tokens > 400 {
                if tokenizer
                    .encode(current.as_str(), false)
                    .map(|e| e.len())
                    .unwrap_or(0)
                    >= 200
                {
                    out.push(std::mem::take(&mut current));
                }
                current = para;
            } else {
                current = candidate;
            }
            if out.len() == TEXTS {
                return out;
            }
        }
    }
    assert!(
        out.len() >= 16,
        "too few licence texts found for the benchmark"
    );
    out
}

fn raw_embed(session: &mut Session, tokenizer: &Tokenizer, texts: &[String]) -> Vec<Vec<f32>> {
    let enc = tokenizer
        .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
        .unwrap();
    let (b, t) = (enc.len(), enc[0].len());
    let collect = |f: fn(&tokenizers::Encoding) -> &[u32]| {
        Array2::from_shape_vec(
            (b, t),
            enc.iter()
                .flat_map(|e| f(e).iter().map(|&x| i64::from(x)))
                .collect(),
        )
        .unwrap()
    };
    let (ids, mask, types) = (
        collect(|e| e.get_ids()),
        collect(|e| e.get_attention_mask()),
        collect(|e| e.get_type_ids()),
    );
    let outputs = session
        .run(ort::inputs![
            "input_ids" => TensorRef::from_array_view(ids.view()).unwrap(),
            "attention_mask" => TensorRef::from_array_view(mask.view()).unwrap(),
            "token_type_ids" => TensorRef::from_array_view(types.view()).unwrap(),
        ])
        .unwrap();
    let hidden = outputs["last_hidden_state"]
        .try_extract_array::<f32>()
        .unwrap()
        .into_dimensionality::<Ix3>()
        .unwrap();
    let h = hidden.shape()[2];
    (0..b)
        .map(|i| {
            let mut acc = vec![0f32; h];
            let mut n = 0f32;
            for j in 0..t {
                if mask[[i, j]] != 0 {
                    n += 1.0;
                    acc.iter_mut()
                        .enumerate()
                        .for_each(|(k, a)| *a += hidden[[i, j, k]]);
                }
            }
            let norm = acc
                .iter()
                .map(|a| (a / n) * (a / n))
                .sum::<f32>()
                .sqrt()
                .max(1e-12);
            acc.iter().map(|a| a / n / norm).collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    // Both arms see whole 200-400-token chunks (MiniLM's limit is 512 positions).
    let options = lectern_embed::EmbedderOptions {
        max_length: 512,
        ..default_options()
    };
    let embedder = FastEmbedder::load(&options).expect("run scripts/fetch-assets.sh first");
    let env = onnx_runtime(&options.ort_dylib).unwrap();
    let mut session = Session::builder(&env)
        .unwrap()
        .commit_from_file(options.model_dir.join("model.onnx"))
        .unwrap();
    let mut tokenizer = Tokenizer::from_file(options.model_dir.join("tokenizer.json")).unwrap();
    // The shipped tokenizer pads and truncates to 128: count real lengths when cutting.
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    let texts = chunks(&tokenizer);
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..Default::default()
    }));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: options.max_length,
            ..Default::default()
        }))
        .unwrap();

    // Same model, same batches: the two must agree before their speeds mean anything.
    let ours = embedder
        .embed(&texts[..options.batch_size.min(texts.len())].to_vec())
        .unwrap();
    let raw = raw_embed(
        &mut session,
        &tokenizer,
        &texts[..options.batch_size.min(texts.len())],
    );
    let worst = ours
        .iter()
        .zip(&raw)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>())
        .fold(1f32, f32::min);
    assert!(
        worst > 0.999,
        "fastembed and the raw session disagree (cosine {worst})"
    );

    let mut group = c.benchmark_group("embed");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.sample_size(10);
    group.bench_function("lectern_fastembed", |b| {
        b.iter(|| embedder.embed(&texts).unwrap())
    });
    group.bench_function("raw_ort_session", |b| {
        b.iter(|| {
            texts
                .chunks(options.batch_size)
                .map(|batch| raw_embed(&mut session, &tokenizer, batch))
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
