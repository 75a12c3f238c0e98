"""The naive mask oracle: ask the reference parser about every token, one at a time.

``naive_mask`` is the definition of a correct mask: token ``t`` is allowed iff feeding its
bytes keeps the output a viable prefix; every stop id is allowed iff the output is complete;
special (unless named by the grammar, which no front-end does yet), unused and padded ids never
are.  ``trie_mask`` computes the same set by walking the token trie with feed/rollback, sharing
prefixes — the shape of the fast engine's fallback walk.  Both are slow (pure Python) and exist
to check the numba engine.
"""

from __future__ import annotations

import numpy as np

from constrain.engine.earley import ByteParser, CompiledParserTables, _Row
from constrain.tokenizers.vocabulary import TokenKind, Vocabulary


def naive_mask(parser: ByteParser, vocab: Vocabulary, width: int | None = None) -> np.ndarray:
    """``bool[width]`` (default ``vocab.n_vocab``) of allowed tokens after ``parser``'s output."""
    width = vocab.check_logits_width(width or vocab.n_vocab)
    out = np.zeros(width, dtype=bool)
    mark = parser.n_steps
    for i in np.flatnonzero(vocab.kinds == TokenKind.TEXT).tolist():
        if parser.feed(vocab.token_bytes(i)):
            ok = parser.is_viable()
            parser.rollback_to(mark)
            out[i] = ok
    if parser.is_complete():
        out[list(vocab.eos_ids)] = True
    return out


def trie_mask(parser: ByteParser, vocab: Vocabulary, width: int | None = None) -> np.ndarray:
    """Same set as :func:`naive_mask`, by a depth-first walk of the token trie."""
    width = vocab.check_logits_width(width or vocab.n_vocab)
    out = np.zeros(width, dtype=bool)
    trie = vocab.trie
    byte, depth, end = trie.byte, trie.depth, trie.subtree_end
    tok_start, tok_ids = trie.tok_start, trie.tok_ids
    base = parser.n_steps
    i = 1
    n = trie.n_nodes
    while i < n:
        d = int(depth[i])
        parser.rollback_to(base + d - 1)
        if parser.feed(bytes((int(byte[i]),))) and parser.is_viable():
            s, e = tok_start[i], tok_start[i + 1]
            if e > s:
                out[tok_ids[s:e]] = True
            i += 1
        else:
            i = int(end[i])
    parser.rollback_to(base)
    if parser.is_complete():
        out[list(vocab.eos_ids)] = True
    return out


def naive_inside(lexer, sid: int, vocab: Vocabulary) -> np.ndarray:
    """``bool[n_vocab]``: text tokens whose bytes keep lexer state ``sid`` alive (no boundary)."""
    out = np.zeros(vocab.n_vocab, dtype=bool)
    for i in np.flatnonzero(vocab.kinds == TokenKind.TEXT).tolist():
        out[i] = lexer.run(sid, vocab.token_bytes(i)) >= 0
    return out


def closed_row(tables: CompiledParserTables, pos: int, seeds, chart: dict) -> _Row:
    """The Earley row at ``pos`` closed from ``seeds`` item by item (prediction, completion,
    stepping over nullable nonterminals): the oracle of ``CompiledParserTables.new_row``, which
    adds a predicted nonterminal's closure at once."""
    row = _Row()
    items = row.items
    waiting = row.waiting
    rhs, lhs, by_lhs, nullable = tables.rhs, tables.lhs, tables.by_lhs, tables.nullable
    agenda = []
    for it in seeds:
        if it not in items:
            items.add(it)
            agenda.append(it)
    row.seeds = tuple(agenda)
    while agenda:
        r, d, o = it = agenda.pop()
        rr = rhs[r]
        if d < len(rr):
            s = rr[d]
            waiting.setdefault(s, []).append(it)
            if s < 0:
                n = ~s
                for r2 in by_lhs[n]:
                    it2 = (r2, 0, pos)
                    if it2 not in items:
                        items.add(it2)
                        agenda.append(it2)
                if nullable[n]:  # items already waiting are advanced when they are popped
                    it2 = (r, d + 1, o)
                    if it2 not in items:
                        items.add(it2)
                        agenda.append(it2)
            else:
                row.allowed |= 1 << s
        else:
            a = lhs[r]
            if a == 0 and o == 0:  # the start symbol, from the start
                row.complete = True
            # this row's own list may grow while we iterate: take a snapshot of it
            waiters = list(waiting.get(~a, ())) if o == pos else chart[o].waiting.get(~a, ())
            for (r3, d3, o3) in waiters:
                it2 = (r3, d3 + 1, o3)
                if it2 not in items:
                    items.add(it2)
                    agenda.append(it2)
    row.allowed |= tables.ignore_mask
    row.freeze()
    return row
