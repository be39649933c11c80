{{/*
A provider worker: its Deployment, a Service for its metrics port, and with KEDA a
ScaledObject and a TriggerAuthentication. Called from templates/<component>/worker.yaml
with (dict "root" $ "component" "ses-worker" "values" .Values.sesWorker "program" "limbo-ses-worker");
"queueUrl" names another queue than the mail queue for the KEDA trigger (the webhook
worker, limbo-events).
*/}}
{{- define "limbo.worker" -}}
{{- $root := .root }}
{{- $component := .component }}
{{- $values := .values }}
{{- $name := include "limbo.componentName" (dict "root" $root "component" $component) }}
{{- $labels := dict "root" $root "component" $component }}
{{- /* The mail workers scale on both streams' queues; another consumer on its own. */}}
{{- $queues := compact (list (include "limbo.queueUrl" $root) (include "limbo.bulkQueueUrl" $root)) }}
{{- if .queueUrl }}{{ $queues = list .queueUrl }}{{ end }}
{{- /* No queue configured (the chart's bare defaults): one trigger still, as KEDA needs. */}}
{{- if not $queues }}{{ $queues = list "" }}{{ end }}
{{- if le (float64 $values.terminationGracePeriodSeconds) (float64 $values.shutdownGrace) }}
{{- fail (printf "%s: terminationGracePeriodSeconds (%v) must exceed shutdownGrace (%v), or the kubelet kills sends in the middle" $component $values.terminationGracePeriodSeconds $values.shutdownGrace) }}
{{- end }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "limbo.labels" $labels | nindent 4 }}
spec:
  {{- /* KEDA owns the replica count of a scaled Deployment; Helm setting it too would fight. */}}
  {{- if not $root.Values.keda.enabled }}
  replicas: {{ $values.replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "limbo.selectorLabels" $labels | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "limbo.labels" $labels | nindent 8 }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "limbo.serviceAccountName" $root }}
      {{- with (include "limbo.imagePullSecrets" $root) }}{{ . | nindent 6 }}{{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- /* Longer than SHUTDOWN_GRACE: on SIGTERM the worker stops receiving, finishes its
      sends and releases the rest before the kubelet would SIGKILL it (KEDA #3674, #6719). */}}
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
      containers:
        - name: worker
          image: {{ include "limbo.image" (dict "root" $root "image" $values.image) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ $values.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "limbo.fullname" $root }}
            - configMapRef:
                name: {{ $name }}
          env:
            {{- include "limbo.commonEnv" $root | trim | nindent 12 }}
            {{- if eq $component "mailgun-worker" }}
            {{- $secret := include "limbo.mailgunSecretName" $root }}
            {{- if $secret }}
            - name: MAILGUN
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ include "limbo.mailgunSecretKey" $root }}
            {{- end }}
            {{- end }}
            {{- with $values.env }}{{ include "limbo.extraEnv" . | trim | nindent 12 }}{{- end }}
          livenessProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /ready
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          volumeMounts:
            {{- include "limbo.tmpMount" $root | nindent 12 }}
      volumes:
        {{- include "limbo.tmpVolume" $root | nindent 8 }}
      {{- with (include "limbo.scheduling" (dict "root" $root "component" $component "values" $values) | trim) }}{{ . | nindent 6 }}{{- end }}
---
{{- /* Receives no traffic: it names the metrics port for a ServiceMonitor and port-forwards. */}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "limbo.labels" $labels | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "limbo.selectorLabels" $labels | nindent 4 }}
  ports:
    - name: http
      port: {{ $values.port }}
      targetPort: http
      protocol: TCP
{{- if $root.Values.keda.enabled }}
{{- $auth := $root.Values.keda.authentication }}
{{- $awsEndpoint := $root.Values.keda.awsEndpoint | default (include "limbo.awsEndpoint" $root) }}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: {{ $name }}
  labels:
    {{- include "limbo.labels" $labels | nindent 4 }}
spec:
  {{- if eq $auth.type "secret" }}
  {{- $secret := include "limbo.awsSecretName" $root }}
  {{- if not $secret }}
  {{- fail "keda.authentication.type=secret needs aws.credentials (existingSecret, or accessKeyId and secretAccessKey)" }}
  {{- end }}
  secretTargetRef:
    - parameter: awsAccessKeyID
      name: {{ $secret }}
      key: AWS_ACCESS_KEY_ID
    - parameter: awsSecretAccessKey
      name: {{ $secret }}
      key: AWS_SECRET_ACCESS_KEY
  {{- else }}
  podIdentity:
    provider: aws
    {{- if $auth.roleArn }}
    roleArn: {{ $auth.roleArn | quote }}
    {{- else }}
    {{- /* workload: KEDA assumes the role of the scaled workload's ServiceAccount (IRSA);
    keda: the operator's own role. */}}
    identityOwner: {{ $auth.identityOwner }}
    {{- end }}
  {{- end }}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $name }}
  labels:
    {{- include "limbo.labels" $labels | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicaCount: {{ $values.autoscaling.minReplicas }}
  maxReplicaCount: {{ $values.autoscaling.maxReplicas }}
  pollingInterval: {{ $values.autoscaling.pollingInterval }}
  cooldownPeriod: {{ $values.autoscaling.cooldownPeriod }}
  {{- with $values.autoscaling.behavior }}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        {{- toYaml . | nindent 8 }}
  {{- end }}
  {{- /* One trigger per stream's queue: KEDA scales on the larger need. */}}
  triggers:
    {{- range $url := $queues }}
    - type: aws-sqs-queue
      authenticationRef:
        name: {{ $name }}
      {{- /* KEDA reads every metadata value as a string. */}}
      metadata:
        queueURL: {{ $url | quote }}
        queueLength: {{ $values.autoscaling.queueLength | quote }}
        activationQueueLength: {{ $values.autoscaling.activationQueueLength | quote }}
        awsRegion: {{ $root.Values.aws.region | quote }}
        {{- with $awsEndpoint }}
        awsEndpoint: {{ . | quote }}
        {{- end }}
        scaleOnInFlight: {{ $values.autoscaling.scaleOnInFlight | toString | quote }}
    {{- end }}
{{- end }}
{{- end }}
