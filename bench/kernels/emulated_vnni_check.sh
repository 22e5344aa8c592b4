#!/bin/sh
# Runs the AVX-512 VNNI kernels on a machine WITHOUT AVX-512, through SIMDe's portable C versions of
# the same intrinsics (Debian: libsimde-dev), and compares them with the scalar kernels
# (variant_check.c). This checks the VNNI code's logic — the +128 offset and row-sum correction,
# tiles, ragged edges, masks, epilogue — not its speed, and not the real instructions. On a CPU with
# AVX-512 VNNI the Swift tests run the real thing.
#
#   bench/kernels/emulated_vnni_check.sh        (from the package root or anywhere)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernels="$here/../../Sources/CBEATsKernels"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ ! -f /usr/include/simde/x86/avx512.h ]; then
    echo "needs SIMDe: apt-get install libsimde-dev" >&2
    exit 2
fi
cc=${CC:-gcc}
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I$kernels/include"
# The emulated AVX-512 file: no target attribute, intrinsics from SIMDe.
$cc $flags -DBEATS_EMULATE_AVX512 '-DBEATS_TARGET_AVX512=' -I"$here" -c "$kernels/avx512.c" -o "$out/avx512.o" 2>/dev/null
for f in variants pack scalar avx2; do $cc $flags -c "$kernels/$f.c" -o "$out/$f.o"; done
$cc $flags -c "$here/variant_check.c" -o "$out/variant_check.o"
$cc $flags "$out"/*.o -lm -o "$out/variant_check"
"$out/variant_check" --emulated-avx512
