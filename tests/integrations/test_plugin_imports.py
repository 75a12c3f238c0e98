"""The serving plugins load no numba at import time (runs in the main suite, no vLLM needed).

vLLM calls constrain's ``vllm.general_plugins`` entry point in every process, workers included,
before the worker installs its Triton kernel overrides; vLLM 0.32's CPU platform then scans every
module namespace, and llvmlite's lazy ``ffi.lib`` object breaks that scan
(``'_lib_fn_wrapper' object has no attribute 'get'``): the engine never starts.  The real-engine
tests (``.ci/vllm-tests``) show the crash, but only in their own venv, minutes later; this test
names the module that pulled numba in, in a second.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = r"""
import builtins, json, sys, traceback
first = []
real_import = builtins.__import__
def probe(name, *args, **kwargs):
    if not first and name.split(".")[0] in ("numba", "llvmlite") and "llvmlite" not in sys.modules:
        first.append("".join(traceback.format_stack(limit=8)))
    return real_import(name, *args, **kwargs)
builtins.__import__ = probe
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps({"llvmlite": "llvmlite" in sys.modules, "numba": "numba" in sys.modules,
                  "where": first[0] if first else ""}))
"""


@pytest.mark.parametrize("module", [
    "constrain.integrations.vllm_backend",   # the general_plugins entry point's module
    "constrain.integrations.vllm_logits",    # the logits_processors entry point's module
])
def test_plugin_module_imports_without_numba(module):
    r = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert not res["llvmlite"] and not res["numba"], f"importing {module} loads numba:\n{res['where']}"
