"""GrammarLogitsProcessor without a model: stub ``input_ids`` and random scores.

Every masked score must be ``-inf`` exactly where a reference :class:`Matcher`, fed the same
generated tokens, disallows the token (compared through ``bitmask_to_bool``), every other score
unchanged, and columns past the vocabulary (padded logits) always ``-inf``.  Rows are followed
by their generated suffix, so reordered and duplicated rows (beam search) get the right masks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from constrain.decoding.processor import GrammarLogitsProcessor, NoAllowedTokenError, TokenRejectedError
from constrain.engine.bitmask import allocate_token_bitmask, bitmask_to_bool
from constrain.engine.matcher import Matcher
from constrain.errors import ConstrainError, VocabularyError
from constrain.grammar import from_choices, from_regex
from constrain.jsonschema import compile_json_schema
from constrain.tokenizers import TokenKind, Vocabulary

PROMPT = [[11, 12, 13, 14]]
PAD = 64  # extra logits columns, as in a padded embedding matrix


@pytest.fixture(scope="module")
def grammar():
    return compile_json_schema({"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 0, "maximum": 99},
        "c": {"enum": ["red", "green"]}}, "required": ["n", "c"], "additionalProperties": False})


def ref_mask(vocab, tokens, grammar) -> np.ndarray:
    m = Matcher(grammar, vocab)
    assert m.accept_tokens(tokens)
    bm = allocate_token_bitmask(1, vocab.n_vocab)
    m.fill_next_token_bitmask(bm)
    return bitmask_to_bool(bm[0], vocab.n_vocab)


def encode(hf, text: str) -> list[int]:
    return hf.encode(text, add_special_tokens=False).ids


def check_row(scores_in, scores_out, allowed: np.ndarray, n_vocab: int):
    """-inf exactly where not allowed; allowed scores untouched; padded columns -inf."""
    out = scores_out.numpy()
    assert np.array_equal(np.isneginf(out[:n_vocab]), ~allowed)
    assert np.array_equal(out[:n_vocab][allowed], scores_in.numpy()[:n_vocab][allowed])
    assert np.isneginf(out[n_vocab:]).all()


def step(proc, seqs, width, gen=None):
    ids = torch.tensor(seqs, dtype=torch.long)
    scores = torch.randn((len(seqs), width), generator=gen)
    return scores.clone(), proc(ids, scores)


def test_masks_equal_reference_matcher_with_padded_logits(smol_vocab, smol_hf, grammar):
    text = '{"n":42,"c":"green"}'
    toks = encode(smol_hf, text)
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    width = smol_vocab.n_vocab + PAD
    g = torch.Generator().manual_seed(0)
    seq = list(PROMPT[0])
    for i in range(len(toks) + 1):
        before, after = step(proc, [seq], width, g)
        check_row(before[0], after[0], ref_mask(smol_vocab, toks[:i], grammar), smol_vocab.n_vocab)
        if i < len(toks):
            assert torch.isfinite(after[0, toks[i]]), f"token {i} of a valid document was masked"
            seq.append(toks[i])
    assert proc.prompt_length == len(PROMPT[0]) and proc.steps == len(toks) + 1
    # complete: only the stop id is left
    allowed = np.flatnonzero(np.isfinite(after[0].numpy()))
    assert allowed.tolist() == list(smol_vocab.eos_ids)
    # the final sequence replays to a finished matcher with the exact output bytes
    m = proc.replay(toks + [smol_vocab.eos_ids[0]])
    assert m.is_finished() and m.output == text.encode()


def test_finished_rows_allow_only_stop_and_pad(smol_vocab, smol_hf):
    proc = GrammarLogitsProcessor(from_choices(["yes", "no"]), smol_vocab, pad_token_id=7)
    width = smol_vocab.n_vocab + PAD
    eos = smol_vocab.eos_ids[0]
    seq = PROMPT[0] + encode(smol_hf, "no")
    for s in (PROMPT[0] + encode(smol_hf, "no")[:i] for i in range(len(seq) - len(PROMPT[0]) + 1)):
        step(proc, [s], width)
    # stop id accepted, then generate pads the row: both stay "finished"
    for extra in ([eos], [eos, 7], [eos, 7, 7]):
        _, out = step(proc, [seq + extra], width)
        assert sorted(np.flatnonzero(np.isfinite(out[0].numpy())).tolist()) == sorted({eos, 7})


def test_batch_rows_with_left_padding_are_independent(smol_vocab, smol_hf, grammar):
    docs = ['{"n":7,"c":"red"}', '{"n":10,"c":"green"}', '{"n":0,"c":"red"}']
    toks = [encode(smol_hf, d) for d in docs]
    prompts = [[0, 0, 5, 6], [0, 5, 6, 7], [5, 6, 7, 8]]  # left padded (pad 0)
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    eos = smol_vocab.eos_ids[0]
    width = smol_vocab.n_vocab
    n = max(len(t) for t in toks) + 2
    gen = [t + [eos] + [eos] * n for t in toks]  # finished rows are padded with the pad (= eos) id
    for i in range(n):
        seqs = [p + g[:i] for p, g in zip(prompts, gen)]
        before, after = step(proc, seqs, width)
        for r in range(3):
            if i <= len(toks[r]):
                allowed = ref_mask(smol_vocab, toks[r][:i], grammar)
            else:
                allowed = np.zeros(smol_vocab.n_vocab, bool)
                allowed[eos] = True
            check_row(before[r], after[r], allowed, smol_vocab.n_vocab)
    assert proc.dead_rows == 0


def test_beam_reordering_and_duplicates_follow_sequences(smol_vocab, smol_hf, grammar):
    a = encode(smol_hf, '{"n":1,"c":"red"}')
    b = encode(smol_hf, '{"n":23,"c":"green"}')
    assert a[0] == b[0]
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    width = smol_vocab.n_vocab + PAD
    p = PROMPT[0]
    # step 0: two identical beams; step 1: both continue the same way (duplicates);
    # later: the beams diverge and swap rows every step
    step(proc, [p, p], width)
    step(proc, [p + a[:1], p + b[:1]], width)
    for i in range(2, min(len(a), len(b))):
        rows = [p + b[:i], p + a[:i]] if i % 2 else [p + a[:i], p + b[:i]]
        before, after = step(proc, rows, width)
        for r, seq in enumerate(rows):
            check_row(before[r], after[r], ref_mask(smol_vocab, seq[len(p):], grammar), smol_vocab.n_vocab)
    # two rows descending from one parent (beam search keeps two children of one beam)
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    base = a[:3]
    for i in range(len(base) + 1):
        step(proc, [p + base[:i]] * 2, width)
    allowed = np.flatnonzero(ref_mask(smol_vocab, base, grammar))
    assert len(allowed) >= 2
    kids = [p + base + [int(t)] for t in allowed[:2]]
    before, after = step(proc, kids, width)
    for r, seq in enumerate(kids):
        check_row(before[r], after[r], ref_mask(smol_vocab, seq[len(p):], grammar), smol_vocab.n_vocab)


def test_masked_token_makes_a_dead_row(smol_vocab, smol_hf, grammar):
    """Beam search fills its beams with -inf candidates when too few tokens are allowed."""
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    width = smol_vocab.n_vocab + PAD
    p = PROMPT[0]
    good = encode(smol_hf, '{"n"')
    bad = encode(smol_hf, "hello")[0]
    step(proc, [p, p], width)
    step(proc, [p + good[:1], p + [bad]], width)
    before, after = step(proc, [p + good[:2], p + [bad, bad]], width)
    assert np.isneginf(after[1].numpy()).all()
    check_row(before[0], after[0], ref_mask(smol_vocab, good[:2], grammar), smol_vocab.n_vocab)
    assert proc.dead_rows == 2  # once per step the row stays dead


def test_rejected_allowed_token_raises(smol_vocab, smol_hf, grammar):
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    p = PROMPT[0]
    step(proc, [p], smol_vocab.n_vocab)
    bad = encode(smol_hf, "hello")[0]
    # pretend the mask had allowed it: the matcher's refusal must be reported, not swallowed
    proc._prev[()].words[:] = np.uint32(0xFFFFFFFF)
    with pytest.raises(TokenRejectedError, match=f"row 0: token {bad}") as ei:
        step(proc, [p + [bad]], smol_vocab.n_vocab)
    assert ei.value.row == 0 and ei.value.token == bad and isinstance(ei.value, ConstrainError)


def test_unknown_history_raises_and_new_prompt_resets(smol_vocab, smol_hf, grammar):
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    p = PROMPT[0]
    t = encode(smol_hf, '{"n":5')
    step(proc, [p, p], smol_vocab.n_vocab)
    step(proc, [p + t[:1], p + t[:1]], smol_vocab.n_vocab)
    with pytest.raises(TokenRejectedError, match="row 1"):
        step(proc, [p + t[:2], p + [t[1], t[1]]], smol_vocab.n_vocab)
    # a new generate call (different prompt) starts over
    before, after = step(proc, [[1, 2, 3]], smol_vocab.n_vocab)
    check_row(before[0], after[0], ref_mask(smol_vocab, [], grammar), smol_vocab.n_vocab)
    assert proc.prompt_length == 3 and proc.steps == 1
    # the same prompt again (same length, not a continuation) also starts over
    step(proc, [[1, 2, 3, t[0]]], smol_vocab.n_vocab)
    before, after = step(proc, [[1, 2, 3]], smol_vocab.n_vocab)
    check_row(before[0], after[0], ref_mask(smol_vocab, [], grammar), smol_vocab.n_vocab)


def test_logits_narrower_than_text_vocabulary_are_refused(smol_vocab, grammar):
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    with pytest.raises(VocabularyError, match="do not match"):
        step(proc, PROMPT, smol_vocab.n_vocab - 100)


def test_no_allowed_token_is_reported():
    # a vocabulary that cannot spell the grammar's only word
    vocab = Vocabulary([b"a", b"b", b""], kinds=[TokenKind.TEXT, TokenKind.TEXT, TokenKind.SPECIAL],
                       special_tokens={"<eos>": 2}, eos_ids=[2])
    proc = GrammarLogitsProcessor(from_regex("ac"), vocab)
    step(proc, [[0]], 3)
    with pytest.raises(NoAllowedTokenError, match="row 0"):
        step(proc, [[0, 0]], 3)


def test_processor_accepts_a_transformers_tokenizer_and_is_exported(grammar):
    import constrain
    from transformers import PreTrainedTokenizerFast

    from tests.conftest import SMOLLM2_DIR

    tok = PreTrainedTokenizerFast(tokenizer_file=str(SMOLLM2_DIR / "tokenizer.json"), eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>")
    proc = constrain.LogitsProcessor(grammar, tok)
    assert isinstance(proc, GrammarLogitsProcessor)
    assert proc.vocab.eos_ids == (2,) and proc.pad_token_id == 0


# --------------------------------------------------------------- property test

WORDS = ["12-34", "7", "99-1", "5-55"]


@settings(max_examples=40)
@given(data=st.data())
def test_random_walks_with_reordering_match_reference(data, smol_vocab):
    """Random allowed tokens, random row permutations/duplications each step (as beam search
    does), sometimes a masked token (dead row): every live row's mask equals the reference."""
    grammar = _regex_grammar()
    proc = GrammarLogitsProcessor(grammar, smol_vocab)
    p = [3, 4]
    n_rows = data.draw(st.integers(1, 3))
    dead: set[int] = set()
    width = smol_vocab.n_vocab + PAD
    eos = smol_vocab.eos_ids[0]
    histories = [[] for _ in range(n_rows)]
    for _ in range(data.draw(st.integers(1, 7))):
        seqs = [p + h for h in histories]
        before, after = step(proc, seqs, width)
        new = []
        for r, h in enumerate(histories):
            if r in dead:
                assert np.isneginf(after[r].numpy()).all()
                allowed = np.array([], int)
            else:
                m = Matcher(grammar, smol_vocab)
                assert m.accept_tokens(_until_stop(h, eos))
                if m.is_finished():
                    mask = np.zeros(smol_vocab.n_vocab, bool)
                    mask[list(smol_vocab.eos_ids)] = True
                else:
                    mask = ref_mask(smol_vocab, h, grammar)
                check_row(before[r], after[r], mask, smol_vocab.n_vocab)
                allowed = np.flatnonzero(mask)
            new.append(allowed)
        # choose next tokens and a reordering
        order = data.draw(st.lists(st.integers(0, n_rows - 1), min_size=n_rows, max_size=n_rows))
        nxt_hist, nxt_dead = [], set()
        for j, src in enumerate(order):
            if src in dead or data.draw(st.integers(0, 9)) == 0:
                tok = data.draw(st.integers(0, smol_vocab.n_vocab + PAD - 1))
                finished = src not in dead and eos in histories[src]  # generate pads finished rows
                if src in dead or not (finished or tok in set(new[src].tolist())):
                    nxt_dead.add(j)
            else:
                tok = int(data.draw(st.sampled_from(new[src].tolist())))
            nxt_hist.append(histories[src] + [tok])
        histories, dead = nxt_hist, nxt_dead


def _until_stop(h, eos):
    return h[: h.index(eos) + 1] if eos in h else h


_G = None


def _regex_grammar():
    global _G
    if _G is None:
        _G = from_regex("|".join(WORDS))
    return _G
