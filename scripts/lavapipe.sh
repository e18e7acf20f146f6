#!/usr/bin/env bash
# Mesa's software Vulkan driver (lavapipe) recent enough for onnxruntime's
# WebGPU provider, in the checkout's .cache/lavapipe/, for the tests and
# `npm run bench:gpu` only (test/helpers/lavapipe.ts points VK_ICD_FILENAMES
# at it there). Nothing is installed system-wide.
#
#   bash scripts/lavapipe.sh     # prints the ICD file's path, or nothing where none is needed
#
# Why not the system's: Dawn refuses Debian 12's lavapipe 22.3 ("No supported
# adapters": it lacks shaderUniform*ArrayDynamicIndexing) and takes 25.0 from
# bookworm-backports; but installing 25.0 system-wide made llama.cpp's first
# Vulkan load, which compiles its shaders, 4x slower (19 s -> 75 s here) for
# the LLM Vulkan test, and CI starts cold. 25.0 needs nothing newer than
# bookworm has (it links LLVM 15, like 22.3). Elsewhere (Debian 13 has 25;
# no apt; not x86-64) this does nothing: the WebGPU tests use what the system
# has, or skip, and fail only under CI.
set -euo pipefail

dir="$(cd "$(dirname "$0")/.." && pwd)/.cache/lavapipe"
icd="$dir/lvp_icd.json"
say() { echo "lavapipe.sh: $*" >&2; }

if [[ -f "$icd" ]]; then
  echo "$icd"
  exit 0
fi
# shellcheck source=/dev/null
. /etc/os-release 2>/dev/null || true
if [[ "${VERSION_CODENAME:-}" != bookworm || "$(uname -m)" != x86_64 ]] || ! command -v apt-get >/dev/null; then
  say "not Debian 12 on x86-64: using the system's Vulkan drivers"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
echo 'deb http://deb.debian.org/debian bookworm-backports main' >"$tmp/sources.list"
apt=(-o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
say "downloading mesa-vulkan-drivers from bookworm-backports"
apt-get "${apt[@]}" update -qq
(cd "$tmp" && apt-get "${apt[@]}" download -qq mesa-vulkan-drivers)
dpkg-deb -x "$tmp"/mesa-vulkan-drivers_*.deb "$tmp/root"
mkdir -p "$dir"
cp "$tmp/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" "$dir/"
api="$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' "$tmp/root/usr/share/vulkan/icd.d/lvp_icd.json")"
cat >"$icd" <<EOF
{
    "ICD": { "api_version": "$api", "library_path": "$dir/libvulkan_lvp.so" },
    "file_format_version": "1.0.0"
}
EOF
say "lavapipe $(dpkg-deb -f "$tmp"/mesa-vulkan-drivers_*.deb Version) in $dir"
echo "$icd"
