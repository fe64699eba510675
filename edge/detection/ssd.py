"""SSD-style detectors with NMS inside the graph (SSDLite-MobileNetV2 pedestrians).

Input: uint8 NHWC RGB, resized to the network size. Outputs: normalised
``(ymin, xmin, ymax, xmax)`` boxes, scores and classes, already suppressed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.config.vision import DetectorConfig
from edge.detection.session import make_session
from edge.errors import ModelError
from edge.records import Detections

NATIVE_SIZE = (300, 300)


class SsdDetector:
    """A TensorFlow-object-detection-API SSD exported to ONNX."""

    def __init__(self, path: Path, config: DetectorConfig, person_class: int = 1) -> None:
        self.name = path.stem
        self.input_size: tuple[int, int] = (
            (int(config.input_size[0]), int(config.input_size[1]))
            if config.input_size
            else NATIVE_SIZE
        )
        self._session = make_session(path, config.threads)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].type != "tensor(uint8)":
            raise ModelError(
                f"{path.name}: expected one uint8 NHWC image input, got "
                f"{[(i.name, i.shape, i.type) for i in inputs]}"
            )
        self._input_name = inputs[0].name
        names = {output.name.split(":")[0]: output.name for output in self._session.get_outputs()}
        wanted = ("detection_boxes", "detection_scores", "detection_classes")
        if not all(name in names for name in wanted):
            raise ModelError(f"{path.name}: expected outputs {wanted}, got {sorted(names)}")
        self._outputs = [names[name] for name in wanted]
        self._confidence = config.confidence_threshold
        self._person_class = person_class

    def detect(self, image: np.ndarray) -> Detections:
        """Person boxes in a BGR frame, in its pixels (NMS already done by the graph)."""
        height, width = self.input_size
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        blob = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)[None]
        boxes, scores, classes = self._session.run(self._outputs, {self._input_name: blob})
        boxes, scores, classes = boxes[0], scores[0], classes[0]
        keep = (scores >= self._confidence) & (classes.astype(np.int64) == self._person_class)
        image_h, image_w = image.shape[:2]
        yx = boxes[keep]
        xyxy = np.stack(
            [yx[:, 1] * image_w, yx[:, 0] * image_h, yx[:, 3] * image_w, yx[:, 2] * image_h],
            axis=1,
        )
        return Detections(xyxy.astype(np.float32), scores[keep].astype(np.float32))
