{{/* The release's name for its objects. */}}
{{- define "publicdata-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "publicdata-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: publicdata-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "publicdata-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "publicdata-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The ServiceAccount whose token reviews tenant workloads' logins in OpenBao. */}}
{{- define "publicdata-operator.reviewer" -}}
{{- printf "%s-openbao-reviewer" (include "publicdata-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
