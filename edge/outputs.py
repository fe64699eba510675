"""Output files of the tools (replay tracks, annotated video, report): checked before
the work starts, written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable
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


class OutputFile:
    """A text output written whole or not at all: the lines go to a temporary file
    beside ``path``, renamed over ``path`` by :meth:`commit`. :meth:`discard` (or
    leaving the ``with`` block on an exception) removes it, so a replay that fails
    (bad input, Ctrl-C) leaves the engineer's earlier file as it was.

    Raises:
        OutputError: ``path`` cannot be written (checked when it is made).
    """

    def __init__(self, path: Path, what: str = "tracks") -> None:
        ensure_writable(path, what)
        self.path, self.what = path, what
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        except OSError as error:
            raise self._error(error) from None
        self._temporary = Path(temporary)
        self._stream: TextIO = os.fdopen(handle, "w", encoding="utf-8")

    def _error(self, error: OSError) -> OutputError:
        return OutputError(f"cannot write the {self.what} to {self.path}: "
                           f"{error.strerror or error}")

    def writelines(self, lines: Iterable[str]) -> None:
        """Append ``lines`` (each ending in a newline).

        Raises:
            OutputError: the write failed (disk full...); the caller's ``with`` block
                then removes the temporary file.
        """
        try:
            self._stream.writelines(lines)
        except OSError as error:
            raise self._error(error) from None

    def commit(self) -> None:
        """Put the file in place under its name (the file's mode as a new file gets)."""
        try:
            self._stream.close()
            os.chmod(self._temporary, _new_file_mode(self.path))
            os.replace(self._temporary, self.path)
        except OSError as error:
            self.discard()
            raise self._error(error) from None

    def discard(self) -> None:
        """Drop what was written; the file under ``path`` (if any) is untouched."""
        with contextlib.suppress(OSError):
            self._stream.close()
        with contextlib.suppress(OSError):
            self._temporary.unlink()

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` has, or a new file would get (0666 less the umask): a temporary
    file is made 0600."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def open_output(path: Path | None, what: str = "tracks") -> OutputFile | None:
    """An :class:`OutputFile` for ``path`` (folders made), or None; OutputError when it
    cannot be written."""
    return None if path is None else OutputFile(path, what)
