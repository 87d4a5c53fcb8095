#!/usr/bin/env bash
# Installs the dependencies, configures, builds and runs every test (ctest).
# Usage: scripts/run-tests.sh [preset]   (default: "default"; see CMakePresets.json)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${1:-default}"
jobs="${TORA_JOBS:-$(nproc)}"

"$root/scripts/install-deps.sh"
cd "$root"
cmake --preset "$preset"
cmake --build --preset "$preset" -- -j"$jobs"
ctest --preset "$preset"
