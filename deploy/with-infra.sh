#!/usr/bin/env bash
# Runs a command with the local infrastructure up and its settings in the environment.
# Starts what is not running and stops afterwards only what it started itself.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
before="$(deploy/infra.sh status | grep -c running || true)"
cleanup() { [ "$before" = "0" ] && deploy/infra.sh down; }
trap cleanup EXIT
trap 'exit 130' INT TERM
deploy/infra.sh up || exit 1
set -a; eval "$(deploy/infra.sh env)"; set +a
"$@"
