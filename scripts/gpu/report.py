#!/usr/bin/env python3
"""Writes the GPU check's summary (summary.md) and results.json from its results folder.

Reads what scripts/gpu-check.sh left in RESULTS (each file optional; a missing one is
reported as not run): info.json, correctness.json, correctness-here.json, calibration.json,
lectern-speed.json, llama-bench.json, batched-bench.jsonl, offload-smollm2.txt,
offload-8b.txt, gpu-memory.txt, steps.txt.

Usage: report.py RESULTS OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_bench(path):
    """llama-bench's JSON array; when `timeout` stopped it between tests the closing `]`
    is missing: keep the tests printed whole."""
    d = load_json(path)
    if isinstance(d, list):
        return d
    try:
        with open(path, encoding="utf-8") as f:
            t = f.read()
    except OSError:
        return []
    end = t.rfind("\n  }")
    if not t.lstrip().startswith("[") or end < 0:
        return []
    try:
        d = json.loads(t[: end + 4] + "\n]")
    except ValueError:
        return []
    return d if isinstance(d, list) else []


def load_jsonl(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return rows


def text(path, limit=4000):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-limit:].strip()
    except OSError:
        return ""


def fmt(x, nd=1):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def main() -> int:
    res, out = sys.argv[1], sys.argv[2]
    p = lambda name: os.path.join(res, name)  # noqa: E731
    info = load_json(p("info.json")) or {}
    corr = load_json(p("correctness.json"))
    corr_here = load_json(p("correctness-here.json"))
    calib = load_json(p("calibration.json"))
    speed = load_json(p("lectern-speed.json"))
    speed_t4 = load_json(p("lectern-speed-t4.json"))
    bench = load_bench(p("llama-bench.json"))
    batched = load_jsonl(p("batched-bench.jsonl"))

    md = ["# Lectern on the GPU: check results", ""]
    md.append(f"Mode: **{info.get('mode', '?')}**. " + (info.get("note") or ""))
    md.append("")
    md.append("## Machine and build")
    md.append("")
    for k in ("gpu", "driver", "nvcc", "cmake", "cpu", "bundle", "llama_cpp_source", "tools_source",
              "cuda_build_seconds", "gguf_8b", "gguf_seconds"):
        if k in info:
            md.append(f"- {k.replace('_', ' ')}: {info[k]}")
    md.append("")

    md.append("## Correctness: SmolLM2-135M, greedy, CPU build vs GPU build")
    md.append("")
    if corr:
        c = corr["counts"]
        md.append(
            f"{corr['questions']} questions over the licence corpus, `lectern ask --json` with "
            f"llm.gpu_layers = 0 and no GPU module (CPU) vs llm.gpu_layers = 99 (GPU): "
            f"**{c['identical']} identical**, {c['cited alike']} with the same citations but "
            f"text that parts, {c['differs']} differing; {corr['model_asked']} answered by the model."
        )
        md.append("")
        md.append("| # | verdict | common prefix / chars (CPU, GPU) | citations | question |")
        md.append("|---|---|---|---|---|")
        for r in corr["rows"]:
            md.append(
                f"| {r['n']} | {r['verdict']} | {r.get('common_prefix_chars', '')} / "
                f"{r.get('chars', '')} | {r.get('citations', '')} | {r['question']} |"
            )
        md.append("")
    else:
        md.append("Not run.")
        md.append("")
    if corr_here:
        c = corr_here["counts"]
        md.append(
            f"Against the CPU answers made on the development machine (another CPU, other SIMD "
            f"kernels; {corr_here['names'][0]} vs {corr_here['names'][1]}): {c['identical']} "
            f"identical, {c['cited alike']} cited alike, {c['differs']} differing."
        )
        md.append("")

    md.append("## Speed: random-weight Llama-3-8B shapes, Q4_0, everything on the GPU")
    md.append("")
    if calib:
        md.append(
            f"RAG prompt: query.sources = {calib.get('sources')} whole passages "
            f"(query.evidence_sentences = 0), {calib.get('prompt_tokens')} prompt tokens measured "
            f"with SmolLM2's tokenizer, which the 8B file shares."
        )
        md.append("")
    pp = {}
    tg = {}
    for r in bench:
        key = "fa" + str(r.get("flash_attn", r.get("fa", "?")))
        if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
            pp[key] = r
        elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
            tg[key] = r
    b1 = next((r for r in batched if r.get("pl") == 1), None)
    b8 = next((r for r in batched if r.get("pl") == 8), None)
    s = (speed or {}).get("single", {}).get("summary", {})
    cc = (speed or {}).get("concurrent", {})
    rounds = cc.get("rounds", [])
    r8 = rounds[0]["summary"] if rounds else {}
    lect_ttft = s.get("server_first_token_ms_median")
    lect_ret = s.get("server_retrieval_ms_median")
    lect_tg = s.get("decode_tokens_per_s_median")
    lect_agg = cc.get("aggregate_tokens_per_s_median")
    best_pp = max((r.get("avg_ts") or 0 for r in pp.values()), default=0) or None
    best_tg = max((r.get("avg_ts") or 0 for r in tg.values()), default=0) or None
    n_prompt = next((r.get("n_prompt") for r in pp.values()), None)
    ref_ttft = (n_prompt / best_pp * 1000) if best_pp and n_prompt else None
    ref_agg = None
    if b8 and b8.get("t"):
        ref_agg = b8["pl"] * b8["tg"] / b8["t"]
    md.append("| | Lectern (`lectern serve`, /v1/answer) | llama.cpp, same source and file | Lectern / llama.cpp |")
    md.append("|---|---|---|---|")
    md.append(
        f"| time to first token, {fmt(s.get('prompt_tokens_median'))}-token prompt (llama.cpp: {fmt(n_prompt)}) "
        f"| {fmt(lect_ttft)} ms (of which retrieval {fmt(lect_ret)} ms) | {fmt(ref_ttft)} ms (llama-bench pp, best fa) "
        f"| {ratio(lect_ttft, ref_ttft)} |"
    )
    model_ttft = (lect_ttft - lect_ret) if lect_ttft is not None and lect_ret is not None else None
    md.append(
        f"| the same, less retrieval (question embedding and search on the CPU) | {fmt(model_ttft)} ms "
        f"| | {ratio(model_ttft, ref_ttft)} |"
    )
    # Lectern decodes after a ~2,000-token prompt: the fair reference is batched-bench's
    # B=1 decode after the same prompt; llama-bench's tg starts from an empty context.
    ref_tg1 = b1.get("speed_tg") if b1 else None
    md.append(
        f"| decode, one stream, after the prompt | {fmt(lect_tg)} tokens/s | {fmt(ref_tg1)} tokens/s "
        f"(llama-batched-bench B=1 S_TG, same prompt length) | {ratio(lect_tg, ref_tg1)} |"
    )
    md.append(
        f"| decode, one stream, from an empty context | | {fmt(best_tg)} tokens/s (llama-bench tg, best fa) | |"
    )
    lect_sum8 = r8.get("decode_tokens_per_s_sum")
    ref_tg8 = b8.get("speed_tg") if b8 else None
    md.append(
        f"| {cc.get('concurrency', 8)} answers at once, decode (the streams' decode rates added) "
        f"| {fmt(lect_sum8)} tokens/s | {fmt(ref_tg8)} tokens/s (llama-batched-bench B={b8['pl'] if b8 else 8} S_TG) "
        f"| {ratio(lect_sum8, ref_tg8)} |"
    )
    md.append(
        f"| the same over one stream: {cc.get('concurrency', 8)} at once vs one | "
        f"{ratio(lect_sum8, lect_tg)}x | {ratio(ref_tg8, ref_tg1)}x | |"
    )
    if speed_t4:
        s4 = speed_t4.get("single", {}).get("summary", {})
        r4 = (speed_t4.get("concurrent", {}).get("rounds") or [{}])[0].get("summary", {})
        md.append(
            f"| llm.threads = 4 instead of one per core: one stream / {cc.get('concurrency', 8)} at once "
            f"| {fmt(s4.get('decode_tokens_per_s_median'))} / {fmt(r4.get('decode_tokens_per_s_sum'))} tokens/s | | |"
        )
    md.append(
        f"| {cc.get('concurrency', 8)} answers at once, completion tokens / wall | {fmt(lect_agg)} tokens/s "
        f"| {fmt(ref_agg)} tokens/s (llama-batched-bench B={b8['pl'] if b8 else 8}: "
        f"{b8['pl'] if b8 else 8} x ({b8['pp'] if b8 else '?'} prompt + {b8['tg'] if b8 else '?'}) tokens) "
        f"| {ratio(lect_agg, ref_agg)} |"
    )
    md.append("")
    if speed:
        md.append(
            f"Lectern: {s.get('ok')}/{s.get('requests')} single answers, "
            f"{r8.get('ok')}/{r8.get('requests')} concurrent in the first round; "
            f"client-side first token {fmt(s.get('client_first_token_ms_median'))} ms; "
            f"finish reasons {s.get('finish_reasons')}; errors {s.get('errors') or 'none'}."
        )
        md.append("")
    if bench:
        md.append("llama-bench rows: " + "; ".join(
            f"{('pp' + str(r.get('n_prompt'))) if r.get('n_prompt') else ('tg' + str(r.get('n_gen')))} "
            f"fa={r.get('flash_attn', r.get('fa'))}: {fmt(r.get('avg_ts'))} t/s" for r in bench))
        md.append("")

    for name, title in (("offload-smollm2.txt", "Start-up log, SmolLM2 on the GPU"),
                        ("offload-8b.txt", "Start-up log, the 8B file under `lectern serve`"),
                        ("gpu-memory.txt", "GPU memory (nvidia-smi)")):
        t = text(p(name))
        md.append(f"## {title}")
        md.append("")
        md.append("```")
        md.append(t or "(not run)")
        md.append("```")
        md.append("")
    carries = text(p("carries.txt"))
    if carries:
        md.append("## Carries (each call: at most 64 MiB with the working tree)")
        md.append("")
        md.append("```")
        md.append(carries)
        md.append("```")
        md.append("")
    steps = text(p("steps.txt"), 8000)
    md.append("## Steps")
    md.append("")
    md.append("```")
    md.append(steps or "(none)")
    md.append("```")

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    merged = {
        "info": info, "correctness": corr, "correctness_here": corr_here, "calibration": calib,
        "lectern_speed": speed, "lectern_speed_threads4": speed_t4, "llama_bench": bench, "batched_bench": batched,
        "headline": {
            "ttft_ms": [lect_ttft, ref_ttft], "decode_tps": [lect_tg, best_tg],
            "aggregate_tps": [lect_agg, ref_agg], "decode_after_prompt_tps": [lect_tg, ref_tg1],
            "decode_8_streams_tps": [lect_sum8, ref_tg8],
        },
    }
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=1)
    print("\n".join(md[:80]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
