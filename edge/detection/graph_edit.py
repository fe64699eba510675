"""The graph edits YOLOX gets before it runs, done in a child process.

1. **Any input size.** YOLOX's graph is fully convolutional with size-agnostic
   reshapes; only the declared shapes pin it to its export size, so they are made
   symbolic.
2. **One class.** The head's class convolutions score all 80 COCO classes at every
   cell, and the product reads one: they are cut to the person class (and the
   reshapes that join the head's outputs to 4 + 1 + 1 columns). Its outputs are the
   same numbers as the full model's columns 0-4 and the person's; the detector runs
   6 % faster at 352x640 (``scripts/bench_capacity``). A head of another shape is
   left whole.

Both need the ``onnx`` package, and once imported, onnx and protobuf stay in a
process's memory for its whole life: about 20 MB of a camera worker's 200 MB budget,
for an edit made once at start. So the edit runs in a short-lived child,
``python -m edge.detection.graph_edit MODEL [--keep-class N]``, which writes the
edited model to stdout (an error: one line on stderr, exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

BOX_COLUMNS = 5  # x, y, w, h, objectness; the class scores follow


def edited_yolox(path: Path, keep_class: int | None = None) -> bytes:
    """The model with its input height/width (and the box count of its output) made
    symbolic and, with ``keep_class``, its head cut to that class; serialized.

    Raises:
        ValueError: not a readable ONNX image model (a one-line reason).
    """
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as error:
        raise ValueError(f"{path} is not a readable ONNX file: {error}") from None
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ValueError(f"{path}: expected a 4-d image input, got {len(dims)} dimensions")
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in model.graph.output:
        out_dims = output.type.tensor_type.shape.dim
        if len(out_dims) == 3:
            out_dims[1].dim_param = "boxes"
    if keep_class is not None:
        keep_one_class(model, keep_class)
    return model.SerializeToString()


def keep_one_class(model: Any, keep: int) -> bool:
    """Cut a YOLOX head's class convolutions to class ``keep``, in place; returns
    whether the head was found and cut.

    The head at each stride is ``Concat(reg conv (4), Sigmoid(obj conv (1)),
    Sigmoid(cls conv (C)))``, reshaped to ``[1, 5 + C, -1]``: every cls conv's weight
    and bias keep row ``keep``, every such reshape becomes ``[1, 6, -1]``. Nothing is
    changed unless every stride's head and reshape match.
    """
    from onnx import numpy_helper

    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}

    def conv_rows(name: str, through_sigmoid: bool) -> tuple[Any, int] | None:
        node = producer.get(name)
        if through_sigmoid:
            if node is None or node.op_type != "Sigmoid":
                return None
            node = producer.get(node.input[0])
        if node is None or node.op_type != "Conv" or node.input[1] not in initializers:
            return None
        return node, int(initializers[node.input[1]].dims[0])

    heads = []
    for node in graph.node:
        if node.op_type != "Concat" or len(node.input) != 3:
            continue
        parts = (conv_rows(node.input[0], False), conv_rows(node.input[1], True),
                 conv_rows(node.input[2], True))
        if any(part is None for part in parts):
            continue
        (_, reg), (_, obj), (cls_conv, classes) = parts  # type: ignore[misc]
        if (reg, obj) == (4, 1) and classes > 1 and 0 <= keep < classes:
            heads.append(cls_conv)
    if not heads:
        return False
    classes = int(initializers[heads[0].input[1]].dims[0])
    full = [BOX_COLUMNS, classes]
    reshapes = [
        initializers[node.input[1]] for node in graph.node
        if node.op_type == "Reshape" and node.input[1] in initializers
        and numpy_helper.to_array(initializers[node.input[1]]).tolist()[1:2] == [sum(full)]
    ]
    if len(reshapes) != len(heads):
        return False
    for conv in heads:
        for name in conv.input[1:]:
            tensor = initializers[name]
            tensor.CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(tensor)[keep:keep + 1].copy(), name))
    for tensor in reshapes:
        shape = numpy_helper.to_array(tensor).copy()
        shape[1] = BOX_COLUMNS + 1
        tensor.CopyFrom(numpy_helper.from_array(shape, tensor.name))
    for output in graph.output:
        out_dims = output.type.tensor_type.shape.dim
        if len(out_dims) == 3:
            out_dims[2].ClearField("dim_param")
            out_dims[2].dim_value = BOX_COLUMNS + 1
    del graph.value_info[:]  # shapes recorded for the full head
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.detection.graph_edit",
        description="Write a YOLOX model that runs at any input size (and, with "
                    "--keep-class, scores one class) to stdout.")
    parser.add_argument("model", type=Path)
    parser.add_argument("--keep-class", type=int, default=None, metavar="N")
    args = parser.parse_args(argv)
    try:
        edited = edited_yolox(args.model, args.keep_class)
    except ValueError as error:
        print(str(error).splitlines()[0], file=sys.stderr)
        return 1
    sys.stdout.buffer.write(edited)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
