#!/usr/bin/env bash
# Installs what the package needs, only when missing: the system libraries it uses (zlib, linked;
# OpenBLAS and libsndfile, loaded with dlopen when first needed — only the runtime package of
# libsndfile, libsndfile1, since nothing is built against it), from Debian, and numpy for the
# test that runs the independent Python format reader.
set -euo pipefail
missing=()
for package in zlib1g-dev libopenblas-dev libsndfile1 pkg-config; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
export DEBIAN_FRONTEND=noninteractive
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    $sudo_cmd apt-get install -y "${missing[@]}" || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y "${missing[@]}"; }
fi
# The format tests run the independent Python reader (Formats/beatsw_reader.py), which needs numpy.
if ! python3 -c "import numpy" >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || { $sudo_cmd apt-get install -y python3 python3-numpy; }
    python3 -c "import numpy" >/dev/null 2>&1 || python3 -m pip install --quiet numpy || $sudo_cmd apt-get install -y python3-numpy
fi
