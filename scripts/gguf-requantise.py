#!/usr/bin/env python3
"""Rewrites a GGUF chat model's block matrices in one quantisation type (Q4_0 by default).

llama.cpp's CPU backend repacks Q4_0 matrices into interleaved blocks for AVX2 and NEON
and multiplies them faster than the K-quants a published Q4_K_M file mixes (Q4_K and
Q6_K): on two AVX2 cores, Qwen2.5-Coder-1.5B reads a prompt about 17% faster this way
(docs/BENCHMARKS.md, "Other quantisations"). The embedding matrix (`token_embd`, also
the output projection of a model with tied embeddings), `output` and every vector are
copied as they are: they are the most sensitive to rounding and cost little.

Each tensor is dequantised and quantised again with llama.cpp's own `gguf` Python
package (the reference quantisers, the same as `llama-quantize` without an importance
matrix), passed as --gguf-py, so the result is what llama.cpp's tools would write.

Usage: gguf-requantise.py --gguf-py DIR [--type Q4_0] IN.gguf OUT.gguf
"""
import argparse
import re
import sys
from pathlib import Path

KEEP = re.compile(r"^(token_embd|output)\.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    ap.add_argument("--type", default="Q4_0", help="the target type (one gguf-py can quantise to)")
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, args.gguf_py)
    import gguf
    import numpy as np
    from gguf import quants

    target = gguf.GGMLQuantizationType[args.type]
    file_type = gguf.LlamaFileType[f"MOSTLY_{args.type}"]
    reader = gguf.GGUFReader(args.src)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(args.out, arch)

    for field in reader.fields.values():
        # The writer adds the architecture and the GGUF header fields itself.
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_file_type(file_type)
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)

    block = gguf.GGML_QUANT_SIZES[target][0]
    plan = []
    changed = 0
    for t in reader.tensors:
        quantised = t.tensor_type not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
        row = int(t.shape[0])  # GGUF lists the innermost dimension first
        if (
            quantised
            and t.tensor_type != target
            and not KEEP.match(t.name)
            and row % block == 0
        ):
            plan.append((t, True))
            changed += 1
        else:
            plan.append((t, False))

    def converted(t):
        return quants.quantize(quants.dequantize(t.data, t.tensor_type), target)

    # The header lists every tensor's size before any data is written; the sizes follow
    # from the shapes, and each tensor is converted only as it is written, so one
    # tensor's floats are in memory at a time.
    for t, convert in plan:
        if convert:
            shape = quants.quant_shape_from_byte_shape(t.data.shape, t.tensor_type)
            nbytes = quants.quant_shape_to_byte_shape(shape, target)
            writer.add_tensor_info(
                t.name, nbytes, np.dtype(np.uint8), int(np.prod(nbytes)), target
            )
        else:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t, convert in plan:
        data = converted(t) if convert else t.data
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
    print(f"{args.out}: {changed} of {len(plan)} tensors written as {args.type}", file=sys.stderr)


if __name__ == "__main__":
    main()
