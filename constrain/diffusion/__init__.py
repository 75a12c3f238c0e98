"""Grammar-constrained decoding for diffusion LLMs and multi-region infilling.

The checker (:class:`InfillChecker`) decides the *additive infilling problem* of Mündler,
Dekoninck and Vechev (2025): given fixed byte chunks ``w0 … wn`` separated by gaps, is there a
word of the grammar that keeps the chunks and only inserts bytes into the gaps?  It answers
"nonempty" (with a witness word on request), "empty", or "unknown" when its work budget ran out.
It needs only a :class:`~constrain.grammar.ir.Grammar`, no tokenizer.

Method
    1. *R graph.*  The partial output becomes a byte graph: one node per position, a fixed-byte
       edge per chunk byte, an any-byte self-loop for an unbounded gap (Σ*), a chain of
       any-byte edges with exits for a bounded gap (:class:`Gap` ``min_bytes..max_bytes``:
       exact length awareness), or a trie of token strings per slot for a token-exact gap
       (:class:`TokenGap`).
    2. *Terminal NFA (the lexing).*  From every node a BFS over (node, terminal-DFA state)
       pairs finds every terminal whose lexeme can start there and end at another node
       (numba kernel ``terminal_edges``).  Lexemes entirely inside a chunk, fragments at chunk
       edges, lexemes crossing one or several gaps and merges of a prefix and a suffix
       fragment across a gap all come out of this one walk, exactly (no lexing map to write).
       Ignored terminals (``%ignore``) become epsilon edges.  The NFA is trimmed (reachable and
       co-reachable nodes), epsilon edges are removed; optionally (``determinize=True``) it is
       determinised and Hopcroft-minimised and the DFA used when smaller — off by default,
       since on masked JSON the DFA was about as large as the trimmed NFA and cost more to
       build than it saved.
    3. *Emptiness of L(G) ∩ L(A)* (implicit Bar-Hillel).  The grammar is binarised once (pre-
       terminals, right-binarised suffixes shared; unary and empty rules kept), and a worklist
       over generating triples (p, X, q) runs in numba (``bar_hillel``), with the chart as
       row/column bitsets so each join touches 64 states per word and only new triples.
       It stops at the first (start, S, final) triple; a work budget turns into "unknown".
    4. *Witness.*  Re-run with back-pointers, take the terminal yield, map it to an NFA path
       and each lexeme to bytes with a shortest-path BFS (gap bytes prefer letters/digits).
       :meth:`CheckResult.fills` gives the bytes of each gap.

Lexing policies
    ``"all"`` (every cut) is decided exactly.  ``"longest"`` (maximal munch, e.g.
    ``grammars/json.lark``, ``arithmetic.lark``) is decided exactly when a sufficient test
    proves that munch loses no word of the all-readings language (no lexeme can be extended
    by another terminal into a byte that may follow it, no higher-ranked terminal shares a
    word) — then both languages are equal.  Otherwise (``sql.lark``, ``go.lark``: keywords vs
    identifiers) the checker refuses with :class:`LongestLexingRefused` naming the terminals,
    or with ``longest="approximate"`` decides the all-readings superset ("empty" stays right,
    "nonempty" may be wrong; the sampler then verifies its output with the Earley parser).
    Indentation post-lexers (``python.lark``) are refused.

Sampler
    :class:`DiffusionConstraint` holds one sequence of masked positions over a
    :class:`~constrain.tokenizers.Vocabulary`; :func:`diffusion_generate` runs a denoiser
    (any callable ``ids -> logits[L, V]``; :class:`TransformersDenoiser` wraps LLaDA/Dream-
    style models, :class:`RandomDenoiser` is a stand-in) and, each step, visits (position,
    token) pairs in the order of Gumbel-perturbed log-probabilities (sampling without
    replacement, as in AWRS), committing the first admissible ones and capping rejections.
    When steps or rejections run out the checker's witness fills the rest: cut into exactly
    the masked positions' tokens when possible, else greedily token by token, else after
    un-committing neighbours of a run too short for its fill, else as valid text that does not
    fit the length (``tokens`` None).  Every finished output is a word.
    ``examples/diffusion_tiny_mdlm.py`` trains a 0.6 M-parameter masked-diffusion model on
    SmolLM2 ids (checkpoint in ``tests/diffusion/data``) and compares valid-output rates.

Limits
    - Byte-level gaps over-approximate token-level gaps: a gap of k tokens is ``k..k·maxlen``
      bytes (exact automaton only under ``gap_cap_bytes``, else Σ^{≥k}); a proposal may pass
      the check and yet no token sequence of the right count completes it.  Token-exact gaps
      (``TokenGap``) fix that for short runs when the allowed vocabulary is small.
    - Cost grows with the number of live lexeme boundaries Q (cubic worst case) and with the
      size of the terminal automata: a 3,400-state email-format terminal makes lexing ~40x
      slower, and bounded gaps over it reach seconds (every byte offset explores the
      automaton); keep length-aware gaps for grammars with small terminals.
      Every check rebuilds from scratch; whole checks are memoised by their segments, chunk
      lexings are not memoised separately yet.
    - No autoregressive prefix pre-filter yet (the mask engine could reject most proposals in
      microseconds before the checker runs).
"""

from constrain.diffusion.checker import (CheckResult, Gap, InfillChecker, LongestLexingRefused, TokenGap,
                                         normalise_segments)
from constrain.diffusion.sampler import (MASK, DiffusionConstraint, DiffusionResult, RandomDenoiser,
                                         TransformersDenoiser, diffusion_generate)

__all__ = ["MASK", "CheckResult", "DiffusionConstraint", "DiffusionResult", "Gap", "InfillChecker",
           "LongestLexingRefused", "RandomDenoiser", "TokenGap", "TransformersDenoiser", "diffusion_generate",
           "normalise_segments"]
