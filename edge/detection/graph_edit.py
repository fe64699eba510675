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
3. **Patches in, not pixels.** YOLOX's stem ("Focus") first takes the image apart
   into four half-size pictures, the pixels at even and odd rows and columns, and
   stacks them as 12 channels: eight strided slices and a concatenation that
   onnxruntime runs as a space-to-depth and a channel gather, 0.7 ms of 13.5 at
   352x640. The detector already copies every frame into the network's input, and it
   can copy it into that 12-channel layout for the same cost, so the model takes the
   patches instead (input ``patches``, ``[1, 12, height / 2, width / 2]``, channels
   ``(dx, dy, BGR)``: :data:`PATCH_ORDER`). Same numbers to the bit; a stem of
   another shape is left as it is.

Both need the ``onnx`` package, and once imported, onnx and protobuf stay in a
process's memory for its whole life: about 20 MB of a camera worker's 200 MB budget,
for an edit made once at start. So the edit runs in a short-lived child,
``python -m edge.detection.graph_edit MODEL [--keep-class N]``, which writes the
edited model to stdout (an error: one line on stderr, exit 1).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

BOX_COLUMNS = 5  # x, y, w, h, objectness; the class scores follow
# The (row, column) offsets of the four pictures the Focus stem stacks, in channel order:
# even rows and columns, odd rows, odd columns, then both (YOLOX's own order).
PATCH_ORDER = ((0, 0), (1, 0), (0, 1), (1, 1))
PATCH_INPUT = "patches"


def edited_yolox(path: Path, keep_class: int | None = None, patches: bool = False) -> bytes:
    """The model with its input height/width (and the box count of its output) made
    symbolic and, with ``keep_class``, its head cut to that class; with ``patches``, its
    stem's slicing taken out (:func:`take_patches`); serialized.

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
    if patches:
        take_patches(model)
    return model.SerializeToString()


def take_patches(model: Any) -> bool:
    """Replace a Focus stem's slicing by a 12-channel input of patches, in place; returns
    whether the stem was found and replaced.

    The stem is ``Concat(axis=1)`` of four ``Slice(Slice(images))`` chains, each taking
    every other row (axis 2) and every other column (axis 3) from offsets
    :data:`PATCH_ORDER`, in that order; whatever reads the concatenation then reads the
    input ``patches``. Nothing is changed unless the whole pattern matches and the
    slices feed nothing else.
    """
    from onnx import numpy_helper

    graph = model.graph
    image = graph.input[0].name
    outputs = {output.name for output in graph.output}
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    readers = Counter(name for node in graph.node for name in node.input)

    def every_other(node: Any) -> tuple[int, int] | None:
        """(axis, start) of a ``Slice`` read once, taking every other element."""
        if node is None or node.op_type != "Slice" or len(node.input) != 5 \
                or readers[node.output[0]] != 1:
            return None
        try:
            start, _, axis, stride = (constants[name] for name in node.input[1:])
        except KeyError:
            return None
        if axis.size != 1 or int(stride.ravel()[0]) != 2:
            return None
        return int(axis.ravel()[0]), int(start.ravel()[0])

    def patch(name: str) -> tuple[tuple[int, int], list[Any]] | None:
        """The (row, column) offset a ``Slice(Slice(image))`` chain takes, and its nodes."""
        second = producer.get(name)
        first = producer.get(second.input[0]) if second is not None else None
        steps = (every_other(first), every_other(second))
        if first is None or first.input[0] != image or None in steps:
            return None
        offset = dict(step for step in steps if step is not None)
        if sorted(offset) != [2, 3]:
            return None
        return (offset[2], offset[3]), [first, second]

    for concat in graph.node:
        if concat.op_type != "Concat" or concat.output[0] in outputs \
                or any(a.name == "axis" and a.i != 1 for a in concat.attribute):
            continue
        patches = [patch(name) for name in concat.input]
        if any(p is None for p in patches) \
                or tuple(p[0] for p in patches if p is not None) != PATCH_ORDER:
            continue
        for node in [concat] + [node for p in patches if p is not None for node in p[1]]:
            graph.node.remove(node)
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == concat.output[0]:
                    node.input[i] = PATCH_INPUT
        used = {name for node in graph.node for name in node.input}
        kept = [tensor for tensor in graph.initializer if tensor.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        graph.input[0].name = PATCH_INPUT
        dims = graph.input[0].type.tensor_type.shape.dim
        dims[1].dim_value = 3 * len(PATCH_ORDER)
        dims[2].dim_param, dims[3].dim_param = "half_height", "half_width"
        del graph.value_info[:]  # shapes recorded for the stem's tensors
        return True
    return False


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
                    "--keep-class, scores one class; with --patches, takes its stem's "
                    "patches) to stdout.")
    parser.add_argument("model", type=Path)
    parser.add_argument("--keep-class", type=int, default=None, metavar="N")
    parser.add_argument("--patches", action="store_true",
                        help="take the Focus stem's 12-channel patches as input")
    args = parser.parse_args(argv)
    try:
        edited = edited_yolox(args.model, args.keep_class, args.patches)
    except ValueError as error:
        print(str(error).splitlines()[0], file=sys.stderr)
        return 1
    sys.stdout.buffer.write(edited)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
