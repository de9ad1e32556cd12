#!/usr/bin/env python3
"""Writes EmbeddingGemma's sentence-transformers folder as one GGUF file for llama.cpp.

llama.cpp's own converter (convert_hf_to_gguf.py) needs PyTorch, which is several
gigabytes; this does the same for this one architecture with numpy, safetensors and
sentencepiece, and llama.cpp's `gguf` Python package (from the llama.cpp source release
that scripts/build-llama-server.sh fetches, passed as --gguf-py). It follows that
converter's EmbeddingGemma class: the `gemma-embedding` architecture, the sentencepiece
vocabulary, RMS-norm weights shifted by one (Gemma's norm multiplies by 1 + w), the two
Dense projections after the mean pooling, and the pooling type from 1_Pooling.

Matrices are written as Q8_0 (near-lossless, and what llama.cpp's CPU kernels are fastest
on), vectors as F32.

Usage: gguf-embeddinggemma.py --gguf-py DIR MODEL_DIR OUT.gguf
"""
import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    ap.add_argument("model", type=Path, help="the sentence-transformers folder")
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, args.gguf_py)
    import gguf
    import numpy as np
    from safetensors.numpy import load_file
    from sentencepiece import SentencePieceProcessor

    model: Path = args.model
    hp = json.loads((model / "config.json").read_text())
    if hp.get("architectures") != ["Gemma3TextModel"]:
        sys.exit(f"{model}: not a Gemma3TextModel (EmbeddingGemma) folder")
    arch = gguf.MODEL_ARCH.GEMMA_EMBEDDING
    n_layers = hp["num_hidden_layers"]
    writer = gguf.GGUFWriter(args.out, gguf.MODEL_ARCH_NAMES[arch])

    # Hyper-parameters, as the converter's TextModel, Gemma3Model and EmbeddingGemma set them.
    writer.add_name("EmbeddingGemma-300M")
    writer.add_block_count(n_layers)
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_head_count(hp["num_attention_heads"])
    writer.add_head_count_kv(hp["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    writer.add_key_length(hp["head_dim"])
    writer.add_value_length(hp["head_dim"])
    writer.add_rope_freq_base(hp["rope_theta"])
    if "rope_local_base_freq" in hp:
        writer.add_rope_freq_base_swa(hp["rope_local_base_freq"])
    writer.add_sliding_window(hp["sliding_window"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)

    modules = json.loads((model / "modules.json").read_text())
    dense = []
    for mod in modules:
        kind, path = mod["type"], mod["path"]
        if kind.endswith("Pooling"):
            pooling = json.loads((model / path / "config.json").read_text())
            if not pooling.get("pooling_mode_mean_tokens"):
                sys.exit(f"{model}: only mean pooling is supported")
            writer.add_pooling_type(gguf.PoolingType.MEAN)
        elif kind.endswith("Dense") and (model / path / "model.safetensors").is_file():
            conf = json.loads((model / path / "config.json").read_text())
            prefix = "dense_2" if path == "2_Dense" else "dense_3"
            writer.add_dense_features_dims(prefix, conf["in_features"], conf["out_features"])
            dense.append((prefix, model / path / "model.safetensors"))

    # The sentencepiece vocabulary (the converter's _create_vocab_sentencepiece).
    types = gguf.TokenType
    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(model / "tokenizer.model"))
    n_vocab = hp["vocab_size"]
    tokens = [f"[PAD{i}]".encode() for i in range(n_vocab)]
    scores = [-10000.0] * n_vocab
    toktypes = [types.UNUSED] * n_vocab
    for i in range(min(sp.vocab_size(), n_vocab)):
        tokens[i] = sp.IdToPiece(i).encode()
        scores[i] = sp.GetScore(i)
        toktypes[i] = (
            types.UNKNOWN if sp.IsUnknown(i)
            else types.CONTROL if sp.IsControl(i)
            else types.UNUSED if sp.IsUnused(i)
            else types.BYTE if sp.IsByte(i)
            else types.NORMAL
        )
    added = model / "added_tokens.json"
    for text, i in (json.loads(added.read_text()) if added.is_file() else {}).items():
        if i < n_vocab:
            tokens[i], scores[i], toktypes[i] = text.encode(), -1000.0, types.USER_DEFINED
    config = json.loads((model / "tokenizer_config.json").read_text())
    for i, data in config.get("added_tokens_decoder", {}).items():
        i, text = int(i), data["content"]
        if i >= n_vocab:
            continue
        looks_special = text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (
            text.startswith("<|") and text.endswith("|>"))
        if data.get("special") or looks_special:
            toktypes[i] = types.CONTROL
        else:
            text = text.replace("\u2581", " ")
            toktypes[i] = types.USER_DEFINED
        scores[i], tokens[i] = -1000.0, text.encode()
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(toktypes)
    gguf.SpecialVocab(model, n_vocab=len(tokens)).add_to_gguf(writer)
    writer.add_add_space_prefix(False)

    # Tensors.
    names = gguf.TensorNameMap(arch, n_layers)

    def add(hf_name: str, data) -> None:
        base, suffix = hf_name.rsplit(".", 1)
        name = names.get_name(base)
        if name is None:
            sys.exit(f"{model}: no GGUF name for tensor {hf_name}")
        data = data.astype(np.float32)
        if base.endswith("norm"):
            data = data + 1.0
        if data.ndim == 1:
            writer.add_tensor(f"{name}.{suffix}", data)
        else:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(f"{name}.{suffix}", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    weights = load_file(model / "model.safetensors")
    for hf_name in sorted(weights):
        data = weights[hf_name]
        if hf_name.startswith("model."):
            hf_name = hf_name[len("model."):]
        if hf_name == "embed_tokens.weight":
            data = data[:len(tokens)]
        add(hf_name, data)
    for prefix, path in dense:
        for hf_name, data in load_file(path).items():
            if hf_name.endswith(".weight"):
                add(hf_name.replace("linear", prefix), data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
