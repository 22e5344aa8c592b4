#!/usr/bin/env bash
# Official outputs for `beats run --layer/--frames/--pool` and `--window/--hop` on the tiny
# fixtures, into Fixtures/ref/granularity/ (tests compare against them). Needs torch and a
# checkout of the official code: tools/reference/make_granularity_refs.sh path/to/unilm/beats
set -euo pipefail
src=${1:?usage: $0 path/to/unilm/beats}
cd "$(dirname "$0")/../.."
out=Fixtures/ref/granularity
mkdir -p "$out"
ref() { python3 tools/reference/beats_reference.py --beats-src "$src" --checkpoint "Fixtures/models/$1.pt" --audio "Fixtures/audio/$2.wav" -o "$out/$3.npy" "${@:4}"; }
for clip in speech noise; do
    ref tiny "$clip" "tiny_${clip}_layer1" --layer 1
    ref tiny "$clip" "tiny_${clip}_layer2" --layer 2
    ref tiny_ft "$clip" "tiny_ft_${clip}_layer1" --layer 1
    ref tiny_ft "$clip" "tiny_ft_${clip}_frames" --frames
    ref tiny "$clip" "tiny_${clip}_pool_mean" --pool mean
done
# chirp10s is a pure tone: its fbank has float32 rounding-noise cells (SPEC "Parity"), so features
# are compared on speech and noise; probabilities and tokens on chirp10s hold their bounds.
ref tiny noise tiny_noise_window1_hop0.75 --window 1 --hop 0.75
ref tiny_ft chirp10s tiny_ft_chirp10s_window4_hop3 --window 4 --hop 3
ref tiny_ft speech tiny_ft_speech_frames_window2 --frames --window 2 --hop 1.5
ref tiny_tok chirp10s tiny_tok_chirp10s_window4_hop3 --window 4 --hop 3
ref tiny speech tiny_speech_pool_mean_window1 --pool mean --window 1 --hop 0.5
