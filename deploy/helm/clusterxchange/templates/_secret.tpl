{{/* One service's Secret (hashed likewise). Argument: the context (root, name, svc). */}}
{{- define "cx.secret" -}}
{{- $ctx := . }}{{- $root := .root }}{{- $name := .name }}{{- $svc := .svc }}
{{- if not $svc.existingSecret }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "cx.fullname" $ctx }}
  labels:
    {{- include "cx.labels" $ctx | nindent 4 }}
type: Opaque
# One Secret per service, holding only that service's credentials.
stringData:
  JWT_SECRET: {{ $root.Values.secrets.jwtSecret | quote }}
  KAFKA_PASSWORD: {{ $svc.kafkaPassword | quote }}
  MONGODB_URL: {{ $svc.mongodbUrl | quote }}
  {{- if and (eq $name "notifications") $root.Values.notifications.smtp.password }}
  SMTP_PASSWORD: {{ $root.Values.notifications.smtp.password | quote }}
  {{- end }}
{{- end }}
{{- end }}
