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
    2. *Terminal NFA (the lexing).*  One left-to-right sweep over the nodes (numba kernel
       ``lex_sweep``) carries, per terminal-DFA state, the bitset of lexeme-boundary nodes
       whose open lexeme is in that state; accepting states emit edges (source, terminal,
       node), so every terminal whose lexeme can start at one node and end at another is found
       with each state expanded once per node.  Lexemes entirely inside a chunk, fragments at chunk
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

Autoregressive infilling
    :func:`infill` fills the holes of a template (fill-in-the-middle, multi-region infilling)
    with a causal LM, left to right: each step's candidate tokens are checked in probability
    order (or Gumbel order when sampling) against the checker with the rest of the hole, the
    later holes and the fixed suffix chunks as gaps; closing a hole is a candidate scored by
    the tokens that start the next chunk; the witness closes a hole whose budget ran out.

Limits
    - Which gaps are token-exact: a run of k <= ``token_exact_max`` masked positions (default
      2) is a :class:`TokenGap` (exactly k allowed tokens; the trailing run 0..k) when at most
      ``token_exact_vocab`` tokens are allowed; so is every run in :meth:`finish`'s first
      attempt while the total stays under ``token_finish_nodes`` (trie nodes x positions).
      Longer runs during sampling are byte-level ``k..k·maxlen`` bytes (bounded under
      ``gap_cap_bytes``, else Σ^{≥k}): a superset of the token-level language, so a rejection
      is always right (sound) but an accepted commit may leave no exact fit; the token-exact
      finish then re-opens neighbours until one fits (tiny MDLM: 32/32 fit in 64 positions).
      Bigger vocabularies (the full 49k SmolLM2 set) are never token-exact: the trie is too big.
    - Cost grows with the number of live lexeme boundaries Q (cubic worst case) and with the
      size of the terminal automata: a 3,400-state email-format terminal makes lexing ~40x
      slower, and bounded gaps over it reach seconds (every byte offset explores the
      automaton); keep length-aware gaps for grammars with small terminals.
      Whole checks are memoised by their segments; the lexing is memoised by segment prefix
      (segment ends and token cuts), so a check resumes the sweep left of its first change —
      work right of the change, and the Bar-Hillel pass, are redone.
    - No autoregressive prefix pre-filter yet (the mask engine could reject most proposals in
      microseconds before the checker runs).
"""

from constrain.diffusion.checker import (CheckResult, Gap, InfillChecker, LongestLexingRefused, TokenGap,
                                         normalise_segments)
from constrain.diffusion.infill import Hole, InfillResult, infill, parse_template
from constrain.diffusion.sampler import (MASK, DiffusionConstraint, DiffusionResult, RandomDenoiser,
                                         TransformersDenoiser, diffusion_generate)

__all__ = ["MASK", "CheckResult", "DiffusionConstraint", "DiffusionResult", "Gap", "Hole", "InfillChecker",
           "InfillResult", "LongestLexingRefused", "RandomDenoiser", "TokenGap", "TransformersDenoiser",
           "diffusion_generate", "infill", "normalise_segments", "parse_template"]
