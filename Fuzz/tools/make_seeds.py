#!/usr/bin/env python3
"""Writes the small seed inputs of the fuzz targets into Fuzz/seeds/<target>/.

Needs torch (tooling only; the fuzzers and the tests never do). The fixtures in Fixtures/ are
seeds too, but most are hundreds of kilobytes; these are the same structures at a few hundred
bytes, so the fuzzer's mutations land on headers and opcodes instead of tensor bytes.

    python3 Fuzz/tools/make_seeds.py            # rewrites Fuzz/seeds/{zip,pickle,checkpoint,wav}
The native seeds are made from these by `beats convert` (commands in Fuzz/README.md).
"""
import io
import os
import pickle
import struct
import sys
import zipfile

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "seeds")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)


def micro_state_dict():
    torch.manual_seed(0)
    base = torch.arange(12, dtype=torch.float32)
    return {
        "encoder.layers.0.fc1.weight": torch.randn(2, 3),
        "encoder.layers.0.fc1.bias": torch.randn(2).half(),
        "encoder.layer_norm.weight": torch.randn(3).bfloat16(),
        "post_extract_proj.weight": base.view(3, 4).t(),      # non-contiguous view
        "post_extract_proj.bias": base[4:7],                   # storage offset, shared storage
        "step": torch.tensor(7, dtype=torch.int64),           # 0-d
        "mask": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3),
        "counts": torch.tensor([1, -2], dtype=torch.int32),
        "bytes": torch.tensor([1, 2], dtype=torch.uint8),
        "double": torch.tensor([0.5], dtype=torch.float64),
    }


def saved(obj, **kwargs):
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def deflated(zip_bytes):
    """The same archive with every entry deflated (torch itself only writes stored entries)."""
    source = zipfile.ZipFile(io.BytesIO(zip_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    return out.getvalue()


def data_pickle(zip_bytes):
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
    return archive.read(name)


def wav(channels, rate, bits, frames, fmt=1, extensible=False):
    width = bits // 8
    payload = bytearray()
    for index in range(frames * channels):
        value = (index * 37) % 256
        payload += bytes([value]) * width
    block = channels * width
    if extensible:
        guid = struct.pack("<H", fmt) + bytes([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])
        fmt_body = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        fmt_body += struct.pack("<HHI", 22, bits, 0) + guid
    else:
        fmt_body = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    chunks += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def main():
    state = micro_state_dict()
    cfg = {"encoder_layers": 1, "encoder_embed_dim": 3, "layer_norm_first": False, "deep_norm": True,
           "finetuned_model": False, "dropout": 0.1, "layer_wise_gradient_decay_ratio": 0.6}
    checkpoints = {
        "micro.pt": saved({"cfg": cfg, "model": state}),
        "micro_ft.pt": saved({"cfg": dict(cfg, finetuned_model=True, predictor_class=2),
                              "model": dict(state, **{"predictor.weight": torch.ones(2, 3)}),
                              "label_dict": {0: "/m/09x0r", 1: "/m/05zppz"}}),
        "micro_tok.pt": saved({"cfg": dict(cfg, quant_n=4, quant_dim=2),
                               "model": {"quantize.embedding.weight": torch.ones(4, 2)}}),
        "micro_plain.pt": saved(state),
        "micro_p4.pt": saved({"cfg": cfg, "model": state}, pickle_protocol=4),
        "micro_legacy.pt": saved({"cfg": cfg, "model": state}, _use_new_zipfile_serialization=False),
        "micro_legacy_p2.pt": saved(state, _use_new_zipfile_serialization=False, pickle_protocol=2),
    }
    checkpoints["micro_deflated.pt"] = deflated(checkpoints["micro.pt"])
    for name, data in checkpoints.items():
        write("checkpoint", name, data)
        if not name.startswith("micro_legacy"):
            write("zip", name.replace(".pt", ".zip"), data)
    write("zip", "empty.zip", b"PK\x05\x06" + bytes(18))

    for name in ["micro.pt", "micro_ft.pt", "micro_tok.pt", "micro_plain.pt", "micro_p4.pt"]:
        write("pickle", name.replace(".pt", ".pkl"), data_pickle(checkpoints[name]))
    for protocol in range(0, 6):
        write("pickle", f"plain_p{protocol}.pkl", pickle.dumps(
            {"a": [1, 2.5, True, None, b"x", "s", (1,), {3}, frozenset([4]), 2**70, -2**70]}, protocol=protocol))

    write("wav", "u8_mono_8000.wav", wav(1, 8000, 8, 600))
    write("wav", "s16_stereo_22050.wav", wav(2, 22050, 16, 700))
    write("wav", "s24_mono_16000.wav", wav(1, 16000, 24, 500))
    write("wav", "s32_mono_48000.wav", wav(1, 48000, 32, 400))
    write("wav", "f32_mono_16000.wav", wav(1, 16000, 32, 500, fmt=3))
    write("wav", "f64_mono_11025.wav", wav(1, 11025, 64, 300, fmt=3))
    write("wav", "ext_s16_3ch_44100.wav", wav(3, 44100, 16, 300, extensible=True))
    write("wav", "ext_f32_mono_32000.wav", wav(1, 32000, 32, 400, fmt=3, extensible=True))


if __name__ == "__main__":
    sys.exit(main())
