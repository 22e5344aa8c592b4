#!/usr/bin/env python3
"""Rebuilds the hand-made inputs of Fixtures/fuzz-regressions/ (the ones not written by libFuzzer,
which are kept byte for byte as the fuzzer found them). Needs torch; tests never run this.

    python3 Fuzz/tools/make_regressions.py
"""
import collections
import io
import os
import pickle
import struct
import zlib

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures", "fuzz-regressions")


def broadcast_view():
    """A stride-0 view: 2^40 float32 values claimed over a 1-element storage."""
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1).expand(2**20, 2**20)}, buffer)
    return buffer.getvalue()


def declared_size():
    """Five tensors of 2^59 float32 over a deflated record of 1000 bytes declaring 2^62."""
    elements = 1 << 59

    class FakeStorage:
        pass

    storage = FakeStorage()

    class FakeTensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (storage, 0, (elements,), (1,), False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", elements) if obj is storage else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"t%d" % index: FakeTensor() for index in range(5)})
    data_pkl = buffer.getvalue()
    payload = bytes(1000)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = compressor.compress(payload) + compressor.flush()
    entries = [("archive/data.pkl", data_pkl, 0, data_pkl, len(data_pkl)),
               ("archive/data/0", payload, 8, deflated, 1 << 62)]
    out, central = bytearray(), bytearray()
    for name, raw, method, stored, declared in entries:
        offset = len(out)
        crc = zlib.crc32(raw)
        encoded = name.encode()
        size32 = 0xFFFFFFFF if declared >= 1 << 32 else declared
        extra = struct.pack("<HHQ", 1, 8, declared) if declared >= 1 << 32 else b""
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 0, crc, len(stored), size32, len(encoded), 0)
        out += encoded + stored
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0, crc, len(stored), size32,
                               len(encoded), len(extra), 0, 0, 0, 0, offset) + encoded + extra
    directory = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), directory, 0)
    return bytes(out)


def zip_archive(entries):
    """A plain zip (no ZIP64) of (name, bytes, deflate?) entries."""
    out, central = bytearray(), bytearray()
    for name, raw, deflate in entries:
        offset = len(out)
        crc = zlib.crc32(raw)
        encoded = name.encode()
        if deflate:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            stored, method = compressor.compress(raw) + compressor.flush(), 8
        else:
            stored, method = raw, 0
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(stored), len(raw), len(encoded), 0)
        out += encoded + stored
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(stored), len(raw),
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    directory = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), directory, 0)
    return bytes(out)


def shared_deflated_record():
    """1000 one-element views of one deflated record of 4 MiB of float32 zeros."""
    elements = 1 << 20

    class FakeStorage:
        pass

    storage = FakeStorage()

    class FakeTensor:
        def __init__(self, offset):
            self.offset = offset

        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (storage, self.offset, (1,), (1,), False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", elements) if obj is storage else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"t%d" % index: FakeTensor(index * 1000) for index in range(1000)})
    return zip_archive([("archive/data.pkl", buffer.getvalue(), False), ("archive/data/0", bytes(elements * 4), True)])


def huge_layer_count():
    """tiny.pt's weights before the layers, in float16, with cfg['encoder_layers'] = 2**31."""
    base = torch.load(os.path.join(OUT, "..", "models", "tiny.pt"), weights_only=False)
    cfg = dict(base["cfg"], encoder_layers=2**31)
    kept = {name: value.half() if value.is_floating_point() else value for name, value in base["model"].items()
            if not name.startswith("encoder.layers.") or name == "encoder.layers.0.self_attn.relative_attention_bias.weight"}
    buffer = io.BytesIO()
    torch.save({"cfg": cfg, "model": kept}, buffer)
    return buffer.getvalue()


def main():
    for name, make in [("checkpoint-broadcast-view.pt", broadcast_view), ("checkpoint-declared-size.pt", declared_size),
                       ("config-encoder-layers-2e31.pt", huge_layer_count),
                       ("checkpoint-shared-deflated-record.pt", shared_deflated_record)]:
        with open(os.path.join(OUT, name), "wb") as handle:
            handle.write(make())


if __name__ == "__main__":
    main()
