#!/usr/bin/env bash
# Installs the Debian packages mailmig needs, once: the PostgreSQL server of the
# installed major version (the newest one if several), its pg_cron, pgloader, sqlite3,
# swaks and curl (the clients the service's tests and the seed's checks use).
# Package names are derived from the installed major (FIELD-NOTES: never hard-code 15).
# Installs nothing and runs no `apt-get update` when everything is present.
set -euo pipefail

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-packages: missing Debian packages: $*; run as root (or install them) first" >&2
    exit 1
  fi
}

updated=0
apt_install() {
  need_root "$@"
  if [ "$updated" -eq 0 ]; then
    echo "apt-get update"
    apt-get update -qq
    updated=1
  fi
  echo "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing() {
  local out=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || out+=("$pkg")
  done
  echo "${out[@]:-}"
}

pg_major() {
  ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sed -E 's#/usr/lib/postgresql/([0-9]+)/.*#\1#' | sort -n | tail -1
}

major=$(pg_major)
if [ -z "$major" ]; then
  apt_install postgresql postgresql-contrib
  major=$(pg_major)
fi
[ -n "$major" ] || { echo "install-system-packages: no PostgreSQL server after installing 'postgresql'" >&2; exit 1; }

want=("postgresql-$major" "postgresql-$major-cron" pgloader sqlite3 postgresql-client-common swaks curl)
python=$(command -v python3.11 || command -v python3 || true)
if [ -z "$python" ] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  want+=(python3 python3-venv)
fi
todo=$(missing "${want[@]}")
if [ -n "$todo" ]; then
  # shellcheck disable=SC2086
  apt_install $todo
fi
# Debian starts a cluster of its own on 5432 after installing the server; mailmig
# does not use it and leaves it alone.
echo "system packages: PostgreSQL $major with pg_cron, pgloader $(pgloader --version 2>/dev/null | head -1 | awk '{print $3}'), sqlite3 $(sqlite3 --version | awk '{print $1}')"
