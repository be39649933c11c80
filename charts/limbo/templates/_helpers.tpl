{{/* Names: every object carries the release name, so two releases never collide. */}}
{{- define "limbo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "limbo.fullname" -}}
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

{{/* <fullname>-<component>, kept within the 63 characters of a DNS label. */}}
{{- define "limbo.componentName" -}}
{{- printf "%s-%s" (include "limbo.fullname" .root | trunc (int (sub 62 (len .component)))) .component | trimSuffix "-" }}
{{- end }}

{{- define "limbo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of an object; call with (dict "root" $ "component" "api"). */}}
{{- define "limbo.labels" -}}
helm.sh/chart: {{ include "limbo.chart" .root }}
{{ include "limbo.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: limbo
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selectors name only what never changes over a release's life. */}}
{{- define "limbo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "limbo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "limbo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "limbo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference; call with (dict "root" $ "image" .Values.api.image). */}}
{{- define "limbo.image" -}}
{{- $registry := .root.Values.image.registry }}
{{- $repository := .image.repository }}
{{- if $registry }}{{ $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}{{ end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* The endpoints of the in-cluster stand-ins that devtools runs. */}}
{{- define "limbo.motoUrl" -}}
http://{{ include "limbo.componentName" (dict "root" . "component" "moto") }}:5000
{{- end }}

{{- define "limbo.sinkUrl" -}}
http://{{ include "limbo.componentName" (dict "root" . "component" "mailgun-sink") }}:8025
{{- end }}

{{/* Settings that devtools fills in when they are left empty. */}}
{{- define "limbo.awsEndpoint" -}}
{{- if .Values.aws.endpointUrl }}{{ .Values.aws.endpointUrl }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.motoUrl" . }}
{{- end }}
{{- end }}

{{- define "limbo.queueUrl" -}}
{{- if .Values.queue.url }}{{ .Values.queue.url }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.motoUrl" . }}/{{ .Values.devtools.accountId }}/{{ .Values.devtools.queueName }}
{{- end }}
{{- end }}

{{- define "limbo.bulkQueueUrl" -}}
{{- if .Values.queue.bulkUrl }}{{ .Values.queue.bulkUrl }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.motoUrl" . }}/{{ .Values.devtools.accountId }}/{{ .Values.devtools.queueName | trimSuffix ".fifo" }}-bulk.fifo
{{- end }}
{{- end }}

{{- define "limbo.webhookQueueUrl" -}}
{{- if .Values.webhooks.queueUrl }}{{ .Values.webhooks.queueUrl }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.motoUrl" . }}/{{ .Values.devtools.accountId }}/{{ .Values.devtools.queueName | trimSuffix ".fifo" }}-webhooks
{{- end }}
{{- end }}

{{- define "limbo.deadLetterUrl" -}}
{{- if .Values.queue.deadLetterUrl }}{{ .Values.queue.deadLetterUrl }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.motoUrl" . }}/{{ .Values.devtools.accountId }}/{{ .Values.devtools.queueName | trimSuffix ".fifo" }}-dlq.fifo
{{- end }}
{{- end }}

{{- define "limbo.scheduleUrl" -}}
{{- if .Values.queue.scheduleUrl }}{{ .Values.queue.scheduleUrl }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.motoUrl" . }}/{{ .Values.devtools.accountId }}/{{ .Values.devtools.queueName | trimSuffix ".fifo" }}-schedule
{{- end }}
{{- end }}

{{- define "limbo.payloadBucket" -}}
{{- if .Values.payloads.bucket }}{{ .Values.payloads.bucket }}
{{- else if .Values.devtools.enabled }}{{ .Values.devtools.queueName | trimSuffix ".fifo" | lower | trunc 50 }}-payloads
{{- end }}
{{- end }}

{{- /* The scheduler runs when enabled and there is a schedule queue for it to read. */}}
{{- define "limbo.schedulerEnabled" -}}
{{- if and .Values.scheduler.enabled (include "limbo.scheduleUrl" .) }}true{{ end }}
{{- end }}

{{- define "limbo.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint }}{{ .Values.telemetry.otlpEndpoint }}
{{- else if and .Values.devtools.enabled .Values.devtools.jaeger.enabled }}http://{{ include "limbo.componentName" (dict "root" . "component" "jaeger") }}:4318
{{- end }}
{{- end }}

{{- define "limbo.mailgunApiUrl" -}}
{{- if .Values.mailgunWorker.apiUrl }}{{ .Values.mailgunWorker.apiUrl }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.sinkUrl" . }}
{{- else }}https://api.mailgun.net
{{- end }}
{{- end }}

{{/* Where the Mailgun key is: (name, key) of a Secret, or nothing. */}}
{{- define "limbo.mailgunSecretName" -}}
{{- if .Values.mailgunWorker.existingSecret }}{{ .Values.mailgunWorker.existingSecret }}
{{- else if .Values.mailgunWorker.apiKey }}{{ include "limbo.fullname" . }}
{{- end }}
{{- end }}

{{- define "limbo.mailgunSecretKey" -}}
{{- if .Values.mailgunWorker.existingSecret }}{{ .Values.mailgunWorker.existingSecretKey }}
{{- else }}MAILGUN
{{- end }}
{{- end }}

{{/* The Secret with static AWS keys, or nothing (IAM roles). */}}
{{- define "limbo.awsSecretName" -}}
{{- if .Values.aws.credentials.existingSecret }}{{ .Values.aws.credentials.existingSecret }}
{{- else if .Values.aws.credentials.accessKeyId }}{{ include "limbo.fullname" . }}
{{- end }}
{{- end }}

{{/* Volumes and mounts every container gets: a writable /tmp on a read-only root. */}}
{{- define "limbo.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "limbo.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Environment shared by limbo's containers: the static AWS keys when there are any, and
OpenTelemetry's resource from the downward API. OTEL_SERVICE_NAME is the pod's component
label; the $(VAR) references need the variables defined above them.
*/}}
{{- define "limbo.commonEnv" -}}
{{- $awsSecret := include "limbo.awsSecretName" . }}
{{- if $awsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $awsSecret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $awsSecret }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_SERVICE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['app.kubernetes.io/component']
{{- $attributes := list (printf "service.namespace=%s" .Values.telemetry.serviceNamespace) (printf "service.version=%s" .Chart.AppVersion) "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.pod.name=$(K8S_POD_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" }}
{{- range $key, $value := .Values.telemetry.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%v" $key $value) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end }}

{{/* Extra variables from a values map, sorted so renders are stable. */}}
{{- define "limbo.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Pod scheduling fields shared by the API and the workers; call with (dict "root" $ "component" "api" "values" .Values.api). */}}
{{- define "limbo.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .values.topologySpreadConstraints }}
topologySpreadConstraints:
{{- range .values.topologySpreadConstraints }}
  - {{- toYaml (merge (dict "labelSelector" (dict "matchLabels" (fromYaml (include "limbo.selectorLabels" $)))) .) | nindent 4 }}
{{- end }}
{{- end }}
{{- end }}

{{- define "limbo.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- /*
Egress is the same for every limbo pod: DNS, and the TCP ports of the AWS and Mailgun
endpoints, whose addresses are not fixed (so no ipBlock can name them).
*/}}
{{- define "limbo.networkPolicyEgress" -}}
egress:
  - ports:
      - port: 53
        protocol: UDP
      - port: 53
        protocol: TCP
  - ports:
      {{- range .Values.networkPolicy.egressPorts }}
      - port: {{ . }}
        protocol: TCP
      {{- end }}
  {{- with .Values.networkPolicy.extraEgress }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The delivery-events queue and SES's topic; devtools provisions both in the emulator. */}}
{{- define "limbo.eventsQueueUrl" -}}
{{- if .Values.events.queueUrl }}{{ .Values.events.queueUrl }}
{{- else if .Values.devtools.enabled }}{{ include "limbo.motoUrl" . }}/{{ .Values.devtools.accountId }}/{{ .Values.devtools.queueName | trimSuffix ".fifo" }}-events
{{- end }}
{{- end }}

{{- define "limbo.eventsTopicArn" -}}
{{- if .Values.events.sesTopicArn }}{{ .Values.events.sesTopicArn }}
{{- else if .Values.devtools.enabled }}arn:aws:sns:{{ .Values.aws.region | default "us-east-1" }}:{{ .Values.devtools.accountId }}:{{ .Values.devtools.queueName | trimSuffix ".fifo" }}-ses-events
{{- end }}
{{- end }}

{{/* Where Mailgun's webhook signing key is: (name, key) of a Secret, or nothing. */}}
{{- define "limbo.webhookSecretName" -}}
{{- if .Values.events.mailgunWebhook.existingSecret }}{{ .Values.events.mailgunWebhook.existingSecret }}
{{- else if .Values.events.mailgunWebhook.signingKey }}{{ include "limbo.fullname" . }}
{{- end }}
{{- end }}

{{- define "limbo.webhookSecretKey" -}}
{{- if .Values.events.mailgunWebhook.existingSecret }}{{ .Values.events.mailgunWebhook.existingSecretKey }}
{{- else }}MAILGUN_WEBHOOK_SIGNING_KEY
{{- end }}
{{- end }}
