#!/usr/bin/env bash
# Installs the two system libraries the package links (Debian packages), only when missing.
set -euo pipefail
missing=()
for package in zlib1g-dev libopenblas-dev pkg-config; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get install -y "${missing[@]}" || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y "${missing[@]}"; }
fi
