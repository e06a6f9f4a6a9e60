{{/*
Names and labels (Helm's conventions).
*/}}
{{- define "rigger.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rigger.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rigger.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rigger.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rigger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rigger.labels" -}}
helm.sh/chart: {{ include "rigger.chart" . }}
{{ include "rigger.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rigger
{{- end -}}

{{- define "rigger.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rigger.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rigger.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
The database kind: "sqlite" for an inline sqlite:// URL, "postgres" for an inline postgres://
URL or a secret reference ({ env } / { file }: a URL with credentials is PostgreSQL's).
*/}}
{{- define "rigger.dbKind" -}}
{{- $db := .Values.config.database | default dict -}}
{{- $url := $db.url | default "sqlite://rigger.db" -}}
{{- if kindIs "string" $url -}}
{{- if hasPrefix "sqlite:" $url -}}sqlite{{- else -}}postgres{{- end -}}
{{- else -}}postgres{{- end -}}
{{- end -}}

{{/* The SQLite file's path (no query string). */}}
{{- define "rigger.sqlitePath" -}}
{{- $url := (.Values.config.database | default dict).url | default "sqlite://rigger.db" -}}
{{- regexReplaceAll "\\?.*$" (trimPrefix "sqlite://" $url) "" -}}
{{- end -}}

{{/* The HTTP port, from config.server.listen (host:port). */}}
{{- define "rigger.port" -}}
{{- $listen := (.Values.config.server | default dict).listen | default "127.0.0.1:7070" -}}
{{- regexReplaceAll "^.*:" $listen "" -}}
{{- end -}}

{{/* "true" when config.kubernetes is present (cluster reconcile on). */}}
{{- define "rigger.kubernetes" -}}
{{- if hasKey .Values.config "kubernetes" -}}true{{- end -}}
{{- end -}}

{{/* Kubernetes namespaces granted by every source's tenancy and grants (a list, or a map by
catalog namespace), as a JSON list (unique, sorted). */}}
{{- define "rigger.tenancyNamespaces" -}}
{{- $out := list -}}
{{- range $src := .Values.config.sources | default list -}}
{{- range $t := prepend ($src.grants | default list) ($src.tenancy | default dict) -}}
{{- /* A grant that impersonates writes with its tenant's account, not Rigger's: no binding here. */ -}}
{{- if not $t.service_account -}}
{{- $granted := $t.namespaces | default list -}}
{{- if kindIs "map" $granted -}}
{{- range $catalogNs, $kubeNss := $granted -}}
{{- range $ns := $kubeNss -}}{{- $out = append $out $ns -}}{{- end -}}
{{- end -}}
{{- else -}}
{{- range $ns := $granted -}}{{- $out = append $out $ns -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $out | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* Namespaces where the write role is bound, as a JSON list. */}}
{{- define "rigger.writeNamespaces" -}}
{{- $out := .Values.rbac.write.namespaces | default list -}}
{{- if .Values.rbac.write.namespacesFromTenancy -}}
{{- $out = concat $out (include "rigger.tenancyNamespaces" . | fromJsonArray) -}}
{{- end -}}
{{- $out | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* Service accounts to impersonate, as a JSON map namespace -> [names]. */}}
{{- define "rigger.impersonated" -}}
{{- $out := dict -}}
{{- range $src := .Values.config.sources | default list -}}
{{- range $t := prepend ($src.grants | default list) ($src.tenancy | default dict) -}}
{{- with $t.service_account -}}
{{- $parts := splitList "/" . -}}
{{- if ne (len $parts) 2 -}}
{{- fail (printf "config.sources[%s].tenancy.service_account: expected NAMESPACE/NAME, found %q" $src.name .) -}}
{{- end -}}
{{- $ns := index $parts 0 -}}
{{- $names := get $out $ns | default list -}}
{{- $_ := set $out $ns (append $names (index $parts 1) | uniq | sortAlpha) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/* Collects every { env: NAME } secret reference under .v into the dict .acc. */}}
{{- define "rigger.collectEnv" -}}
{{- $v := .v -}}
{{- if kindIs "map" $v -}}
{{- if and (hasKey $v "env") (eq (len $v) 1) (kindIs "string" $v.env) -}}
{{- $_ := set $.acc $v.env true -}}
{{- else -}}
{{- range $k, $x := $v -}}{{- include "rigger.collectEnv" (dict "v" $x "acc" $.acc) -}}{{- end -}}
{{- end -}}
{{- else if kindIs "slice" $v -}}
{{- range $x := $v -}}{{- include "rigger.collectEnv" (dict "v" $x "acc" $.acc) -}}{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Everything the chart refuses to render, with the reason. Included by the Deployment, so
`helm install` / `helm template` fail before anything reaches the cluster.
*/}}
{{- define "rigger.validate" -}}
{{- $db := include "rigger.dbKind" . -}}
{{- $cfg := .Values.config -}}
{{- /* replicas and the database */ -}}
{{- if and (gt (int .Values.replicaCount) 1) (eq $db "sqlite") -}}
{{- fail (printf "replicaCount=%d needs a PostgreSQL database: SQLite mode is single-replica (set config.database.url to a postgres:// URL or { env: RIGGER_DATABASE_URL })" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (eq .Values.storage.cache.type "persistentVolumeClaim") -}}
{{- fail "storage.cache.type=persistentVolumeClaim with replicaCount > 1: replicas cannot share one ReadWriteOnce claim; use emptyDir (the clones are rebuilt from git)" -}}
{{- end -}}
{{- $url := ($cfg.database | default dict).url -}}
{{- if and (kindIs "string" $url) (regexMatch "^postgres(ql)?://[^/@]*:[^/@]*@" $url) -}}
{{- fail "config.database.url: an inline URL may not carry a password; use { env: RIGGER_DATABASE_URL } and provide it from a Secret (secretEnv or externalSecret)" -}}
{{- end -}}
{{- if eq $db "sqlite" -}}
{{- $path := include "rigger.sqlitePath" . -}}
{{- if not (hasPrefix (printf "%s/" (trimSuffix "/" .Values.storage.data.mountPath)) $path) -}}
{{- fail (printf "config.database.url: the SQLite file %q must lie under storage.data.mountPath (%s), the only writable place for it (e.g. sqlite://%s/rigger.db)" $path .Values.storage.data.mountPath (trimSuffix "/" .Values.storage.data.mountPath)) -}}
{{- end -}}
{{- end -}}
{{- /* paths and the listener */ -}}
{{- if not (hasPrefix "/" ($cfg.cache_dir | default "")) -}}
{{- fail "config.cache_dir must be an absolute path (the storage.cache volume is mounted there; /etc/rigger is read-only)" -}}
{{- end -}}
{{- $listen := ($cfg.server | default dict).listen | default "127.0.0.1:7070" -}}
{{- $host := regexReplaceAll ":[0-9]+$" $listen "" -}}
{{- if has $host (list "127.0.0.1" "localhost" "[::1]" "::1") -}}
{{- fail (printf "config.server.listen=%q listens on loopback only: probes and the Service reach the pod IP; use 0.0.0.0:PORT" $listen) -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]+$" (include "rigger.port" .)) -}}
{{- fail (printf "config.server.listen=%q: expected HOST:PORT" $listen) -}}
{{- end -}}
{{- /* every { env: NAME } is provided */ -}}
{{- if not .Values.envFrom -}}
{{- $refs := dict -}}
{{- include "rigger.collectEnv" (dict "v" $cfg "acc" $refs) -}}
{{- $provided := dict -}}
{{- range .Values.env -}}{{- $_ := set $provided .name true -}}{{- end -}}
{{- range .Values.secretEnv -}}{{- $_ := set $provided .name true -}}{{- end -}}
{{- if .Values.externalSecret.enabled -}}
{{- range .Values.externalSecret.data -}}{{- $_ := set $provided .secretKey true -}}{{- end -}}
{{- end -}}
{{- range $name, $_ := $refs -}}
{{- if not (hasKey $provided $name) -}}
{{- fail (printf "config refers to the secret { env: %s } but nothing provides %s: add it to secretEnv (from an existing Secret), externalSecret.data, or envFrom" $name $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* RBAC write rules stay least-privilege */ -}}
{{- range $i, $rule := .Values.rbac.write.rules -}}
{{- range $g := $rule.apiGroups -}}
{{- if has $g (list "*" "rbac.authorization.k8s.io" "apiextensions.k8s.io" "apiextensions.crossplane.io" "admissionregistration.k8s.io" "pkg.crossplane.io" "certificates.k8s.io") -}}
{{- fail (printf "rbac.write.rules[%d]: apiGroup %q is not granted by this chart (RBAC kinds, CRDs, XRDs, Compositions, packages and webhooks belong to the platform; grant them outside the chart if you must)" $i $g) -}}
{{- end -}}
{{- end -}}
{{- range $r := $rule.resources -}}
{{- if has $r (list "*" "secrets" "namespaces" "serviceaccounts/token" "nodes" "persistentvolumes") -}}
{{- fail (printf "rbac.write.rules[%d]: resource %q is not granted by this chart" $i $r) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.externalSecret.enabled (not .Values.externalSecret.secretStoreRef.name) -}}
{{- fail "externalSecret.enabled needs externalSecret.secretStoreRef.name" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) -}}
{{- fail "podDisruptionBudget: set exactly one of maxUnavailable and minAvailable (set the other to null)" -}}
{{- end -}}
{{- end -}}
