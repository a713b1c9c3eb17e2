#!/usr/bin/env bash
# The ecosystem tests scrape ModelMonitor with a real Prometheus (and check its exposition
# with promtool): Debian's package, since this machine downloads no binaries of its own.
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "installing Debian's prometheus for the ecosystem tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
