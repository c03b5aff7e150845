#!/bin/bash
# The broker of docker-compose.yml (apache/kafka image), secured as deploy/infra.sh's: clients
# authenticate with SASL/SCRAM-SHA-512 on kafka:9092, the StandardAuthorizer refuses whatever
# the ACLs (made by the kafka-setup service) do not grant, admin is the only super user, and the
# controller listener stays on the container's loopback, for the admin only (PLAIN: KRaft cannot
# use SCRAM there). Every principal's password comes from a required environment variable; the
# SCRAM users are written into the storage when it is first formatted.
set -euo pipefail
. "$(dirname "$0")/broker-properties.sh"
PRINCIPALS=(admin applications assessment grants notifications finance subscriber)
for principal in "${PRINCIPALS[@]}"; do
  var="KAFKA_PASSWORD_${principal^^}"
  [ -n "${!var:-}" ] || { echo "set $var (a long random password)" >&2; exit 1; }
done
conf=/tmp/server.properties data=/var/lib/kafka/data
umask 077
broker_properties ":9092" "kafka:9092" 9093 "$KAFKA_PASSWORD_ADMIN" "$data" >"$conf"
# The health check's client: the admin, from a file only this container's user reads.
cat >/tmp/admin.properties <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_PASSWORD_ADMIN";
PROPS
if [ ! -f "$data/meta.properties" ]; then
  scram=()
  for principal in "${PRINCIPALS[@]}"; do
    var="KAFKA_PASSWORD_${principal^^}"
    scram+=(--add-scram "SCRAM-SHA-512=[name=$principal,password=${!var}]")
  done
  # The arguments are seen by this container's processes only (no other tenant in it).
  /opt/kafka/bin/kafka-storage.sh format -t "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" -c "$conf" \
    "${scram[@]}" >/dev/null
fi
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
