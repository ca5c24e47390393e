#!/usr/bin/env bash
# Builds the C host against the debug cdylib with AddressSanitizer (and LeakSanitizer) and runs
# it on the shipped presets. Needs a C compiler (cc: gcc or clang). From the workspace root:
#   cargo build -p boundflow-ffi && bash ffi/tests/c/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v cc >/dev/null || { echo "the FFI tests need a C compiler (cc)" >&2; exit 1; }
out=target/ffi-c-host
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -fsanitize=address \
    -fno-omit-frame-pointer -I ffi/include ffi/tests/c/host.c \
    -L target/debug -lboundflow_ffi -Wl,-rpath,"$PWD/target/debug" -o "$out"
# Leak checking stays on. Process-lifetime state (the handle table, the per-thread push
# announcement slots, thread-locals) stays reachable from statics, so LeakSanitizer does not
# report it; anything it does report is a real leak.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$out" config/presets
