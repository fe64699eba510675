"""Output files of the tools (replay tracks, annotated video, report): checked before
the work starts, written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TextIO

from edge.errors import OutputError


def ensure_writable(path: Path, what: str) -> None:
    """Fail now, with one line, if ``path`` cannot be written (before minutes of work).

    Creates missing parent folders. Leaves no file behind.

    Raises:
        OutputError: the path is a folder, or its folder cannot be created or written.
    """
    if path.is_dir():
        raise OutputError(f"cannot write the {what} to {path}: it is a folder; give a file name")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"cannot write the {what} to {path}: {blocker} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with path.open("ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as error:
        raise OutputError(
            f"cannot write the {what} to {path}: {error.strerror or error}"
        ) from None


def write_text_whole(path: Path, text: str, what: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place,
    so a failure (disk full) never leaves half a file under the final name."""
    ensure_writable(path, what)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise OutputError(f"cannot write the {what} to {path}: {error.strerror or error}") from None


def open_output(path: Path | None, what: str = "tracks") -> TextIO | None:
    """A text file to write (folders made), or None; OutputError when it cannot be."""
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w")
    except OSError as error:
        raise OutputError(f"cannot write {what} to {path}: {error.strerror}") from None
