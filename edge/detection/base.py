"""The detector interface and the factory that builds one from the site config."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from edge import assets
from edge.config.vision import DetectorConfig
from edge.detection.ssd import SsdDetector
from edge.detection.yolox import YoloxDetector
from edge.errors import ModelError
from edge.records import Detections


class Detector(Protocol):
    """Finds people in a BGR image."""

    name: str

    @property
    def input_size(self) -> tuple[int, int] | None:
        """The network input ``(height, width)``; None until the first frame when it is
        derived from the frame's size."""
        ...

    def detect(self, image: np.ndarray) -> Detections:
        """Person boxes in ``image`` (``(h, w, 3)`` uint8 BGR), in its pixels."""
        ...


def resolve_model(config: DetectorConfig, *, download: bool | None = None,
                  ) -> tuple[Path, str, dict]:
    """Return ``(path, decoder kind, manifest spec)`` for the configured model.

    Args:
        config: the detector config.
        download: fetch a manifest model missing here from its pinned URL (None: unless
            ``EDGE_OFFLINE``; ``edge check-config`` checks without downloading).

    Raises:
        ModelError: no such file, no verified copy of a manifest model, or a sample
            recording named as the model; the message says how to get one.
    """
    as_path = Path(config.model).expanduser()
    if config.model.endswith(".onnx") or as_path.is_file():
        if not as_path.is_file():
            default = DetectorConfig.model_fields["model"].default
            raise ModelError(
                f"model file {as_path} does not exist; put the .onnx file there, or set "
                f"detector.model to a model of the manifest (e.g. {default}, which "
                f"`edge models fetch --assets DIR` or `edge models fetch` installs)")
        if config.kind is None:
            raise ModelError(
                f"detector.kind must be set (yolox or ssd) for a model given by path ({as_path})"
            )
        return as_path, config.kind, {}
    item = assets.entry(config.model)
    if item.kind != "models":
        raise ModelError(f"{config.model!r} is a sample recording, not a model")
    return assets.resolve(config.model, download=download), item.spec["decoder"], item.spec


def load_detector(config: DetectorConfig) -> Detector:
    """Build the configured detector, checking the model's shape on load."""
    path, kind, spec = resolve_model(config)
    if kind == "yolox":
        # A manifest model says whether it runs at other sizes; one given by path does
        # when its input size is symbolic (then its default comes from the frame too).
        resizable = bool(spec.get("input", {}).get("resizable", False))
        return YoloxDetector(path, config, person_class=int(spec.get("person_class", 0)),
                             resizable=resizable)
    if kind == "ssd":
        return SsdDetector(path, config, person_class=int(spec.get("person_class", 1)))
    raise ModelError(f"unknown decoder kind {kind!r}; expected yolox or ssd")
