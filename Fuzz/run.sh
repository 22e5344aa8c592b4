#!/usr/bin/env bash
# Builds and runs a libFuzzer target of the BEATs readers.
#
#   Fuzz/run.sh TARGET SECONDS [libFuzzer flags...]   one target for SECONDS
#   Fuzz/run.sh all SECONDS [flags...]                every target for SECONDS each, JOBS at a time (default 1)
#   Fuzz/run.sh build                                 build every target only
#   Fuzz/run.sh minimize TARGET                       merge the grown corpus into a minimal one (corpus/TARGET.min)
#   Fuzz/run.sh repro TARGET FILE...                  run the target once on each FILE (a crash reproducer)
#   Fuzz/run.sh replay TARGET                         run every corpus input once (FUZZ_CONFIG=debug adds
#                                                     Swift's debug-only bounds checks to what ASan sees)
#
# TARGET is zip, pickle, checkpoint, native, wav or safetensors. The build is release (FUZZ_CONFIG=debug for debug) with
# `--sanitize=fuzzer --sanitize=address` on every module (the toolkit's too), in Fuzz/.build,
# separate from the main package's build. Corpora grow in Fuzz/corpus/TARGET (not committed);
# they start from Fuzz/seeds/TARGET and the small files of Fixtures/ (staged into
# Fuzz/corpus/.seeds-TARGET). Crashes, timeouts and out-of-memory inputs land in
# Fuzz/crashes/TARGET/; logs in Fuzz/logs/. Every finding belongs in a FuzzRegressionTests file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
targets=(zip pickle checkpoint native wav safetensors)
config="${FUZZ_CONFIG:-release}"

product() {
    case "$1" in
        zip) echo FuzzZip ;;
        pickle) echo FuzzPickle ;;
        checkpoint) echo FuzzCheckpoint ;;
        native) echo FuzzNative ;;
        wav) echo FuzzWAV ;;
        safetensors) echo FuzzSafetensors ;;
        *) echo "unknown target '$1' (expected: ${targets[*]})" >&2; exit 2 ;;
    esac
}

# Largest input the fuzzer makes: room for every seed, small enough that mutations hit structure.
max_len() {
    case "$1" in
        pickle) echo 8192 ;;
        wav) echo 20000 ;;
        *) echo 16384 ;;
    esac
}

# Fixture folders whose small files seed each target.
fixture_dirs() {
    case "$1" in
        zip|checkpoint) echo "models parser hostile generated" ;;
        pickle) echo "pickle" ;;
        native) echo "" ;;
        wav) echo "audio audio-formats audio-encoded" ;;
        safetensors) echo "safetensors" ;;
    esac
}

# SwiftPM passes its --sanitize set to swiftc in no fixed order, and when `-sanitize=address` comes
# last swiftc drops the fuzzer's coverage instrumentation from every Swift module: the targets then
# fuzz blind (about 2 900 counters, the C kernels only, against about 40 000). The combined flag
# given again at the end keeps both; --sanitize=fuzzer is still needed for libFuzzer's main().
build() {
    (cd "$here" && swift build -c "$config" --sanitize=fuzzer --sanitize=address \
        -Xswiftc -sanitize=address,fuzzer "$@" 2>&1 \
        | grep -v -e '^\[' -e "Cannot export local symbol '__asan_extra_spill_area'" >&2)
}

# Refuses to fuzz with a binary whose Swift code carries no coverage counters (see build()).
check_instrumented() {
    local counters
    counters="$(printf '' | "$(binary "$1")" -runs=0 2>&1 | sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' | head -1)"
    if [ "${counters:-0}" -lt 10000 ]; then
        echo "$(binary "$1") has ${counters:-no} coverage counters: the Swift modules are not instrumented" >&2
        exit 1
    fi
}

binary() { echo "$here/.build/$config/$(product "$1")"; }

stage_seeds() {
    local target="$1" limit
    limit="$(max_len "$target")"
    local staged="$here/corpus/.seeds-$target"
    rm -rf "$staged"
    mkdir -p "$staged" "$here/corpus/$target" "$here/crashes/$target" "$here/logs"
    [ -d "$here/seeds/$target" ] && find "$here/seeds/$target" -type f -size -"$((limit + 1))"c -exec cp {} "$staged/" \;
    for dir in $(fixture_dirs "$target"); do
        find "$root/Fixtures/$dir" -type f ! -name '*.json' ! -name '*.npy' -size -"$((limit + 1))"c \
            -exec sh -c 'cp "$1" "$2/fixture-$(basename "$1")"' _ {} "$staged" \;
    done
    # A checkpoint's data.pkl is a pickle seed too.
    if [ "$target" = pickle ]; then
        python3 - "$root/Fixtures/generated" "$root/Fixtures/hostile" "$staged" <<'PY' || true
import os, sys, zipfile
out = sys.argv[-1]
for folder in sys.argv[1:-1]:
    for name in os.listdir(folder):
        try:
            archive = zipfile.ZipFile(os.path.join(folder, name))
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if pickles:
                with open(os.path.join(out, "data-" + name + ".pkl"), "wb") as handle:
                    handle.write(archive.read(pickles[0]))
        except Exception:
            pass
PY
    fi
}

run() {
    local target="$1" seconds="$2"
    shift 2
    check_instrumented "$target"
    stage_seeds "$target"
    local deadline=$(( $(date +%s) + seconds ))
    local status=0
    while :; do
        local left=$(( deadline - $(date +%s) ))
        [ "$left" -gt 0 ] || break
        local log="$here/logs/$target-$(date +%Y%m%d-%H%M%S).log"
        echo "fuzzing $target for ${left}s, log: $log" >&2
        # -timeout: a run over 5 s is a hang; -rss_limit_mb also caps single allocations
        # (-malloc_limit_mb defaults to it), so an allocation the input dictates fails the run.
        status=0
        LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
        "$(binary "$target")" "$here/corpus/$target" "$here/corpus/.seeds-$target" \
            -dict="$here/dicts/$target.dict" -max_len="$(max_len "$target")" \
            -rss_limit_mb=2048 -timeout=5 -max_total_time="$left" -print_final_stats=1 \
            -artifact_prefix="$here/crashes/$target/" "$@" >"$log" 2>&1 || status=$?
        grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)|^stat::number_of_executed_units|^stat::peak_rss_mb|==ERROR|SUMMARY|Test unit written' "$log" >&2 || true
        [ "$status" -ne 0 ] || break
        # A shared machine sometimes stalls every process for a minute: a "timeout" whose input
        # then runs at once was the machine, not the input. Drop it and go on fuzzing.
        local artifact
        artifact="$(sed -n 's/.*Test unit written to \(.*timeout-[0-9a-f]*\)$/\1/p' "$log" | tail -1)"
        if [ -n "$artifact" ] && "$(binary "$target")" -timeout=5 -rss_limit_mb=2048 "$artifact" >/dev/null 2>&1; then
            echo "stall, not a hang: $(basename "$artifact") runs in time; removed, fuzzing on" >&2
            rm -f "$artifact"
            continue
        fi
        break
    done
    return "$status"
}

case "${1:-}" in
    build)
        build ;;
    all)
        seconds="${2:?usage: run.sh all SECONDS}"
        shift 2
        build
        printf '%s\n' "${targets[@]}" | xargs -P "${JOBS:-1}" -I{} "$0" --no-build {} "$seconds" "$@" ;;
    --no-build)
        shift
        target="$1" seconds="$2"
        shift 2
        run "$target" "$seconds" "$@" ;;
    minimize)
        target="${2:?usage: run.sh minimize TARGET}"
        product "$target" >/dev/null
        build --product "$(product "$target")"
        rm -rf "$here/corpus/$target.min" && mkdir -p "$here/corpus/$target.min"
        "$(binary "$target")" -merge=1 -max_len="$(max_len "$target")" -rss_limit_mb=2048 -timeout=5 \
            "$here/corpus/$target.min" "$here/corpus/$target" ;;
    replay)
        target="${2:?usage: run.sh replay TARGET}"
        product "$target" >/dev/null
        build --product "$(product "$target")"
        stage_seeds "$target"
        "$(binary "$target")" -runs=0 -max_len="$(max_len "$target")" -rss_limit_mb=2048 -timeout=5 \
            -artifact_prefix="$here/crashes/$target/" "$here/corpus/$target" "$here/corpus/.seeds-$target" ;;
    repro)
        target="${2:?usage: run.sh repro TARGET FILE...}"
        shift 2
        LSAN_OPTIONS="suppressions=$here/lsan.supp" "$(binary "$target")" -rss_limit_mb=2048 -timeout=5 "$@" ;;
    zip|pickle|checkpoint|native|wav|safetensors)
        target="$1" seconds="${2:?usage: run.sh TARGET SECONDS}"
        shift 2
        build --product "$(product "$target")"
        run "$target" "$seconds" "$@" ;;
    *)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 2 ;;
esac
