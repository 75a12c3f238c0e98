"""Structured extraction: read an order e-mail into a pydantic model.

    python examples/extract_pydantic.py

The model (the embedded SmolLM2-135M-Instruct unless ``run`` gets another) can only write JSON
that validates against ``Order``, so ``result.value`` is an ``Order`` instance, never a
``ValidationError`` to catch.  Whether the *content* is right is the model's business: a 135M
model gets the easy fields and guesses the rest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

import constrain

EMAIL = """From: Ana Ferreira <ana@example.pt>
Subject: order

Hello, please send me 3 blue mugs and 1 red teapot to Rua Augusta 10, Lisbon.
I would like express shipping. Thanks, Ana"""


class Item(BaseModel):
    product: str = Field(max_length=20)
    quantity: int = Field(ge=1, le=99)
    color: Literal["red", "blue", "green", "white", "black"]


class Order(BaseModel):
    customer: str = Field(max_length=30)
    city: str = Field(max_length=20)
    shipping: Literal["standard", "express"]
    items: list[Item] = Field(min_length=1, max_length=4)


def run(model, tok):
    r = constrain.generate_json(model, tok, Order, f"Extract the order from this e-mail:\n\n{EMAIL}",
                                max_new_tokens=120)
    return r


def main() -> None:
    from constrain import models

    model, tok = models.load_default()
    r = run(model, tok)
    print(r.text)
    print(f"-> {r.finish_reason}: {r.value!r}")
    print(f"   {r.new_tokens} tokens ({r.forced_tokens} fast-forwarded) in {r.seconds:.2f} s")


if __name__ == "__main__":
    main()
