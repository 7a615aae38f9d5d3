#!/usr/bin/env bash
# Install the Debian packages the tests and benches use when they are missing:
# nginx (front mode), wrk (benches), chromium + chromium-driver (the dashboard test),
# systemd (systemd-analyze verify checks the units in docs/deploy.md),
# prometheus (promtool checks the shipped rules; the metrics test scrapes a sidecar).
# Safe to run again. Without apt or root (a laptop), it says what is missing and exits 0:
# the tests that need a package skip, except under CI=true, where they fail.
set -euo pipefail
declare -A binary=([nginx]=/usr/sbin/nginx [wrk]=/usr/bin/wrk [chromium]=/usr/bin/chromium
                   [chromium-driver]=/usr/bin/chromedriver [systemd]=/usr/bin/systemd-analyze
                   [prometheus]=/usr/bin/promtool)
missing=()
for package in "${!binary[@]}"; do
  [ -x "${binary[$package]}" ] || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "ensure-system-packages: nginx, wrk, chromium, chromium-driver, systemd and prometheus are installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "ensure-system-packages: missing ${missing[*]} (no apt-get as root here); tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
# Debian starts nginx and prometheus as services on install; the tests run their own.
if command -v service >/dev/null 2>&1; then
  for service in nginx prometheus; do service "$service" stop >/dev/null 2>&1 || true; done
fi
echo "ensure-system-packages: installed ${missing[*]}"
