#!/usr/bin/env bash
# Prints the peak resident memory of the emulator this run started (scripts/with-emulator.sh
# exports its pid), as a benchmark line. Prints nothing for an emulator it did not start.
set -euo pipefail
pid="${SWITCHYARD_EMULATOR_PID:-}"
[ -n "$pid" ] && [ -r "/proc/$pid/status" ] || exit 0
awk '/^VmHWM:/ { printf "bench emulator.peak_rss_mb = %.1f MB\n", $2 / 1024 }' "/proc/$pid/status"
