"""onnxruntime sessions, and the graph edit that lets YOLOX run at any input size."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort

from edge.errors import ModelError


def make_session(model: Path | bytes, threads: int | None) -> ort.InferenceSession:
    """A CPU session; ``threads`` sets intra-op parallelism (None: onnxruntime's default)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors
        name = model if isinstance(model, Path) else "model"
        raise ModelError(f"onnxruntime cannot load {name}: {error}".splitlines()[0]) from None


def with_symbolic_input_size(path: Path) -> bytes:
    """Return the model with its input height/width (and the box count of its output)
    made symbolic, so onnxruntime accepts any input size.

    YOLOX's graph is fully convolutional with size-agnostic reshapes; only the
    declared shapes pin it to its export size.
    """
    try:
        model = onnx.load(str(path))
    except Exception as error:
        raise ModelError(f"{path} is not a readable ONNX file: {error}") from None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ModelError(f"{path}: expected a 4-d image input, got {len(dims)} dimensions")
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in model.graph.output:
        out_dims = output.type.tensor_type.shape.dim
        if len(out_dims) == 3:
            out_dims[1].dim_param = "boxes"
    return model.SerializeToString()
