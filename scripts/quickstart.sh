#!/usr/bin/env bash
# The quick start: trains MTSAM with ToRA on the built-in scene data set, on the CPU.
#   1. installs the dependencies (scripts/install-deps.sh);
#   2. configures with the default preset and builds only the `mtsam` command and the backbone
#      builder;
#   3. on first use, pretrains a small SAM on scenes of another seed and caches it in the official
#      checkpoint layout (.cache/mtsam/sam_scenes_tiny.pth);
#   4. fine-tunes MTSAM from it with ToRA (examples/quickstart.toml), printing every task's test
#      metrics before and after, and writes the report to out/quickstart/report.html.
# Extra arguments go to `mtsam train` (e.g. --epochs 3, -s train.device=cuda).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${TORA_JOBS:-$(nproc)}"
start=$SECONDS

"$root/scripts/install-deps.sh"
cd "$root"
cmake --preset default
cmake --build --preset default --target mtsam_cli quickstart_backbone --parallel "$jobs"

bin="$root/build/default/bin"
trained=$SECONDS
"$bin/quickstart_backbone" --config examples/quickstart.toml
"$bin/mtsam" train --config examples/quickstart.toml --require-improvement "$@"

printf '\nquickstart: done in %d s (%d s of it building), report: %s\n' \
  $((SECONDS - start)) $((trained - start)) "$root/out/quickstart/report.html"
