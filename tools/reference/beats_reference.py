#!/usr/bin/env python3
"""Writes what the official BEATs code returns for one checkpoint and one clip, as .npy.

Use it to produce your own references, then check the Swift toolkit against them in CI:

    python3 tools/reference/beats_reference.py --beats-src path/to/unilm/beats \\
        --checkpoint BEATs_iter3_plus_AS2M.pt --audio clip.wav -o ref.npy
    beats verify BEATs_iter3_plus_AS2M.pt clip.wav --reference ref.npy

Needs torch, torchaudio and a checkout of the official code (github.com/microsoft/unilm, folder
`beats/`); nothing of that code is part of this repository. The output is exactly what
`beats run` writes for the same inputs:
  pre-trained  extract_features(wav[None], padding_mask=None)[0]   float32 [1, T, D]
  fine-tuned   the same call: class probabilities                 float32 [1, C]
  tokenizer    extract_labels(wav[None], padding_mask=zeros)      int64   [T]
  --fbank      BEATs' preprocess (normalised log-mel fbank)        float32 [1, frames, 128]
  --layer N    model.encoder(x, layer=N-1)[0], x the encoder's input  float32 [1, T, D]
  --frames     fine-tuned: sigmoid(predictor(x)) per token            float32 [1, T, C]
  --pool mean  pre-trained: the features' mean over tokens            float32 [1, D]
  --window S [--hop H]  the above per slice of the 16 kHz waveform starting at k*H, the last
               ending at the end of the audio (kept when it holds one patch, 2800 samples);
               token outputs concatenated along the token axis, per-clip outputs stacked [W, .]
The clip is read as torchaudio.load reads it, averaged to mono and resampled to 16 kHz with
torchaudio.functional.resample (defaults), as the toolkit does. `--decode soundfile` reads it
with Python's `soundfile` instead (libsndfile, float32 as it decodes them): the reference for
FLAC, Ogg Vorbis, Opus, MP3, AIFF and the other formats the toolkit decodes through libsndfile.

Set mode (`beats verify MODEL --manifest DIR/manifest.json` reads it; Formats/REFERENCE-SET.md):

    python3 tools/reference/beats_reference.py --beats-src SRC --checkpoint CKPT --out DIR CLIP... [--list FILE]

writes DIR/NAME.npy per clip (the output above, with the same --layer/--frames/--pool/--window
options), DIR/NAME.f64.npy (float outputs: the official code in float64, model.double(), on the
same samples: the truth of SPEC "Parity") and DIR/manifest.json (checkpoint name, SHA-256, cfg
and kind; torch/torchaudio versions; per clip the audio's path relative to DIR, its SHA-256, the
files' SHA-256, shape, dtype and options).
"""
import hashlib
import json
import os
import subprocess
import argparse
import sys

import numpy as np
import scipy.io.wavfile
import torch
import torchaudio


def load_clip(path):
    """Samples scaled to [-1, 1] as torchaudio.load gives them, averaged to mono, at 16 kHz.

    scipy reads the WAV (torchaudio 2.9+ delegates loading to torchcodec, which needs FFmpeg);
    the integer scaling is torchaudio's: PCM16 / 2^15, PCM32 (and 24-bit, which scipy widens into
    the top bytes of an int32) / 2^31, 8-bit unsigned (x - 128) / 2^7; float as stored.
    """
    rate, data = scipy.io.wavfile.read(path)
    if data.dtype == np.uint8:
        samples = (data.astype(np.float64) - 128.0) / 128.0
    elif data.dtype == np.int16:
        samples = data / 32768.0
    elif data.dtype == np.int32:
        samples = data / 2147483648.0
    else:
        samples = data.astype(np.float64)
    samples = samples.reshape(len(samples), -1)
    waveform = torch.from_numpy(samples.astype(np.float32)).T.mean(dim=0)
    if rate != 16000:
        waveform = torchaudio.functional.resample(waveform, rate, 16000)
    return waveform


def load_clip_soundfile(path):
    """Samples as libsndfile decodes them to float32 (`soundfile.read`), averaged to mono, at 16 kHz."""
    import soundfile

    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    waveform = torch.from_numpy(np.ascontiguousarray(data)).T.mean(dim=0)
    if rate != 16000:
        waveform = torchaudio.functional.resample(waveform, rate, 16000)
    return waveform


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beats-src", required=True, help="folder holding the official BEATs.py, Tokenizers.py, backbone.py, ...")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--audio", help="a WAV file (any libsndfile format with --decode soundfile)")
    parser.add_argument("--decode", choices=["wav", "soundfile"], default="wav",
                        help="wav: the WAV reader above (torchaudio's scaling); soundfile: libsndfile through Python's soundfile")
    parser.add_argument("--fbank", action="store_true", help="write the front end's output instead of the model's")
    parser.add_argument("--layer", type=int, help="encoder layer N's output, model.encoder(x, layer=N-1)[0] (x captured by a hook)")
    parser.add_argument("--frames", action="store_true", help="fine-tuned: sigmoid(predictor(x)) per token [1, T, C] (a hook on predictor)")
    parser.add_argument("--pool", choices=["mean"], help="pre-trained: the features' mean over tokens [1, D]")
    parser.add_argument("--window", type=float, help="seconds per window: the official output per slice of the 16 kHz waveform")
    parser.add_argument("--hop", type=float, help="seconds between window starts (default: --window)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", help="single clip: the .npy to write")
    parser.add_argument("--out", help="set mode: the folder for NAME.npy, NAME.f64.npy and manifest.json")
    parser.add_argument("--list", help="set mode: a file listing clips, one per line")
    parser.add_argument("clips", nargs="*", help="set mode: the clips")
    args = parser.parse_args()
    if args.out is None and (args.audio is None or args.output is None):
        parser.error("give --audio and -o (one clip) or --out DIR and clips (a reference set)")

    sys.path.insert(0, args.beats_src)
    from BEATs import BEATs, BEATsConfig  # noqa: E402  (the official code, from --beats-src)
    from Tokenizers import Tokenizers, TokenizersConfig  # noqa: E402

    torch.set_num_threads(args.threads)
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    cfg = checkpoint["cfg"]
    is_tokenizer = "quant_n" in cfg or any(key.startswith("quantize") for key in checkpoint["model"])

    def make_model():
        built = Tokenizers(TokenizersConfig(cfg)) if is_tokenizer else BEATs(BEATsConfig(cfg))
        built.load_state_dict(checkpoint["model"])
        return built.eval()

    model = make_model()

    if args.out is not None:
        write_set(args, checkpoint, model, make_model, is_tokenizer)
        return
    output = clip_output(model, args, is_tokenizer, load(args, args.audio))
    output = output.astype(np.int64 if output.dtype.kind in "iu" else np.float32)
    np.save(args.output, output)
    print(f"{args.output}: {output.dtype} {list(output.shape)}")


def load(args, path):
    return load_clip_soundfile(path) if args.decode == "soundfile" else load_clip(path)


def clip_output(model, args, is_tokenizer, waveform):
    """The official output for one clip (whole or in windows), in the model's own precision."""
    if args.window:
        outputs = [official_output(model, args, is_tokenizer, piece[None]) for piece in windows(waveform, args.window, args.hop or args.window)]
        # Token outputs joined along the token axis; per-clip outputs stacked [W, width] (SPEC "Long audio").
        if outputs[0].ndim == 1:
            return np.concatenate(outputs)
        if outputs[0].ndim == 3:
            return np.concatenate(outputs, axis=1)
        return np.concatenate(outputs, axis=0)
    return official_output(model, args, is_tokenizer, waveform[None])


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_set(args, checkpoint, model, make_model, is_tokenizer):
    """DIR/NAME.npy, DIR/NAME.f64.npy (float outputs) and DIR/manifest.json (Formats/REFERENCE-SET.md)."""
    clips = list(args.clips)
    if args.list:
        with open(args.list) as listing:
            clips += [line.strip() for line in listing if line.strip()]
    if not clips:
        sys.exit("error: set mode needs at least one clip (arguments or --list)")
    names = {}
    for clip in clips:
        name = os.path.splitext(os.path.basename(clip))[0]
        if name in names:
            sys.exit(f"error: {names[name]} and {clip} would both write {name}.npy")
        names[name] = clip
    os.makedirs(args.out, exist_ok=True)
    truth_model = make_model().double()
    options = {"decode": args.decode}
    if args.layer is not None:
        options["layer"] = args.layer
    if args.frames:
        options["frames"] = True
    if args.pool:
        options["pool"] = args.pool
    if args.window:
        options["window"] = args.window
        options["hop"] = args.hop or args.window
    entries = []
    for name, clip in names.items():
        waveform = load(args, clip)
        output = clip_output(model, args, is_tokenizer, waveform)
        output = output.astype(np.int64 if output.dtype.kind in "iu" else np.float32)
        entry = {"name": name, "audio": os.path.relpath(os.path.abspath(clip), os.path.abspath(args.out)),
                 "audio_sha256": sha256_of(clip), "output": f"{name}.npy", "shape": list(output.shape),
                 "dtype": str(output.dtype), "options": options}
        np.save(os.path.join(args.out, entry["output"]), output)
        entry["output_sha256"] = sha256_of(os.path.join(args.out, entry["output"]))
        if output.dtype == np.float32:
            truth = clip_output(truth_model, args, is_tokenizer, waveform.double()).astype(np.float64)
            entry["truth"] = f"{name}.f64.npy"
            np.save(os.path.join(args.out, entry["truth"]), truth)
            entry["truth_sha256"] = sha256_of(os.path.join(args.out, entry["truth"]))
        entries.append(entry)
        print(f"{os.path.join(args.out, entry['output'])}: {output.dtype} {list(output.shape)}")
    try:
        revision = subprocess.run(["git", "-C", args.beats_src, "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        revision = None
    kind = "tokenizer" if is_tokenizer else ("finetuned" if "predictor.weight" in checkpoint["model"] else "pretrained")
    manifest = {
        "format": "beats-reference-set", "version": 1,
        "checkpoint": {"file": os.path.basename(args.checkpoint), "sha256": sha256_of(args.checkpoint), "kind": kind,
                       "config": checkpoint["cfg"]},
        "producer": {"script": "tools/reference/beats_reference.py", "torch": torch.__version__,
                     "torchaudio": torchaudio.__version__, "numpy": np.__version__, "beats_revision": revision},
        "clips": entries,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as file:
        json.dump(manifest, file, indent=1)
        file.write("\n")
    print(f"{os.path.join(args.out, 'manifest.json')}: {len(entries)} clips")


def windows(waveform, length, hop, rate=16000, minimum=2800):
    """Slices starting at k*hop; the last ends at the end of the audio and is kept when it holds one patch."""
    size = max(1, round(length * rate))
    pieces = []
    index = 0
    while True:
        start = round(index * hop * rate)
        if start >= len(waveform):
            break
        end = min(start + size, len(waveform))
        if end - start >= minimum or not pieces:
            pieces.append(waveform[start:end])
        if end == len(waveform):
            break
        index += 1
    return pieces


def official_output(model, args, is_tokenizer, wav):
    captured = {}
    with torch.no_grad():
        if args.layer is not None:
            hook = model.encoder.register_forward_pre_hook(lambda module, inputs: captured.setdefault("x", inputs[0].clone()))
            model.extract_features(wav, padding_mask=None)
            hook.remove()
            return model.encoder(captured["x"], padding_mask=None, layer=args.layer - 1)[0].numpy()
        if args.frames:
            hook = model.predictor.register_forward_hook(lambda module, inputs, output: captured.setdefault("logits", output.clone()))
            model.extract_features(wav, padding_mask=None)
            hook.remove()
            return torch.sigmoid(captured["logits"]).numpy()
        if args.pool == "mean":
            return model.extract_features(wav, padding_mask=None)[0].mean(dim=1).numpy()
        if args.fbank:
            return model.preprocess(wav).numpy()
        elif is_tokenizer:
            return model.extract_labels(wav, padding_mask=torch.zeros_like(wav, dtype=torch.bool)).numpy().astype(np.int64)
        return model.extract_features(wav, padding_mask=None)[0].numpy()


if __name__ == "__main__":
    main()
