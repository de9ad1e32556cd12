"""Lectern's MCP server through the official Python MCP client (`mcp` on PyPI).

Usage:
  mcp_client.py [--key KEY] [--workspace NAME] [--chunk ID] [--ask] QUESTION URL
  mcp_client.py [--workspace NAME] [--chunk ID] [--ask] QUESTION -- LECTERN ARG...

The first talks streamable HTTP to URL (with `Authorization: Bearer KEY` when a key is
given); the second starts `LECTERN ARG...` and talks to it over stdio, passing this
process's environment on. Prints one JSON object: the tools listed and what each tool
answered (`is_error`, `text`, `data`: the structured content), or, where the client
raised, `raised` (the exception's type) and `message` in place of what it stopped.
"""
import argparse
import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def raised(e):
    """The exception the client raised, out of the task groups it is wrapped in."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return {"raised": type(e).__name__, "message": str(e)}


def outcome(result):
    text = "".join(getattr(c, "text", "") for c in result.content)
    data = result.structured_content
    if data is None:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    return {"is_error": bool(result.is_error), "text": text, "data": data}


async def probe(client, args):
    async def call(name, arguments):
        try:
            return outcome(await client.call_tool(name, arguments))
        except Exception as e:  # a protocol error: the client raises it
            return raised(e)

    listed = await client.list_tools()
    report = {"tools": sorted(t.name for t in listed.tools)}
    report["list_workspaces"] = await call("list_workspaces", {})
    report["search"] = await call("search", {"question": args.question, "limit": 3})
    if args.workspace:
        report["search_named"] = await call(
            "search", {"question": args.question, "workspaces": [args.workspace]}
        )
    chunk = args.chunk
    if chunk is None:
        passages = (report["search"].get("data") or {}).get("passages") or []
        chunk = passages[0]["chunk_id"] if passages else None
    if chunk:
        report["read_passage"] = await call("read_passage", {"chunk_id": chunk, "neighbours": 1})
    if args.ask:
        arguments = {"question": args.question}
        if args.workspace:
            arguments["workspaces"] = [args.workspace]
        report["ask"] = await call("ask", arguments)
    return report


async def connect_and_probe(target, args):
    try:
        async with Client(target, read_timeout_seconds=300) as client:
            return await probe(client, args)
    except Exception as e:  # refused before any tool ran (no key, a wrong key, no server)
        return raised(e)


async def main():
    argv = sys.argv[1:]
    server = None
    if "--" in argv:
        at = argv.index("--")
        argv, server = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser()
    parser.add_argument("--key")
    parser.add_argument("--workspace")
    parser.add_argument("--chunk")
    parser.add_argument("--ask", action="store_true")
    parser.add_argument("question")
    parser.add_argument("url", nargs="?")
    args = parser.parse_args(argv)

    if server:
        target = StdioServerParameters(command=server[0], args=server[1:], env=dict(os.environ))
        report = await connect_and_probe(target, args)
    else:
        headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            target = streamable_http_client(args.url, http_client=http)
            report = await connect_and_probe(target, args)
    print(json.dumps(report))


asyncio.run(main())
