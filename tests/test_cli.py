"""The ``constrain`` command: fast checks need no model; ``slow`` ones run the embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from constrain.cli import main


# deepseek's whole vocabulary is already compared with its decoder in test_tokenizers.py
@pytest.mark.parametrize("name,family", [("mistral", "sentencepiece"), ("tekken", "tiktoken")])
def test_audit_tokenizer(name, family, capsys):
    rc = main(["audit-tokenizer", name, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0, report["failures"][:5]
    assert report["family"] == family and report["failures"] == []
    assert report["n_checked_tokens"] == report["n_text"] > 30000
    if name == "mistral":
        assert report["n_byte_fallback"] == 256
    else:
        assert report["n_invalid_utf8"] > 0  # byte-level vocabularies split UTF-8 characters


def test_audit_tokenizer_path_text_output(capsys):
    SMOLLM2_DIR = Path(__file__).parent / "data" / "tokenizers" / "smollm2"

    rc = main(["audit-tokenizer", str(SMOLLM2_DIR)])
    out = capsys.readouterr().out
    assert rc == 0 and "round trip" in out and "OK" in out and "49152" in out


def test_audit_tokenizer_unknown(capsys):
    rc = main(["audit-tokenizer", "no-such-tokenizer"])
    assert rc == 2 and "neither a known name" in capsys.readouterr().err


def test_json_bad_schema_file(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc = main(["json", "--schema", str(bad), "hi"])
    assert rc == 2 and "cannot read schema" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[1]
PERSON = ROOT / "examples" / "schemas" / "person.json"


def test_json_unsupported_keyword_fails_before_loading_the_model(capsys, tmp_path, monkeypatch):
    import constrain.cli as cli

    monkeypatch.setattr(cli, "_load_model", lambda args: pytest.fail("model loaded for a schema that cannot compile"))
    schema = tmp_path / "unique.json"
    schema.write_text(json.dumps({"type": "array", "uniqueItems": True}))
    rc = main(["json", "--schema", str(schema), "hi"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "uniqueItems" in err and "at /uniqueItems" in err and "--lenient" in err


def test_json_missing_schema_file(capsys, tmp_path):
    rc = main(["json", "--schema", str(tmp_path / "nope.json"), "hi"])
    assert rc == 2 and "cannot read schema" in capsys.readouterr().err


def test_generate_bad_inputs(capsys, tmp_path, monkeypatch):
    import constrain.cli as cli

    monkeypatch.setattr(cli, "_load_model", lambda args: pytest.fail("model loaded for bad input"))
    assert main(["generate", "--grammar", str(tmp_path / "missing.lark"), "hi"]) == 2
    assert "cannot read grammar" in capsys.readouterr().err
    assert main(["generate", "--regex", "a(b", "hi"]) == 2
    assert "constrain:" in capsys.readouterr().err
    bad = tmp_path / "bad.lark"
    bad.write_text("start: (\n")
    assert main(["generate", "--grammar", str(bad), "hi"]) == 2
    with pytest.raises(SystemExit):  # argparse: one of --grammar/--regex/--choices is required
        main(["generate", "hi"])


@pytest.mark.slow
def test_json_constrained_on_default_model(capsys):
    import jsonschema

    rc = main(["json", "--json", "--threads", "1", "--max-new-tokens", "60", "--schema", str(PERSON),
               "Invent a person who lives in Lisbon."])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["constrained"] is True and out["finish_reason"] == "stop", out
    assert out["valid"] and out["errors"] == [] and json.loads(out["text"]) == out["value"]
    schema = json.loads(PERSON.read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(
        out["value"])
    assert 0 < out["new_tokens"] <= 60 and out["prompt_tokens"] > 0


@pytest.mark.slow
def test_json_streams_text_and_reports_truncation(capsys):
    rc = main(["json", "--threads", "1", "--max-new-tokens", "5", "--schema", str(PERSON), "Invent a person."])
    cap = capsys.readouterr()
    assert rc == 0
    assert cap.out.startswith('{"name":"')  # streamed as generated; 5 tokens cannot finish a person
    assert "finish=length" in cap.err and "--max-new-tokens" in cap.err


@pytest.mark.slow
def test_generate_regex_and_choices_on_default_model(capsys):
    import re

    rc = main(["generate", "--json", "--threads", "1", "--regex", "[0-9]{3}-[0-9]{4}", "--max-new-tokens", "12",
               "Give me a phone number."])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and out["finish_reason"] == "stop" and re.fullmatch("[0-9]{3}-[0-9]{4}", out["text"])
    rc = main(["generate", "--threads", "1", "--choices", "yes,no,maybe", "--temperature", "1.5", "--seed", "1",
               "Is the sky blue?"])
    cap = capsys.readouterr()
    assert rc == 0 and cap.out.strip() in ("yes", "no", "maybe") and "finish=stop" in cap.err


SMOL = str(ROOT / "tests" / "data" / "tokenizers" / "smollm2")


def test_check_schema_and_grammar(capsys):
    rc = main(["check", str(PERSON), "--tokenizer", SMOL, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["enforced"] and out["refused"] == [] and out["kind"] == "json-schema"
    assert out["compile_ms"] > 0 and out["first_mask_ms"] > 0
    import jsonschema

    jsonschema.validate(json.loads(out["example"]), json.loads(PERSON.read_text()))  # the example is valid
    assert out["walk_complete"] and out["mask_warm"]["n"] == out["mask_cold"]["n"] == out["walk_tokens"]
    rc = main(["check", str(ROOT / "grammars" / "sql.lark"), "--tokenizer", SMOL])
    text = capsys.readouterr().out
    assert rc == 0 and "enforced exactly" in text and "mask warm" in text and "example" in text


def test_check_lists_refused_keywords_with_pointers(capsys, tmp_path):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {
        "tags": {"type": "array", "uniqueItems": True}}, "required": ["tags"]}))
    rc = main(["check", str(schema), "--tokenizer", SMOL])
    text = capsys.readouterr().out
    assert rc == 1 and "REFUSED" in text and "uniqueItems at /properties/tags/uniqueItems" in text
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["check", str(bad), "--tokenizer", SMOL]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["check", str(PERSON), "--tokenizer", str(tmp_path / "missing")]) == 2


def test_explain_accepts_and_rejects(capsys):
    rc = main(["explain", str(PERSON), '{"name":"Ana","age":31,"city":"Lisbon"}', "--tokenizer", SMOL, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["complete"] and out["rejected"] is None
    assert out["steps"][0]["forced"] == '{"name":"' and all(s["ok"] for s in out["steps"])
    rc = main(["explain", str(PERSON), '{"name":"Ana","age":200}', "--tokenizer", SMOL, "--json"])
    out = json.loads(capsys.readouterr().out)
    r = out["rejected"]
    # "age":20 is viable (0..120), a third digit is not: the '0' at byte 22 is rejected
    assert rc == 1 and r["byte_offset"] == len('{"name":"Ana","age":20') and r["byte"] == "0"
    assert '","' in json.dumps(r["expected_terminals"]) or "," in r["next_bytes"]
    rc = main(["explain", "--regex", "[0-9]{3}-[0-9]{4}", "555-12", "--tokenizer", SMOL])
    text = capsys.readouterr().out
    assert rc == 1 and "incomplete" in text


def test_missing_model_directory_is_a_clear_error(capsys, tmp_path):
    rc = main(["generate", "--regex", "a+", "--model", str(tmp_path / "nope"), "hi"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and "Traceback" not in err


def test_warmup_compiles_every_kernel_family(capsys):
    from constrain.cli import main

    assert main(["warmup", "--json", "--no-formats"]) == 0  # (formats: ~15 s, tests/reliability/test_caches.py)
    times = json.loads(capsys.readouterr().out)
    assert set(times) == {"trie", "mask store", "diffusion checker", "total"}
    assert all(v >= 0 for v in times.values())
