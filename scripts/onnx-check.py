#!/usr/bin/env python3
"""Checks an exported ONNX model outside spidernet: onnx's checker, then onnxruntime's logits against ours.

Usage: onnx-check.py MODEL.onnx INPUTS.npy EXPECTED_LOGITS.npy [TOLERANCE]
Prints one JSON line: {"max_abs_diff": ..., "opset": ..., "nodes": ..., "metadata": {...}, ...}; exits 1 when
the logits differ by more than TOLERANCE (default 1e-4), or the model is invalid.
"""
import json
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime
except ImportError as missing:
    sys.exit(f"error: {missing}: scripts/setup.sh installs numpy, onnx and onnxruntime into the project's venv")


def main() -> int:
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    model_path, inputs_path, expected_path = sys.argv[1:4]
    tolerance = float(sys.argv[4]) if len(sys.argv) == 5 else 1e-4
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    inputs = np.load(inputs_path).astype(np.float32)
    expected = np.load(expected_path).astype(np.float32)
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": inputs})
    if logits.shape != expected.shape:
        print(f"error: onnxruntime logits have shape {logits.shape}, ours {expected.shape}", file=sys.stderr)
        return 1
    diff = float(np.max(np.abs(logits - expected)))
    agree = float(np.mean(np.argmax(logits, 1) == np.argmax(expected, 1)))
    print(json.dumps({
        "max_abs_diff": diff,
        "max_abs_logit": float(np.max(np.abs(expected))),
        "opset": model.opset_import[0].version,
        "nodes": len(model.graph.node),
        "argmax_agreement": agree,
        "metadata": {p.key: p.value for p in model.metadata_props if p.key != "genotype"},
    }))
    if not diff <= tolerance:
        print(f"error: logits differ by {diff:.3g}, more than {tolerance:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
