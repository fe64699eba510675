"""The graph edit that lets YOLOX run at any input size, done in a child process.

YOLOX's graph is fully convolutional with size-agnostic reshapes; only the declared
shapes pin it to its export size. Making them symbolic needs the ``onnx`` package,
and once imported, onnx and protobuf stay in a process's memory for its whole life:
about 20 MB of a camera worker's 200 MB budget, for an edit made once at start. So
the edit runs in a short-lived child, ``python -m edge.detection.graph_edit MODEL``,
which writes the edited model to stdout (an error: one line on stderr, exit 1).
"""

from __future__ import annotations

import sys
from pathlib import Path


def symbolic_input_size(path: Path) -> bytes:
    """The model with its input height/width (and the box count of its output) made
    symbolic, serialized. Raises ValueError with a one-line reason."""
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
    return model.SerializeToString()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m edge.detection.graph_edit MODEL.onnx > EDITED.onnx",
              file=sys.stderr)
        return 2
    try:
        edited = symbolic_input_size(Path(argv[0]))
    except ValueError as error:
        print(str(error).splitlines()[0], file=sys.stderr)
        return 1
    sys.stdout.buffer.write(edited)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
