#!/usr/bin/env python3
"""One table: PyTorch (float32 and dynamic int8) vs `beats bench` (float32 and int8), same
checkpoint, same clip, same thread count, same machine, same run.

    python3 bench/compare_pytorch.py --beats-src path/to/unilm/beats \\
        --checkpoint /tmp/beats-full/BEATs_finetuned.pt --audio Fixtures/audio/chirp10s.wav

PyTorch side: the official BEATs module (from --beats-src, not part of this repository) with the
checkpoint's weights; int8 is `torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, qint8)`.
Our side: `beats bench` (release build) on the checkpoint converted with `beats convert`
(float32) and `beats convert --quantize int8`. Needs torch; never run by the tests.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.io.wavfile
import torch


def time_pytorch(model, wav, runs, warmup=2):
    with torch.no_grad():
        for _ in range(warmup):
            model.extract_features(wav, padding_mask=None)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model.extract_features(wav, padding_mask=None)
            times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def run_beats(binary, model_path, audio, runs, threads, env):
    output = subprocess.run([binary, "bench", model_path, audio, "--runs", str(runs), "--threads", str(threads), "--json"],
                            check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beats-src", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--beats", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "beats"),
                        help="the beats binary (swift build -c release)")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for our side (default: unset them)")
    args = parser.parse_args()

    sys.path.insert(0, args.beats_src)
    from BEATs import BEATs, BEATsConfig  # the official code

    torch.set_num_threads(args.threads)
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    model = BEATs(BEATsConfig(checkpoint["cfg"]))
    model.load_state_dict(checkpoint["model"])
    model.eval()
    rate, data = scipy.io.wavfile.read(args.audio)
    assert rate == 16000 and data.dtype == np.int16, "use a 16 kHz PCM16 clip"
    wav = torch.from_numpy(data.astype(np.float32) / 32768.0)[None]

    rows = []
    torch_f32 = time_pytorch(model, wav, args.runs)
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    torch_i8 = time_pytorch(quantized, wav, args.runs)

    env = dict(os.environ)
    if not args.keep_openblas_env:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    with tempfile.TemporaryDirectory() as folder:
        f32_path = os.path.join(folder, "model-f32.beats")
        i8_path = os.path.join(folder, "model-int8.beats")
        subprocess.run([args.beats, "convert", args.checkpoint, "-o", f32_path], check=True, capture_output=True, env=env)
        subprocess.run([args.beats, "convert", args.checkpoint, "-o", i8_path, "--quantize", "int8"], check=True, capture_output=True, env=env)
        ours_f32 = run_beats(args.beats, f32_path, args.audio, args.runs, args.threads, env)
        ours_i8 = run_beats(args.beats, i8_path, args.audio, args.runs, args.threads, env)

    print(f"clip {args.audio}, {wav.shape[1] / 16000:.1f} s, {args.threads} threads, {args.runs} runs (median, min-max)")
    print(f"torch {torch.__version__}, BLAS for beats: {ours_f32.get('openblas', '?')}")
    print(f"{'what':34} {'median s':>9} {'min':>7} {'max':>7} {'vs torch f32':>13} {'vs torch int8':>14}")
    def row(name, median, low, high):
        print(f"{name:34} {median:9.3f} {low:7.3f} {high:7.3f} {median / torch_f32[0]:12.2f}x {median / torch_i8[0]:13.2f}x")
    row("PyTorch float32", *torch_f32)
    row("PyTorch dynamic int8", *torch_i8)
    for name, result in (("beats float32", ours_f32), ("beats int8", ours_i8)):
        row(name, result["median_seconds"], result["min_seconds"], result["max_seconds"])


if __name__ == "__main__":
    main()
