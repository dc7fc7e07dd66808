#!/usr/bin/env bash
# Installs the PostgreSQL server with the wal2json and periods extensions, once.
# Idempotent: does nothing when a server with both extensions is already installed.
# The server version is found, not hard-coded: whatever the distribution ships.
set -euo pipefail

have_server() {
  local bin
  for bin in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    local lib="${bin%/bin}/lib"
    if [ -x "$bin/postgres" ] && [ -f "$lib/wal2json.so" ] && [ -f "$lib/periods.so" ]; then
      echo "PostgreSQL $(basename "${bin%/bin}") with wal2json and periods: $bin"
      return 0
    fi
  done
  return 1
}

have_server && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here; install a PostgreSQL server (>= 14) with the wal2json and periods extensions" >&2
  echo "       (e.g. dnf install postgresql-server wal2json_16 periods_16), then run 'make setup' again" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: installing PostgreSQL needs root: run 'make setup' as root or install sudo" >&2; exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "Installing PostgreSQL with wal2json and periods (apt)..."
$SUDO apt-get update -qq
# Do not create and start the distribution's default cluster: medallion runs its own.
$SUDO mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  $SUDO apt-get install -y -qq postgresql postgresql-client >/dev/null
fi
version=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1 | awk -F/ '{print $(NF-1)}')
$SUDO apt-get install -y -qq "postgresql-$version-wal2json" "postgresql-$version-periods" >/dev/null
have_server || { echo "error: wal2json/periods still missing for PostgreSQL $version" >&2; exit 1; }
