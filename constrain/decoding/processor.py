"""``GrammarLogitsProcessor``: the grammar engine as a transformers logits processor.

    >>> proc = GrammarLogitsProcessor(grammar, tokenizer)                    # doctest: +SKIP
    >>> model.generate(input_ids, logits_processor=[proc], max_new_tokens=64)  # doctest: +SKIP

Each call receives ``input_ids`` (``[rows, length]``) and the next-token ``scores``
(``[rows, width]``).  The first call of a generation records the prompt length; from then on the
processor feeds each row's last generated token to that row's :class:`~constrain.engine.matcher.Matcher`,
fills the allowed-token bitmask of every row (one batched fill) and sets the scores of
disallowed tokens to ``-inf``.  Columns past the tokenizer's vocabulary (padded embedding
matrices) are always disallowed.

Rows are tracked by their *generated suffix*, not by their index: the matchers of a step are
kept in a dict keyed by the tuple of tokens generated so far, and a row at the next step finds
its parent under its suffix minus the last token (copying the parent's matcher when two rows
share it).  That is what makes beam search exact, where ``generate`` reorders and duplicates
rows between steps; for greedy and sampled decoding every row simply continues its own matcher.

Row states:

- *live*: the grammar decides the allowed tokens;
- *finished*: the matcher accepted a stop id; only stop ids (and ``pad_token_id``) are allowed,
  so ``generate`` can stop the row (it pads finished rows itself, those pads are ignored);
- *dead*: the row's last token was one the processor had masked out.  Greedy search and
  sampling never pick a ``-inf`` token; beam search does, to fill its beams when fewer
  continuations are allowed than there are beams.  Such a row gets all ``-inf`` so it never
  wins; :attr:`GrammarLogitsProcessor.dead_rows` counts them.

A token the mask *allowed* but the matcher then rejected is an engine inconsistency and raises
:class:`TokenRejectedError`.  One processor serves one ``generate`` call at a time; a call
whose prompt, batch size or length does not continue the previous one starts a new
generation (or call :meth:`GrammarLogitsProcessor.reset`).

With sampling, put temperature / top-k / top-p *after* this processor (transformers runs its
own warpers first; a top-k or top-p cut made before the grammar mask can leave no allowed
token): :func:`constrain.decoding.generate.generate` does that for you.
"""

from __future__ import annotations

import numpy as np

from constrain.engine.matcher import Matcher, fill_next_token_bitmasks, get_store
from constrain.errors import ConstrainError
from constrain.grammar.ir import Grammar
from constrain.tokenizers.vocabulary import Vocabulary

__all__ = ["GrammarLogitsProcessor", "NoAllowedTokenError", "TokenRejectedError"]


class TokenRejectedError(ConstrainError, RuntimeError):
    """A row's generated token was allowed by the mask but rejected by its matcher (a bug), or
    a row's history cannot be matched to the previous step.  ``row`` and ``token`` say where."""

    def __init__(self, message: str, *, row: int, token: int | None = None):
        self.row = row
        self.token = token
        super().__init__(message)


class NoAllowedTokenError(ConstrainError, RuntimeError):
    """The grammar allows no token at all after a row's output (the vocabulary cannot spell
    any continuation): generation cannot continue validly."""

    def __init__(self, message: str, *, row: int):
        self.row = row
        super().__init__(message)


class _Node:
    """State after one generated prefix: a matcher (None when dead) and its mask words."""

    __slots__ = ("matcher", "words")

    def __init__(self, matcher: Matcher | None):
        self.matcher = matcher
        self.words: np.ndarray | None = None  # uint32[n_words] of the mask filled for this prefix


_DEAD = _Node(None)


def _as_vocabulary(tokenizer_or_vocab) -> Vocabulary:
    if isinstance(tokenizer_or_vocab, Vocabulary):
        return tokenizer_or_vocab
    from constrain.tokenizers.adapters import vocabulary_from

    return vocabulary_from(tokenizer_or_vocab)


class GrammarLogitsProcessor:
    """Constrain ``model.generate`` to a :class:`~constrain.grammar.ir.Grammar`.

    Parameters
    ----------
    grammar:
        A compiled grammar (``compile_json_schema``, ``from_lark``, ``from_regex``, ``from_choices``).
    tokenizer_or_vocab:
        The model's tokenizer (anything :func:`~constrain.tokenizers.adapters.vocabulary_from`
        accepts) or a :class:`~constrain.tokenizers.vocabulary.Vocabulary`.  Its stop ids are the
        ones the grammar may end with; pass a ``Vocabulary`` built with ``eos_ids=`` to change them.
    pad_token_id:
        Also allowed in finished rows (default: the tokenizer's ``pad_token_id`` when it has one).
    threads:
        Threads for the batched mask fill (``None``: the engine's default pool).
    """

    def __init__(self, grammar: Grammar, tokenizer_or_vocab, *, pad_token_id: int | None = None,
                 threads: int | None = None):
        self.vocab = _as_vocabulary(tokenizer_or_vocab)
        self.grammar = grammar
        self.store = get_store(grammar, self.vocab)  # compiles now: grammar errors surface here
        if pad_token_id is None and not isinstance(tokenizer_or_vocab, Vocabulary):
            pad_token_id = getattr(tokenizer_or_vocab, "pad_token_id", None)
        self.pad_token_id = None if pad_token_id is None else int(pad_token_id)
        self.threads = threads
        self.n_words = self.store.n_words
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the current generation; the next call starts a new one."""
        self._prompt = None  # [rows, prompt_len] tensor of the first call
        self._len = -1
        self._prev: dict[tuple, _Node] = {}
        self._rows: list[_Node] = []
        self._width_checked = -1
        #: rows (per step) that carried a token this processor had masked out (beam fillers)
        self.dead_rows = 0
        #: number of calls in the current generation
        self.steps = 0

    @property
    def prompt_length(self) -> int | None:
        return None if self._prompt is None else int(self._prompt.shape[1])

    def new_matcher(self) -> Matcher:
        """A fresh matcher of this processor's grammar and vocabulary."""
        return Matcher(self.grammar, self.vocab, store=self.store)

    def row_matchers(self) -> list[Matcher | None]:
        """Each row's matcher after the last call (``None`` for dead rows).  The token chosen at
        the last call is not in it yet: replay the sequence with :meth:`replay` to include it."""
        return [n.matcher for n in self._rows]

    def replay(self, token_ids) -> Matcher:
        """A fresh matcher advanced by generated ``token_ids`` up to and including the first
        stop id it accepts (trailing padding after that is ignored).  Raises
        :class:`TokenRejectedError` if a token before that is rejected."""
        m = self.new_matcher()
        for i, t in enumerate(int(t) for t in token_ids):
            if m.is_finished():
                break
            if not m.accept_token(t):
                raise TokenRejectedError(
                    f"generated token {t} ({self._show(t)}) at position {i} is not accepted after "
                    f"{m.output[-60:]!r}", row=0, token=t)
        return m

    def _show(self, t: int) -> str:
        if 0 <= t < self.vocab.n_vocab:
            return repr(self.vocab.token_bytes(t)) if self.vocab.token_bytes(t) else f"special id {t}"
        return f"id past the vocabulary of {self.vocab.n_vocab}"

    # ------------------------------------------------------------------ call
    def _continues(self, input_ids) -> bool:
        import torch

        p = self._prompt
        if p is None or input_ids.shape[0] != p.shape[0] or input_ids.shape[1] != self._len + 1:
            return False
        return bool(torch.equal(input_ids[:, : p.shape[1]], p))

    def __call__(self, input_ids, scores):
        if not self._continues(input_ids):
            self.reset()
            self._prompt = input_ids.detach().clone()
        self._len = int(input_ids.shape[1])
        self.steps += 1
        width = int(scores.shape[-1])
        if width != self._width_checked:
            self.vocab.check_logits_width(width)
            self._width_checked = width
        rows = self._advance_rows(input_ids)
        bitmask = self._fill(rows)
        import torch

        from constrain.engine.bitmask import apply_token_bitmask

        apply_token_bitmask(scores, torch.from_numpy(bitmask), vocab_size=self.vocab.n_vocab)
        return scores

    def _advance_rows(self, input_ids) -> list[_Node]:
        n_prompt = self._prompt.shape[1]
        n_rows = int(input_ids.shape[0])
        if input_ids.shape[1] == n_prompt:
            root = _Node(self.new_matcher())
            nodes = {(): root}
            rows = [root] * n_rows
        else:
            keys = [tuple(r) for r in input_ids[:, n_prompt:].tolist()]
            children: dict[tuple, list[tuple]] = {}
            first_row: dict[tuple, int] = {}
            for r, k in enumerate(keys):
                if k not in first_row:
                    first_row[k] = r
                    children.setdefault(k[:-1], []).append(k)
            nodes = {}
            for pk, ks in children.items():
                parent = self._prev.get(pk)
                if parent is None:
                    r = first_row[ks[0]]
                    raise TokenRejectedError(
                        f"row {r}: its generated tokens {list(pk)[-8:]} (last 8) do not continue any row of the "
                        f"previous step; a GrammarLogitsProcessor follows one generate call at a time "
                        f"(call reset() between unrelated calls)", row=r, token=ks[0][-1])
                for j, k in enumerate(ks):
                    nodes[k] = self._child(parent, k[-1], in_place=(j == len(ks) - 1), row=first_row[k])
            rows = [nodes[k] for k in keys]
        self._prev = nodes
        self._rows = rows
        return rows

    def _child(self, parent: _Node, token: int, *, in_place: bool, row: int) -> _Node:
        m = parent.matcher
        if m is None:
            self.dead_rows += 1
            return _DEAD
        if m.is_finished():
            return parent  # generate pads finished rows; the state does not change
        allowed = 0 <= token < self.n_words * 32 and bool((int(parent.words[token >> 5]) >> (token & 31)) & 1)
        if not allowed:
            self.dead_rows += 1
            return _DEAD
        child = m if in_place else m.copy()
        if not child.accept_token(token):
            raise TokenRejectedError(
                f"row {row}: token {token} ({self._show(token)}) was allowed by the mask but rejected by "
                f"the matcher after {m.output[-60:]!r}; this is a bug in constrain", row=row, token=token)
        return _Node(child)

    def _fill(self, rows: list[_Node]) -> np.ndarray:
        uniq: dict[int, int] = {}
        live: list[_Node] = []
        for n in rows:
            if n.matcher is not None and id(n) not in uniq:
                uniq[id(n)] = len(live)
                live.append(n)
        words = np.zeros((max(len(live), 1), self.n_words), np.int32)
        if live:
            fill_next_token_bitmasks([n.matcher for n in live], words, threads=self.threads)
        u32 = words.view(np.uint32)
        pad = self.pad_token_id
        for i, n in enumerate(live):
            if n.matcher.is_finished():
                if pad is not None and 0 <= pad < self.n_words * 32:
                    u32[i, pad >> 5] |= np.uint32(1 << (pad & 31))
            elif not u32[i].any():
                r = next(r for r, x in enumerate(rows) if x is n)
                raise NoAllowedTokenError(
                    f"row {r}: the grammar allows no token of the vocabulary after {n.matcher.output[-60:]!r}",
                    row=r)
            n.words = u32[i]
        out = np.zeros((len(rows), self.n_words), np.int32)
        for r, n in enumerate(rows):
            if n.matcher is not None:
                out[r] = words[uniq[id(n)]]
        return out

    def __repr__(self) -> str:
        return (f"GrammarLogitsProcessor(grammar={self.grammar.name!r}, vocab={self.vocab.name!r}, "
                f"rows={len(self._rows)}, steps={self.steps})")
