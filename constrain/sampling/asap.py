"""ASAp: grammar-aligned sampling by learned expected futures (Park et al. 2024; algorithms.md §6).

The exact conditional of the target ``Q(w) ∝ P(w) 1[w in L]`` is
``Q(x | u) ∝ P(x | u) EFG(ux)`` with ``EFG(u)`` the probability that the model, run from ``u``,
finishes grammatically.  Masking replaces ``EFG`` by "is ``u`` viable" and is biased.  ASAp
keeps a trie of the prefixes it has sampled, each with an upper bound ``theta(u) >= EFG(u)``
(1 until learned), samples ``x ∝ P(x | u) theta(ux)`` over the allowed tokens, and after every
sample tightens the bounds along its path:
``theta(u) = sum over allowed children c of P(c | u) theta(c)`` (disallowed children count 0,
unexplored ones 1, a stop id 1).  The bounds never increase and converge to ``EFG``, so the
sampling distribution converges to ``Q`` -- asymptotically: any finite run is still biased,
and convergence can be slow when the model and the grammar disagree deep in the sequence.

**Compact nodes.**  The paper stores every allowed child of every visited node.  Here a node
stores its allowed mass ``A(u) = sum_allowed P(c | u)``, its allowed-token count and only the
children actually sampled, since ``theta(u) = A(u) - sum_sampled P(c | u) (1 - theta(c))``.
Memory is O(nodes sampled), not O(nodes x allowed tokens) (49k children per JSON-string node
with a real tokenizer); the price is that drawing a *new* child of a revisited node asks the
model and the mask again, which ordinary decoding does at every step anyway.

**Free importance weights.**  Each draw comes from a known proposal, so
``P(w) / q(w)`` (0 for a failed attempt) has expectation ``Z = P(grammatical)`` whatever the
trie learned before; :attr:`ASApSampler.log_z` averages them, an unbiased estimate of ``Z``
next to the upper bound :attr:`ASApSampler.root_estimate`.

The trie belongs to one (prompt, grammar, vocabulary, max_tokens): :meth:`save` writes it (an
``.npz``) with those fingerprints, and :meth:`load` refuses a file written for others.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from typing import Sequence

import numpy as np

from constrain.errors import ConfigError
from constrain.sampling.base import (DeadEndError, MatcherSource, Sample, SamplerStateError, check_common,
                                     log_softmax, new_matcher)

__all__ = ["ASApSampler"]

_FORMAT = "constrain-asap-1"


def _prompt_key(lm) -> str:
    ids = getattr(lm, "prompt_ids", None)
    if ids is None:
        return ""
    return hashlib.sha256(np.asarray(list(ids), np.int64).tobytes()).hexdigest()[:16]


class ASApSampler:
    """ASAp for one (prompt, grammar): call :meth:`sample` repeatedly; the trie persists.

    Parameters
    ----------
    lm:
        a :class:`~constrain.sampling.lm.LanguageModel` (``lm(prefix) -> log-probs``).
    matcher:
        a fresh :class:`~constrain.engine.matcher.Matcher` (copied per sample) or a factory.
    max_tokens:
        length cap; a sample that has not ended by then is a failure and its node gets
        ``theta = 0``, so the target is the model conditioned on grammatical *and* short enough.
    key:
        names the prompt in saved files (default: a hash of ``lm.prompt_ids`` when the model
        has them).  :meth:`load` checks it.
    max_attempts:
        attempts per :meth:`sample` call before :class:`DeadEndError` (an attempt fails when it
        runs into a node with no completion; its ``theta`` drops to 0 and it is not retried).
    """

    def __init__(self, lm, matcher: MatcherSource, *, max_tokens: int = 256, key: str | None = None,
                 max_attempts: int = 1000):
        check_common(max_tokens)
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be a positive integer, got {max_attempts!r}")
        self.lm = lm
        self._source = matcher
        probe = new_matcher(matcher)
        self._grammar_fp = probe.tables.grammar.fingerprint
        self._vocab_fp = probe.vocab.fingerprint
        self._n_vocab = probe.vocab.n_vocab
        self._eos = np.zeros(self._n_vocab, bool)
        self._eos[list(probe.vocab.eos_ids)] = True
        self.max_tokens = int(max_tokens)
        self.key = _prompt_key(lm) if key is None else str(key)
        self.max_attempts = max_attempts
        cap = 64
        self._parent = np.full(cap, -1, np.int64)
        self._token = np.full(cap, -1, np.int64)
        self._logp = np.zeros(cap, np.float64)  # log P(token | parent prefix)
        self._theta = np.ones(cap, np.float64)
        self._amass = np.full(cap, np.nan)  # allowed mass A(u); NaN = not expanded
        self._nallowed = np.zeros(cap, np.int64)
        self._terminal = np.zeros(cap, bool)
        self._depth = np.zeros(cap, np.int64)
        self._kids: list[list[int]] = [[]]
        self._n = 1
        self.n_samples = 0  # successful samples
        self.n_attempts = 0
        self.n_model_calls = 0
        self._n_masks = 0  # full masks built (each counts n_vocab checks in Sample.n_checks)
        self._sum_w = 0.0  # sum of importance weights over attempts, scaled by exp(-_w_shift)
        self._w_shift = 0.0

    # ------------------------------------------------------------------ trie arrays
    def _grow(self) -> None:
        cap = self._parent.shape[0] * 2
        for name, fill in (("_parent", -1), ("_token", -1), ("_logp", 0.0), ("_theta", 1.0), ("_amass", np.nan),
                           ("_nallowed", 0), ("_terminal", False), ("_depth", 0)):
            old = getattr(self, name)
            new = np.full(cap, fill, old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def _add_child(self, u: int, token: int, logp: float) -> int:
        if self._n == self._parent.shape[0]:
            self._grow()
        c = self._n
        self._n += 1
        self._parent[c] = u
        self._token[c] = token
        self._logp[c] = logp
        self._theta[c] = 1.0
        self._amass[c] = np.nan
        self._terminal[c] = bool(self._eos[token]) if token < self._n_vocab else False
        self._depth[c] = self._depth[u] + 1
        self._kids.append([])
        self._kids[u].append(c)
        return c

    def _recompute(self, u: int) -> None:
        if self._terminal[u] or np.isnan(self._amass[u]):
            return
        kids = self._kids[u]
        if kids:
            k = np.asarray(kids, np.int64)
            pk = np.exp(self._logp[k])
            fresh = 0.0 if len(kids) >= self._nallowed[u] else max(0.0, float(self._amass[u] - pk.sum()))
            th = fresh + float(np.dot(pk, self._theta[k]))
        else:
            th = float(self._amass[u])
        self._theta[u] = min(max(th, 0.0), 1.0)

    def _backprop(self, u: int) -> None:
        while u >= 0:
            self._recompute(u)
            u = int(self._parent[u])

    def _proposal(self, u: int):
        """Node ``u``'s proposal over its sampled children and the not-yet-sampled rest:
        ``(child nodes, their weights p * theta, the fresh mass, the total)``.  The fresh mass is
        the allowed mass not yet assigned to a child (its children's theta start at 1)."""
        kids = self._kids[u]
        k = np.asarray(kids, np.int64)
        pk = np.exp(self._logp[k])
        wk = pk * self._theta[k]
        fresh = 0.0 if len(kids) >= self._nallowed[u] else max(0.0, float(self._amass[u] - pk.sum()))
        return k, wk, fresh, fresh + float(wk.sum())

    def _expand(self, u: int, ids: list[int], m, synced: int):
        """Ask the model and the mask at node ``u``; returns (logp, allowed, synced)."""
        if synced < len(ids):
            if not m.accept_tokens(ids[synced:]):  # pragma: no cover - tokens came from the mask
                raise SamplerStateError(f"the matcher refused a trie path at depth {len(ids)}")
            synced = len(ids)
        lp = log_softmax(self.lm(ids))
        self.n_model_calls += 1
        self._n_masks += 1
        allowed = np.zeros(lp.shape[0], bool)
        k = min(lp.shape[0], self._n_vocab)
        allowed[:k] = m.next_token_mask()[:k]
        allowed &= np.isfinite(lp)
        if np.isnan(self._amass[u]):
            self._amass[u] = float(np.exp(lp[allowed]).sum()) if allowed.any() else 0.0
            self._nallowed[u] = int(allowed.sum())
        return lp, allowed, synced

    # ------------------------------------------------------------------ sampling
    def _attempt(self, rng: np.random.Generator):
        m = new_matcher(self._source)
        ids: list[int] = []
        synced = 0
        u = 0
        log_q = 0.0
        log_p = 0.0
        while True:
            if self._terminal[u]:
                return True, u, ids, log_p, log_q, m, synced
            if self._depth[u] >= self.max_tokens:
                self._amass[u] = 0.0  # no completion within the cap
                self._nallowed[u] = 0
                return False, u, ids, log_p, log_q, m, synced
            here = None
            if np.isnan(self._amass[u]):
                here = self._expand(u, ids, m, synced)
                synced = here[2]
            kids = self._kids[u]
            k, wk, fresh, total = self._proposal(u)
            if total <= 0.0:
                return False, u, ids, log_p, log_q, m, synced
            r = rng.random() * total
            cum = np.cumsum(wk)
            j = int(np.searchsorted(cum, r, side="right"))
            if j < len(kids):
                c = kids[j]
                log_q += math.log(wk[j] / total)
            else:
                if here is None:
                    here = self._expand(u, ids, m, synced)
                    synced = here[2]
                lp, allowed = here[0], here[1]
                allowed = allowed.copy()
                if kids:
                    allowed[self._token[k]] = False
                pr = np.where(allowed, np.exp(lp), 0.0)
                s = pr.sum()
                if s <= 0.0:  # rounding: the fresh mass was only round-off
                    if wk.sum() <= 0.0:
                        return False, u, ids, log_p, log_q, m, synced
                    j = int(np.searchsorted(cum, rng.random() * wk.sum(), side="right"))
                    j = min(j, len(kids) - 1)
                    c = kids[j]
                    log_q += math.log(wk[j] / wk.sum())
                else:
                    t = int(rng.choice(pr.shape[0], p=pr / s))
                    c = self._add_child(u, t, float(lp[t]))
                    log_q += float(lp[t]) - math.log(total)
            log_p += float(self._logp[c])
            ids.append(int(self._token[c]))
            u = c

    def _record_weight(self, log_w: float) -> None:
        self.n_attempts += 1
        if log_w == -math.inf:
            return
        if log_w > self._w_shift:
            self._sum_w *= math.exp(self._w_shift - log_w)
            self._w_shift = log_w
        self._sum_w += math.exp(log_w - self._w_shift)

    def sample(self, rng: np.random.Generator | int | None = None) -> Sample:
        """One grammatical sequence; updates the trie.  ``log_weight`` is ``log P(w) - log q(w)``
        for the proposal it was drawn from."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        masks0 = self._n_masks
        for _ in range(self.max_attempts):
            if self._theta[0] <= 0.0:
                break
            ok, u, ids, log_p, log_q, m, synced = self._attempt(rng)
            self._backprop(u)
            self._record_weight(log_p - log_q if ok else -math.inf)
            if ok:
                self.n_samples += 1
                if synced < len(ids):
                    m.accept_tokens(ids[synced:])
                checks = (self._n_masks - masks0) * self._n_vocab
                return Sample(ids, m.output, True, log_p, log_p - log_q, checks, len(ids))
        raise DeadEndError(f"ASAp found no grammatical sequence within {self.max_tokens} tokens "
                           f"(theta(root) = {self._theta[0]:.3g})", step=0)

    def samples(self, n: int, rng: np.random.Generator | int | None = None) -> list[Sample]:
        check_common(self.max_tokens, n)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return [self.sample(rng) for _ in range(n)]

    # ------------------------------------------------------------------ estimates
    @property
    def n_nodes(self) -> int:
        return self._n

    @property
    def root_estimate(self) -> float:
        """``theta(root)``: an upper bound on ``P(grammatical | prompt)`` that only falls."""
        return float(self._theta[0])

    @property
    def log_z(self) -> float:
        """Log of the mean importance weight over all attempts: an unbiased estimate (in
        ``exp``) of ``P(grammatical | prompt)``; ``-inf`` before any success."""
        if self.n_attempts == 0 or self._sum_w == 0.0:
            return -math.inf
        return self._w_shift + math.log(self._sum_w / self.n_attempts)

    def _find(self, prefix: Sequence[int]) -> int:
        u = 0
        for t in prefix:
            nxt = -1
            for c in self._kids[u]:
                if self._token[c] == int(t):
                    nxt = c
                    break
            if nxt < 0:
                return -1
            u = nxt
        return u

    def estimate(self, prefix: Sequence[int]) -> float | None:
        """``theta(prefix)`` if the prefix is in the trie, else ``None`` (unexplored: the bound is
        the optimistic 1 when the prefix is viable, 0 when it is not)."""
        u = self._find(prefix)
        return None if u < 0 else float(self._theta[u])

    def estimates(self) -> dict[tuple[int, ...], float]:
        """Every trie node's prefix and ``theta`` (for inspection of small tries)."""
        out: dict[tuple[int, ...], float] = {}
        paths: list[tuple[int, ...]] = [()] * self._n
        for c in range(1, self._n):  # parents precede children
            paths[c] = paths[int(self._parent[c])] + (int(self._token[c]),)
        for u in range(self._n):
            out[paths[u]] = float(self._theta[u])
        return out

    def proposal_log_prob(self, ids: Sequence[int]) -> float:
        """``log q(ids)`` under the current trie: the probability that the next :meth:`sample`
        attempt draws exactly ``ids`` (for measuring convergence exactly).  Asks the model and
        the matcher for nodes the trie has not expanded; does not change the trie."""
        m = new_matcher(self._source)
        u = 0
        out = 0.0
        for i, t in enumerate(ids):
            t = int(t)
            if u >= 0 and not np.isnan(self._amass[u]) and not self._terminal[u]:
                kids = self._kids[u]
                k, wk, fresh, total = self._proposal(u)
                hit = [j for j, c in enumerate(kids) if self._token[c] == t]
                if total <= 0.0:
                    return -math.inf
                if hit:
                    out += math.log(wk[hit[0]] / total) if wk[hit[0]] > 0 else -math.inf
                    u = kids[hit[0]]
                else:
                    if not m.try_accept(t):
                        return -math.inf
                    out += float(log_softmax(self.lm(list(ids[:i])))[t]) - math.log(total)
                    u = -1
            else:
                if i >= self.max_tokens:
                    return -math.inf
                lp = log_softmax(self.lm(list(ids[:i])))
                mask = m.next_token_mask()
                if t >= mask.shape[0] or not mask[t]:
                    return -math.inf
                a = float(np.exp(lp[:mask.shape[0]][mask]).sum())
                out += float(lp[t]) - math.log(a)
                u = -1
            if not m.accept_token(t):
                return -math.inf
            if u >= 0 and self._terminal[u]:
                break
        return out if m.is_finished() else -math.inf

    # ------------------------------------------------------------------ persistence
    def _meta(self) -> dict:
        return {"format": _FORMAT, "grammar": self._grammar_fp, "vocab": self._vocab_fp, "key": self.key,
                "max_tokens": self.max_tokens, "n_samples": self.n_samples, "n_attempts": self.n_attempts,
                "sum_w": self._sum_w, "w_shift": self._w_shift, "n_model_calls": self.n_model_calls}

    def save(self, path) -> None:
        """Write the trie and its fingerprints to ``path`` (``.npz``, no pickle)."""
        n = self._n
        buf = io.BytesIO()
        np.savez_compressed(buf, meta=np.frombuffer(json.dumps(self._meta()).encode(), np.uint8),
                            parent=self._parent[:n], token=self._token[:n], logp=self._logp[:n],
                            theta=self._theta[:n], amass=self._amass[:n], nallowed=self._nallowed[:n])
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, lm, matcher: MatcherSource, *, key: str | None = None, max_attempts: int = 1000) -> "ASApSampler":
        """A sampler continuing from a :meth:`save` file.  Raises :class:`SamplerStateError`
        when the file was written for another grammar, vocabulary, prompt key or length cap."""
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(bytes(data["meta"]).decode())
        except (OSError, ValueError, KeyError) as e:
            raise SamplerStateError(f"cannot read an ASAp trie from {path}: {e}") from e
        if meta.get("format") != _FORMAT:
            raise SamplerStateError(f"{path} is not an ASAp trie of format {_FORMAT} (found {meta.get('format')!r})")
        s = cls(lm, matcher, max_tokens=int(meta["max_tokens"]), key=key, max_attempts=max_attempts)
        for field, mine in (("grammar", s._grammar_fp), ("vocab", s._vocab_fp), ("key", s.key)):
            if meta[field] != mine:
                raise SamplerStateError(f"{path} was written for {field} {meta[field]!r}, not {mine!r}")
        n = int(data["parent"].shape[0])
        while s._parent.shape[0] < n:
            s._grow()
        s._parent[:n] = data["parent"]
        s._token[:n] = data["token"]
        s._logp[:n] = data["logp"]
        s._theta[:n] = data["theta"]
        s._amass[:n] = data["amass"]
        s._nallowed[:n] = data["nallowed"]
        s._kids = [[] for _ in range(n)]
        for c in range(1, n):
            p = int(s._parent[c])
            if not 0 <= p < c:
                raise SamplerStateError(f"{path}: node {c} has parent {p}; the file is corrupt")
            s._kids[p].append(c)
            s._depth[c] = s._depth[p] + 1
            t = int(s._token[c])
            s._terminal[c] = bool(s._eos[t]) if 0 <= t < s._n_vocab else False
        s._n = n
        s.n_samples = int(meta["n_samples"])
        s.n_attempts = int(meta["n_attempts"])
        s._sum_w = float(meta["sum_w"])
        s._w_shift = float(meta["w_shift"])
        s.n_model_calls = int(meta.get("n_model_calls", 0))
        return s
