{{/* Chart name, overridable with nameOverride. */}}
{{- define "ferrotail.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the objects: fullnameOverride, else "<release>-<name>", or the release name alone
when it already contains the chart name (the Promtail chart's rule).
*/}}
{{- define "ferrotail.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ferrotail.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferrotail.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferrotail.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferrotail.labels" -}}
helm.sh/chart: {{ include "ferrotail.chart" . }}
{{ include "ferrotail.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The namespace: the `namespace` value, else the release's. */}}
{{- define "ferrotail.namespaceName" -}}
{{- default .Release.Namespace .Values.namespace }}
{{- end }}

{{- define "ferrotail.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferrotail.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "<registry>/<repository>:<tag>", the registry left out when empty. */}}
{{- define "ferrotail.image" -}}
{{- $registry := .Values.global.imageRegistry | default .Values.image.registry }}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if $registry }}
{{- printf "%s/%s:%s" $registry .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}
