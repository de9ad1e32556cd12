#!/usr/bin/env python3
"""Times Lectern's answers over HTTP: one stream at a time, then N at once.

Drives a running `lectern serve` through `POST /v1/answer` (streamed, Server-Sent Events),
the path every client takes: retrieval, the RAG prompt, generation by llama.cpp in the
process (continuous batching over `llm.parallel` sequences), the checks. For each answer it
records the client's time to the first `token` event and the server's own timings from the
`answer` event (first_token_ms from the request, retrieval_ms, prompt_tokens,
completion_tokens, tokens_per_second of the decode).

  single      --single K answers one after the other (after one warm-up): time to first
              token and decode tokens/s of one stream
  concurrent  --concurrency N answers started together, --rounds R times: aggregate
              tokens/s = all completion tokens / wall time from the first request sent to
              the last answer done

Every request asks a different question (the list is cycled with a numbered suffix), so
neither the retrieval nor the model can reuse an earlier prompt. Standard library only.

Usage: answer_load.py --url http://127.0.0.1:PORT --key KEY --questions FILE
                      [--single 3] [--concurrency 8] [--rounds 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def ask(url: str, key: str, question: str, timeout: float) -> dict:
    """One streamed answer; a failure (refused, reset, timed out) is a row with an error,
    never an exception: in a thread one would leave its row None and lose every result."""
    started = time.monotonic()
    try:
        return _ask(url, key, question, timeout)
    except Exception as e:  # noqa: BLE001
        return {
            "question": question,
            "token_events": 0,
            "error": f"{type(e).__name__}: {e}"[:500],
            "done_s": time.monotonic() - started,
        }


def _ask(url: str, key: str, question: str, timeout: float) -> dict:
    """One streamed answer: client-side times and the server's timings."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    body = json.dumps({"question": question, "stream": True})
    started = time.monotonic()
    conn.request(
        "POST",
        "/v1/answer",
        body=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        },
    )
    resp = conn.getresponse()
    out: dict = {"question": question, "status": resp.status, "token_events": 0}
    if resp.status != 200:
        out["error"] = resp.read().decode("utf-8", "replace")[:500]
        conn.close()
        return out
    event, data = "message", []
    for raw in resp:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif line == "":
            if data:
                now = time.monotonic()
                payload = "\n".join(data)
                if event == "sources" and "sources_s" not in out:
                    out["sources_s"] = now - started
                elif event == "token":
                    if "first_token_s" not in out:
                        out["first_token_s"] = now - started
                    out["token_events"] += 1
                elif event == "answer":
                    a = json.loads(payload)
                    out["timings"] = a.get("timings", {})
                    out["abstained"] = a.get("abstained")
                    out["answer_chars"] = len(a.get("answer") or "")
                elif event == "error":
                    out["error"] = payload[:500]
                elif event == "done":
                    out["done_s"] = now - started
            event, data = "message", []
    out.setdefault("done_s", time.monotonic() - started)
    conn.close()
    return out


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summary(rows: list[dict]) -> dict:
    rows = [r if r is not None else {"error": "no result"} for r in rows]
    ok = [r for r in rows if "timings" in r and "error" not in r]
    t = [r["timings"] for r in ok]
    decoding = [x["tokens_per_second"] for x in t
                if (x.get("completion_tokens") or 0) > 1 and x.get("tokens_per_second")]
    return {
        "requests": len(rows),
        "ok": len(ok),
        "errors": [r.get("error") for r in rows if "error" in r][:3],
        "prompt_tokens_median": median([x.get("prompt_tokens") for x in t]),
        "completion_tokens_total": sum(x.get("completion_tokens", 0) for x in t),
        "server_first_token_ms_median": median([x.get("first_token_ms") for x in t]),
        "server_retrieval_ms_median": median([x.get("retrieval_ms") for x in t]),
        "client_first_token_ms_median": median(
            [r["first_token_s"] * 1000 for r in ok if "first_token_s" in r]
        ),
        # Only answers the model wrote: one that abstained before generating has no rate.
        "decode_tokens_per_s_median": median(decoding),
        # At once, the streams decode side by side: their rates add up.
        "decode_tokens_per_s_sum": sum(decoding),
        "finish_reasons": sorted({str(x.get("finish_reason")) for x in t}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--single", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument(
        "--deadline",
        type=float,
        help="seconds after which no further request or round is started (the results so far are kept)",
    )
    ap.add_argument("--out")
    args = ap.parse_args()
    t0 = time.monotonic()

    def late() -> bool:
        return args.deadline is not None and time.monotonic() - t0 > args.deadline

    base = [q.strip() for q in open(args.questions, encoding="utf-8") if q.strip() and not q.startswith("#")]
    if not base:
        sys.exit("answer_load: no questions")
    counter = iter(range(1, 1_000_000))

    def next_question() -> str:
        n = next(counter)
        q = base[(n - 1) % len(base)]
        return q if n <= len(base) else f"{q} ({n})"

    result: dict = {"url": args.url}

    def save() -> None:
        # After every phase: a run stopped later still leaves what it measured.
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(json.dumps(result, indent=1))

    warm = ask(args.url, args.key, next_question(), args.timeout)
    result["warmup"] = warm
    if "error" in warm:
        print(f"answer_load: the warm-up failed: {warm['error']}", file=sys.stderr)
    save()

    single = []
    for _ in range(args.single):
        if late():
            result["stopped"] = "deadline reached during the single answers"
            break
        single.append(ask(args.url, args.key, next_question(), args.timeout))
    result["single"] = {"summary": summary(single), "requests": single}
    result["concurrent"] = {"concurrency": args.concurrency, "rounds": [], "aggregate_tokens_per_s_median": None}
    save()

    rounds = []
    for _ in range(args.rounds):
        if late():
            result.setdefault("stopped", "deadline reached before a concurrent round")
            break
        rows: list[dict] = [None] * args.concurrency  # type: ignore[list-item]
        questions = [next_question() for _ in range(args.concurrency)]
        barrier = threading.Barrier(args.concurrency)

        def run(i: int) -> None:
            barrier.wait()
            rows[i] = ask(args.url, args.key, questions[i], args.timeout)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.concurrency)]
        started = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.monotonic() - started
        s = summary(rows)
        s["wall_s"] = wall
        s["aggregate_tokens_per_s"] = s["completion_tokens_total"] / wall if wall > 0 else None
        rounds.append({"summary": s, "requests": rows})
        result["concurrent"] = {
            "concurrency": args.concurrency,
            "rounds": rounds,
            "aggregate_tokens_per_s_median": median(
                [r["summary"]["aggregate_tokens_per_s"] for r in rounds]
            ),
        }
        save()

    save()
    s1 = result["single"]["summary"]
    print(
        "answer_load: single: prompt {p} tokens, first token {ft} ms (server) / {fc} ms (client), "
        "decode {d} tokens/s; {n} at once: {a} tokens/s aggregate".format(
            p=s1["prompt_tokens_median"],
            ft=_r(s1["server_first_token_ms_median"]),
            fc=_r(s1["client_first_token_ms_median"]),
            d=_r(s1["decode_tokens_per_s_median"]),
            n=args.concurrency,
            a=_r(result["concurrent"]["aggregate_tokens_per_s_median"]),
        ),
        file=sys.stderr,
    )
    bad = (
        s1["ok"] < s1["requests"]
        or any(r["summary"]["ok"] < r["summary"]["requests"] for r in rounds)
        or "stopped" in result
    )
    return 1 if bad else 0


def _r(x):
    return None if x is None else round(x, 1)


if __name__ == "__main__":
    sys.exit(main())
