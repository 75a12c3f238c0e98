"""Constrained generation from Python with the embedded SmolLM2-135M-Instruct.

    python examples/python_api.py

1. ``generate_json`` with a JSON Schema file, a pydantic model and a Python type;
2. ``generate`` with a regex and a choice list;
3. the ``LogitsProcessor`` inside a plain ``model.generate`` call (a left-padded batch).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, Field

import constrain
from constrain import models
from constrain.decoding.generate import compile_schema, schema_instruction
from constrain.decoding.text import chat_input_ids

HERE = Path(__file__).parent


class Pet(BaseModel):
    name: str = Field(max_length=12)
    kind: Literal["cat", "dog", "parrot"]
    age: int = Field(ge=0, le=30)


def main() -> None:
    model, tok = models.load_default()

    # 1. JSON: a schema file (streamed as it is generated), a pydantic model, a type hint
    r = constrain.generate_json(model, tok, HERE / "schemas" / "person.json", "Invent a person who lives in Lisbon.",
                                max_new_tokens=80, stream=sys.stdout)
    print(f"\n  -> {r.finish_reason}, {r.new_tokens} tokens, value={r.value!r}")
    pet = constrain.generate_json(model, tok, Pet, "Invent a pet.", max_new_tokens=40, temperature=0.8, seed=1)
    print("pydantic:", repr(pet.value))
    print("list[bool]:", constrain.generate_json(model, tok, list[bool], "Some truth values?", max_new_tokens=16).value)

    # 2. regex and choices
    print("regex:", constrain.generate(model, tok, "Give me a phone number.", regex=r"[0-9]{3}-[0-9]{4}").text)
    print("choice:", constrain.generate(model, tok, "Is the sky blue?", choices=["yes", "no"]).text)

    # 3. the processor in model.generate: one matcher per row, left padding, masks batched
    compiled = compile_schema(Pet)
    hint = schema_instruction(compiled.schema)  # "Answer with a JSON object with the keys: name, kind, age."
    rows = [chat_input_ids(tok, f"{p}\n{hint}")[0].tolist() for p in ("Invent a cat.", "Invent a very old dog.")]
    n = max(map(len, rows))
    ids = torch.tensor([[tok.pad_token_id] * (n - len(r)) + r for r in rows])
    mask = (torch.arange(n)[None, :] >= torch.tensor([n - len(r) for r in rows])[:, None]).long()
    proc = constrain.LogitsProcessor(compiled.grammar, tok)
    out = model.generate(input_ids=ids, attention_mask=mask, logits_processor=[proc], max_new_tokens=40,
                         pad_token_id=tok.pad_token_id)
    for row in out:
        m = proc.replay(row[n:].tolist())  # the exact bytes the grammar matched
        print("batch:", m.output.decode(), "(complete)" if m.is_finished() else "(truncated)")


if __name__ == "__main__":
    main()
