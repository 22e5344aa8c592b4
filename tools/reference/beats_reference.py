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
"""
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
    parser.add_argument("--audio", required=True, help="a WAV file (any libsndfile format with --decode soundfile)")
    parser.add_argument("--decode", choices=["wav", "soundfile"], default="wav",
                        help="wav: the WAV reader above (torchaudio's scaling); soundfile: libsndfile through Python's soundfile")
    parser.add_argument("--fbank", action="store_true", help="write the front end's output instead of the model's")
    parser.add_argument("--layer", type=int, help="encoder layer N's output, model.encoder(x, layer=N-1)[0] (x captured by a hook)")
    parser.add_argument("--frames", action="store_true", help="fine-tuned: sigmoid(predictor(x)) per token [1, T, C] (a hook on predictor)")
    parser.add_argument("--pool", choices=["mean"], help="pre-trained: the features' mean over tokens [1, D]")
    parser.add_argument("--window", type=float, help="seconds per window: the official output per slice of the 16 kHz waveform")
    parser.add_argument("--hop", type=float, help="seconds between window starts (default: --window)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()

    sys.path.insert(0, args.beats_src)
    from BEATs import BEATs, BEATsConfig  # noqa: E402  (the official code, from --beats-src)
    from Tokenizers import Tokenizers, TokenizersConfig  # noqa: E402

    torch.set_num_threads(args.threads)
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    cfg = checkpoint["cfg"]
    is_tokenizer = "quant_n" in cfg or any(key.startswith("quantize") for key in checkpoint["model"])
    model = Tokenizers(TokenizersConfig(cfg)) if is_tokenizer else BEATs(BEATsConfig(cfg))
    model.load_state_dict(checkpoint["model"])
    model.eval()

    waveform = load_clip_soundfile(args.audio) if args.decode == "soundfile" else load_clip(args.audio)
    if args.window:
        outputs = [official_output(model, args, is_tokenizer, piece[None]) for piece in windows(waveform, args.window, args.hop or args.window)]
        # Token outputs joined along the token axis; per-clip outputs stacked [W, width] (SPEC "Long audio").
        if outputs[0].ndim == 1:
            output = np.concatenate(outputs)
        elif outputs[0].ndim == 3:
            output = np.concatenate(outputs, axis=1)
        else:
            output = np.concatenate(outputs, axis=0)
    else:
        output = official_output(model, args, is_tokenizer, waveform[None])
    np.save(args.output, output)
    print(f"{args.output}: {output.dtype} {list(output.shape)}")


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
            return model.encoder(captured["x"], padding_mask=None, layer=args.layer - 1)[0].numpy().astype(np.float32)
        if args.frames:
            hook = model.predictor.register_forward_hook(lambda module, inputs, output: captured.setdefault("logits", output.clone()))
            model.extract_features(wav, padding_mask=None)
            hook.remove()
            return torch.sigmoid(captured["logits"]).numpy().astype(np.float32)
        if args.pool == "mean":
            return model.extract_features(wav, padding_mask=None)[0].mean(dim=1).numpy().astype(np.float32)
        if args.fbank:
            return model.preprocess(wav).numpy().astype(np.float32)
        elif is_tokenizer:
            return model.extract_labels(wav, padding_mask=torch.zeros_like(wav, dtype=torch.bool)).numpy().astype(np.int64)
        return model.extract_features(wav, padding_mask=None)[0].numpy().astype(np.float32)


if __name__ == "__main__":
    main()
