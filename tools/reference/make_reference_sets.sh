#!/usr/bin/env bash
# Reference sets for the tiny fixtures, into Fixtures/refsets/NAME/ (manifest.json, NAME.npy and
# the float64 truth NAME.f64.npy per clip; Formats/REFERENCE-SET.md): what `beats verify MODEL
# --manifest Fixtures/refsets/NAME/manifest.json` and its tests check against. Needs torch and a
# checkout of the official code: tools/reference/make_reference_sets.sh path/to/unilm/beats
set -euo pipefail
src=${1:?usage: $0 path/to/unilm/beats}
cd "$(dirname "$0")/../.."
set_of() { python3 tools/reference/beats_reference.py --beats-src "$src" --checkpoint "Fixtures/models/$1.pt" --out "Fixtures/refsets/$1" "${@:2}"; }
# speech, a pure tone (float32 rounding-noise cells in its fbank: SPEC "Parity") and noise
set_of tiny Fixtures/audio/speech.wav Fixtures/audio/chirp10s.wav Fixtures/audio/noise.wav
set_of tiny_ft Fixtures/audio/speech.wav Fixtures/audio/chirp10s.wav Fixtures/audio/noise.wav
set_of tiny_tok Fixtures/audio/speech.wav Fixtures/audio/chirp10s.wav Fixtures/audio/noise.wav
# options recorded per clip: an encoder layer's output, probabilities per window
python3 tools/reference/beats_reference.py --beats-src "$src" --checkpoint Fixtures/models/tiny.pt --out Fixtures/refsets/tiny_layer1 --layer 1 Fixtures/audio/speech.wav
python3 tools/reference/beats_reference.py --beats-src "$src" --checkpoint Fixtures/models/tiny_ft.pt --out Fixtures/refsets/tiny_ft_windows --window 2 --hop 1.5 Fixtures/audio/speech.wav
