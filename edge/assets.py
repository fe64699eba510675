"""Models and sample recordings: find them, verify their checksum, fetch them.

Every file is named in ``models/manifest.yaml`` with its SHA-256 and a pinned
upstream URL. A file is looked for, in order, at:

1. ``$EDGE_ASSETS_DIR/<path>``: an offline copy laid out like the manifest's
   ``path`` (a USB stick, or ``../shared`` in tests);
2. the local store ``$EDGE_MODEL_DIR`` (default ``<state dir>/models``), where
   ``edge models fetch`` puts what it imports or downloads;
3. any ``also_at`` location (e.g. Debian's ``opencv-doc`` copy of the sample video);
4. the pinned URL, downloaded into the store (unless ``EDGE_OFFLINE=1``).

A file whose checksum differs is never used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from edge.config.yaml_loader import UniqueKeyLoader
from edge.errors import ModelError
from edge.paths import share_dir, state_dir

AssetKind = Literal["models", "samples"]
ASSET_SCHEME = "asset:"


@dataclass(frozen=True, slots=True)
class AssetEntry:
    """One manifest entry (a model or a sample recording)."""

    name: str
    kind: AssetKind
    file: str
    path: str
    sha256: str
    url: str | None
    licence: str
    also_at: tuple[str, ...] = ()
    spec: dict[str, Any] = field(default_factory=dict)


@cache
def manifest() -> dict[str, AssetEntry]:
    """All manifest entries by name."""
    manifest_path = share_dir() / "models" / "manifest.yaml"
    try:
        raw = yaml.load(manifest_path.read_text(), Loader=UniqueKeyLoader)
    except yaml.MarkedYAMLError as problem:  # e.g. a model listed twice under one name
        line = f":{problem.problem_mark.line + 1}" if problem.problem_mark else ""
        raise ModelError(f"{manifest_path}{line}: not valid YAML: {problem.problem}") from None
    entries: dict[str, AssetEntry] = {}
    for kind in ("models", "samples"):
        for name, item in (raw.get(kind) or {}).items():
            known = {"file", "path", "sha256", "url", "licence", "also_at"}
            entries[name] = AssetEntry(
                name=name,
                kind=kind,
                file=item["file"],
                path=item["path"],
                sha256=item["sha256"].lower(),
                url=item.get("url"),
                licence=item.get("licence", ""),
                also_at=tuple(item.get("also_at") or ()),
                spec={k: v for k, v in item.items() if k not in known},
            )
    return entries


def entry(name: str) -> AssetEntry:
    try:
        return manifest()[name]
    except KeyError:
        known = ", ".join(sorted(manifest()))
        raise ModelError(
            f"no model or sample named {name!r} in the manifest; known: {known}"
        ) from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_store() -> Path:
    return Path(os.environ.get("EDGE_MODEL_DIR") or state_dir() / "models")


def _candidates(item: AssetEntry) -> list[Path]:
    found = []
    assets_dir = os.environ.get("EDGE_ASSETS_DIR")
    if assets_dir:
        found.append(Path(assets_dir) / item.path)
    found.append(model_store() / item.file)
    found.extend(Path(p) for p in item.also_at)
    return found


def how_to_get(item: AssetEntry) -> str:
    url = f"or download {item.url} " if item.url else ""
    return (
        f"run `edge models fetch --assets DIR` with DIR holding {item.path}, "
        f"{url}(sha256 {item.sha256[:12]}…)"
    )


def verify(path: Path, item: AssetEntry) -> Path:
    """Return ``path`` if its checksum matches ``item``; raise ``ModelError`` if not."""
    actual = sha256_of(path)
    if actual != item.sha256:
        raise ModelError(
            f"{path} is not the expected {item.name}: sha256 {actual[:12]}… "
            f"instead of {item.sha256[:12]}… (corrupt or tampered); {how_to_get(item)}"
        )
    return path


def resolve(name: str, *, download: bool | None = None) -> Path:
    """Path of a verified copy of manifest entry ``name``, fetching it if allowed."""
    item = entry(name)
    bad: list[str] = []
    for candidate in _candidates(item):
        if candidate.is_file():
            try:
                return verify(candidate, item)
            except ModelError as error:
                bad.append(str(error))
    if download is None:
        download = os.environ.get("EDGE_OFFLINE", "") not in ("1", "true", "yes")
    if download and item.url:
        return fetch(item.name)
    if bad:  # the error names the bad file, its checksum and how to get a good copy
        raise ModelError(f"{item.name}: no valid copy; {bad[0]}")
    raise ModelError(f"{item.name} not found; {how_to_get(item)}")


def fetch(name: str, assets_dir: Path | None = None) -> Path:
    """Copy (from ``assets_dir``) or download ``name`` into the model store, verified."""
    item = entry(name)
    store = model_store()
    target = store / item.file
    if target.is_file() and sha256_of(target) == item.sha256:
        return target
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=store, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    try:
        if assets_dir is not None:
            source = assets_dir / item.path
            if not source.is_file():
                raise ModelError(f"{source} does not exist; {how_to_get(item)}")
            shutil.copyfile(source, tmp_path)
        elif item.url:
            try:
                with (urllib.request.urlopen(item.url, timeout=60) as response,
                      tmp_path.open("wb") as out):
                    shutil.copyfileobj(response, out)
            except OSError as error:
                raise ModelError(
                    f"could not download {item.name} from {item.url}: {error}; "
                    f"{how_to_get(item)}"
                ) from error
        else:
            raise ModelError(f"{item.name} has no download URL; {how_to_get(item)}")
        verify(tmp_path, item)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
    return target


def resolve_uri(value: str) -> str:
    """Turn ``asset:NAME`` into a verified local path; anything else is returned as is."""
    if value.startswith(ASSET_SCHEME):
        return str(resolve(value[len(ASSET_SCHEME) :]))
    return value
