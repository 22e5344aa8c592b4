#!/bin/sh
# Builds q4_bench.c against the kernel sources with the package's flags (-O3, no global -m flags)
# and runs it: the int4 group-wise GEMM against the int8 GEMM at 7-bit activations on the full-size
# BEATs Linear shapes, 1 and 2 threads. Arguments go to the benchmark (--variant NAME, --reps N,
# --group 32|64|128).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernels="$here/../../Sources/CBEATsKernels"
out=$(mktemp -d /tmp/q4-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
cc=${CC:-clang}
$cc -O3 -I"$kernels/include" "$kernels"/variants.c "$kernels"/pack.c "$kernels"/scalar.c "$kernels"/avx2.c \
    "$kernels"/avx512.c "$kernels"/q4_pack.c "$kernels"/q4_quantize.c "$kernels"/q4_scalar.c "$kernels"/q4_avx2.c \
    "$kernels"/q4_avx512.c "$here/q4_bench.c" -lpthread -lm -o "$out/q4_bench"
"$out/q4_bench" "$@"
