"""Search bytes, files, SQLite databases and JSON messages for needles and embeddings.

A SQLite file is searched twice: as raw bytes (free pages, the WAL and journal
included, where deleted rows linger) and as a logical dump of every value, since
a long value is split across overflow pages in the file and a needle can straddle
the split. Structure is checked too: a BLOB value, or a list of many floats (what
an appearance embedding looks like once stored or serialized), is a finding
whatever its bytes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.privacy.needles import Needle

SQLITE_MAGIC = b"SQLite format 3\x00"
EMBEDDING_MIN_FLOATS = 64
# A run of >= 64 decimal fractions separated by commas/spaces: a printed float vector.
_FLOAT_RUN = re.compile(
    rb"(?:[-+]?\d*\.\d+(?:[eE][-+]?\d+)?[\s,;]+){%d,}" % (EMBEDDING_MIN_FLOATS - 1)
    + rb"[-+]?\d*\.\d+"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found where it must not be."""

    source: str        # file path, "mqtt <topic>", "log", "GET /api/..."
    kind: str          # needle kind, or "blob" / "embedding"
    label: str
    offset: int | None = None

    def __str__(self) -> str:
        where = f" at byte {self.offset}" if self.offset is not None else ""
        return f"{self.kind}: {self.label} in {self.source}{where}"


@dataclass(slots=True)
class ScanStats:
    sources: int = 0
    bytes: int = 0
    database_values: int = 0
    json_documents: int = 0


class Scanner:
    """Aho-Corasick automata over a set of needles (case-sensitive and case-folded)."""

    def __init__(self, needles: Iterable[Needle]) -> None:
        import ahocorasick_rs

        needles = list(needles)
        self.exact = [n for n in needles if not n.fold_case]
        self.folded = [n for n in needles if n.fold_case]
        self._exact = ahocorasick_rs.BytesAhoCorasick([n.value for n in self.exact])
        self._folded = ahocorasick_rs.BytesAhoCorasick([n.value for n in self.folded])
        self.stats = ScanStats()

    @property
    def needle_count(self) -> int:
        return len(self.exact) + len(self.folded)

    def scan_bytes(self, source: str, data: bytes) -> list[Finding]:
        """Every needle in ``data`` (overlapping matches included)."""
        self.stats.sources += 1
        self.stats.bytes += len(data)
        findings = [
            Finding(source, self.exact[i].kind, self.exact[i].label, start)
            for i, start, _ in self._exact.find_matches_as_indexes(data, overlapping=True)
        ]
        findings += [
            Finding(source, self.folded[i].kind, self.folded[i].label, start)
            for i, start, _ in self._folded.find_matches_as_indexes(data.lower(),
                                                                    overlapping=True)
        ]
        findings += [Finding(source, "embedding", "a printed vector of "
                             f"{len(re.findall(rb'[-+]?[0-9]*[.][0-9]+', m.group()))} floats",
                             m.start())
                     for m in _FLOAT_RUN.finditer(data)]
        return findings

    def scan_file(self, path: Path, name: str | None = None) -> list[Finding]:
        data = path.read_bytes()
        source = name or str(path)
        findings = self.scan_bytes(source, data)
        if data.startswith(SQLITE_MAGIC):
            findings += self.scan_database(path, source)
        return findings

    def scan_tree(self, root: Path) -> list[Finding]:
        """Every file under ``root`` (SQLite files also logically)."""
        findings: list[Finding] = []
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            findings += self.scan_file(path, str(path.relative_to(root.parent)))
        return findings

    def scan_database(self, path: Path, source: str) -> list[Finding]:
        """Every value of every table: its text searched, its type and shape checked."""
        findings: list[Finding] = []
        uri = f"{path.resolve().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True)
        try:
            tables = [row[0] for row in connection.execute(
                "select name from sqlite_master where type = 'table'")]
            for table in tables:
                chunks: list[bytes] = []
                for row in connection.execute(f"select * from [{table}]"):
                    for column, value in enumerate(row):
                        self.stats.database_values += 1
                        findings += _value_shape(f"{source} table {table} column {column}", value)
                        if value is not None:
                            chunks.append(value if isinstance(value, bytes) else
                                          str(value).encode())
                if chunks:
                    dump = b"\n".join(chunks)
                    # Counted as a source of its own: these are the logical values.
                    findings += self.scan_bytes(f"{source} table {table} (values)", dump)
        finally:
            connection.close()
        return findings

    def scan_json(self, source: str, payload: bytes) -> list[Finding]:
        """A message: its bytes, and (if it is JSON) the shape of what it holds."""
        findings = self.scan_bytes(source, payload)
        try:
            document = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            return findings
        self.stats.json_documents += 1
        findings += [Finding(source, "embedding", f"a list of {len(values)} floats at {where}")
                     for where, values in _float_lists(document, "")]
        return findings


def _value_shape(source: str, value: Any) -> list[Finding]:
    if isinstance(value, bytes):
        return [Finding(source, "blob", f"a BLOB of {len(value)} bytes")]
    if isinstance(value, str) and value[:1] in "[{":
        try:
            document = json.loads(value)
        except ValueError:
            return []
        return [Finding(source, "embedding", f"a list of {len(values)} floats at {where}")
                for where, values in _float_lists(document, "")]
    return []


def _float_lists(document: Any, path: str) -> Iterator[tuple[str, list]]:
    """Lists of >= 64 numbers, not all whole: what a serialized embedding looks like."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _float_lists(value, f"{path}/{key}")
    elif isinstance(document, list):
        numbers = [v for v in document if isinstance(v, float | int) and not isinstance(v, bool)]
        if (len(numbers) >= EMBEDDING_MIN_FLOATS and len(numbers) == len(document)
                and any(isinstance(v, float) and not v.is_integer() for v in numbers)):
            yield path or "/", document
        else:
            for index, value in enumerate(document):
                yield from _float_lists(value, f"{path}/{index}")


@dataclass(slots=True)
class AuditReport:
    """What an audit looked for, in how much, and what it found."""

    needles: dict[str, int] = field(default_factory=dict)
    stats: ScanStats = field(default_factory=ScanStats)
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        total = sum(self.needles.values())
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.needles.items())
        return (f"{total} needles ({kinds}); {self.stats.sources} sources, "
                f"{self.stats.bytes} bytes, {self.stats.database_values} database values, "
                f"{self.stats.json_documents} JSON documents; {len(self.findings)} findings")
