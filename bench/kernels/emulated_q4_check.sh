#!/bin/sh
# Runs the AVX-512 VNNI int4 GEMM (q4_avx512.c) on a machine WITHOUT AVX-512, through SIMDe's portable
# C versions of the same intrinsics (Debian: libsimde-dev), under AddressSanitizer and
# UndefinedBehaviorSanitizer, and compares it bit for bit with the scalar int4 GEMM and with a float64
# reference (q4_variant_check.c), next to the AVX2 variant on the real CPU. This checks the VNNI code's
# logic — nibble unpacking, vpdpbusd operand order, tiles, ragged edges, masks, the group epilogue — not
# its speed, and not the real instructions. On a CPU with AVX-512 VNNI the Swift tests run the real thing.
#
#   bench/kernels/emulated_q4_check.sh        (from the package root or anywhere)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernels="$here/../../Sources/CBEATsKernels"
out=$(mktemp -d /tmp/q4-emulated.XXXXXX)
trap 'rm -rf "$out"' EXIT
if [ ! -f /usr/include/simde/x86/avx512.h ]; then
    echo "needs SIMDe: apt-get install libsimde-dev" >&2
    exit 2
fi
cc=${CC:-gcc}
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I$kernels/include"
# The emulated AVX-512 file: no target attribute, intrinsics from SIMDe.
$cc $flags -DBEATS_EMULATE_AVX512 '-DBEATS_TARGET_AVX512=' -I"$here" -c "$kernels/q4_avx512.c" -o "$out/q4_avx512.o" 2>/dev/null
for f in variants pack scalar avx2 avx512 q4_pack q4_quantize q4_scalar q4_avx2; do $cc $flags -c "$kernels/$f.c" -o "$out/$f.o"; done
$cc $flags -c "$here/q4_variant_check.c" -o "$out/q4_variant_check.o"
$cc $flags "$out"/*.o -lm -lpthread -o "$out/q4_variant_check"
"$out/q4_variant_check" --emulated-avx512
