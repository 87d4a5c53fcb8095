#!/usr/bin/env bash
# Installs what tora and MTSAM need on Debian 12, idempotently:
#   - Debian packages: compiler tool chain, CMake, Eigen, fmt, doctest, Google Benchmark, stb,
#     libmatio, CLI11, nlohmann-json, toml++, clang-format;
#   - LibTorch: PyPI's torch (pinned) in the project's virtual environment .venv, which CMake
#     finds through torch.utils.cmake_prefix_path. Set TORA_SKIP_TORCH=1 to bring your own
#     LibTorch instead (then configure with -DTorch_DIR=<libtorch>/share/cmake/Torch).
# Run it again at any time: what is already there is left alone.
set -euo pipefail

TORCH_VERSION="${TORA_TORCH_VERSION:-2.12.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TORA_VENV:-$root/.venv}"

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

packages=(
  build-essential cmake ninja-build pkg-config git python3 python3-venv python3-pip
  clang-format libeigen3-dev libfmt-dev doctest-dev libbenchmark-dev libstb-dev libmatio-dev
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev
)

# 1. Debian packages.
if [ -r /etc/os-release ]; then
  . /etc/os-release
  if [ "${ID:-}" != "debian" ] || [ "${VERSION_ID:-}" != "12" ]; then
    say "expected Debian 12, found ${PRETTY_NAME:-an unknown system}; on another distribution"
    say "install the equivalents of: ${packages[*]}"
    say "then run this script with TORA_SKIP_APT=1"
    [ "${TORA_SKIP_APT:-0}" = "1" ] || die "unsupported distribution (see above)"
  fi
fi

if [ "${TORA_SKIP_APT:-0}" != "1" ]; then
  missing=()
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt=(apt-get)
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 \
        || die "not root and no sudo: as root, run apt-get install -y ${missing[*]}"
      apt=(sudo apt-get)
    fi
    say "installing Debian packages: ${missing[*]}"
    "${apt[@]}" update -q
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q --no-install-recommends \
      "${missing[@]}"
  else
    say "Debian packages present"
  fi
fi

# 2. LibTorch from PyPI's torch, in the project's virtual environment.
if [ "${TORA_SKIP_TORCH:-0}" = "1" ]; then
  say "TORA_SKIP_TORCH=1: configure with -DTorch_DIR=<libtorch>/share/cmake/Torch"
  exit 0
fi
if [ ! -x "$venv/bin/python3" ]; then
  say "creating the virtual environment $venv"
  python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv"
fi
installed="$("$venv/bin/python3" -c 'import torch; print(torch.__version__.split("+")[0])' \
  2>/dev/null || true)"
if [ "$installed" != "$TORCH_VERSION" ]; then
  say "installing torch==$TORCH_VERSION into $venv (LibTorch with CUDA; runs on a CPU too)"
  "$venv/bin/python3" -m pip install -q --disable-pip-version-check \
    "torch==$TORCH_VERSION" numpy safetensors \
    || die "pip could not install torch==$TORCH_VERSION; bring your own LibTorch and rerun \
with TORA_SKIP_TORCH=1"
else
  say "torch $installed present in $venv"
fi
say "LibTorch CMake prefix: $("$venv/bin/python3" -c \
  'import torch.utils; print(torch.utils.cmake_prefix_path)')"
