#!/bin/sh
# Builds hello-c.wasm with Debian's clang and wasi-libc
# (apt install clang lld wasi-libc libclang-rt-14-dev-wasm32).
set -eu
cd "$(dirname "$0")"
exec clang --target=wasm32-wasi -O2 -Wl,--strip-all -o "${1:-hello-c.wasm}" main.c
