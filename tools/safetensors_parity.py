#!/usr/bin/env python3
"""Proves `beats export --format safetensors` against the official BEATs code and torch:

1. our export of each checkpoint holds exactly its state dict (names, dtypes, shapes, bits),
   read with Python's `safetensors`;
2. it loads into the official `BEATs` / `Tokenizers` module with load_state_dict(strict=True),
   built from config.json's `cfg`, and gives the official outputs bit for bit on a clip;
3. round trip ours -> torch -> ours: torch saves the loaded module's state dict with
   `safetensors.torch.save_file`; `beats export` of that file gives every tensor's bytes
   unchanged, and `beats run` on it writes the same .npy as on the original checkpoint.

    python3 tools/safetensors_parity.py --beats-src path/to/unilm/beats --beats .build/debug/beats \\
        [--checkpoint Fixtures/models/tiny_ft.pt ...] [--audio Fixtures/audio/speech.wav] \\
        [--fixture-out Fixtures/safetensors]

With --fixture-out, the torch-written file of each checkpoint is kept there (model.safetensors +
config.json in a folder named after it), for the Swift tests that need no torch. Exit status 0
when every check passes. Needs torch, safetensors, numpy, scipy (the clip reader of
tools/reference/beats_reference.py) and a checkout of the official code.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from beats_reference import load_clip  # noqa: E402


def raw(tensor):
    """A tensor's bytes, whatever its dtype (bfloat16 has no NumPy type)."""
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def official_module(cfg, kind):
    from BEATs import BEATs, BEATsConfig
    from Tokenizers import Tokenizers, TokenizersConfig

    return Tokenizers(TokenizersConfig(cfg)) if kind == "tokenizer" else BEATs(BEATsConfig(cfg))


def official_output(model, kind, wav):
    with torch.no_grad():
        if kind == "tokenizer":
            return model.extract_labels(wav, padding_mask=torch.zeros(wav.shape, dtype=torch.bool))
        return model.extract_features(wav, padding_mask=None)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beats-src", required=True)
    parser.add_argument("--beats", required=True, help="the beats binary")
    parser.add_argument("--checkpoint", action="append")
    parser.add_argument("--audio", default="Fixtures/audio/speech.wav")
    parser.add_argument("--fixture-out")
    args = parser.parse_args()
    sys.path.insert(0, args.beats_src)
    torch.set_num_threads(1)
    checkpoints = args.checkpoint or ["Fixtures/models/tiny.pt", "Fixtures/models/tiny_ft.pt", "Fixtures/models/tiny_tok.pt"]
    wav = load_clip(args.audio)[None]
    failures = 0

    def check(condition, message):
        nonlocal failures
        print(("PASS " if condition else "FAIL ") + message)
        failures += 0 if condition else 1

    for path in checkpoints:
        name = os.path.splitext(os.path.basename(path))[0]
        work = tempfile.mkdtemp(prefix=f"st-{name}-")
        ours = os.path.join(work, "ours")
        subprocess.run([args.beats, "export", path, "-o", ours], check=True, stdout=subprocess.DEVNULL)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint["model"]
        config = json.load(open(os.path.join(ours, "config.json")))
        kind = config["kind"]

        exported = load_file(os.path.join(ours, "model.safetensors"))
        same = list(exported) == list(state) and all(
            exported[k].dtype == state[k].dtype and exported[k].shape == state[k].shape
            and torch.equal(exported[k].view(torch.uint8) if exported[k].numel() else exported[k],
                            state[k].contiguous().view(torch.uint8) if state[k].numel() else state[k])
            for k in state)
        check(same, f"{name}: export holds the state dict exactly ({len(state)} tensors, same order, bits)")
        with safe_open(os.path.join(ours, "model.safetensors"), "pt") as handle:
            metadata = handle.metadata()
        check(json.loads(metadata["beats_config"]) == config, f"{name}: __metadata__ carries config.json")

        reference = official_module(checkpoint["cfg"], kind)
        reference.load_state_dict(state)
        reference.eval()
        module = official_module(config["cfg"], kind)
        result = module.load_state_dict(exported, strict=True)
        check(not result.missing_keys and not result.unexpected_keys, f"{name}: load_state_dict(strict=True) into the official {type(module).__name__}")
        module.eval()
        # What torch holds after loading (before a forward pass, which the tokenizer's quantizer
        # may update in place: its codebook is normalised on first use).
        loaded = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
        # The official module shares some parameters between layers (relative_attention_bias:
        # every layer's is layer 0's), so load_state_dict leaves the last copy's value in all of
        # them. Official checkpoints hold equal copies; a synthetic one may not, and then torch
        # itself changes those tensors: say so, and check the round trip against what torch holds.
        changed = [k for k in exported if raw(loaded[k]) != raw(exported[k])]
        if changed:
            print(f"NOTE {name}: torch holds other values than the file for {len(changed)} shared tensors "
                  f"after load_state_dict ({changed[0]}, ...): the checkpoint's copies of a shared parameter differ")
        expected = official_output(reference, kind, wav)
        got = official_output(module, kind, wav)
        check(torch.equal(expected, got), f"{name}: official outputs bit for bit ({tuple(got.shape)} {got.dtype})")

        # ours -> torch -> ours
        torch_dir = os.path.join(work, "torch")
        os.makedirs(torch_dir)
        save_file(loaded, os.path.join(torch_dir, "model.safetensors"),
                  metadata={"format": "pt"})
        shutil.copy(os.path.join(ours, "config.json"), torch_dir)
        again = os.path.join(work, "again")
        subprocess.run([args.beats, "export", os.path.join(torch_dir, "model.safetensors"), "-o", again], check=True,
                       stdout=subprocess.DEVNULL)
        first = load_file(os.path.join(ours, "model.safetensors"))
        second = load_file(os.path.join(again, "model.safetensors"))
        def same(a, b):
            return set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                                            and raw(a[k]) == raw(b[k]) for k in a)
        check(same(loaded, second), f"{name}: torch -> ours: our export of torch's file holds what torch saved, bitwise")
        if not changed:
            check(same(first, second), f"{name}: ours -> torch -> ours, every tensor bitwise")
        outputs = []
        for model_path in (() if changed else (path, os.path.join(torch_dir, "model.safetensors"))):
            out = os.path.join(work, f"out{len(outputs)}.npy")
            subprocess.run([args.beats, "run", model_path, args.audio, "-o", out], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            outputs.append(open(out, "rb").read())
        if not changed:
            check(outputs[0] == outputs[1], f"{name}: beats run on the torch-written safetensors = on the checkpoint, byte for byte")

        if args.fixture_out:
            target = os.path.join(args.fixture_out, name)
            os.makedirs(target, exist_ok=True)
            shutil.copy(os.path.join(torch_dir, "model.safetensors"), target)
            shutil.copy(os.path.join(torch_dir, "config.json"), target)
        shutil.rmtree(work)
    print("all checks passed" if failures == 0 else f"{failures} checks failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
