"""Where moldiff keeps processed data and caches: ``$MOLDIFF_HOME`` or ``~/.cache/moldiff``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def moldiff_home() -> Path:
    """The cache directory (created on first use). Override with the ``MOLDIFF_HOME`` variable."""
    root = os.environ.get("MOLDIFF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "moldiff"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def file_digest(path: Path | str) -> str:
    """The first 16 hex digits of a file's SHA-256: names a checkpoint's exact weights."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
