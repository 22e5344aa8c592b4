#!/usr/bin/env python3
"""Int8 weight quantization error: one float32 scale per output row vs one per block of 32.

The numbers behind Formats/NATIVE-FORMAT.md ("int8 quantization"). For every weight the native
converter quantizes (encoder q/k/v/out_proj, fc1, fc2, post_extract_proj, predictor) it reports
the relative RMS error ||W - deq(W)|| / ||W||, the worst |W - deq(W)| in units of the row's
max |W|, and the bytes each scheme needs. Needs torch only to read the .pt files (tooling only).

    python3 bench/quant_error.py Fixtures/models/tiny.pt Fixtures/models/tiny_ft.pt [full.pt ...]
"""
import re
import sys

import numpy as np
import torch

QUANTIZED = re.compile(r"^(encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|fc1|fc2)|post_extract_proj|predictor)\.weight$")


def quantize(weight, block):
    rows, columns = weight.shape
    grouped = weight.reshape(rows, columns // block, block).astype(np.float64)
    scales = (np.abs(grouped).max(axis=2, keepdims=True) / 127.0).astype(np.float32).astype(np.float64)
    safe = np.where(scales == 0, 1.0, scales)
    values = np.clip(np.rint(grouped / safe), -127, 127)
    return (values * scales).reshape(rows, columns)


def main(paths):
    for path in paths:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state)
        totals = {"row": [0.0, 0.0, 0], "block32": [0.0, 0.0, 0]}
        reference_energy = 0.0
        float_bytes = 0
        worst = {"row": 0.0, "block32": 0.0}
        for name, tensor in state.items():
            if not QUANTIZED.match(name):
                continue
            weight = tensor.float().numpy().astype(np.float64)
            rows, columns = weight.shape
            row_max = np.abs(weight).max(axis=1, keepdims=True)
            reference_energy += float((weight ** 2).sum())
            float_bytes += weight.size * 4
            for scheme, block in (("row", columns), ("block32", 32)):
                if columns % block:
                    continue
                error = weight - quantize(weight, block)
                totals[scheme][0] += float((error ** 2).sum())
                totals[scheme][2] += weight.size + 4 * (rows * columns // block)
                worst[scheme] = max(worst[scheme], float((np.abs(error) / np.where(row_max == 0, 1, row_max)).max()))
        print(f"{path}: quantized weights {float_bytes / 1e6:.2f} MB as float32")
        for scheme in ("row", "block32"):
            energy, _, size = totals[scheme]
            print(f"  {scheme:8s} relative RMS error {np.sqrt(energy / reference_energy) * 100:.3f} %   "
                  f"worst |error| / row max {worst[scheme]:.5f}   int8 size {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
