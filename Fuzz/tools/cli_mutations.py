#!/usr/bin/env python3
"""Feeds every `beats` command mutated fixture files and checks the CLI's promise on bad input:
each run ends with exit 0, or exit 1 with exactly one line on stderr starting with `error: `,
within a second; a command that fails leaves no output file (nor a temporary one) behind.

Not a test (it takes minutes and measures time); run it by hand after changing a reader:
    python3 Fuzz/tools/cli_mutations.py BEATS_BINARY [--count 200] [--seed 1]
Prints every broken promise and a summary per command; exits 1 if any.

Mutations: flipped bytes, overwritten 1/2/4/8-byte fields (0, 0xFF.., small and huge values),
truncation, inserted and deleted spans, duplicated spans. Half of the zip mutants have their
central-directory CRCs zeroed and the native mutants get their header checksum recomputed, so
that mutations reach the pickle and the header decoder instead of stopping at a checksum.
"""
import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIX = os.path.join(ROOT, "Fixtures")
SEEDS = os.path.join(ROOT, "Fuzz", "seeds")
# The native header checksum, from the format's independent reader (needs numpy).
sys.path.insert(0, os.path.join(ROOT, "Formats"))
from beatsw_reader import xxh64  # noqa: E402


def zero_crcs(data):
    data = bytearray(data)
    index = data.find(b"PK\x01\x02")
    while index >= 0 and index + 20 <= len(data):
        data[index + 16:index + 20] = b"\0\0\0\0"
        index = data.find(b"PK\x01\x02", index + 4)
    return bytes(data)


def fix_native_checksum(data):
    if len(data) < 32 or not data.startswith(b"\x89BEATSW\n"):
        return data
    length = struct.unpack_from("<Q", data, 16)[0]
    if not 1 <= length <= len(data) - 32:
        return data
    data = bytearray(data)
    struct.pack_into("<Q", data, 24, xxh64(bytes(data[32:32 + length])))
    return bytes(data)


def mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3, 5, 10])):
        op = rng.randrange(7)
        n = len(data)
        if n == 0:
            data += bytes([rng.randrange(256)])
            continue
        # Aim at the head and the tail (headers, central directory) as often as at the middle.
        where = rng.choice([rng.randrange(min(n, 512)), max(0, n - 1 - rng.randrange(min(n, 2048))), rng.randrange(n)])
        if op == 0:
            data[where] ^= 1 << rng.randrange(8)
        elif op == 1:
            width = rng.choice([1, 2, 4, 8])
            value = rng.choice([0, 1, 0xFF, 0x7F, 0x80, (1 << (8 * width)) - 1, rng.randrange(1 << (8 * width)), 1 << (8 * width - 1)])
            value &= (1 << (8 * width)) - 1
            data[where:where + width] = value.to_bytes(width, "little")[:max(0, n - where)]
        elif op == 2:
            del data[rng.randrange(n):]
        elif op == 3:
            data[where:where] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif op == 4:
            del data[where:where + rng.randrange(1, 64)]
        elif op == 5:
            span = data[where:where + rng.randrange(1, 128)]
            at = rng.randrange(n)
            data[at:at] = span
        else:
            data[where] = rng.randrange(256)
    return bytes(data)


def mutate_wav(data, rng):
    """`mutate`, and one time in four a sample rate (offset 24 of the usual layout) from the
    extremes: tiny rates make the resampler's output huge, odd ones make its kernel large."""
    data = mutate(data, rng)
    if rng.random() < 0.25 and len(data) >= 28:
        rate = rng.choice([1, 2, 3, 7, 100, 999, 15999, 16001, 1_300_001, 4_000_000, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)])
        data = data[:24] + struct.pack("<I", rate) + data[28:]
    return data


def run(args, timeout=10):
    start = time.monotonic()
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr, time.monotonic() - start
    except subprocess.TimeoutExpired:
        return None, b"", b"", time.monotonic() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("beats")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", default=None, help="folder to copy failing inputs into")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    beats = os.path.abspath(options.beats)
    work = tempfile.mkdtemp(prefix="beats-cli-mutations-")

    def load(*parts):
        with open(os.path.join(*parts), "rb") as handle:
            return handle.read()

    tiny_native = os.path.join(work, "tiny.beatsw")
    tiny_int8 = os.path.join(work, "tiny_ft_int8.beatsw")
    subprocess.run([beats, "convert", os.path.join(FIX, "models", "tiny.pt"), "-o", tiny_native], check=True, capture_output=True)
    subprocess.run([beats, "convert", os.path.join(FIX, "models", "tiny_ft.pt"), "-o", tiny_int8, "--quantize", "int8"],
                   check=True, capture_output=True)
    checkpoints = [load(FIX, "models", "tiny.pt"), load(FIX, "models", "tiny_ft.pt"), load(FIX, "models", "tiny_tok.pt"),
                   load(FIX, "parser", "legacy.pt"), load(FIX, "parser", "deflated.pt"), load(FIX, "parser", "views.pt")]
    checkpoints += [load(SEEDS, "checkpoint", name) for name in sorted(os.listdir(os.path.join(SEEDS, "checkpoint")))]
    natives = [load(tiny_native), load(tiny_int8)]
    natives += [load(SEEDS, "native", name) for name in sorted(os.listdir(os.path.join(SEEDS, "native")))]
    clips = [load(FIX, "audio", "short.wav"), load(FIX, "audio", "noise.wav")]
    clips += [load(FIX, "audio-formats", name) for name in sorted(os.listdir(os.path.join(FIX, "audio-formats"))) if name.endswith(".wav")]
    good_wav = os.path.join(FIX, "audio", "short.wav")
    tiny = os.path.join(FIX, "models", "tiny.pt")
    tiny_ft = os.path.join(FIX, "models", "tiny_ft.pt")

    def model_mutant():
        if rng.random() < 0.5:
            data = mutate(rng.choice(checkpoints), rng)
            return zero_crcs(data) if rng.random() < 0.5 else data
        return fix_native_checksum(mutate(rng.choice(natives), rng))

    def write(name, data):
        path = os.path.join(work, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    out_dir = os.path.join(work, "out")
    commands = {
        "inspect": lambda m: [beats, "inspect", m],
        "inspect --json": lambda m: [beats, "inspect", m, "--json"],
        "check": lambda m: [beats, "check", m],
        "tensor": lambda m: [beats, "tensor", m, rng.choice(["encoder.layers.0.fc1.weight", "post_extract_proj.bias",
                                                                "patch_embedding.weight", "step", "mask"]),
                             "-o", os.path.join(out_dir, "t.npy")],
        "convert": lambda m: [beats, "convert", m, "-o", os.path.join(out_dir, "c.beatsw")] + rng.choice([[], ["--quantize", "int8"], ["--dtype", "f16"]]),
        "run (model)": lambda m: [beats, "run", m, good_wav, "-o", os.path.join(out_dir, "r.npy"), "--threads", "1"],
        "run (audio)": lambda a: [beats, "run", tiny, a, "-o", os.path.join(out_dir, "r.npy"), "--threads", "1"],
        "classify (model)": lambda m: [beats, "classify", m, good_wav, "--threads", "1"],
        "classify (audio)": lambda a: [beats, "classify", tiny_ft, a, "--threads", "1"],
    }
    problems = []
    for label, make in commands.items():
        stats = {"exit 0": 0, "exit 1": 0, "slowest": 0.0, "over 1 s": 0}
        for index in range(options.count):
            data = mutate_wav(rng.choice(clips), rng) if "(audio)" in label else model_mutant()
            path = write("input.bin", data)
            shutil.rmtree(out_dir, ignore_errors=True)
            os.makedirs(out_dir)
            args = make(path)
            status, out, err, seconds = run(args)
            stats["slowest"] = max(stats["slowest"], seconds)
            lines = err.decode("utf-8", "replace").splitlines()
            complaint = None
            if status is None:
                complaint = "timed out (10 s)"
            elif status == 0:
                stats["exit 0"] += 1
            elif status == 1:
                stats["exit 1"] += 1
                if len(lines) != 1 or not lines[0].startswith("error: "):
                    complaint = "exit 1 with stderr %r" % err[:400]
                elif os.listdir(out_dir):
                    complaint = "failed but left %s" % os.listdir(out_dir)
            else:
                complaint = "exit status %s, stderr %r" % (status, err[-400:])
            if seconds > 1.0:
                stats["over 1 s"] += 1
                complaint = complaint or "took %.2f s" % seconds
            if complaint:
                kept = ""
                if options.keep:
                    os.makedirs(options.keep, exist_ok=True)
                    kept = os.path.join(options.keep, "%s-%d.bin" % (label.split()[0], index))
                    shutil.copy(path, kept)
                problems.append((label, index, complaint, kept))
                print("PROBLEM %s #%d: %s %s" % (label, index, complaint, kept), flush=True)
        print("%-17s %4d runs: exit 0 %4d, exit 1 %4d, over 1 s %3d, slowest %.2f s" % (
            label, options.count, stats["exit 0"], stats["exit 1"], stats["over 1 s"], stats["slowest"]), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print("%d problems" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
