"""Leak audit: look for every identifier of the inputs in everything a run left behind.

Usage (what ``tests/test_privacy_audit.py`` does after a full run)::

    audit = LeakAudit(build_needles(pcaps, video=video, max_frames=150))
    audit.tree(state_dir)                 # the database (raw and logical), outbox, files
    audit.text("log", captured_logs)
    for topic, payload in mqtt_payloads:
        audit.message(f"mqtt {topic}", payload)
    assert audit.report.clean, audit.report.findings

It finds any address of the captures in any common spelling (any case, with or
without separators, raw, decimal, base64) or as an unkeyed SHA-256/MD5/SHA-1
digest, any SSID, JPEG/PNG/video/numpy signatures, runs of pixel bytes of the
decoded frames, BLOB values and float vectors (embeddings).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from edge.privacy.needles import (
    NeedleSet,
    capture_identifiers,
    frame_needles,
    identifier_needles,
)
from edge.privacy.scan import AuditReport, Finding, Scanner, ScanStats

__all__ = ["AuditReport", "Finding", "LeakAudit", "build_needles"]


def build_needles(
    captures: Iterable[str | Path],
    *,
    video: str | Path | None = None,
    max_frames: int = 150,
    extra_addresses: Iterable[bytes] = (),
) -> NeedleSet:
    """Needles for every address and SSID of ``captures`` (plus ``extra_addresses``),
    image signatures, and pixel runs of the first ``max_frames`` frames of ``video``."""
    needles = identifier_needles(capture_identifiers(captures), extra_addresses)
    if video is not None:
        needles.extend(frame_needles(video, max_frames=max_frames))
    return needles


class LeakAudit:
    """Collects findings over many sources into one :class:`AuditReport`."""

    def __init__(self, needles: NeedleSet, scanner: Scanner | None = None) -> None:
        self.needles = needles
        self.scanner = scanner or Scanner(needles)
        self.scanner.stats = ScanStats()
        self.report = AuditReport(needles=needles.counts(), stats=self.scanner.stats)

    def fresh(self) -> LeakAudit:
        """A new audit (empty report) with the same needles, without rebuilding the search."""
        return LeakAudit(self.needles, self.scanner)

    def _keep(self, findings: list[Finding]) -> list[Finding]:
        self.report.findings += findings
        return findings

    def tree(self, root: Path) -> list[Finding]:
        """Every file under ``root``; SQLite files also value by value."""
        return self._keep(self.scanner.scan_tree(root))

    def file(self, path: Path, name: str | None = None) -> list[Finding]:
        return self._keep(self.scanner.scan_file(path, name))

    def text(self, source: str, data: bytes | str) -> list[Finding]:
        """Logs, printed output, rendered pages."""
        raw = data.encode() if isinstance(data, str) else data
        return self._keep(self.scanner.scan_bytes(source, raw))

    def message(self, source: str, payload: bytes) -> list[Finding]:
        """An MQTT payload or an API response: bytes, and JSON shape if it is JSON."""
        return self._keep(self.scanner.scan_json(source, payload))
