"""Classification by a choice list: the answer is always one of the labels.

    python examples/classify.py
"""

from __future__ import annotations

import constrain

LABELS = ["positive", "negative", "neutral"]
REVIEWS = [
    "I love this phone, the battery lasts for days!",
    "Broken on arrival and the support never answered.",
    "It is a phone. It makes calls.",
]


def run(model, tok, text: str):
    return constrain.generate(model, tok, f"Review: {text}\nIs this review positive, negative or neutral?",
                              choices=LABELS, max_new_tokens=8)


def main() -> None:
    from constrain import models

    model, tok = models.load_default()
    for text in REVIEWS:
        r = run(model, tok, text)
        print(f"{r.text:9s} <- {text}")


if __name__ == "__main__":
    main()
