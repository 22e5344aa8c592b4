#!/usr/bin/env python3
"""An independent reader for native BEATs weight files (`beatsw`), written from
Formats/NATIVE-FORMAT.md alone, with Python 3 and numpy only.

    python3 Formats/beatsw_reader.py MODEL.beatsw               # header and tensor table as JSON
    python3 Formats/beatsw_reader.py MODEL.beatsw --dump DIR    # every tensor as DIR/NAME.npy
    python3 Formats/beatsw_reader.py MODEL.beatsw --no-verify   # skip the tensor checksums

`qint8` tensors are dumped dequantized to float32 (value x scale, in float32), bfloat16 tensors
widened to float32 (numpy has no bfloat16). Exit status 1 and one `error: ...` line on a bad file.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

MAGIC = b"\x89BEATSW\n"
SUPPORTED_MAJOR = 1
MASK = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)

# code -> (name, numpy dtype of the stored elements, width)
DTYPES = {
    0: ("float32", "<f4", 4), 1: ("float16", "<f2", 2), 2: ("bfloat16", "<u2", 2), 3: ("float64", "<f8", 8),
    4: ("int64", "<i8", 8), 5: ("int32", "<i4", 4), 6: ("int16", "<i2", 2), 7: ("int8", "i1", 1),
    8: ("uint8", "u1", 1), 9: ("bool", "u1", 1), 10: ("qint8", "i1", 1),
}
KINDS = ("pretrained", "finetuned", "tokenizer")


class FormatError(Exception):
    pass


def _rotl(value, amount):
    return ((value << amount) | (value >> (64 - amount))) & MASK


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & MASK, 31) * P1) & MASK


def _merge(acc, lane):
    return (((acc ^ _round(0, lane)) * P1) + P4) & MASK


def xxh64(data, seed=0):
    """XXH64 per the xxHash specification, seed 0 in this format."""
    data = memoryview(data).cast("B")
    length = len(data)
    position = 0
    if length >= 32:
        lanes = [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed, (seed - P1) & MASK]
        stripes = length // 32
        words = np.frombuffer(data[: stripes * 32], dtype="<u8").reshape(stripes, 4).tolist()
        v1, v2, v3, v4 = lanes
        for w1, w2, w3, w4 in words:
            v1 = _round(v1, w1)
            v2 = _round(v2, w2)
            v3 = _round(v3, w3)
            v4 = _round(v4, w4)
        position = stripes * 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & MASK
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = (seed + P5) & MASK
    h = (h + length) & MASK
    while position + 8 <= length:
        (word,) = struct.unpack_from("<Q", data, position)
        h ^= _round(0, word)
        h = (_rotl(h, 27) * P1 + P4) & MASK
        position += 8
    if position + 4 <= length:
        (word,) = struct.unpack_from("<I", data, position)
        h ^= (word * P1) & MASK
        h = (_rotl(h, 23) * P2 + P3) & MASK
        position += 4
    while position < length:
        h ^= (data[position] * P5) & MASK
        h = (_rotl(h, 11) * P1) & MASK
        position += 1
    h ^= h >> 33
    h = (h * P2) & MASK
    h ^= h >> 29
    h = (h * P3) & MASK
    h ^= h >> 32
    return h


class HeaderCursor:
    """Reads header fields; offsets in messages are file offsets."""

    def __init__(self, block, base):
        self.block, self.base, self.position = block, base, 0

    def take(self, count, field):
        if count > len(self.block) - self.position:
            raise FormatError(f"header ends inside {field} at offset {self.base + self.position}")
        chunk = self.block[self.position:self.position + count]
        self.position += count
        return chunk

    def unpack(self, fmt, field):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), field))[0]

    def count(self, field, limit):
        value = self.unpack("<I", field)
        if value > limit:
            raise FormatError(f"{field} {value} exceeds the limit {limit}")
        return value

    def string(self, field, limit):
        raw = self.take(self.count(f"length of {field}", limit), field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{field} is not valid UTF-8") from None


def read_header(data):
    size = len(data)
    if size < 32:
        raise FormatError(f"file is {size} bytes, shorter than the 32-byte preamble")
    if data[:8] != MAGIC:
        raise FormatError("bad magic: not a beatsw file")
    major, minor, _reserved, header_length, header_checksum = struct.unpack_from("<HHIQQ", data, 8)
    if major != SUPPORTED_MAJOR:
        raise FormatError(f"major version {major} is not supported (this reader reads {SUPPORTED_MAJOR})")
    if not 1 <= header_length <= 16 * 1024 * 1024:
        raise FormatError(f"header length {header_length} out of range")
    if 32 + header_length > size:
        raise FormatError(f"header ends at {32 + header_length}, beyond the {size}-byte file")
    block = bytes(data[32:32 + header_length])
    if xxh64(block) != header_checksum:
        raise FormatError("header checksum mismatch")

    cursor = HeaderCursor(block, 32)
    header = {"version": [major, minor]}
    header["kind"] = cursor.string("model kind", 64)
    if header["kind"] not in KINDS:
        raise FormatError(f"unknown model kind {header['kind']!r}")
    header["converter"] = cursor.string("converter", 256)
    header["source_name"] = cursor.string("source name", 4096)
    header["source_sha256"] = cursor.take(32, "source SHA-256").hex()

    config = {}
    for _ in range(cursor.count("config count", 256)):
        key = cursor.string("config key", 256)
        kind = cursor.unpack("<B", "config type")
        if kind == 0:
            config[key] = cursor.unpack("<q", key)
        elif kind == 1:
            config[key] = cursor.unpack("<d", key)
        elif kind == 2:
            flag = cursor.unpack("<B", key)
            if flag > 1:
                raise FormatError(f"config {key!r}: bool byte {flag}")
            config[key] = bool(flag)
        elif kind == 3:
            config[key] = cursor.string(key, 4096)
        else:
            raise FormatError(f"config {key!r}: unknown type {kind}")
    header["config"] = config

    labels = []
    for _ in range(cursor.count("label count", 100_000)):
        index = cursor.unpack("<I", "label index")
        labels.append({"index": index, "mid": cursor.string("label MID", 256), "name": cursor.string("label name", 1024)})
    header["labels"] = labels

    metadata = {}
    for _ in range(cursor.count("metadata count", 4096)):
        key = cursor.string("metadata key", 256)
        metadata[key] = cursor.string("metadata value", 65536)
    header["metadata"] = metadata

    data_start = (32 + header_length + 4095) // 4096 * 4096
    previous_end = data_start
    tensors = []
    names = set()

    def region(name, kind, expected_length):
        nonlocal previous_end
        offset, length, checksum = (cursor.unpack("<Q", f"{kind} of {name}") for _ in range(3))
        if length != expected_length:
            raise FormatError(f"tensor {name!r}: {kind} length {length}, expected {expected_length}")
        if offset % 64:
            raise FormatError(f"tensor {name!r}: {kind} offset {offset} is not a multiple of 64")
        if offset < data_start:
            raise FormatError(f"tensor {name!r}: {kind} offset {offset} lies before the data region at {data_start}")
        if offset < previous_end:
            raise FormatError(f"tensor {name!r}: {kind} at {offset} overlaps the previous region ending at {previous_end}")
        if offset + length > size:
            raise FormatError(f"tensor {name!r}: {kind} ends at {offset + length}, past the end of the {size}-byte file")
        previous_end = offset + length
        return {"offset": offset, "length": length, "checksum": checksum}

    for _ in range(cursor.count("tensor count", 65536)):
        name = cursor.string("tensor name", 1024)
        if not name or name in names:
            raise FormatError(f"tensor name {name!r} is empty or repeated")
        names.add(name)
        code = cursor.unpack("<B", f"dtype of {name}")
        if code not in DTYPES:
            raise FormatError(f"tensor {name!r}: unknown dtype code {code}")
        dtype, _, width = DTYPES[code]
        rank = cursor.unpack("<B", f"rank of {name}")
        if rank > 8:
            raise FormatError(f"tensor {name!r}: rank {rank} exceeds 8")
        shape = [cursor.unpack("<Q", f"shape of {name}") for _ in range(rank)]
        if any(dim >= 1 << 62 for dim in shape):
            raise FormatError(f"tensor {name!r}: shape {shape} too large")
        elements = 1
        for dim in shape:
            elements *= dim
        entry = {"name": name, "dtype": dtype, "shape": shape, "data": region(name, "data", elements * width)}
        if dtype == "qint8":
            if rank != 2:
                raise FormatError(f"tensor {name!r}: qint8 needs rank 2, has shape {shape}")
            entry["scales"] = region(name, "scales", 4 * shape[0])
        tensors.append(entry)
    # Bytes left in the header block belong to later minor versions: ignored.
    if size != previous_end:
        raise FormatError(f"file is {size} bytes but its last region ends at {previous_end}")
    header["tensors"] = tensors
    return header


def verify(data, header):
    for entry in header["tensors"]:
        for kind in ("data", "scales"):
            if kind not in entry:
                continue
            region = entry[kind]
            if xxh64(data[region["offset"]:region["offset"] + region["length"]]) != region["checksum"]:
                raise FormatError(f"tensor {entry['name']!r}: {kind} checksum mismatch (file corrupted)")


def tensor_values(data, entry):
    """The tensor as a numpy array: float32 for qint8 (dequantized) and bfloat16 (widened)."""
    code = next(code for code, spec in DTYPES.items() if spec[0] == entry["dtype"])
    _, numpy_dtype, _ = DTYPES[code]
    region = entry["data"]
    raw = np.frombuffer(data, dtype=numpy_dtype, count=region["length"] // DTYPES[code][2], offset=region["offset"])
    shape = entry["shape"]
    if entry["dtype"] == "qint8":
        scales = np.frombuffer(data, dtype="<f4", count=shape[0], offset=entry["scales"]["offset"])
        return (raw.reshape(shape).astype(np.float32) * scales[:, None]).astype(np.float32)
    if entry["dtype"] == "bfloat16":
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if entry["dtype"] == "bool":
        return raw.astype(bool).reshape(shape)
    return raw.reshape(shape).copy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--dump", metavar="DIR", help="write every tensor as DIR/NAME.npy")
    parser.add_argument("--no-verify", action="store_true", help="skip the per-tensor checksums")
    arguments = parser.parse_args()
    try:
        with open(arguments.path, "rb") as handle:
            data = handle.read()
        header = read_header(data)
        if not arguments.no_verify:
            verify(data, header)
        if arguments.dump:
            os.makedirs(arguments.dump, exist_ok=True)
            for entry in header["tensors"]:
                np.save(os.path.join(arguments.dump, entry["name"] + ".npy"), tensor_values(data, entry))
    except (FormatError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    summary = dict(header)
    summary["labels"] = len(header["labels"])
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
