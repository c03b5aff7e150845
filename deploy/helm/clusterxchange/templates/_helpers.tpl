{{/* The four services' names, in the chart's order. */}}
{{- define "cx.services" -}}
applications assessment grants notifications
{{- end }}

{{/* A service's values: the defaults, overridden by its own entry. Argument: (list $ "name"). */}}
{{- define "cx.service" -}}
{{- $root := index . 0 }}{{- $name := index . 1 }}
{{- $own := index $root.Values.services $name | required (printf "services.%s is missing" $name) }}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $own)) }}
{{- end }}

{{- define "cx.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cx.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: clusterxchange
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "cx.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "cx.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .name .root.Values.image.tag }}
{{- end }}

{{/* The Secret a service's pods read: the one you manage, or the chart's. */}}
{{- define "cx.secretName" -}}
{{- .svc.existingSecret | default (include "cx.fullname" .) }}
{{- end }}

{{/* Egress rules to a NetworkPolicy destination: {to: [peers], ports: [numbers]}; TCP, and UDP for DNS. */}}
{{- define "cx.egressRule" -}}
- ports:
  {{- range .dest.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- if $.udp }}
    - {protocol: UDP, port: {{ . }}}
    {{- end }}
  {{- end }}
  {{- with .dest.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* "true" when every service reads a Secret its operator manages. */}}
{{- define "cx.allExistingSecrets" -}}
{{- $all := true }}
{{- range $name := splitList " " (include "cx.services" .) }}
{{- if not (index $.Values.services $name).existingSecret }}{{ $all = false }}{{ end }}
{{- end }}
{{- if $all }}true{{ end }}
{{- end }}
