#!/bin/sh
# Builds gemm_bench.c against the kernel sources with the package's flags (-O3, no global -m flags)
# and OpenBLAS, then runs it. Arguments go to the benchmark (--variant NAME, --reps N).
# OpenBLAS: like the runtime benchmark, this unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for its own
# run so OpenBLAS picks its kernel for the real CPU; the core in use is printed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernels="$here/../../Sources/CBEATsKernels"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=${CC:-clang}
$cc -O3 -I"$kernels/include" $(pkg-config --cflags openblas) "$kernels"/variants.c "$kernels"/pack.c "$kernels"/scalar.c \
    "$kernels"/avx2.c "$kernels"/avx512.c "$here/gemm_bench.c" $(pkg-config --libs openblas) -lpthread -lm -o "$out/gemm_bench"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$out/gemm_bench" "$@"
