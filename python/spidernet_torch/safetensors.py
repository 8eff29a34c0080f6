"""Reading and writing safetensors files by hand (no dependency): an 8-byte little-endian header length, a JSON
header {name: {"dtype", "shape", "data_offsets"}}, then the tensors' raw little-endian bytes."""
import json
import struct

import numpy as np
import torch

_NUMPY = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1"}
_NAMES = {torch.float16: "F16", torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64",
          torch.uint8: "U8"}


class SafetensorsError(ValueError):
    """A file that is not a safetensors file this reader understands."""


def read_safetensors(path):
    """The tensors of a safetensors file, by name, in the file's order (dtypes F16, F32, F64, I32, I64, U8)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SafetensorsError(f"{path}: {len(raw)} bytes, too short for a safetensors header")
    (length,) = struct.unpack("<Q", raw[:8])
    if 8 + length > len(raw):
        raise SafetensorsError(f"{path}: the header claims {length} bytes but the file has {len(raw) - 8} after it")
    try:
        header = json.loads(raw[8:8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SafetensorsError(f"{path}: the header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: the header is not a JSON object")
    data = raw[8 + length:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor {name}: malformed header entry {info!r}") from None
        if dtype not in _NUMPY:
            raise SafetensorsError(f"{path}: tensor {name} has dtype {dtype}, expected one of {', '.join(_NUMPY)}")
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(_NUMPY[dtype]).itemsize
        if not 0 <= start <= end <= len(data) or end - start != size:
            raise SafetensorsError(f"{path}: tensor {name}: bytes {start}..{end} do not hold a {dtype} tensor of "
                                   f"shape {shape} within the file's {len(data)} data bytes")
        array = np.frombuffer(data, dtype=_NUMPY[dtype], count=size // np.dtype(_NUMPY[dtype]).itemsize,
                              offset=start).reshape(shape)
        tensors[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
    return tensors


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` ({name: tensor}) as a safetensors file, names sorted; `metadata` is a {str: str} dict."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _NAMES:
            raise SafetensorsError(f"tensor {name}: dtype {t.dtype} cannot be written")
        blob = t.numpy().astype(_NUMPY[_NAMES[t.dtype]], copy=False).tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)
