#!/usr/bin/env bash
# The Alertmanager channel's tests run Debian's Alertmanager (this machine cannot download
# a release binary). The tests start and stop their own instance on a free port.
set -euo pipefail
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  echo "installing Debian's prometheus-alertmanager for the Alertmanager channel tests"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # Without systemd the package's own service does not start; the tests run their own.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends prometheus-alertmanager >/dev/null
fi
