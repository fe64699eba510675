"""YOLOX-family detectors (YOLOX-Nano, the light person detector).

Pre-processing: letterbox to the network size, image at the top-left of a canvas
filled with 114, BGR, 0..255, copied into the network's input as the stem's 12-channel
patches (or as NCHW pixels, for a model whose stem the edit left whole).
Post-processing: the network returns one row
per grid cell of strides 8, 16 and 32, ``(dx, dy, log_w, log_h, objectness,
class scores...)`` with objectness and scores already sigmoided; boxes are decoded
on the grid, scaled back to the image and reduced with NMS. The model runs as
:mod:`edge.detection.graph_edit` leaves it: any input size, only the person's
class score, and patches in.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from edge.config.vision import DetectorConfig
from edge.detection.graph_edit import BOX_COLUMNS, PATCH_ORDER
from edge.detection.input_size import default_input_size
from edge.detection.session import edited_yolox, make_session
from edge.errors import ModelError
from edge.records import Detections

STRIDES = (8, 16, 32)
PAD_VALUE = 114


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets ``(n, 2)`` and strides ``(n, 1)`` in the network's row order."""
    cells, strides = [], []
    for stride in STRIDES:
        gh, gw = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((gh * gw, 1), stride))
    return (
        np.concatenate(cells).astype(np.float32),
        np.concatenate(strides).astype(np.float32),
    )


class YoloxDetector:
    """A YOLOX ONNX model, decoded for one class (person).

    Its input size is ``detector.input_size`` when set; else, for a resizable model,
    derived from the first frame's size (:func:`~edge.detection.input_size.default_input_size`:
    aspect ratio kept, a 60-pixel person stays >= 36 input pixels); else the model's own.
    Later frames of another size are letterboxed into the size already chosen.
    """

    def __init__(self, path: Path, config: DetectorConfig, person_class: int = 0,
                 resizable: bool = False) -> None:
        self.name = path.stem
        probe = make_session(path, threads=1)
        shape = probe.get_inputs()[0].shape
        if len(shape) != 4 or shape[1] != 3:
            raise ModelError(
                f"{path.name}: expected a YOLOX input of shape [1, 3, H, W], got {shape}"
            )
        native = (shape[2], shape[3]) if all(isinstance(d, int) for d in shape[2:]) else None
        self._confidence = config.confidence_threshold
        self._nms_iou = config.nms_iou_threshold
        self._person_column = BOX_COLUMNS + person_class
        self._pasted: tuple[int, int] | None = None  # size of the image last pasted
        size: tuple[int, int] | None = None  # None: derived from the first frame
        if config.input_size:
            size = (int(config.input_size[0]), int(config.input_size[1]))
        elif native is not None and not resizable:
            size = (int(native[0]), int(native[1]))
        self.input_size = size
        # Any input size, the head cut to the person class, patches in (graph_edit).
        self._session = make_session(edited_yolox(path, person_class, patches=True),
                                     config.threads)
        self._input_name = self._session.get_inputs()[0].name
        self._patches = takes_patches(self._session)
        # Check the output now, at the size frames will use or (when it comes from the
        # first frame) at the smallest one: a bad model fails on load, not on a frame.
        self._use_size(size or (STRIDES[-1], STRIDES[-1]))
        self._sized = size is not None

    def _use_size(self, size: tuple[int, int]) -> None:
        """Allocate the per-size buffers and check the model's output at ``size``."""
        self._network_size = size
        self._cells, self._strides = _grid(*size)
        self._canvas = np.full((*size, 3), PAD_VALUE, np.uint8)
        self._blob = empty_input(size, self._patches)
        self._pasted = None
        self._check_output()

    def _check_output(self) -> None:
        height, width = self._network_size
        try:
            (output,) = self._session.run(None, {self._input_name: self._to_blob(self._canvas)})[:1]
        except Exception as error:
            raise ModelError(
                f"{self.name} does not run at input size {height}x{width}: "
                f"{str(error).splitlines()[0]}"
            ) from None
        expected = len(self._cells)
        if output.ndim == 3 and output.shape[2] == BOX_COLUMNS + 1:
            self._person_column = BOX_COLUMNS  # one class: the person's (cut or native)
        shape_ok = output.ndim == 3 and output.shape[1] == expected
        if not shape_ok or output.shape[2] <= self._person_column:
            raise ModelError(
                f"{self.name}: expected output [1, {expected}, >{self._person_column}] at "
                f"{height}x{width}, got {list(output.shape)}; is this a YOLOX model?"
            )

    def _to_blob(self, image: np.ndarray) -> np.ndarray:
        """HWC uint8 -> the preallocated float32 input (no allocation per frame)."""
        return fill_input(self._blob, image)

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The network's image and the scale applied: the frame itself when it already
        has the input size; else resized to fit, at the top-left of a padded canvas."""
        height, width = self._network_size
        if image.shape[:2] == (height, width):
            return image, 1.0
        ratio = min(height / image.shape[0], width / image.shape[1])
        new_w, new_h = round(image.shape[1] * ratio), round(image.shape[0] * ratio)
        if self._pasted != (new_h, new_w):  # the padding only needs painting once per size
            self._canvas[...] = PAD_VALUE
            self._pasted = (new_h, new_w)
        # Resized straight into the canvas (a strided view: no copy of its own).
        cv2.resize(image, (new_w, new_h), dst=self._canvas[:new_h, :new_w],
                   interpolation=cv2.INTER_LINEAR)
        return self._canvas, ratio

    def detect(self, image: np.ndarray) -> Detections:
        if not self._sized:  # the default size, from the camera's first frame
            self.input_size = default_input_size(*image.shape[:2])
            self._use_size(self.input_size)
            self._sized = True
        network_image, ratio = self._letterbox(image)
        output = self._session.run(None, {self._input_name: self._to_blob(network_image)})[0][0]
        scores = output[:, 4] * output[:, self._person_column]
        keep = scores >= self._confidence
        if not keep.any():
            return Detections.empty()
        rows, scores = output[keep], scores[keep]
        strides = self._strides[keep]
        centres = (rows[:, :2] + self._cells[keep]) * strides
        sizes = np.exp(np.clip(rows[:, 2:4], -10, 10)) * strides
        xyxy = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) / ratio
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, image.shape[1])
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, image.shape[0])
        return nms(Detections(xyxy.astype(np.float32), scores.astype(np.float32)), self._nms_iou)


def takes_patches(session: ort.InferenceSession) -> bool:
    """Whether the session's model takes the stem's patches (else pixels)."""
    return session.get_inputs()[0].shape[1] == 3 * len(PATCH_ORDER)


def empty_input(size: tuple[int, int], patches: bool) -> np.ndarray:
    """A zeroed float32 network input for a ``(height, width)`` image, as patches or
    pixels (:func:`fill_input`)."""
    height, width = size
    if patches:
        return np.zeros((1, 3 * len(PATCH_ORDER), height // 2, width // 2), np.float32)
    return np.zeros((1, 3, height, width), np.float32)


def fill_input(blob: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Copy a network-sized HWC uint8 ``image`` into ``blob``, a float32 network input,
    and return it: ``[1, 12, H / 2, W / 2]`` holds the stem's patches, channel ``(dx * 2
    + dy) * 3 + c`` being ``image[2i + dy, 2j + dx, c]``
    (:data:`~edge.detection.graph_edit.PATCH_ORDER`), in one strided copy; ``[1, 3, H,
    W]`` holds the pixels, NCHW."""
    if blob.shape[1] == 3:
        np.copyto(blob[0], image.transpose(2, 0, 1), casting="unsafe")
        return blob
    height, width = image.shape[:2]
    rows = image.reshape(height // 2, 2, width // 2, 2, 3)  # i, dy, j, dx, c
    np.copyto(blob[0].reshape(2, 2, 3, height // 2, width // 2), rows.transpose(3, 1, 4, 0, 2),
              casting="unsafe")
    return blob


def nms(detections: Detections, iou_threshold: float) -> Detections:
    """Greedy non-maximum suppression (OpenCV's), highest score first."""
    if len(detections) == 0:
        return detections
    xywh = detections.xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), detections.confidence.tolist(), 0.0, iou_threshold)
    return detections.filter(np.asarray(kept, dtype=np.int64).reshape(-1))
