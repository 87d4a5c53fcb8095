#!/usr/bin/env bash
# Puts every C++ source of the project into clang-format's shape.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
find include tests examples bench apps -type f \
  \( -name '*.hpp' -o -name '*.cpp' -o -name '*.cu' \) 2>/dev/null \
  | xargs -r clang-format -i --style=file
