#!/usr/bin/env bash
# The Alertmanager channel's tests run Debian's Alertmanager (this machine cannot download
# a release binary). The tests start and stop their own instance on a free port.
set -euo pipefail
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  echo "installing Debian's prometheus-alertmanager for the Alertmanager channel tests"
  apt-get update -qq
  # The package's own service is not wanted: policy-rc.d keeps it from starting.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus-alertmanager >/dev/null
fi
