#!/bin/sh
# Builds half_variant_check.c with the float16 / bfloat16 kernels under ASan and UBSan, against
# OpenBLAS, and runs it: exact conversion of all 65 536 patterns per variant, the AVX2 GEMM bitwise
# against a scalar model of its arithmetic and within a float64 bound on ragged shapes, the
# convert-then-sgemm product, argument errors. (The AVX512-BF16 GEMM: emulated_bf16_check.sh.)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernels="$here/../../Sources/CBEATsKernels"
out=$(mktemp -d /tmp/half-check.XXXXXX)
trap 'rm -rf "$out"' EXIT
cc=${CC:-gcc}
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I$kernels/include $(pkg-config --cflags openblas)"
for f in variants half_kernels half_avx512bf16; do $cc $flags -c "$kernels/$f.c" -o "$out/$f.o"; done
$cc $flags -c "$here/half_variant_check.c" -o "$out/half_variant_check.o"
$cc $flags "$out"/*.o $(pkg-config --libs openblas) -lm -lpthread -o "$out/half_variant_check"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$out/half_variant_check"
