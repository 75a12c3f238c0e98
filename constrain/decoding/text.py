"""Plain text generation helpers shared by the CLI and the constrained decoders.

``chat_input_ids`` applies the model's chat template when it has one, so prompts are written
the way the model was trained; ``stream_generate`` yields text pieces as tokens are produced.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Iterator


def chat_input_ids(tokenizer, prompt: str, system: str | None = None):
    """Token ids (1 x n LongTensor) for ``prompt``, through the chat template when present."""
    if getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return enc["input_ids"]
    text = (system + "\n\n" if system else "") + prompt
    return tokenizer(text, return_tensors="pt")["input_ids"]


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def stream_generate(model, tokenizer, input_ids, *, max_new_tokens: int = 128, do_sample: bool = False,
                    temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                    logits_processor=None, stats: GenerationStats | None = None) -> Iterator[str]:
    """Yield decoded text pieces while ``model.generate`` runs on a worker thread."""
    import torch
    from transformers import TextIteratorStreamer

    if seed is not None:
        torch.manual_seed(seed)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    out: dict = {}
    kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                  do_sample=do_sample, streamer=streamer, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p)
    if logits_processor is not None:
        kwargs["logits_processor"] = logits_processor
    t0 = time.perf_counter()

    def run():
        try:
            out["ids"] = model.generate(**kwargs)
        except BaseException as e:  # surfaced in the caller's thread
            out["error"] = e
            streamer.end()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    yield from streamer
    th.join()
    if "error" in out:
        raise out["error"]
    if stats is not None:
        seq = out["ids"][0]
        n_prompt = int(input_ids.shape[1])
        new = seq[n_prompt:]
        stats.prompt_tokens = n_prompt
        stats.new_tokens = int(new.shape[0])
        stats.seconds = time.perf_counter() - t0
        hit_eos = stats.new_tokens > 0 and int(new[-1]) == tokenizer.eos_token_id
        stats.finish_reason = "length" if stats.new_tokens >= max_new_tokens and not hit_eos else "stop"
