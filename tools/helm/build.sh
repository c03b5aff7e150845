#!/usr/bin/env bash
# Builds Helm, the version tools/helm/go.mod pins (go.sum checks every module), from the Go module
# proxy into .local/bin/helm and prints its path. Built once: again only when this folder changes.
# Used by `make install` (deploy/bootstrap.sh) and by the chart's test (tests/test_helm_chart.py).
# The first build takes a few minutes (Helm is large); later ones reuse Go's build cache.
set -euo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$DIR/../.." && pwd)"
BIN="${CX_LOCAL_DIR:-$ROOT/.local}/bin/helm"
if [ ! -x "$BIN" ] || [ -n "$(find "$DIR" -newer "$BIN" -type f)" ]; then
  echo "[helm] building Helm from the Go module proxy (first time only: a few minutes)" >&2
  mkdir -p "$(dirname "$BIN")"
  (cd "$DIR" && go build -trimpath -o "$BIN.new" helm.sh/helm/v4/cmd/helm)
  mv "$BIN.new" "$BIN"
fi
echo "$BIN"
