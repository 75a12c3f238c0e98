"""Grammar-constrained masked-diffusion decoding on top of :class:`InfillChecker`.

A sequence of ``length`` token positions starts fully masked.  Each step the denoiser returns
logits for every position; among the masked ones, (position, token) pairs are visited in the
order of Gumbel-perturbed log-probabilities (sampling without replacement over the pairs, as
in AWRS), and the first pairs whose commit keeps the partial output completable — the checker
answers "nonempty" — are committed.  Rejections are capped; when the steps or the rejection
budget run out, the remaining gaps are filled with the checker's witness.

Positions and text: committed text tokens give their bytes; an EOS token ends the text (every
later position becomes EOS too).  A masked run followed by committed text must hold text tokens
(at least one byte each); the trailing masked run may also hold EOS.  With ``length_aware``
each run of k masked positions is a gap of at most ``k * max_token_bytes`` bytes when that is
under ``gap_cap_bytes`` (exact, more automaton nodes), else unbounded (Σ*, the paper's
relaxation).

The denoiser protocol is one callable: ``denoiser(ids)`` with ``ids`` an ``int64[length]``
array holding ``MASK`` (-1) at masked positions, returning logits ``float[length, V']`` with
``V' >= vocab.n_vocab`` (wider logits are padding, never sampled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from constrain.diffusion.checker import Gap, InfillChecker, TokenGap
from constrain.errors import ConfigError
from constrain.grammar.ir import Grammar
from constrain.tokenizers import Vocabulary

__all__ = ["MASK", "Denoiser", "DiffusionConstraint", "DiffusionResult", "RandomDenoiser", "TransformersDenoiser",
           "diffusion_generate"]

MASK = -1


class Denoiser(Protocol):
    def __call__(self, ids: np.ndarray) -> np.ndarray:  # int64[L] with MASK -> float[L, V]
        ...


@dataclass
class DiffusionResult:
    """A finished generation: ``text`` is always set when ``valid``; ``tokens`` when they fit."""

    text: bytes | None
    tokens: np.ndarray | None
    valid: bool
    finished_by: str            # "commits" (every position committed), "witness" or "failed"
    steps: int = 0
    n_checks: int = 0
    n_rejections: int = 0
    check_seconds: list = field(default_factory=list)


class DiffusionConstraint:
    """The state of one constrained diffusion sequence: committed tokens and admissibility.

    Parameters
    ----------
    checker:
        An :class:`InfillChecker` (or a Grammar, from which one is built).
    vocab:
        The model's :class:`Vocabulary` (exact token bytes, EOS ids).
    length:
        Number of generated positions.
    length_aware, gap_cap_bytes:
        Bound each gap by ``k * max_token_bytes`` when that is at most ``gap_cap_bytes``.
    unknown:
        What a checker "unknown" (budget exhausted) means for a proposal: "reject" (default,
        keeps the output completable) or "accept".
    budget:
        Work budget per check (see :class:`InfillChecker`).
    allowed_ids:
        Restrict proposals (and finishing) to these token ids (EOS is always allowed).
    token_exact_max, token_exact_vocab:
        A run of at most ``token_exact_max`` masked positions is checked exactly at token level
        (a :class:`TokenGap`: a trie of the allowed token strings per position) when at most
        ``token_exact_vocab`` text tokens are allowed; otherwise byte bounds approximate it.
    token_finish_nodes:
        :meth:`finish` first tries a token-exact witness (every remaining run a
        :class:`TokenGap`) when that check has at most this many automaton nodes.
    """

    def __init__(self, checker: InfillChecker | Grammar, vocab: Vocabulary, length: int, *,
                 length_aware: bool = True, gap_cap_bytes: int = 16, unknown: str = "reject",
                 budget: int | None = None, allowed_ids=None, token_exact_max: int = 2,
                 token_exact_vocab: int = 256, token_finish_nodes: int = 20000):
        if isinstance(checker, Grammar):
            checker = InfillChecker(checker)
        if unknown not in ("reject", "accept"):
            raise ConfigError(f"unknown must be 'reject' or 'accept', got {unknown!r}")
        if length < 1:
            raise ConfigError(f"length must be >= 1, got {length}")
        self.checker = checker
        self.vocab = vocab
        self.length = int(length)
        self.length_aware = length_aware
        self.gap_cap_bytes = int(gap_cap_bytes)
        self.unknown = unknown
        self.budget = budget
        self.eos_id = vocab.eos_ids[0] if vocab.eos_ids else None
        self._is_eos = np.zeros(vocab.n_vocab, dtype=bool)
        self._is_eos[list(vocab.eos_ids)] = True
        allowed = vocab.text_mask.copy()
        if allowed_ids is not None:
            sub = np.zeros(vocab.n_vocab, dtype=bool)
            sub[np.asarray(allowed_ids, dtype=np.int64)] = True
            allowed &= sub
        allowed[list(vocab.eos_ids)] = True
        self.allowed = allowed                     # ids a proposal may use
        lens = vocab.token_lengths
        text_ids = np.flatnonzero(allowed & vocab.text_mask)
        self.max_token_bytes = int(lens[text_ids].max()) if len(text_ids) else 1
        self._tb = vocab.all_token_bytes
        self._by_bytes = {}
        for i in text_ids.tolist():
            self._by_bytes.setdefault(self._tb[i], i)
        self._token_strings = tuple(sorted(self._by_bytes))
        self.token_exact_max = token_exact_max if len(self._token_strings) <= token_exact_vocab else 0
        self._trie_nodes = len({t[:ln] for t in self._token_strings for ln in range(1, len(t) + 1)})
        self.token_finish_nodes = token_finish_nodes if len(self._token_strings) <= token_exact_vocab else 0
        self.ids = np.full(self.length, MASK, dtype=np.int64)
        self._stuck = None
        self.n_checks = 0
        self.check_seconds: list[float] = []

    # --------------------------------------------------------------- segments
    def _end(self, ids) -> int:
        e = np.flatnonzero(self._is_eos[np.where(ids >= 0, ids, 0)] & (ids >= 0))
        return int(e[0]) if len(e) else self.length

    def segments(self, ids=None, *, lengths: str = "default") -> list:
        """The partial output as checker segments (bytes and :class:`Gap`).

        ``lengths``: "default" (bounded under the cap when ``length_aware``), "exact" (always
        bounded), "token" (every run a :class:`TokenGap`: exact at token level) or "unbounded"
        (only the lower bounds: a text token has at least one byte)."""
        ids = self.ids if ids is None else ids
        segs: list = []
        i = 0
        for a, j, trailing in self._runs(ids):  # fixed tokens between runs, then the run's gap
            segs.extend(self._tb[int(t)] for t in ids[i:a])
            k = j - a
            mn = 0 if trailing else k
            mx = k * self.max_token_bytes
            if lengths == "token" or (lengths != "unbounded" and k <= self.token_exact_max):
                segs.append(TokenGap(self._token_strings, max_tokens=k, min_tokens=mn))
            elif lengths == "exact" or (lengths == "default" and self.length_aware and mx <= self.gap_cap_bytes):
                segs.append(Gap(max_bytes=mx, min_bytes=mn))
            else:
                segs.append(Gap(min_bytes=mn))
            i = j
        segs.extend(self._tb[int(t)] for t in ids[i:self._end(ids)])
        return segs

    def _check(self, ids, *, lengths="default"):
        t0 = time.perf_counter()
        r = self.checker.check_segments(self.segments(ids, lengths=lengths), budget=self.budget)
        self.check_seconds.append(time.perf_counter() - t0)
        self.n_checks += 1
        return r

    # ------------------------------------------------------------- proposals
    def admissible(self, pos: int, tok: int) -> bool:
        """Would committing ``tok`` at masked position ``pos`` keep the output completable?"""
        ids = self._with(pos, tok)
        if ids is None:
            return False
        st = self._check(ids).status
        return st == "nonempty" or (st == "unknown" and self.unknown == "accept")

    def _with(self, pos, tok):
        if self.ids[pos] != MASK or not self.allowed[tok]:
            return None
        ids = self.ids.copy()
        if self._is_eos[tok]:
            later = ids[pos + 1:]
            if ((later != MASK) & ~self._is_eos[np.where(later >= 0, later, 0)]).any():
                return None   # text after the end
            ids[pos:] = tok
        else:
            if pos > self._end(ids):
                return None
            ids[pos] = tok
        return ids

    def commit(self, pos: int, tok: int) -> None:
        ids = self._with(pos, tok)
        if ids is None:
            raise ConfigError(f"cannot commit token {tok} at position {pos}")
        self.ids = ids

    @property
    def n_masked(self) -> int:
        return int((self.ids == MASK).sum())

    def step(self, logits: np.ndarray, rng: np.random.Generator, n_commit: int, *, temperature: float = 1.0,
             max_rejections: int = 64) -> tuple[int, int]:
        """Commit up to ``n_commit`` admissible (position, token) pairs from ``logits`` [length, V'].

        Returns (committed, rejected)."""
        masked = np.flatnonzero(self.ids == MASK)
        if not len(masked):
            return 0, 0
        v = self.vocab.n_vocab
        lg = np.asarray(logits, dtype=np.float64)[masked, :v] / max(temperature, 1e-6)
        lg = np.where(self.allowed[None, :], lg, -np.inf)
        mx = lg.max(axis=1, keepdims=True)
        logp = lg - mx - np.log(np.exp(lg - mx).sum(axis=1, keepdims=True))
        keys = logp + rng.gumbel(size=logp.shape)
        flat = keys.ravel()
        n_cand = min(flat.size, int(np.isfinite(flat).sum()), max_rejections + 4 * n_commit)
        if n_cand <= 0:
            return 0, 0
        top = np.argpartition(-flat, n_cand - 1)[:n_cand]
        top = top[np.argsort(-flat[top], kind="stable")]
        committed = rejected = 0
        used: set = set()
        for f in top.tolist():
            r, tok = divmod(f, v)
            pos = int(masked[r])
            if pos in used or self.ids[pos] != MASK:
                continue
            if self.admissible(pos, tok):
                self.commit(pos, tok)
                used.add(pos)
                committed += 1
                if committed >= n_commit:
                    break
            else:
                rejected += 1
                if rejected >= max_rejections:
                    break
        return committed, rejected

    # ----------------------------------------------------------------- finish
    def finish(self, *, widen: int = 16) -> DiffusionResult:
        """Fill every masked position from the checker's witness.

        0. token-exact (when every remaining run as a :class:`TokenGap` stays under
           ``token_finish_nodes`` automaton nodes): the witness is then a sequence of exactly
           each run's number of allowed tokens, so it always fits; when the committed tokens
           admit no such sequence, neighbours of runs (or the EOS tail) are re-opened one at a
           time, guided by the same exact check, up to ``3 * widen`` times;
        1. the witness under exact gap lengths, each gap's fill cut into exactly its number of
           tokens (the trailing gap: at most, then EOS);
        2. else position by position, left to right: the longest allowed token that starts the
           current witness fill and keeps the output completable (exact lengths) is committed;
        3. else widen: un-commit the text token next to the run where 2 got stuck (byte-level
           checks accept fills that need more tokens than the run has) and retry, up to
           ``widen`` times;
        4. else (no word fits the remaining positions at token level) an unbounded witness:
           valid text that does not fit the length, ``tokens`` None.
        """
        start_ids = self.ids.copy()
        # 0. token-exact: every run a TokenGap, so the witness's fills are sequences of exactly the
        #    run's number of allowed tokens (the trailing run: at most, then EOS).  When no token
        #    sequence fits (byte-level checks let through commits that rule every one out),
        #    un-commit a neighbour of a run -- the one after which the exact check succeeds, else
        #    the first -- and retry.
        ids = self._token_finish(3 * widen)
        if ids is not None:
            self.ids = ids
            return DiffusionResult(self.text(), ids.copy(), True, "witness")
        self.ids = start_ids.copy()
        for _ in range(widen + 1):
            self._stuck = None
            r = self._check(self.ids, lengths="exact")
            if r.status == "nonempty":
                ids = self._fit(r)
                if ids is None:
                    ids = self._greedy()
                if ids is not None:
                    self.ids = ids
                    return DiffusionResult(self.text(), ids.copy(), True, "witness")
            if not self._widen():
                break
        self.ids = start_ids
        r = self._check(self.ids, lengths="unbounded")
        if r.status != "nonempty":
            return DiffusionResult(None, None, False, "failed")
        return DiffusionResult(r.witness(), None, True, "witness")

    def _token_finish(self, widen: int, max_checks: int = 256):
        saved = self.ids.copy()
        n = 0
        for _ in range(widen + 1):
            if not self._runs(self.ids) or self._token_nodes() > self.token_finish_nodes:
                break
            r = self._check(self.ids, lengths="token")
            n += 1
            if r.status == "nonempty":
                ids = self._fit(r)
                self.ids = saved
                return ids
            end = self._end(self.ids)
            cands = []
            for i, j, _ in sorted(self._runs(self.ids), key=lambda x: x[1] - x[0]):
                for pos in (j, i - 1):
                    if 0 <= pos < end and self.ids[pos] != MASK and pos not in cands:
                        cands.append(pos)
            if end < self.length:
                cands.append(-1)      # the end: re-open every EOS position
            if not cands:
                break
            pick = cands[0]
            for pos in cands:
                if n >= max_checks:
                    break
                keep = self.ids.copy()
                self._reopen(pos, end)
                ok = self._token_nodes() <= self.token_finish_nodes and \
                    self._check(self.ids, lengths="token").status == "nonempty"
                n += 1
                self.ids = keep
                if ok:
                    pick = pos
                    break
            self._reopen(pick, end)
        self.ids = saved
        return None

    def _reopen(self, pos, end):
        if pos < 0:
            self.ids[end:] = MASK
        else:
            self.ids[pos] = MASK

    def _token_nodes(self) -> int:
        """R-graph nodes of a token-exact check of the current runs (trie nodes per position)."""
        return self._trie_nodes * sum(j - i for i, j, _ in self._runs(self.ids))

    def _widen(self) -> bool:
        """Un-commit one text token next to the stuck run (right side first)."""
        end = self._end(self.ids)
        runs = self._runs(self.ids)
        if not runs:
            return False
        at = self._stuck if self._stuck is not None else runs[0][0]
        i, j = next(((a, b) for a, b, _ in runs if a <= at < b), runs[0][:2])
        for pos in (j, i - 1):
            if 0 <= pos < end and self.ids[pos] != MASK:
                self.ids[pos] = MASK
                return True
        if end < self.length and i == end:
            return False
        return False

    def _runs(self, ids):
        end = self._end(ids)
        runs = []
        i = 0
        while i < end:
            if ids[i] == MASK:
                j = i
                while j < end and ids[j] == MASK:
                    j += 1
                runs.append((i, j, j == end))
                i = j
            else:
                i += 1
        return runs

    def _fit(self, res):
        """The witness's fills as tokens, or None when a fill cannot take its positions."""
        ids = self.ids.copy()
        runs = self._runs(ids)
        fills = res.fills()
        if len(runs) != len(fills):
            return None
        for (i, j, trailing), f in zip(runs, fills):
            seg = self._tokenise(f, j - i, exact=not trailing)
            if seg is None:
                return None
            if trailing and len(seg) < j - i:
                if self.eos_id is None:
                    return None
                ids[i:] = self.eos_id
            ids[i:i + len(seg)] = seg
        return ids

    def _greedy(self, max_tries: int = 8):
        saved = self.ids.copy()
        while True:
            runs = self._runs(self.ids)
            if not runs:
                out = self.ids.copy()
                self.ids = saved
                return out
            r = self._check(self.ids, lengths="exact")
            if r.status != "nonempty":
                break
            (i, _, trailing), f = runs[0], r.fills()[0]
            cands = [self._by_bytes[f[:ln]] for ln in range(min(len(f), self.max_token_bytes), 0, -1)
                     if f[:ln] in self._by_bytes]
            if trailing and not f and self.eos_id is not None:
                cands = [self.eos_id]
            done = False
            for tok in cands[:max_tries]:
                ids = self._with(i, tok)
                if ids is not None and self._check(ids, lengths="exact").status == "nonempty":
                    self.ids = ids
                    done = True
                    break
            if not done:
                self._stuck = i
                break
        self.ids = saved
        return None

    def _tokenise(self, data: bytes, k: int, *, exact: bool):
        """``data`` as exactly ``k`` tokens (or at most ``k`` when not ``exact``), or None."""
        n = len(data)
        if n == 0:
            return [] if not exact or k == 0 else None
        mxl = self.max_token_bytes
        by = self._by_bytes
        # counts[j]: bitset of piece counts that segment data[:j]; back[j][c] = previous cut
        counts = [0] * (n + 1)
        counts[0] = 1
        back: list[dict] = [dict() for _ in range(n + 1)]
        for j in range(n):
            if not counts[j]:
                continue
            for ln in range(1, min(mxl, n - j) + 1):
                if data[j:j + ln] in by:
                    add = (counts[j] << 1) & ((1 << (k + 1)) - 1)
                    new = add & ~counts[j + ln]
                    if new:
                        counts[j + ln] |= new
                        for c in range(k + 1):
                            if new >> c & 1:
                                back[j + ln][c] = j
        if exact:
            if not counts[n] >> k & 1:
                return None
            c = k
        else:
            cs = [c for c in range(1, k + 1) if counts[n] >> c & 1]
            if not cs:
                return None
            c = cs[0]
        out = []
        j = n
        while j > 0:
            p = back[j][c]
            out.append(by[data[p:j]])
            j, c = p, c - 1
        out.reverse()
        return out

    def text(self) -> bytes:
        end = self._end(self.ids)
        return self.vocab.decode(int(t) for t in self.ids[:end] if t != MASK)


def diffusion_generate(denoiser: Callable[[np.ndarray], np.ndarray], constraint: DiffusionConstraint, *,
                       steps: int, seed: int | None = None, temperature: float = 1.0,
                       max_rejections: int = 100, max_rejections_per_step: int = 32) -> DiffusionResult:
    """Run masked-diffusion decoding under ``constraint`` for at most ``steps`` denoiser calls."""
    rng = np.random.default_rng(seed)
    c = constraint
    total_rej = 0
    done_steps = 0
    for s in range(steps):
        if c.n_masked == 0:
            break
        n_commit = int(np.ceil(c.n_masked / (steps - s)))
        logits = denoiser(c.ids.copy())
        done_steps += 1
        _, rej = c.step(logits, rng, n_commit, temperature=temperature,
                        max_rejections=min(max_rejections_per_step, max(max_rejections - total_rej, 1)))
        total_rej += rej
        if total_rej >= max_rejections:
            break
    if c.n_masked == 0:
        text = c.text()
        r = DiffusionResult(text, c.ids.copy(), True, "commits")
        if not c.checker.exact:
            from constrain.engine.earley import accepts
            r.valid = accepts(c.checker.grammar, text)
    else:
        r = c.finish()
        if r.valid and not c.checker.exact:
            from constrain.engine.earley import accepts
            r.valid = accepts(c.checker.grammar, r.text)
    r.steps, r.n_checks, r.n_rejections, r.check_seconds = done_steps, c.n_checks, total_rej, list(c.check_seconds)
    return r


class RandomDenoiser:
    """Random logits (standard normal) over ``allowed`` ids, -inf elsewhere: a stand-in model."""

    def __init__(self, width: int, allowed=None, seed: int | None = None, scale: float = 1.0):
        self.width = int(width)
        self.rng = np.random.default_rng(seed)
        self.allowed = None if allowed is None else np.asarray(allowed, dtype=np.int64)
        self.scale = scale

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        n = len(ids)
        if self.allowed is None:
            return self.rng.normal(size=(n, self.width)) * self.scale
        out = np.full((n, self.width), -np.inf)
        out[:, self.allowed] = self.rng.normal(size=(n, len(self.allowed))) * self.scale
        return out


class TransformersDenoiser:
    """Adapter for LLaDA/Dream-style models: one forward pass on ``prompt + ids`` with the
    model's mask token at masked positions; returns the logits of the generated positions.

    ``model`` is any callable returning an object with ``.logits`` [1, T, V] (a transformers
    ``PreTrainedModel``) or the tensor itself.  ``shift=True`` for models trained with the
    autoregressive shift (Dream: the logits of position i live at i - 1).
    """

    def __init__(self, model, mask_token_id: int, prompt_ids=(), *, shift: bool = False):
        self.model = model
        self.mask_token_id = int(mask_token_id)
        self.prompt = np.asarray(list(prompt_ids), dtype=np.int64)
        self.shift = shift

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        import torch

        x = np.where(ids == MASK, self.mask_token_id, ids)
        full = torch.as_tensor(np.concatenate([self.prompt, x]))[None, :]
        with torch.no_grad():
            out = self.model(full)
        lg = getattr(out, "logits", out)[0]
        p = len(self.prompt)
        if self.shift:
            lg = torch.cat([lg[:1], lg[:-1]], dim=0)
        return lg[p:p + len(ids)].float().cpu().numpy()
