{{/* One service's ConfigMap (also hashed into its pods' annotations, so that a change rolls only them). Argument: the context (root, name, svc). */}}
{{- define "cx.configmap" -}}
{{- $ctx := . }}{{- $root := .root }}{{- $name := .name }}{{- $svc := .svc }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "cx.fullname" $ctx }}
  labels:
    {{- include "cx.labels" $ctx | nindent 4 }}
data:
  SERVICE_NAME: {{ $name | quote }}
  HTTP_HOST: "0.0.0.0"
  HTTP_PORT: {{ $svc.port | quote }}
  KAFKA_BOOTSTRAP_SERVERS: {{ $root.Values.kafka.bootstrapServers | quote }}
  KAFKA_SECURITY_PROTOCOL: {{ $root.Values.kafka.securityProtocol | quote }}
  KAFKA_SASL_MECHANISM: {{ $root.Values.kafka.saslMechanism | quote }}
  KAFKA_USERNAME: {{ $name | quote }}
  {{- if $root.Values.kafka.caConfigMap }}
  KAFKA_SSL_CAFILE: /etc/clusterxchange/kafka-ca/ca.crt
  {{- end }}
  JWT_ISSUER: {{ $root.Values.config.jwtIssuer | quote }}
  JWT_JWKS_URL: {{ $root.Values.config.jwtJwksUrl | quote }}
  DEV_TOKENS: "false"
  TOPIC_PARTITIONS: {{ $root.Values.config.topicPartitions | quote }}
  TOPIC_REPLICATION: {{ $root.Values.config.topicReplication | quote }}
  TOPIC_RETENTION_MS: {{ $root.Values.config.topicRetentionMs | int64 | toString | quote }}
  DEAD_LETTER_RETENTION_MS: {{ $root.Values.config.deadLetterRetentionMs | int64 | toString | quote }}
  MAX_BODY_BYTES: {{ $root.Values.config.maxBodyBytes | quote }}
  LOG_LEVEL: {{ $root.Values.config.logLevel | quote }}
  LOG_JSON: "true"
  {{- with $root.Values.tracing.otlpEndpoint }}
  OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
  {{- end }}
  {{- if eq $name "notifications" }}
  PUBLIC_BASE_URL: {{ $root.Values.notifications.publicBaseUrl | quote }}
  MAIL_FROM: {{ $root.Values.notifications.mailFrom | quote }}
  SMTP_HOST: {{ $root.Values.notifications.smtp.host | quote }}
  SMTP_PORT: {{ $root.Values.notifications.smtp.port | quote }}
  SMTP_STARTTLS: {{ $root.Values.notifications.smtp.starttls | quote }}
  {{- with $root.Values.notifications.smtp.username }}
  SMTP_USERNAME: {{ . | quote }}
  {{- end }}
  {{- end }}
  {{- range $key, $value := merge (deepCopy ($svc.env | default dict)) $root.Values.config.extra }}
  {{ $key }}: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
