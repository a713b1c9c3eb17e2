#!/usr/bin/env bash
# The TimescaleDB store tests need the extension in the local PostgreSQL. Where ../shared
# holds the vendored source, build and preload it once (about 3 minutes; restarts the
# cluster once). Elsewhere do nothing: those tests skip, saying why.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/../shared/vendor/timescaledb/build.sh"
if [ ! -f "$build" ]; then
  echo "timescaledb: $build not found; the TimescaleDB store tests will be skipped"
  exit 0
fi
# One build at a time on this machine (several checkouts may run `make services`).
exec 9>/tmp/modelmonitor-timescaledb-build.lock
flock 9
if bash "$build" --check; then exit 0; fi
echo "timescaledb: building and installing the vendored TimescaleDB (a few minutes)"
major=$(ls /etc/postgresql | sort -n | tail -1)
# build.sh's own apt-get gives up at once when another apt-get holds the lock: wait for it.
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s "postgresql-server-dev-$major" cmake libssl-dev gcc make >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "postgresql-server-dev-$major" cmake \
    libssl-dev gcc make >/dev/null
fi
conf=/etc/postgresql/$major/main/conf.d/timescaledb.conf
# fd 9 is closed for what may restart PostgreSQL, so the server does not inherit the lock.
if ! bash "$build" 9>&- && [ -f "$conf" ]; then
  # Built and configured, but build.sh's plain pg_ctlcluster could not restart the
  # cluster (it redirects to systemctl where systemd runs): restart it directly, once.
  pg_ctlcluster --skip-systemctl-redirect "$major" main restart 9>&-
fi
for _ in $(seq 1 30); do bash "$build" --check && exit 0; sleep 1; done
echo "timescaledb: the extension is still not available after the build" >&2
exit 1
