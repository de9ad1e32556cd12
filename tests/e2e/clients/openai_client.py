"""Lectern's OpenAI-compatible endpoint through the official `openai` client.

Usage: openai_client.py BASE_URL API_KEY MODEL QUESTION
Prints one JSON object: the non-streaming and the streaming answers and what rode along.
"""
import json
import sys

import openai
from openai import OpenAI

base_url, api_key, model, question = sys.argv[1:5]
client = OpenAI(base_url=base_url, api_key=api_key)

models = [m.id for m in client.models.list()]

completion = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": question}]
)
plain = completion.model_dump()

stream = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": question}], stream=True
)
pieces, extra, finish = [], {}, None
for chunk in stream:
    data = chunk.model_dump()
    choice = chunk.choices[0] if chunk.choices else None
    if choice and choice.delta and choice.delta.content:
        pieces.append(choice.delta.content)
    if choice and choice.finish_reason:
        finish = choice.finish_reason
    if "citations" in data or (chunk.model_extra or {}).get("citations") is not None:
        extra = chunk.model_extra or {}

# An unknown model (workspace): the client raises its own typed error, which it can only
# do when the error body is in OpenAI's shape.
try:
    client.chat.completions.create(
        model="no-such-workspace", messages=[{"role": "user", "content": question}]
    )
    unknown = {"raised": None}
except openai.NotFoundError as e:
    unknown = {"raised": "NotFoundError", "message": e.message, "type": (e.body or {}).get("type")}
except openai.APIError as e:
    unknown = {"raised": type(e).__name__, "message": str(e)}

print(json.dumps({
    "models": models,
    "unknown_model": unknown,
    "plain": {
        "content": plain["choices"][0]["message"]["content"],
        "finish_reason": plain["choices"][0]["finish_reason"],
        "citations": (completion.model_extra or {}).get("citations"),
        "abstained": (completion.model_extra or {}).get("abstained"),
        "usage": plain.get("usage"),
    },
    "stream": {
        "pieces": pieces,
        "finish_reason": finish,
        "citations": extra.get("citations"),
        "abstained": extra.get("abstained"),
    },
}))
