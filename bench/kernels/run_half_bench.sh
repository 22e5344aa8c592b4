#!/bin/sh
# Builds half_bench.c against the kernel sources with the package's flags (-O3, no global -m flags)
# and OpenBLAS, then runs it. Arguments go to the benchmark (--reps N, --cold, --scratch FLOATS,
# --portable, --shape K N). Like run_bench.sh, this unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for
# its own run so OpenBLAS picks its kernel for the real CPU; the core in use is printed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernels="$here/../../Sources/CBEATsKernels"
out=$(mktemp -d /tmp/half-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
cc=${CC:-clang}
$cc -O3 -I"$kernels/include" $(pkg-config --cflags openblas) "$kernels"/variants.c "$kernels"/half_kernels.c \
    "$kernels"/half_avx512bf16.c "$here/half_bench.c" $(pkg-config --libs openblas) -lpthread -lm -o "$out/half_bench"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$out/half_bench" "$@"
