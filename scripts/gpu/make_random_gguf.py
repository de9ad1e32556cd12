#!/usr/bin/env python3
"""Writes a random-weight GGUF with the shapes of a standard model, for speed tests.

Generation speed depends on a model's shapes and weight type, not on its values, so a
file with Llama-3-8B's shapes (32 layers, 4,096 wide, 8 KV heads, 14,336 feed-forward,
128,256 tokens) and random Q4_0 blocks measures what the real Llama-3-8B Q4_0 would,
without carrying 4.5 GB. The vocabulary, merges and chat template are copied from a real
GGUF (--tokenizer-from, e.g. SmolLM2's), padded with unused tokens to the vocabulary size,
so that prompts tokenise as real text does.

Random bytes alone would not do: each Q4_0 block starts with an f16 scale, and random
bits there give infinities and NaNs. The scales are drawn as small finite values and
only the 4-bit weights are random. The rows of the output matrix for control and padding
tokens are zero (scale 0), so their logit is exactly 0 while other tokens' are random:
greedy decoding then never picks an end-of-generation token and every request decodes
its full --max-tokens, which a decode-speed measurement needs.

One pool of random blocks, the size of the largest tensor, is generated once and every
tensor is a view of it (weights repeat across layers, which costs nothing in speed):
about 300 MB of random numbers for a 4.5 GB file, written in seconds.

Usage:
  make_random_gguf.py --tokenizer-from SmolLM2.gguf --out /dev/shm/llama3-8b-q4_0.gguf
  make_random_gguf.py --tokenizer-from SmolLM2.gguf --out tiny.gguf --shape tiny   # tests
  make_random_gguf.py --tokenizer-from SmolLM2.gguf --out tok.gguf --tokenizer-only
The last writes the tokenizer alone (no tensors, about 1 MB): a --tokenizer-from for a
machine that does not have the real model yet. Needs the `gguf` package (and numpy).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import gguf

# name: (layers, embd, ff, heads, kv_heads, vocab, context, rope_base)
SHAPES = {
    "llama3-8b": (32, 4096, 14336, 32, 8, 128256, 8192, 500000.0),
    # Small enough to write and run in a second on a CPU (for the dry run).
    "tiny": (2, 256, 512, 4, 2, 49280, 8192, 10000.0),
}

Q4_0_BLOCK = 32  # weights per block
Q4_0_BYTES = 18  # f16 scale + 16 bytes of 4-bit weights


def field(reader: gguf.GGUFReader, key: str):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def tokenizer_of(path: str) -> dict:
    r = gguf.GGUFReader(path)
    tok = {
        "model": field(r, "tokenizer.ggml.model"),
        "pre": field(r, "tokenizer.ggml.pre"),
        "tokens": field(r, "tokenizer.ggml.tokens"),
        "types": field(r, "tokenizer.ggml.token_type"),
        "merges": field(r, "tokenizer.ggml.merges"),
        "bos": field(r, "tokenizer.ggml.bos_token_id"),
        "eos": field(r, "tokenizer.ggml.eos_token_id"),
        "unk": field(r, "tokenizer.ggml.unknown_token_id"),
        "pad": field(r, "tokenizer.ggml.padding_token_id"),
        "add_bos": field(r, "tokenizer.ggml.add_bos_token"),
        "add_space_prefix": field(r, "tokenizer.ggml.add_space_prefix"),
        "template": field(r, "tokenizer.chat_template"),
    }
    if not tok["tokens"] or tok["types"] is None:
        sys.exit(f"make_random_gguf: {path} has no tokenizer.ggml.tokens / token_type")
    return tok


def q4_0_pool(blocks: int, rng: np.random.Generator) -> np.ndarray:
    """`blocks` Q4_0 blocks: finite f16 scales, random 4-bit weights."""
    pool = rng.integers(0, 256, size=(blocks, Q4_0_BYTES), dtype=np.uint8)
    # |w| <= 8 * d: with d in [0.002, 0.006] a 4,096-wide product stays of order 1.
    scales = rng.uniform(0.002, 0.006, size=blocks).astype(np.float16)
    pool[:, 0:2] = scales.view(np.uint8).reshape(blocks, 2)
    return pool


def add_tokenizer(w: gguf.GGUFWriter, tok: dict, tokens: list, types: list) -> None:
    w.add_tokenizer_model(tok["model"])
    if tok["pre"]:
        w.add_tokenizer_pre(tok["pre"])
    w.add_token_list(tokens)
    w.add_token_types(types)
    if tok["merges"]:
        w.add_token_merges(list(tok["merges"]))
    for key, add in (
        ("bos", w.add_bos_token_id),
        ("eos", w.add_eos_token_id),
        ("unk", w.add_unk_token_id),
        ("pad", w.add_pad_token_id),
    ):
        if tok[key] is not None:
            add(int(tok[key]))
    if tok["add_bos"] is not None:
        w.add_add_bos_token(bool(tok["add_bos"]))
    if tok["add_space_prefix"] is not None:
        w.add_add_space_prefix(bool(tok["add_space_prefix"]))
    if tok["template"]:
        w.add_chat_template(tok["template"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer-from", required=True, help="a GGUF whose tokenizer is copied")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama3-8b")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--tokenizer-only", action="store_true", help="write the tokenizer, no tensors")
    args = ap.parse_args()

    layers, embd, ff, heads, kv_heads, vocab, ctx, rope_base = SHAPES[args.shape]
    head_dim = embd // heads
    started = time.monotonic()
    tok = tokenizer_of(args.tokenizer_from)
    if args.tokenizer_only:
        w = gguf.GGUFWriter(args.out, "llama")
        w.add_name("tokenizer only")
        add_tokenizer(w, tok, list(tok["tokens"]), [int(t) for t in tok["types"]])
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        print(f"make_random_gguf: {args.out}: tokenizer only, {len(tok['tokens'])} tokens", file=sys.stderr)
        return 0
    n_real = len(tok["tokens"])
    if n_real > vocab:
        sys.exit(f"make_random_gguf: the tokenizer has {n_real} tokens, more than {vocab}")
    tokens = list(tok["tokens"]) + [f"<|lectern_unused_{i}|>" for i in range(vocab - n_real)]
    types = [int(t) for t in tok["types"]] + [int(gguf.TokenType.UNUSED)] * (vocab - n_real)
    silent = np.array(
        [t in (gguf.TokenType.CONTROL, gguf.TokenType.UNUSED) for t in types], dtype=bool
    )

    rng = np.random.default_rng(args.seed)
    rows_blocks = lambda rows, cols: rows * (cols // Q4_0_BLOCK)  # noqa: E731
    biggest = max(rows_blocks(vocab, embd), rows_blocks(ff, embd), rows_blocks(embd, ff))
    pool = q4_0_pool(biggest, rng)

    def q4(rows: int, cols: int) -> np.ndarray:
        assert cols % Q4_0_BLOCK == 0, cols
        n = rows_blocks(rows, cols)
        return pool[:n].reshape(rows, (cols // Q4_0_BLOCK) * Q4_0_BYTES)

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name(f"random weights, {args.shape} shapes")
    w.add_block_count(layers)
    w.add_context_length(ctx)
    w.add_embedding_length(embd)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(rope_base)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    add_tokenizer(w, tok, tokens, types)

    ones = np.ones(embd, dtype=np.float32)
    q4_0 = gguf.GGMLQuantizationType.Q4_0
    w.add_tensor("token_embd.weight", q4(vocab, embd), raw_dtype=q4_0)
    for i in range(layers):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", ones)
        w.add_tensor(b + "attn_q.weight", q4(embd, embd), raw_dtype=q4_0)
        w.add_tensor(b + "attn_k.weight", q4(kv_heads * head_dim, embd), raw_dtype=q4_0)
        w.add_tensor(b + "attn_v.weight", q4(kv_heads * head_dim, embd), raw_dtype=q4_0)
        w.add_tensor(b + "attn_output.weight", q4(embd, embd), raw_dtype=q4_0)
        w.add_tensor(b + "ffn_norm.weight", ones)
        w.add_tensor(b + "ffn_gate.weight", q4(ff, embd), raw_dtype=q4_0)
        w.add_tensor(b + "ffn_up.weight", q4(ff, embd), raw_dtype=q4_0)
        w.add_tensor(b + "ffn_down.weight", q4(embd, ff), raw_dtype=q4_0)
    w.add_tensor("output_norm.weight", ones)
    # Its own copy: control and padding rows get scale 0 (logit exactly 0).
    output = q4(vocab, embd).copy()
    blocks = output.reshape(vocab, embd // Q4_0_BLOCK, Q4_0_BYTES)
    blocks[silent, :, 0:2] = 0
    w.add_tensor("output.weight", output, raw_dtype=q4_0)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    size = os.path.getsize(args.out)
    print(
        f"make_random_gguf: {args.out}: {args.shape} shapes, Q4_0, {layers} layers, "
        f"vocab {vocab} ({n_real} real tokens), {size / 2**30:.2f} GiB "
        f"in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
