"""CLI commands that need no model."""

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
