"""Content-addressed on-disk caches, shared by every layer.

Layout: ``<root>/<kind>/<key>.<ext>``, where ``key`` is built from fingerprints of the inputs
plus constrain's cache-format version.  Writes are atomic (temp file + ``os.replace``) so
concurrent processes never see half a file; a file that fails to load is logged, removed and
rebuilt by the caller.  ``root`` is ``$CONSTRAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/constrain``,
else ``~/.cache/constrain``.  Set ``CONSTRAIN_CACHE_DIR=off`` to disable disk caching.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("constrain.cache")

#: bump when any cached on-disk format changes
CACHE_FORMAT = 1


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
