#!/usr/bin/env python3
"""Writes Silero VAD v6.2.0 in whisper.cpp's ggml VAD format from the PyPI wheel
silero-vad==6.2.0 (its TorchScript file silero_vad/data/silero_vad.jit), with the
Python standard library only: no torch, no numpy.

The TorchScript archive is a zip: data.pkl pickles the module tree, whose tensors are
persistent references to raw little-endian storages under data/<key>. The ggml layout
(header fields, tensor order, squeezed and reversed shapes, f16 convolution weights) is
whisper.cpp's, as its models/convert-silero-vad-to-ggml.py documents it; the result is
byte-identical to whisper.cpp's published ggml-silero-v6.2.0.bin (885 098 bytes).

usage: silero-ggml.py WHEEL OUT
"""
import array
import collections
import io
import pickle
import struct
import sys
import zipfile


class _Module:
    """Any TorchScript class: keeps the state it is unpickled with."""

    def __init__(self, *args, **kwargs):
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        (self.dtype, self.key), self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch":
            return name  # a storage type name
        return type(name, (_Module,), {})

    def persistent_load(self, pid):
        return (pid[1], pid[2])  # (storage type, key)


def tensors(jit):
    root = next(n for n in jit.namelist() if n.endswith("/data.pkl")).rsplit("/", 1)[0]
    model = _Unpickler(jit.open(root + "/data.pkl")).load()
    out = {}

    def walk(obj, path):
        if isinstance(obj, _Tensor):
            out[path] = obj
        elif isinstance(getattr(obj, "state", None), dict):
            for k, v in obj.state.items():
                walk(v, f"{path}.{k}" if path else k)

    walk(model, "")

    def values(t):
        if t.dtype != "FloatStorage" or t.offset != 0:
            sys.exit(f"silero-ggml: unexpected tensor storage {t.dtype} at offset {t.offset}")
        a = array.array("f")
        a.frombytes(jit.read(f"{root}/data/{t.key}"))
        n = 1
        for d in t.size:
            n *= d
        if len(a) != n:
            sys.exit(f"silero-ggml: storage {t.key} holds {len(a)} values, the tensor {n}")
        if sys.byteorder != "little":
            a.byteswap()
        return a

    return out, values


def main(wheel, dst):
    with zipfile.ZipFile(wheel) as whl:
        jit = zipfile.ZipFile(io.BytesIO(whl.read("silero_vad/data/silero_vad.jit")))
    ts, values = tensors(jit)
    buf = io.BytesIO()
    put = lambda *v: buf.write(struct.pack("<%di" % len(v), *v))
    kind = b"silero-16k"
    put(0x67676D6C, len(kind))
    buf.write(kind)
    put(6, 2, 0)  # version
    put(512, 64, 4)  # window, context, encoder layers
    for cin, cout in zip([129, 128, 64, 64], [128, 64, 64, 128]):
        put(cin, cout, 3)
    put(128, 128, 128, 1)  # LSTM in/hidden, final conv in/out
    keys = [f"_model.encoder.{i}.reparam_conv.{p}" for i in range(4) for p in ("weight", "bias")]
    keys += ["_model.decoder.rnn.weight_ih", "_model.decoder.rnn.weight_hh", "_model.decoder.rnn.bias_ih",
             "_model.decoder.rnn.bias_hh", "_model.decoder.decoder.2.weight", "_model.decoder.decoder.2.bias",
             "_model.stft.forward_basis_buffer"]
    for k in keys:
        if k not in ts:
            sys.exit(f"silero-ggml: tensor {k} not in {wheel}")
        t, data = ts[k], values(ts[k])
        if k.endswith("forward_basis_buffer"):
            shape, half = [t.size[2], t.size[1], t.size[0]], True
        else:
            shape = [d for d in t.size if d != 1][::-1]
            half = k.endswith("weight") and ("encoder" in k or "decoder.decoder.2" in k)
        name = k.encode()
        put(len(shape), len(name), 1 if half else 0)
        if shape:
            put(*shape)
        buf.write(name)
        buf.write(struct.pack("<%de" % len(data), *data) if half else data.tobytes())
    with open(dst, "wb") as f:
        f.write(buf.getvalue())
    print(f"silero-ggml: wrote {dst} ({buf.tell()} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
