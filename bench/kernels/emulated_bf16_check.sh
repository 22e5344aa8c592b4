#!/bin/sh
# Runs the AVX512-BF16 GEMM (Sources/CBEATsKernels/half_avx512bf16.c) on a machine WITHOUT AVX-512,
# through SIMDe's portable C versions of the AVX-512F/BW intrinsics (Debian: libsimde-dev) and this
# directory's definitions of vdpbf16ps / vcvtne2ps2bf16 (beats_avx512bf16_emulation.h), under ASan
# and UBSan, and checks it with bf16_variant_check.c: ragged shapes bitwise against a scalar model of
# the kernel's arithmetic and within a float64 bound (under ASan + UBSan), then the accuracy cost of
# bfloat16 activations on the full-size BEATs shapes (an -O2 build of the same sources). This checks the kernel's logic (packing, tiles, masks, slabs), not
# its speed, and not the real instructions; on a CPU with AVX512-BF16 the Swift tests run the real
# thing against float64.
#
#   bench/kernels/emulated_bf16_check.sh [--ragged-only | --full-only]   (from anywhere)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernels="$here/../../Sources/CBEATsKernels"
out=$(mktemp -d /tmp/half-emulated.XXXXXX)
trap 'rm -rf "$out"' EXIT
if [ ! -f /usr/include/simde/x86/avx512.h ]; then
    echo "needs SIMDe: apt-get install libsimde-dev" >&2
    exit 2
fi
cc=${CC:-gcc}
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I$kernels/include"
# The emulated AVX512-BF16 file: no target attribute, intrinsics from SIMDe and the emulation header.
$cc $flags -DBEATS_EMULATE_AVX512 '-DBEATS_TARGET_AVX512BF16=' -I"$here" -c "$kernels/half_avx512bf16.c" \
    -o "$out/half_avx512bf16.o" 2>/dev/null
for f in variants half_kernels; do $cc $flags -c "$kernels/$f.c" -o "$out/$f.o"; done
$cc $flags -c "$here/bf16_variant_check.c" -o "$out/bf16_variant_check.o"
$cc $flags "$out"/*.o -lm -lpthread -o "$out/bf16_variant_check"
# The same sources without sanitizers at -O2 for the full-size accuracy measurement (float64
# references of 1.2 G multiply-adds per shape: 3–4 minutes under ASan, about 1 minute like this).
mkdir "$out/fast"
fast="-O2 -I$kernels/include"
$cc $fast -DBEATS_EMULATE_AVX512 '-DBEATS_TARGET_AVX512BF16=' -I"$here" -c "$kernels/half_avx512bf16.c" \
    -o "$out/fast/half_avx512bf16.o" 2>/dev/null
for f in variants half_kernels; do $cc $fast -c "$kernels/$f.c" -o "$out/fast/$f.o"; done
$cc $fast -c "$here/bf16_variant_check.c" -o "$out/fast/bf16_variant_check.o"
$cc $fast "$out"/fast/*.o -lm -lpthread -o "$out/fast/bf16_variant_check"
case "${1:-}" in
--ragged-only) "$out/bf16_variant_check" --ragged-only ;;
--full-only) "$out/fast/bf16_variant_check" --full-only ;;
"") "$out/bf16_variant_check" --ragged-only && "$out/fast/bf16_variant_check" --full-only ;;
*) echo "usage: $0 [--ragged-only | --full-only]" >&2; exit 2 ;;
esac
