"""Every example in ``examples/`` runs, on the embedded model, and its output is checked
independently (pydantic, Lark's own parser, jsonschema, membership)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # pydantic resolves the annotations through the module
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def model_tok():
    from constrain import models

    return models.load_default(threads=1)


def test_extract_pydantic(model_tok):
    ex = load("extract_pydantic")
    r = ex.run(*model_tok)
    assert r.complete, r
    assert isinstance(r.value, ex.Order) and 1 <= len(r.value.items) <= 4
    assert ex.Order.model_validate_json(r.text) == r.value
    assert set(json.loads(r.text)) <= set(ex.Order.model_fields)  # no invented keys (objects closed)


def test_sql_query(model_tok):
    ex = load("sql_query")
    r = ex.run(*model_tok)
    assert r.complete and r.text.strip().lower().startswith("select")
    assert ex.lark_parse(r.text).data == "start"


def test_tool_call(model_tok):
    ex = load("tool_call")
    schema = ex.call_schema(ex.TOOLS)
    for req in ex.REQUESTS:
        r = ex.run(*model_tok, req)
        assert r.complete
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
                                        ).validate(r.value)
        name, args = r.value["name"], r.value["arguments"]
        jsonschema.validate(args, ex.TOOLS[name]["parameters"])  # the arguments of the tool it named
        assert isinstance(ex.IMPLS[name](**args), str)


def test_classify_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLES / "classify.py")], capture_output=True, text=True,
                         timeout=600, env={**__import__("os").environ, "CONSTRAIN_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stdout.splitlines() if "<-" in ln]
    ex = load("classify")
    assert len(lines) == len(ex.REVIEWS)
    assert all(ln.split("<-")[0].strip() in ex.LABELS for ln in lines)


def test_python_api_example_runs():
    out = subprocess.run([sys.executable, str(EXAMPLES / "python_api.py")], capture_output=True, text=True,
                         timeout=900, env={**__import__("os").environ, "CONSTRAIN_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pydantic: Pet(" in out.stdout and "batch:" in out.stdout
