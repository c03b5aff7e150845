# The broker's configuration, one text for local mode (deploy/infra.sh) and docker-compose.yml
# (deploy/kafka/compose-broker.sh): KRaft single node; clients authenticate with SASL/SCRAM on
# the one client listener and the ACLs decide the rest (StandardAuthorizer, admin the only super
# user); the controller listener, on loopback, takes the admin only, with PLAIN (KRaft cannot use
# SCRAM there).
# broker_properties <client listen address> <advertised address> <controller port> <admin password> <data dir>
broker_properties() {
  local listen=$1 advertised=$2 controller_port=$3 admin_pw=$4 data=$5
  cat <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=SASL_PLAINTEXT://$listen,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=SASL_PLAINTEXT://$advertised
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw";
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
}
