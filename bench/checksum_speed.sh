#!/usr/bin/env bash
# Checksum and SHA-256 throughput in a release build: the numbers behind the native format's
# choice of XXH64 (Formats/NATIVE-FORMAT.md, "Checksums"). Builds a throwaway package in a temp
# folder from the shipped XXHash64.swift, SHA256.swift and CSHA256 plus bench/checksum_speed/*.swift.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/Sources/checksum_speed" "$work/Sources/CSHA256"
cat > "$work/Package.swift" <<'PKG'
// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "checksum_speed", targets: [
    .target(name: "CSHA256", cSettings: [.unsafeFlags(["-O3"])]),
    .executableTarget(name: "checksum_speed", dependencies: ["CSHA256"]),
])
PKG
cp -R "$root/Sources/CSHA256/." "$work/Sources/CSHA256/"
cp "$root/Sources/BEATsFormat/XXHash64.swift" "$root/Sources/BEATsFormat/SHA256.swift" \
   "$root/bench/checksum_speed/"*.swift "$work/Sources/checksum_speed/"
swift build -c release --package-path "$work" >/dev/null
"$work/.build/release/checksum_speed"
