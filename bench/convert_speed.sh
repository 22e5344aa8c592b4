#!/usr/bin/env bash
# Conversion speed and memory on a full-size checkpoint (issue: native format, "Speed"):
#   f32 conversion vs `cp` + `sync` (both end with the file on disk: convert fsyncs by default)
#   and `convert --no-fsync` vs plain `cp` (both end with the file in the page cache),
#   int8 conversion, peak RSS of each (/usr/bin/time -v), opening time of the converted files,
#   and the int8 / float32 file size ratio.
# Usage: bench/convert_speed.sh [CHECKPOINT]   (default: a synthetic full-size fine-tuned
#        checkpoint made with tools/make_synthetic_checkpoint.py, which needs torch)
# Env:   SCRATCH=.build-xyz to build into another scratch path; RUNS=3.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scratch="${SCRATCH:-.build}"
runs="${RUNS:-3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/beats-convert-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

checkpoint="${1:-}"
if [ -z "$checkpoint" ]; then
    checkpoint="$work/full_ft.pt"
    python3 tools/make_synthetic_checkpoint.py --kind finetuned -o "$checkpoint" >/dev/null
fi
swift build -c release --scratch-path "$scratch" --product beats >/dev/null
beats="$scratch/release/beats"

calc() { python3 -c "print($1)"; }
seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); calc "$end - $start"; }
best() { sort -g | head -1; }
peak_rss_mb() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1 / 1024}'; }
# CPU seconds (user + sys, all threads): a figure that other load on the machine does not inflate.
cpu_seconds() { /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.2f", $1 + $2}'; }

cat "$checkpoint" >/dev/null  # page cache warm, as for cp
size=$(stat -c %s "$checkpoint")
echo "checkpoint: $checkpoint ($(printf '%.1f' "$(calc "$size / 1000000")") MB)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

cp_time=$(for _ in $(seq "$runs"); do rm -f "$work/copy"; sync; seconds cp "$checkpoint" "$work/copy"; done | best)
cp_sync_time=$(for _ in $(seq "$runs"); do rm -f "$work/copy"; sync; seconds sh -c "cp '$checkpoint' '$work/copy' && sync '$work/copy'"; done | best)
rm -f "$work/copy"

convert_time() {  # $1 = output, rest = extra options
    local output="$1"; shift
    for _ in $(seq "$runs"); do rm -f "$output"; sync; seconds "$beats" convert "$checkpoint" -o "$output" "$@"; done | best
}
f32_time=$(convert_time "$work/model_f32.beatsw")
int8_time=$(convert_time "$work/model_int8.beatsw" --quantize int8)
# --no-fsync leaves the file in the page cache as `cp` does: the like-for-like comparison with cp.
f32_nofsync_time=$(convert_time "$work/model_f32.beatsw" --no-fsync)
int8_nofsync_time=$(convert_time "$work/model_int8.beatsw" --quantize int8 --no-fsync)
f32_rss=$(rm -f "$work/r.beatsw"; peak_rss_mb "$beats" convert "$checkpoint" -o "$work/r.beatsw")
int8_rss=$(rm -f "$work/r.beatsw"; peak_rss_mb "$beats" convert "$checkpoint" -o "$work/r.beatsw" --quantize int8)
rm -f "$work/r.beatsw"
cp_cpu=$(rm -f "$work/copy"; cpu_seconds cp "$checkpoint" "$work/copy"; rm -f "$work/copy")
f32_cpu=$(rm -f "$work/r.beatsw"; cpu_seconds "$beats" convert "$checkpoint" -o "$work/r.beatsw")
int8_cpu=$(rm -f "$work/r.beatsw"; cpu_seconds "$beats" convert "$checkpoint" -o "$work/r.beatsw" --quantize int8)
rm -f "$work/r.beatsw"
f32_size=$(stat -c %s "$work/model_f32.beatsw")
int8_size=$(stat -c %s "$work/model_int8.beatsw")
open_ms() { for _ in $(seq 10); do "$beats" check --header-only "$1" | sed -E 's/.*open ([0-9.]+) ms.*/\1/'; done | best; }
open_f32=$(open_ms "$work/model_f32.beatsw")
open_int8=$(open_ms "$work/model_int8.beatsw")
check_time=$(seconds "$beats" check "$work/model_f32.beatsw")

printf '\n%-40s %9s %9s %10s\n' "step (best of $runs)" "seconds" "x cp" "x cp+sync"
printf '%-40s %9.3f %9s %10s\n' "cp" "$cp_time" "1.00" ""
printf '%-40s %9.3f %9s %10s\n' "cp + sync" "$cp_sync_time" "" "1.00"
printf '%-40s %9.3f %9.2f %10.2f\n' "beats convert (f32, fsync)" "$f32_time" "$(calc "$f32_time / $cp_time")" "$(calc "$f32_time / $cp_sync_time")"
printf '%-40s %9.3f %9.2f %10.2f\n' "beats convert --quantize int8" "$int8_time" "$(calc "$int8_time / $cp_time")" "$(calc "$int8_time / $cp_sync_time")"
printf '%-40s %9.3f %9.2f %10s\n' "beats convert --no-fsync" "$f32_nofsync_time" "$(calc "$f32_nofsync_time / $cp_time")" ""
printf '%-40s %9.3f %9.2f %10s\n' "beats convert --quantize int8 --no-fsync" "$int8_nofsync_time" "$(calc "$int8_nofsync_time / $cp_time")" ""
printf '%-40s %9.3f\n' "beats check (f32, all checksums)" "$check_time"
echo
echo "CPU (user + sys): cp $cp_cpu s, convert f32 $f32_cpu s, convert int8 $int8_cpu s (includes the SHA-256 thread)"
echo "load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "peak RSS: f32 convert $f32_rss MB, int8 convert $int8_rss MB"
echo "open (header + table validation, best of 10 processes): f32 $open_f32 ms, int8 $open_int8 ms"
echo "sizes: f32 $(printf '%.1f' "$(calc "$f32_size / 1000000")") MB, int8 $(printf '%.1f' "$(calc "$int8_size / 1000000")") MB, ratio $(printf '%.3f' "$(calc "$int8_size / $f32_size")")"
