"""Person detectors on onnxruntime, behind one interface: ``Detector.detect(frame)``."""

from edge.detection.base import Detector, load_detector

__all__ = ["Detector", "load_detector"]
