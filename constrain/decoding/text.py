"""Prompt helpers shared by the CLI and the constrained decoders.

``chat_input_ids`` applies the model's chat template when it has one, so prompts are written
the way the model was trained.
"""

from __future__ import annotations


def chat_input_ids(tokenizer, prompt: str, system: str | None = None):
    """Token ids (1 x n LongTensor) for ``prompt``, through the chat template when present."""
    if getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return enc["input_ids"]
    text = (system + "\n\n" if system else "") + prompt
    return tokenizer(text, return_tensors="pt")["input_ids"]
