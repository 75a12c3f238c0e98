"""Resource caps for compiling untrusted schemas and grammars, and for mask computation.

A server that takes schemas and grammars from strangers needs every compile to end quickly
and every failure to be one specific exception.  :class:`Limits` holds the caps; each one
that is hit raises :class:`~constrain.errors.LimitExceeded` with ``limit`` set to the name
of the attribute below and ``value`` to the cap.

- ``compile_time_s``: wall-clock budget of one ``compile_json_schema`` / ``from_lark`` call
  (checked cooperatively in the compiler's loops: DFA construction, normalisation, grammar
  building).  For a hard deadline (the process is killed) use :func:`compile_in_subprocess`.
- ``max_memory_bytes``: address space the compile may add in the worker process of
  :func:`compile_in_subprocess`, on top of the interpreter with constrain loaded (in-process
  compiles turn ``MemoryError`` into the same error).
- ``max_schema_depth`` / ``max_schema_nodes``: nesting depth and number of objects/arrays of
  a JSON Schema document (checked before anything else, iteratively, with the JSON pointer).
- ``max_string_length`` / ``max_count``: the largest ``minLength``/``maxLength`` and
  ``minItems``/``maxItems``/``minProperties``/``maxProperties`` counted exactly.
- ``max_number_digits``: decimal exponent (digits) of a number in a schema (``1e999999999``).
- ``max_grammar_bytes`` / ``max_grammar_depth``: size of Lark grammar text and nesting of its
  parentheses/brackets.
- ``max_literal_bytes`` / ``max_enum_bytes``: one literal (a Lark string, a ``const`` string)
  and all strings of one ``enum``/choice list (each byte of a literal is a DFA state).
- ``max_grammar_rules``: rules of one compiled grammar (a memory cap on the IR).
- ``max_mask_work``: work units (entries applied, parser scans, reference-parser feeds) of one
  mask computation (:meth:`Matcher.fill_next_token_bitmask`).

Defaults suit a server: a well-behaved schema compiles in well under a second and never
comes near them.  Override per call (``compile_json_schema(schema, limits=Limits(...))``) or
for a block of code::

    with use_limits(Limits(compile_time_s=2.0)):
        g = compile_json_schema(schema)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import time
from dataclasses import dataclass

from constrain.errors import ConfigError, ConstrainError, LimitExceeded


@dataclass(frozen=True)
class Limits:
    compile_time_s: float | None = 20.0
    max_memory_bytes: int | None = 4 << 30
    max_schema_depth: int = 100
    max_schema_nodes: int = 200_000
    max_string_length: int = 100_000
    max_count: int = 10_000
    max_number_digits: int = 400
    max_grammar_bytes: int = 1 << 20
    max_grammar_depth: int = 100
    max_literal_bytes: int = 32 << 10
    max_enum_bytes: int = 256 << 10
    max_grammar_rules: int = 1_000_000
    max_mask_work: int = 2_000_000

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None and f.name in ("compile_time_s", "max_memory_bytes"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"Limits.{f.name} must be a positive number, got {v!r}")

    def replace(self, **changes) -> "Limits":
        return dataclasses.replace(self, **changes)


DEFAULT_LIMITS = Limits()
_current: contextvars.ContextVar[Limits] = contextvars.ContextVar("constrain_limits", default=DEFAULT_LIMITS)
# (deadline on time.monotonic(), budget in seconds) of the compile running in this context
_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("constrain_deadline",
                                                                                       default=None)


def current_limits() -> Limits:
    """The limits in force (set by :func:`use_limits`, else :data:`DEFAULT_LIMITS`)."""
    return _current.get()


def set_default_limits(limits: Limits) -> None:
    """Replace the process-wide defaults (threads that did not set their own see them)."""
    global DEFAULT_LIMITS
    if not isinstance(limits, Limits):
        raise ConfigError(f"expected a constrain.Limits, got {type(limits).__name__}")
    DEFAULT_LIMITS = limits
    _current.set(limits)


@contextlib.contextmanager
def use_limits(limits: Limits | None):
    """Make ``limits`` the limits in force inside the block (``None``: unchanged)."""
    if limits is None:
        yield current_limits()
        return
    if not isinstance(limits, Limits):
        raise ConfigError(f"limits must be a constrain.Limits, got {type(limits).__name__}")
    tok = _current.set(limits)
    try:
        yield limits
    finally:
        _current.reset(tok)


@contextlib.contextmanager
def compile_budget(what: str, depth_limit: str = "max_schema_depth"):
    """Run a compile under ``compile_time_s`` (nested compiles share the outer deadline) and
    turn the internal failure modes of hostile input into :class:`LimitExceeded`."""
    lim = current_limits()
    outer = _deadline.get()
    tok = None
    if outer is None and lim.compile_time_s is not None:
        tok = _deadline.set((time.monotonic() + lim.compile_time_s, lim.compile_time_s))
    try:
        yield lim
    except RecursionError:
        raise LimitExceeded(f"{what} is nested too deeply to compile", limit=depth_limit,
                            value=getattr(lim, depth_limit)) from None
    except MemoryError:
        raise LimitExceeded(f"{what} needs more memory than is available", limit="max_memory_bytes",
                            value=lim.max_memory_bytes) from None
    finally:
        if tok is not None:
            _deadline.reset(tok)


def check_deadline() -> None:
    """Raise :class:`LimitExceeded` (``compile_time_s``) if the running compile is past its budget."""
    d = _deadline.get()
    if d is not None and time.monotonic() > d[0]:
        raise LimitExceeded(f"compilation took longer than {d[1]:g} s", limit="compile_time_s", value=d[1])


class _Ticker:
    """Calls :func:`check_deadline` every ``every`` ticks (for the tightest loops)."""

    __slots__ = ("n", "every")

    def __init__(self, every: int = 256):
        self.n = 0
        self.every = every

    def __call__(self) -> None:
        self.n += 1
        if self.n >= self.every:
            self.n = 0
            check_deadline()


# ---------------------------------------------------------------------------------- subprocess
def _address_space() -> int:
    try:
        import os

        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def _out_of_memory(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, MemoryError):
            return True
        if isinstance(e, (ImportError, OSError)) and ("map segment" in str(e) or "allocate memory" in str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def _worker(conn, fn, args, kwargs, limits, mem):
    oom = LimitExceeded("compilation needs more memory than the worker may use", limit="max_memory_bytes",
                        value=mem)
    try:
        if mem is not None:
            # modules compiles import lazily are loaded first; the cap is on top of this baseline
            import unicodedata  # noqa: F401

            import constrain.grammar  # noqa: F401
            import constrain.jsonschema.compiler  # noqa: F401

            try:
                import resource

                cap = _address_space() + mem
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            except (ImportError, ValueError, OSError):  # pragma: no cover - platform without rlimits
                pass
        with use_limits(limits):
            out = fn(*args, **kwargs)
        conn.send(("ok", out))
    except MemoryError:
        conn.send(("err", oom))
    except ConstrainError as e:
        conn.send(("err", oom if _out_of_memory(e.__cause__) else e))
    except BaseException as e:  # noqa: BLE001 - reported to the parent as a ConstrainError
        conn.send(("err", oom if _out_of_memory(e) else
                   ConstrainError(f"compilation failed in the worker: {type(e).__name__}: {e}")))
    finally:
        conn.close()


def compile_in_subprocess(fn, *args, timeout: float | None = None, limits: Limits | None = None, **kwargs):
    """Run ``fn(*args, **kwargs)`` (a compile returning a picklable ``Grammar``) in a worker
    process that is killed at the deadline.

    ``timeout`` defaults to ``limits.compile_time_s`` plus 5 s for the worker's start-up (about
    a second: it imports constrain); the worker may grow its address space by at most
    ``limits.max_memory_bytes``.  A worker that is killed
    raises :class:`LimitExceeded` (``compile_time_s``); one that dies raises
    ``LimitExceeded`` (``max_memory_bytes``); errors raised by ``fn`` are re-raised here.
    ``fn`` must be picklable (a module-level function such as ``compile_json_schema``).
    """
    import multiprocessing as mp
    import pickle

    lim = limits if limits is not None else current_limits()
    if timeout is None:
        timeout = None if lim.compile_time_s is None else lim.compile_time_s + 5.0
    try:
        pickle.dumps((fn, args, kwargs))
    except Exception as e:  # noqa: BLE001 - pickling raises many types
        raise ConfigError(f"compile_in_subprocess needs picklable arguments: {e}") from None
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(child, fn, args, kwargs, lim, lim.max_memory_bytes), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise LimitExceeded(f"compilation did not finish within {timeout:g} s; the worker was killed",
                                limit="compile_time_s", value=timeout)
        try:
            status, value = parent.recv()
        except (EOFError, OSError):
            raise LimitExceeded("the compile worker died (most likely out of memory)", limit="max_memory_bytes",
                                value=lim.max_memory_bytes) from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if status == "ok":
        return value
    raise value
