#!/usr/bin/env bash
# Local infrastructure without Docker: a real Apache Kafka broker (KRaft, from Maven Central),
# FerretDB on PostgreSQL (FerretDB built from the Go module proxy, Debian's PostgreSQL server
# run from a cluster under .local/) and an SMTP sink.
#   deploy/infra.sh up      start what is not running yet, wait until ready (idempotent)
#   deploy/infra.sh down    stop what this folder's pid files name
#   deploy/infra.sh status  show what runs
#   deploy/infra.sh env     print the settings services and tests need (with every broker principal's
#                           password: each process is then given only its own, see deploy/run.sh)
# Data, logs and pid files live in .local/ (git-ignored). Ports come from the environment.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCAL="${CX_LOCAL_DIR:-$ROOT/.local}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
MONGODB_PORT="${MONGODB_PORT:-27017}"
POSTGRES_PORT="${POSTGRES_PORT:-55432}"
SMTP_PORT="${SMTP_PORT:-1025}"
SMTP_HTTP_PORT="${SMTP_HTTP_PORT:-8025}"
mkdir -p "$LOCAL/logs" "$LOCAL/run" "$LOCAL/bin"

log() { echo "[infra] $*" >&2; }

. "$ROOT/deploy/kafka/broker-properties.sh"

alive() { local pid; pid="$(cat "$LOCAL/run/$1.pid" 2>/dev/null)" && kill -0 "$pid" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2 i
  for i in $(seq 1 240); do
    port_open "$port" && return 0
    alive "$name" || { log "$name died; see $LOCAL/logs/$name.log"; tail -20 "$LOCAL/logs/$name.log" >&2; return 1; }
    sleep 0.5
  done
  log "$name did not open port $port"; return 1
}

start() { # name, command...
  local name=$1; shift
  nohup "$@" >"$LOCAL/logs/$name.log" 2>&1 &
  echo $! >"$LOCAL/run/$name.pid"
}

build_ferretdb() {
  local bin="$LOCAL/bin/ferretdb" src="$LOCAL/ferretdb-src" mod
  if [ -x "$bin" ] && [ -z "$(find "$ROOT/deploy/ferretdb" -newer "$bin" -type f)" ]; then return 0; fi
  log "building FerretDB from the Go module proxy, with deploy/ferretdb/indexed-equality.patch (first time only)"
  cd "$ROOT/deploy/ferretdb"
  go mod download github.com/FerretDB/FerretDB
  mod="$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)"
  rm -rf "$src" && cp -r "$mod" "$src" && chmod -R u+w "$src"
  patch -s -p1 -d "$src" <indexed-equality.patch
  cp go.mod "$LOCAL/ferretdb.go.mod" && cp go.sum "$LOCAL/ferretdb.go.sum"
  go mod edit -modfile="$LOCAL/ferretdb.go.mod" -replace "github.com/FerretDB/FerretDB=$src"
  go build -modfile="$LOCAL/ferretdb.go.mod" -o "$bin" .
  cd "$ROOT"
}

kafka_classpath() {
  local cp="$LOCAL/kafka.classpath"
  if [ ! -s "$cp" ] || [ "$ROOT/deploy/kafka/pom.xml" -nt "$cp" ]; then
    log "resolving Apache Kafka from Maven Central (first time only)"
    (cd "$ROOT/deploy/kafka" && mvn -q -B dependency:build-classpath -Dmdep.outputFile="$cp" >&2)
  fi
  cat "$cp"
}

CREDENTIALS="$LOCAL/kafka-credentials.env"  # one random password per broker principal, made once, mode 600
PY="$ROOT/.venv/bin/python"

kafka_credentials() { # new passwords only with a new broker: they are written into its storage
  [ -s "$CREDENTIALS" ] && return 0
  (umask 077 && "$PY" "$ROOT/deploy/broker_setup.py" passwords >"$CREDENTIALS.new" && mv "$CREDENTIALS.new" "$CREDENTIALS")
}

as_admin() { # a Python tool run as the broker's admin (the password stays out of every command line)
  (set -a && . "$CREDENTIALS" && KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT" \
    KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT KAFKA_SASL_MECHANISM=SCRAM-SHA-512 KAFKA_USERNAME=admin \
    KAFKA_PASSWORD="$KAFKA_PASSWORD_ADMIN" "$PY" "$@")
}

kafka_up() {
  alive kafka && return 0
  port_open "$KAFKA_PORT" && { log "port $KAFKA_PORT is taken by something else"; return 1; }
  local cp conf="$LOCAL/kafka.properties" data="$LOCAL/kafka-data" args="$LOCAL/kafka-format.args" admin_pw
  cp="$(kafka_classpath)"
  if [ -f "$data/meta.properties" ] && [ ! -s "$CREDENTIALS" ]; then
    log "the broker's data predates its authentication: moved to $data.before-sasl, formatting a new one"
    rm -rf "$data.before-sasl" && mv "$data" "$data.before-sasl"
  fi
  kafka_credentials
  admin_pw="$(. "$CREDENTIALS" && echo "$KAFKA_PASSWORD_ADMIN")"
  # Test runs join many short-lived consumer groups: fewer offsets partitions, faster coordinators.
  (umask 077 && { broker_properties "127.0.0.1:$KAFKA_PORT" "127.0.0.1:$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" \
    "$admin_pw" "$data"; echo "offsets.topic.num.partitions=10"; } >"$conf")
  if [ ! -f "$data/meta.properties" ]; then
    # The SCRAM users go into the new storage; the arguments (passwords) in a mode-600 @argfile.
    (umask 077 && { printf '%s\n' -cp "$cp" kafka.tools.StorageTool format -t \
        "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" -c "$conf"
      (set -a && . "$CREDENTIALS" && "$PY" "$ROOT/deploy/broker_setup.py" scram); } >"$args")
    java "@$args" >"$LOCAL/logs/kafka-format.log" 2>&1 || { rm -f "$args"; log "formatting failed: see $LOCAL/logs/kafka-format.log"; return 1; }
    rm -f "$args"
  fi
  start kafka java -Xms256m -Xmx768m -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$conf"
  wait_port kafka "$KAFKA_PORT"
  as_admin "$ROOT/deploy/wait_kafka.py" "127.0.0.1:$KAFKA_PORT" 120
  as_admin "$ROOT/deploy/broker_setup.py" apply
  log "kafka ready on 127.0.0.1:$KAFKA_PORT (SASL/SCRAM-SHA-512 and ACLs; passwords in $CREDENTIALS)"
}

pg_bin() { # Debian's server binaries (the newest installed major version)
  local dir; dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -x "$dir/initdb" ] || { log "PostgreSQL server binaries not found (make install installs Debian's postgresql)"; return 1; }
  echo "$dir"
}

# PostgreSQL refuses to run as root: as root, run it as the postgres system user (as Debian's tools do).
AS_PG=(); [ "$(id -u)" = 0 ] && AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)

pg_data() { # under .local/, unless the postgres user cannot reach it (a checkout in root's home)
  if "${AS_PG[@]}" test -x "$LOCAL"; then echo "$LOCAL/postgres-data"
  else echo "/var/tmp/cx-postgres-$(echo "$LOCAL" | md5sum | cut -c1-12)"; fi
}

postgres_up() {
  alive postgres && return 0
  port_open "$POSTGRES_PORT" && { log "port $POSTGRES_PORT is taken by something else"; return 1; }
  local bin data
  bin="$(pg_bin)" || return 1
  data="$(pg_data)"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres: "$data"
    "${AS_PG[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$LOCAL/logs/initdb.log" 2>&1 \
      || { log "initdb failed; see $LOCAL/logs/initdb.log"; return 1; }
  fi
  # Local mode: TCP on loopback only, no socket file; synchronous_commit=off trades the last
  # few milliseconds of commits on an OS crash (never corruption) for write latency.
  start postgres "${AS_PG[@]}" "$bin/postgres" -D "$data" -c listen_addresses=127.0.0.1 -p "$POSTGRES_PORT" \
    -c unix_socket_directories= -c synchronous_commit=off -c shared_buffers=256MB -c max_connections=200
  wait_port postgres "$POSTGRES_PORT"
  "${AS_PG[@]}" "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='ferretdb'" \
    | grep -q 1 || "${AS_PG[@]}" "$bin/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres ferretdb
  log "postgresql ready on 127.0.0.1:$POSTGRES_PORT"
}

mongo_up() {
  alive ferretdb && return 0
  port_open "$MONGODB_PORT" && { log "port $MONGODB_PORT is taken by something else"; return 1; }
  build_ferretdb
  postgres_up
  start ferretdb "$LOCAL/bin/ferretdb" --listen-addr "127.0.0.1:$MONGODB_PORT" \
    --postgresql-url "postgres://postgres@127.0.0.1:$POSTGRES_PORT/ferretdb"
  wait_port ferretdb "$MONGODB_PORT"
  log "ferretdb ready on 127.0.0.1:$MONGODB_PORT (PostgreSQL on $POSTGRES_PORT)"
}

smtp_up() {
  alive smtp && return 0
  port_open "$SMTP_PORT" && { log "port $SMTP_PORT is taken by something else"; return 1; }
  start smtp "$ROOT/.venv/bin/python" "$ROOT/deploy/smtp_sink.py" --smtp-port "$SMTP_PORT" \
    --http-port "$SMTP_HTTP_PORT" --folder "$LOCAL/mail"
  wait_port smtp "$SMTP_PORT"
  log "smtp sink ready on 127.0.0.1:$SMTP_PORT (mail at http://127.0.0.1:$SMTP_HTTP_PORT/messages)"
}

stop() { # name [signal]
  local name=$1 signal=${2:-TERM} pid i
  pid="$(cat "$LOCAL/run/$name.pid" 2>/dev/null)" || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -s "$signal" "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $name"
  fi
  rm -f "$LOCAL/run/$name.pid"
}

case "${1:-}" in
  up) mongo_up & m=$!; kafka_up & k=$!; smtp_up & s=$!
      wait $m && wait $k && wait $s ;;
  down) stop smtp; stop ferretdb; stop postgres INT; stop kafka ;;  # INT: PostgreSQL's fast shutdown
  prepare) build_ferretdb; kafka_classpath >/dev/null ;;
  status) for n in kafka postgres ferretdb smtp; do alive $n && echo "$n running" || echo "$n stopped"; done ;;
  env) echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
       echo "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"; echo "KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
       echo "KAFKA_CONTROLLER_SERVERS=127.0.0.1:$KAFKA_CONTROLLER_PORT"  # for the tests that it refuses strangers
       [ -s "$CREDENTIALS" ] && cat "$CREDENTIALS"  # KAFKA_PASSWORD_<PRINCIPAL>: give each process its own
       echo "MONGODB_URL=mongodb://127.0.0.1:$MONGODB_PORT/"
       echo "SMTP_HOST=127.0.0.1"; echo "SMTP_PORT=$SMTP_PORT"
       echo "SMTP_SINK_URL=http://127.0.0.1:$SMTP_HTTP_PORT" ;;
  *) echo "usage: $0 up|down|status|env|prepare" >&2; exit 2 ;;
esac
