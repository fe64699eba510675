"""Hot reload of the segment spec: a new version replaces the old one whole, or not at all."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edge.visits.classify import TraitClassifier
from edge.visits.spec import SpecError, model_file, read_spec

log = logging.getLogger(__name__)


class SpecHolder:
    """Holds the active, compiled segment spec and swaps in new versions of its file.

    A spec that fails to load at start-up raises :class:`SpecError` (the service
    must not start without one). Later, a changed file that fails validation is
    rejected: the error is logged and kept in :attr:`last_error`, and the previous
    spec stays active until the file changes again.

    Args:
        path: the spec file.
        override_path: a spec file that, whenever it exists, is used instead of
            ``path`` (the spec the central platform sent by downlink).
        feature_names: the site's feature layout.
        site_tags: the site's category tags.
        check_every_s: :meth:`maybe_reload` looks at the file at most this often.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        path: str | Path,
        feature_names: Sequence[str],
        site_tags: Sequence[str],
        *,
        override_path: str | Path | None = None,
        check_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured_path = Path(path)
        self.override_path = Path(override_path) if override_path is not None else None
        self._feature_names = list(feature_names)
        self._site_tags = list(site_tags)
        self._check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self._classifier = self._load(at_start=True)
        self._seen = self._stamp(self._classifier)
        self._checked = clock()

    @property
    def classifier(self) -> TraitClassifier:
        """The active compiled spec."""
        with self._lock:
            return self._classifier

    @property
    def path(self) -> Path:
        """The spec file in force: the downlinked one when present, else the site's."""
        if self.override_path is not None and self.override_path.is_file():
            return self.override_path
        return self.configured_path

    @property
    def spec_version(self) -> str:
        return self.classifier.spec_version

    def maybe_reload(self, *, force: bool = False) -> bool:
        """Load the spec file again if it changed; return whether a new spec is active."""
        now = self._clock()
        if not force and now - self._checked < self._check_every_s:
            return False
        self._checked = now
        current = self.classifier
        stamp = self._stamp(current)
        if stamp == self._seen and not force:
            return False
        self._seen = stamp
        try:
            loaded = self._load()
        except SpecError as error:
            self.last_error = str(error)
            log.error("rejected segment spec %s, keeping version %s: %s",
                      self.path, current.spec_version, error)
            return False
        with self._lock:
            self._classifier = loaded
        self.last_error = None
        log.info("segment spec %s: version %s active (was %s)",
                 self.path, loaded.spec_version, current.spec_version)
        return True

    def _load(self, *, at_start: bool = False) -> TraitClassifier:
        try:
            spec, model = read_spec(self.path)
        except SpecError:
            if not at_start or self.path == self.configured_path:
                raise
            # A bad downlinked spec never leaves the box without one: fall back.
            log.error("downlinked segment spec %s is invalid; using %s", self.path,
                      self.configured_path)
            spec, model = read_spec(self.configured_path)
        return TraitClassifier(spec, self._feature_names, self._site_tags, model)

    def _stamp(self, classifier: TraitClassifier) -> tuple[tuple[int, int, int] | None, ...]:
        files = [self.path, *([self.override_path] if self.override_path else [])]
        if classifier.spec.classifier is not None:
            files.append(model_file(self.path, classifier.spec))
        stamp: list[tuple[int, int, int] | None] = []  # None: the file is missing
        for path in files:
            try:
                info = os.stat(path)
                stamp.append((info.st_mtime_ns, info.st_size, info.st_ino))
            except OSError:
                stamp.append(None)
        return tuple(stamp)
