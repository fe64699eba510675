"""Detectors on real frames of the PETS recording, behind one interface; bad models
give one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edge import assets
from edge.config.vision import DetectorConfig
from edge.detection import load_detector
from edge.detection.graph_edit import keep_one_class, take_patches
from edge.detection.session import SPINNING, edited_yolox, make_session
from edge.errors import ModelError
from edge.motformat import read_mot
from edge.tracking.association import assign, box_iou
from tests.conftest import PETS_GT, PETS_VIDEO

pytestmark = pytest.mark.system

FRAMES = (0, 400)  # video frame N is ground-truth frame N + 1


@pytest.fixture(scope="module")
def pets_frames() -> dict[int, np.ndarray]:
    capture = cv2.VideoCapture(str(PETS_VIDEO))
    frames, index = {}, 0
    while index <= max(FRAMES):
        ok, image = capture.read()
        assert ok, f"cannot read frame {index} of {PETS_VIDEO}"
        if index in FRAMES:
            frames[index] = image
        index += 1
    capture.release()
    return frames


def recall_at_iou(detections_xyxy: np.ndarray, frame: int, min_iou: float = 0.5) -> float:
    """Share of the frame's ground-truth people found by a box at IoU >= min_iou."""
    gt = read_mot(PETS_GT)
    gt = gt[(gt[:, 0] == frame + 1) & (gt[:, 6] != 0)]
    boxes = gt[:, 2:6].copy()
    boxes[:, 2:] += boxes[:, :2]
    pairs = assign(1.0 - box_iou(boxes, detections_xyxy), 1.0 - min_iou)
    return len(pairs) / len(gt)


@pytest.mark.parametrize(
    "config, least_recall",
    [
        (DetectorConfig(), 0.9),  # from the frame: 352x480, 0.61 of the frame (a 60 px person: 36)
        (DetectorConfig(input_size=(576, 768)), 0.9),
        (DetectorConfig(input_size=(480, 640)), 0.9),
        (DetectorConfig(input_size=(384, 512)), 0.9),
        (DetectorConfig(model="pedestrian_ssdlite_mnv2_300", confidence_threshold=0.3), 0.6),
    ],
    ids=["yolox-default", "yolox-576x768", "yolox-480x640", "yolox-384x512", "ssdlite-300"],
)
def test_detectors_find_the_people_on_real_frames(pets_frames, config, least_recall):
    detector = load_detector(config)
    for frame, image in pets_frames.items():
        detections = detector.detect(image)
        confident = detections.xyxy[detections.confidence >= 0.3]
        assert recall_at_iou(confident, frame) >= least_recall, (detector.name, frame)
        height, width = image.shape[:2]
        assert (detections.xyxy[:, [0, 2]] >= 0).all() and (detections.xyxy[:, 2] <= width).all()
        assert (detections.xyxy[:, 3] <= height).all()
        assert ((detections.confidence >= config.confidence_threshold)
                & (detections.confidence <= 1)).all()


def test_light_person_detector_runs_at_its_native_size(pets_frames):
    detector = load_detector(DetectorConfig(model="light_person_detector_192x192"))
    assert detector.input_size == (192, 192)
    detections = detector.detect(pets_frames[0])
    assert detections.xyxy.shape[1] == 4


def test_detector_never_writes_to_the_frame(pets_frames):
    image = pets_frames[0].copy()
    load_detector(DetectorConfig(input_size=(480, 640))).detect(image)
    np.testing.assert_array_equal(image, pets_frames[0])


def _write_model(
    path: Path, input_shape: list, output_shape: list, dtype: int = TensorProto.FLOAT
) -> Path:
    """A one-node ONNX graph (Identity or a fixed-shape reshape) with the given shapes."""
    x = helper.make_tensor_value_info("images", dtype, input_shape)
    y = helper.make_tensor_value_info("output", dtype, output_shape)
    shape = helper.make_tensor("shape", TensorProto.INT64, [len(output_shape)], output_shape)
    node = helper.make_node("Reshape", ["images", "shape"], ["output"])
    graph = helper.make_graph([node], "bad", [x], [y], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "input_shape, output_shape, kind, message",
    [
        (
            [1, 1, 32, 32], [1, 1, 1024], "yolox",
            r"expected a YOLOX input of shape \[1, 3, H, W\], got \[1, 1, 32, 32\]",
        ),
        (
            [1, 3, 32, 32], [1, 3072, 1], "yolox",
            r"expected output \[1, 21, >5\] at 32x32, got \[1, 3072, 1\]",
        ),
        ([1, 3, 32], [1, 96], "yolox", r"expected a YOLOX input of shape \[1, 3, H, W\]"),
        ([1, 3, 32, 32], [1, 3072], "ssd", r"expected one uint8 NHWC image input"),
    ],
    ids=["one-channel", "wrong-output", "3d-input", "ssd-float-input"],
)
def test_wrong_shape_model_is_one_clear_error(tmp_path, input_shape, output_shape, kind, message):
    path = _write_model(tmp_path / "bad.onnx", input_shape, output_shape)
    with pytest.raises(ModelError, match=message) as raised:
        load_detector(DetectorConfig(model=str(path), kind=kind))
    assert "\n" not in str(raised.value)


def test_not_an_onnx_file_is_one_clear_error(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match="onnxruntime cannot load") as raised:
        load_detector(DetectorConfig(model=str(path), kind="yolox"))
    assert "\n" not in str(raised.value)


def test_missing_model_file():
    with pytest.raises(ModelError, match="does not exist"):
        load_detector(DetectorConfig(model="/nonexistent/model.onnx", kind="yolox"))


def test_resizing_yolox_keeps_the_onnx_package_out_of_the_process():
    """onnx and protobuf would cost a camera worker ~20 MB for its whole life: the
    graph edit runs in a child process, and the detector still runs at the new size."""
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from edge.config.vision import DetectorConfig\n"
        "from edge.detection import load_detector\n"
        "detector = load_detector(DetectorConfig(input_size=(256, 448)))\n"
        "detector.detect(np.zeros((360, 640, 3), np.uint8))\n"
        "print(detector.input_size, 'onnx' in sys.modules, 'google.protobuf' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split("\n")[0] == "(256, 448) False False"


def test_a_graph_the_edit_cannot_read_is_one_clear_error(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError, match="is not a readable ONNX file") as raised:
        edited_yolox(path)
    assert "\n" not in str(raised.value)


def test_sessions_never_spin_idle_threads():
    """Regression: with two intra-op threads, spinning workers doubled the CPU time per
    frame (scripts/bench_capacity: 40.7 ms against 20.7 at 352x640), CPU that the other
    cameras of the box needed; full graph optimisation stays on."""
    session = make_session(assets.resolve("yolox_nano_416x416"), threads=2)
    options = session.get_session_options()
    assert options.get_session_config_entry(SPINNING) == "0"
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_the_person_only_head_gives_the_full_models_numbers(pets_frames):
    """The head cut to the person class (6 % less CPU at 352x640) must not change a
    single score: the same box, objectness and person columns as the full model."""
    path = assets.resolve("yolox_nano_416x416")
    full = make_session(edited_yolox(path), threads=1)
    person = make_session(edited_yolox(path, keep_class=0), threads=1)
    image = cv2.resize(pets_frames[400], (640, 480))
    blob = np.zeros((1, 3, 480, 640), np.float32)
    blob[0] = image.transpose(2, 0, 1)
    (expected,) = full.run(None, {"images": blob})
    (cut,) = person.run(None, {"images": blob})
    assert expected.shape == (1, 6300, 85) and cut.shape == (1, 6300, 6)
    np.testing.assert_allclose(cut, expected[..., :6], rtol=0, atol=1e-5)
    assert (expected[0, :, 4] * expected[0, :, 5] > 0.5).sum() >= 5  # people in the frame


def test_a_head_of_another_shape_is_left_whole():
    """A model whose outputs are not YOLOX's (reg 4, sigmoid obj 1, sigmoid cls C)
    concat is not cut: the detector then reads the person's column of the full head."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [85, 3, 1, 1], [0.0] * 255)
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["c"]),
         helper.make_node("Reshape", ["c", "shape"], ["output"])],
        "not-yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 85, 1024])],
        [weight, helper.make_tensor("shape", TensorProto.INT64, [3], [1, 85, -1])]))
    before = model.SerializeToString()
    assert keep_one_class(model, 0) is False
    assert model.SerializeToString() == before


@pytest.mark.parametrize("size", [(352, 640), (480, 640)])
def test_the_detector_feeds_the_stems_patches_for_the_same_numbers(pets_frames, size):
    """The model takes its Focus stem's 12-channel patches (0.7 ms of onnxruntime less
    at 352x640) and the detector copies the frame straight into them: the network's
    output is the pixel model's to the bit, at a size the frame is letterboxed into."""
    detector = load_detector(DetectorConfig(input_size=size, threads=1))
    assert detector._session.get_inputs()[0].shape == [1, 12, "half_height", "half_width"]
    pixels = make_session(edited_yolox(assets.resolve("yolox_nano_416x416"), 0), threads=1)
    image, _ = detector._letterbox(pets_frames[400])
    blob = np.ascontiguousarray(image.transpose(2, 0, 1), np.float32)[None]
    (expected,) = pixels.run(None, {"images": blob})
    (got,) = detector._session.run(None, {"patches": detector._to_blob(image)})
    np.testing.assert_array_equal(got, expected)
    assert (expected[0, :, 4] * expected[0, :, 5] > 0.5).sum() >= 5  # people in the frame


def test_a_stem_of_another_shape_is_left_whole():
    """Slices that are not the Focus stem's (here: offsets in another order) keep the
    model's pixel input."""
    nodes, parts = [], []
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):  # not YOLOX's order
        nodes += [helper.make_node("Slice", ["images", f"r{dy}", "end", "two", "step"], [f"a{k}"]),
                  helper.make_node("Slice", [f"a{k}", f"r{dx}", "end", "three", "step"],
                                   [f"b{k}"])]
        parts.append(f"b{k}")
    nodes += [helper.make_node("Concat", parts, ["stem"], axis=1),
              helper.make_node("Identity", ["stem"], ["out"])]
    constants = [helper.make_tensor(name, TensorProto.INT64, [1], [value]) for name, value in
                 (("r0", 0), ("r1", 1), ("end", 1 << 30), ("two", 2), ("three", 3),
                  ("step", 2))]
    model = helper.make_model(helper.make_graph(
        nodes, "not-focus",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 12, 16, 16])],
        constants))
    before = model.SerializeToString()
    assert take_patches(model) is False
    assert model.SerializeToString() == before
    # The same graph in YOLOX's order is a stem, and is replaced.
    for k, (dy, dx) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        model.graph.node[2 * k].input[1], model.graph.node[2 * k + 1].input[1] = f"r{dy}", f"r{dx}"
    assert take_patches(model) is True
    assert [(node.op_type, list(node.input)) for node in model.graph.node] == [
        ("Identity", ["patches"])]
    assert model.graph.input[0].name == "patches"
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][:2] == [1, 12]
