"""Multi-object tracking: detections of successive frames -> tracks with stable ids."""

from edge.tracking.bytetrack import ByteTracker

__all__ = ["ByteTracker"]
