"""Tensors and arrays to ``{dtype, shape, buffer}`` payloads with the bytes as a binary buffer.

ipywidgets lifts every ``memoryview`` out of a message and sends it as a binary websocket frame;
JSON lists are 18x slower at 1024x1024 here, so they are never used for array data.

What crosses the wire, by source dtype (the payload's ``dtype`` is what the bytes are; ``source``
is what the user had):

=================  ==============  =======================================================
source             wire dtype      how
=================  ==============  =======================================================
float64/32/16      same            bytes as they are (JS widens float16 to float32 exactly)
bfloat16           float32         widened exactly (every bfloat16 is a float32)
int8/16/32, uint8  same            bytes as they are
uint16/32          same            bytes as they are (numpy arrays; torch has them too)
int64, uint64      same            BigInt64Array in JS: values beyond 2**53 stay exact
bool               bool            one byte per value, 0 or 1
=================  ==============  =======================================================

Nothing is narrowed: where a view wants fewer bytes it asks for a quantized form (see
``layerscope.wire.quantize``) and says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

WIRE_DTYPES = (
    "float64",
    "float32",
    "float16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
)

ACCEPTED = (
    "a torch.Tensor or numpy.ndarray of a real dtype "
    "(float64/32/16, bfloat16, int8..int64, uint8..uint64, bool)"
)


def describe(x: Any) -> str:
    """A short description of what the user passed, for error messages."""
    if isinstance(x, torch.Tensor):
        return f"torch.Tensor(shape={tuple(x.shape)}, dtype={x.dtype}, device={x.device}, layout={x.layout})"
    if isinstance(x, np.ndarray):
        return f"numpy.ndarray(shape={x.shape}, dtype={x.dtype})"
    if x is None:
        return "None"
    text = repr(x)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(x).__name__} {text}"


def check_array(x: Any) -> None:
    """Raise TypeError / ValueError naming what was passed unless ``x`` can cross the wire.

    Checks type, dtype, layout and device only: nothing is copied.
    """
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(
                f"complex tensors are not shown directly: got {describe(x)}. Pass x.real, x.imag, x.abs() or x.angle()."
            )
        if x.layout != torch.strided:
            raise TypeError(
                f"sparse or non-strided tensors are not accepted: got {describe(x)}. Pass x.to_dense()."
            )
        if x.device.type == "meta":
            raise ValueError(
                f"a tensor on the 'meta' device has no values to show: got {describe(x)}. Materialize it first, e.g. model.to_empty(device='cpu') and load weights."
            )
        return
    if isinstance(x, (np.ndarray, np.generic)):
        kind = np.asarray(x).dtype.kind
        if kind == "c":
            raise TypeError(
                f"complex arrays are not shown directly: got {describe(x)}. Pass a.real, a.imag or np.abs(a)."
            )
        if kind not in "biuf":
            raise TypeError(
                f"cannot show an array of dtype {np.asarray(x).dtype}: got {describe(x)}. Expected {ACCEPTED}."
            )
        return
    raise TypeError(f"expected {ACCEPTED}; got {describe(x)}.")


def to_numpy(x: Any) -> tuple[np.ndarray, str]:
    """A little-endian, C-contiguous numpy array of a wire dtype, and the source dtype's name.

    Raises TypeError / ValueError naming what was passed and what is accepted.
    """
    check_array(x)
    if isinstance(x, torch.Tensor):
        source = str(x.dtype).replace("torch.", "")
        if x.is_quantized:
            x = x.dequantize()
            source = "float32"
        t = x.detach()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)
        a = t.cpu().contiguous().numpy()
    else:
        a = np.asarray(x)
        source = str(a.dtype)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if (
            a.dtype.itemsize > 8 and a.dtype.kind == "f"
        ):  # float128: no JS type; float64 is what a view can show
            a = a.astype(np.float64)
        a = np.ascontiguousarray(a)
    if a.dtype.name not in WIRE_DTYPES:
        raise TypeError(f"cannot send dtype {a.dtype} ({describe(x)}); expected {ACCEPTED}.")
    return a, source


def encode_array(x: Any) -> dict[str, Any]:
    """``{"dtype", "shape", "source", "buffer": memoryview}`` for a tensor or array.

    >>> p = encode_array(torch.arange(6, dtype=torch.int64).reshape(2, 3))
    >>> p["dtype"], p["shape"], p["buffer"].nbytes
    ('int64', [2, 3], 48)
    """
    a, source = to_numpy(x)
    return {
        "dtype": a.dtype.name,
        "shape": list(a.shape),
        "source": source,
        # A 1-byte view keeps the frame format simple and works for 0-d and empty arrays too.
        "buffer": a.reshape(-1).view(np.uint8).data if a.size else memoryview(b""),
    }


def decode_array(payload: dict[str, Any]) -> np.ndarray:
    """The numpy array of a payload made by ``encode_array`` or by the JS encoder."""
    dtype = payload["dtype"]
    if dtype not in WIRE_DTYPES:
        raise ValueError(f"unknown wire dtype {dtype!r}; expected one of {', '.join(WIRE_DTYPES)}")
    buf = payload["buffer"]
    if isinstance(buf, memoryview):
        buf = buf.cast("B") if buf.format != "B" or buf.ndim != 1 else buf
    shape = tuple(int(s) for s in payload["shape"])
    return np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


def array_to_json(value: Any, _widget: Any = None) -> dict[str, Any] | None:
    return None if value is None else encode_array(value)


def array_from_json(value: Any, _widget: Any = None) -> np.ndarray | None:
    return None if value is None else decode_array(value)


def payload_to_json(value: Any, _widget: Any = None) -> Any:
    """Serializer for a trait that holds a dict which may contain arrays anywhere inside."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return encode_array(value)
    if isinstance(value, dict):
        return {k: payload_to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [payload_to_json(v) for v in value]
    return value


def payload_from_json(value: Any, _widget: Any = None) -> Any:
    if isinstance(value, dict):
        if "buffer" in value and "dtype" in value and "shape" in value:
            return decode_array(value)
        return {k: payload_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [payload_from_json(v) for v in value]
    return value


array_serialization = {"to_json": array_to_json, "from_json": array_from_json}
payload_serialization = {"to_json": payload_to_json, "from_json": payload_from_json}
