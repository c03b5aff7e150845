#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: uv (from PyPI), the workspace's
# locked Python packages, Debian's PostgreSQL server, FerretDB (Go module proxy), Apache
# Kafka (Maven Central), the official AsyncAPI JSON Schemas (npm, for the catalog's test) and
# Helm (Go module proxy, for the chart's test).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
for tool in python3 java mvn go npm; do
  command -v "$tool" >/dev/null || { echo "bootstrap: $tool is required (see README, Requirements)" >&2; exit 1; }
done
export PATH="$HOME/.local/bin:$PATH"  # where pip --user puts uv
if ! command -v uv >/dev/null; then
  echo "[bootstrap] installing uv from PyPI" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --all-packages --frozen --quiet
apt_install() { # Debian packages, when the machine can install them
  command -v apt-get >/dev/null || { echo "bootstrap: please install $* (Debian package names)" >&2; return 1; }
  echo "[bootstrap] installing Debian's $*" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# FerretDB's storage in local mode and CI: Debian's PostgreSQL server (run by deploy/infra.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
# The official AsyncAPI JSON Schemas (npm @asyncapi/specs, pinned with its integrity by the lock
# file): the test of the event catalog validates it against them, offline.
specs=tools/asyncapi-specs
[ "$specs/node_modules/.package-lock.json" -nt "$specs/package-lock.json" ] ||
  (cd "$specs" && npm ci --ignore-scripts --no-audit --no-fund --silent)
# Debian's Chromium, for the dashboard's headless-browser test.
command -v chromium >/dev/null || ! command -v apt-get >/dev/null || apt_install chromium
deploy/infra.sh prepare
# Helm, for the chart's test (deploy/helm): built from the Go module proxy, once.
tools/helm/build.sh >/dev/null
