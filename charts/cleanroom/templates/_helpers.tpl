{{- define "cleanroom.fullname" -}}
{{- printf "%s-cleanroom" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cleanroom.labels" -}}
app.kubernetes.io/name: cleanroom
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
cleanroom.instance: {{ .Values.instance | quote }}
{{- end -}}

{{- define "cleanroom.hubSelector" -}}
app.kubernetes.io/name: cleanroom
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end -}}

{{- /* The database URLs, each from its Secret: the names cleanroom reads. */ -}}
{{- define "cleanroom.dbEnv" -}}
{{- $names := dict "hub" "CLEANROOM_HUB_DB_URL" "registry" "CLEANROOM_REGISTRY_URL" "airlock" "CLEANROOM_AIRLOCK_DB_URL" -}}
{{- range $name, $db := .Values.postgres }}
{{- if $db.secretName }}
- name: {{ required (printf "postgres.%s: no such database (hub, registry, airlock)" $name) (get $names $name) }}
  valueFrom:
    secretKeyRef: {name: {{ $db.secretName | quote }}, key: {{ $db.secretKey | quote }}}
{{- end }}
{{- end }}
{{- end -}}
