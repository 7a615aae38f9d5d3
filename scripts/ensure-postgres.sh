#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster if it is installed and down, and make sure the
# `strangler` role and database used by the tests exist. Safe to run again.
# Without PostgreSQL (a laptop), it says so and exits 0: the tests that need it skip,
# except under CI=true, where they fail.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "ensure-postgres: PostgreSQL is not installed; tests that need it will skip" >&2
  exit 0
fi
read -r version cluster _ status _ < <(pg_lsclusters --no-header | head -n 1) || true
if [ -z "${version:-}" ]; then
  echo "ensure-postgres: no PostgreSQL cluster found" >&2
  exit 0
fi
if [ "$status" != "online" ]; then
  pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
fi
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sh -c "$1"; fi; }
for _ in $(seq 1 50); do
  as_postgres "pg_isready -q -h 127.0.0.1" && break
  sleep 0.2
done
as_postgres "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='strangler'\"" | grep -q 1 \
  || as_postgres "psql -c \"CREATE ROLE strangler LOGIN SUPERUSER PASSWORD 'strangler'\""
as_postgres "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='strangler'\"" | grep -q 1 \
  || as_postgres "createdb -O strangler strangler"
echo "ensure-postgres: PostgreSQL $version/$cluster is up; role and database 'strangler' exist"
