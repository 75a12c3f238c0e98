"""Content-addressed on-disk caches, shared by every layer.

Layout: ``<root>/<kind>/<key>.<ext>``, where ``key`` is built from fingerprints of the inputs
plus constrain's cache-format version.  Writes are atomic (temp file + ``os.replace``) so
concurrent processes never see half a file; a file that fails to load is logged, removed and
rebuilt by the caller.  ``root`` is ``$CONSTRAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/constrain``,
else ``~/.cache/constrain``.  Set ``CONSTRAIN_CACHE_DIR=off`` to disable disk caching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("constrain.cache")

#: bump when any cached on-disk format changes
CACHE_FORMAT = 2
_MAGIC = b"constrain-cache\n"


def version_tag() -> str:
    """``f<format>-v<constrain version>``: part of every cache file name, so another version
    never even opens this one's files."""
    import constrain

    v = "".join(c if c.isalnum() or c in ".-_" else "_" for c in str(constrain.__version__))
    return f"f{CACHE_FORMAT}-v{v}"


def cache_root() -> Path | None:
    """The cache root directory, or ``None`` when disk caching is disabled."""
    env = os.environ.get("CONSTRAIN_CACHE_DIR")
    if env is not None:
        if env.strip().lower() in ("", "off", "0", "none", "disabled"):
            return None
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "constrain"


def cache_path(kind: str, name: str) -> Path | None:
    """Path of a cache entry (its directory is created), or ``None`` when caching is off."""
    root = cache_root()
    if root is None:
        return None
    d = root / kind
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # read-only home, etc.: caching is an optimisation, never a failure
        log.warning("constrain cache disabled: cannot create %s (%s)", d, e)
        return None
    return d / name


def atomic_write(path: Path, write) -> None:
    """Call ``write(fileobj)`` on a temp file next to ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def discard(path: Path, reason: str) -> None:
    """Remove a bad cache file (corrupt, wrong version), logging why."""
    log.warning("discarding cache file %s: %s", path, reason)
    try:
        path.unlink()
    except OSError:
        pass


def write_verified(path: Path, key: str, payload: bytes) -> None:
    """Write ``payload`` with a header naming the format, constrain's version, the cache key
    and the payload's sha256 (atomically)."""
    import constrain

    head = json.dumps({"format": CACHE_FORMAT, "version": str(constrain.__version__), "key": key,
                       "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}).encode()

    def write(f):
        f.write(_MAGIC + head + b"\n")
        f.write(payload)

    atomic_write(path, write)


def read_verified(path: Path, key: str) -> bytes | None:
    """The payload of a file written by :func:`write_verified` for ``key``, or ``None`` (the
    file is missing, or truncated / corrupted / of another version or key: then it is
    discarded, and the caller rebuilds).  A payload is returned only if its sha256 matches."""
    import constrain

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("cannot read cache file %s: %s", path, e)
        return None
    why = None
    if not data.startswith(_MAGIC):
        why = "not a constrain cache file"
    else:
        nl = data.find(b"\n", len(_MAGIC))
        try:
            head = json.loads(data[len(_MAGIC):nl]) if nl > 0 else None
        except ValueError:
            head = None
        payload = data[nl + 1:] if nl > 0 else b""
        if not isinstance(head, dict):
            why = "unreadable header"
        elif head.get("format") != CACHE_FORMAT or head.get("version") != str(constrain.__version__):
            why = f"written by format {head.get('format')} / constrain {head.get('version')}"
        elif head.get("key") != key:
            why = f"written for key {head.get('key')!r}, expected {key!r}"
        elif head.get("size") != len(payload):
            why = f"truncated: {len(payload)} of {head.get('size')} bytes"
        elif head.get("sha256") != hashlib.sha256(payload).hexdigest():
            why = "checksum mismatch (corrupted)"
        else:
            return payload
    discard(path, why)
    return None


def load_or_build(kind: str, name: str, key: str, build, encode, decode):
    """The object cached as ``<root>/<kind>/<name>`` for ``key``, else ``build()`` (then saved).

    ``encode(obj) -> bytes`` and ``decode(bytes) -> obj`` (de)serialise it; a verified file
    (:func:`read_verified`) whose payload still fails to decode (``decode`` raises) is
    discarded and rebuilt, never used, and a file that cannot be written is logged: a cache
    is an optimisation, never a failure.  With caching off this is ``build()``."""
    path = cache_path(kind, name)
    if path is not None:
        payload = read_verified(path, key)
        if payload is not None:
            try:
                return decode(payload)
            except Exception as e:  # noqa: BLE001 - a checksummed file that still fails: rebuild
                discard(path, repr(e))
    obj = build()
    if path is not None:
        try:
            write_verified(path, key, encode(obj))
        except OSError as e:
            log.warning("could not write cache file %s: %s", path, e)
    return obj
