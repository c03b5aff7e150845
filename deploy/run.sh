#!/usr/bin/env bash
# `make run`: the local infrastructure, the four services and a small realistic data set.
# Stays up until Ctrl-C, then stops everything it started.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL/logs"
SERVICES=(applications assessment grants notifications)
PORTS=(8001 8002 8003 8004)
before="$(deploy/infra.sh status | grep -c running || true)"
pids=()

cleanup() {
  trap - INT TERM EXIT
  echo; echo "[run] stopping the services"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  [ "$before" = "0" ] && deploy/infra.sh down
  exit 0
}
trap cleanup INT TERM EXIT

deploy/infra.sh up || exit 1
set -a; eval "$(deploy/infra.sh env)"; set +a
export DEV_TOKENS="${DEV_TOKENS:-true}" LOG_JSON="${LOG_JSON:-true}"
export KAFKA_SECURITY_PROTOCOL KAFKA_SASL_MECHANISM
start_service() { # name, port: the service with its own broker principal and none of the others' passwords
  local name=$1 port=$2 password var
  password="$(printenv "KAFKA_PASSWORD_${name^^}")"
  (for var in $(compgen -v KAFKA_PASSWORD_); do unset "$var"; done
   KAFKA_USERNAME="$name" KAFKA_PASSWORD="$password" HTTP_PORT="$port" exec .venv/bin/python -m "$name") \
    >"$LOCAL/logs/$name.log" 2>&1 &
  pids+=($!)
}
for i in "${!SERVICES[@]}"; do
  start_service "${SERVICES[$i]}" "${PORTS[$i]}"
done
for i in "${!SERVICES[@]}"; do
  url="http://127.0.0.1:${PORTS[$i]}/health/ready"
  for _ in $(seq 1 120); do curl -sf "$url" >/dev/null && break; sleep 0.5; done
  curl -sf "$url" >/dev/null || { echo "[run] ${SERVICES[$i]} did not start: see $LOCAL/logs/${SERVICES[$i]}.log"; exit 1; }
done
.venv/bin/python deploy/seed.py || echo "[run] seeding failed (see above); the services are still up"
cat <<INFO

ClusterXchange is up (logs in .local/logs/). Ctrl-C stops everything.
  applications   http://127.0.0.1:8001/docs   AsyncAPI http://127.0.0.1:8001/asyncapi
  assessment     http://127.0.0.1:8002/docs   AsyncAPI http://127.0.0.1:8002/asyncapi
  grants         http://127.0.0.1:8003/docs   AsyncAPI http://127.0.0.1:8003/asyncapi
  notifications  http://127.0.0.1:8004/docs   AsyncAPI http://127.0.0.1:8004/asyncapi
  metrics        http://127.0.0.1:800{1,2,3,4}/metrics (Prometheus text; traces: set OTEL_EXPORTER_OTLP_ENDPOINT)
  sent mail      ${SMTP_SINK_URL}/messages
  Kafka          ${KAFKA_BOOTSTRAP_SERVERS} (SASL/SCRAM-SHA-512; one principal per service, passwords in
                 .local/kafka-credentials.env)   MongoDB protocol  ${MONGODB_URL}
Seeded ids are in .local/seed.json.
INFO
while true; do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "[run] a service stopped; see .local/logs"; exit 1; }
  done
  sleep 2
done
