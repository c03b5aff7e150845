#!/bin/bash
# The broker of docker-compose.yml (apache/kafka image), secured as deploy/infra.sh's: clients
# authenticate with SASL/SCRAM-SHA-512 on kafka:9092, the StandardAuthorizer refuses whatever
# the ACLs (made by the kafka-setup service) do not grant, admin is the only super user, and the
# controller listener stays on the container's loopback, for the admin only (PLAIN: KRaft cannot
# use SCRAM there). Every principal's password comes from a required environment variable; the
# SCRAM users are written into the storage when it is first formatted.
set -euo pipefail
PRINCIPALS=(admin applications assessment grants notifications finance subscriber)
for principal in "${PRINCIPALS[@]}"; do
  var="KAFKA_PASSWORD_${principal^^}"
  [ -n "${!var:-}" ] || { echo "set $var (a long random password)" >&2; exit 1; }
done
conf=/tmp/server.properties data=/var/lib/kafka/data
umask 077
cat >"$conf" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=SASL_PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=SASL_PLAINTEXT://kafka:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_PASSWORD_ADMIN";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$KAFKA_PASSWORD_ADMIN" user_admin="$KAFKA_PASSWORD_ADMIN";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
log.dirs=$data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
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
