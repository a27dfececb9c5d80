#!/usr/bin/env bash
# Self-test of the test API server: builds it (build.sh), runs it plain and with --tls, and
# checks with curl what a Kubernetes client relies on: lists and selectors, paging, a watch
# with ADDED/MODIFIED/BOOKMARK, ERROR 410 after `expire`, `drop`, the eviction answers and
# their Status bodies, events, the request log, and bad input. Prints PASS/FAIL lines; exits
# 1 when a check failed, 2 when a prerequisite (curl) is missing.
#
#   tests/apiserver/selftest.sh            # builds, then tests
#   APISERVER=path/to/apiserver tests/apiserver/selftest.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v curl >/dev/null || { echo "FAIL prerequisite: curl is not installed"; exit 2; }
bin=${APISERVER:-$("$here/build.sh")} || { echo "FAIL build"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/apiserver-selftest.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; failed=1; }
# check NAME COMMAND...: PASS when the command succeeds.
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
has() { grep -qF -- "$2" <<<"$1"; }

# start DIR [--tls]: runs the server, waits for DIR/port.
start() {
    local dir=$1; shift
    mkdir -p "$dir"
    "$bin" serve --listen 127.0.0.1:0 --dir "$dir" "$@" 2>"$dir/stderr" &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$dir/port" ] && return 0; sleep 0.05; done
    fail "server in $dir started" "$(cat "$dir/stderr")"
    return 1
}

pod() { # pod NAME NODE: a Pod's JSON
    printf '{"metadata":{"name":"%s","namespace":"default","labels":{"pre-oom-killer":"enabled"}},"spec":{"nodeName":"%s","terminationGracePeriodSeconds":30,"containers":[{"name":"app"}]},"status":{"phase":"Running","qosClass":"Burstable"}}' "$1" "$2"
}

# ---------------------------------------------------------------- plain HTTP
d=$work/plain
start "$d" || exit 1
url=http://127.0.0.1:$(cat "$d/port")
ctl() { "$bin" ctl "$d" "$@"; }
# get PATH [curl args]: the body; the status code in $code
get() { local p=$1; shift; local out; out=$(curl -s -w '\n%{http_code}' "$@" "$url$p"); code=${out##*$'\n'}; body=${out%$'\n'*}; }
post() { local p=$1 data=$2; shift 2; get "$p" -X POST -H 'Content-Type: application/json' --data-binary "$data" "$@"; }
# watch FILE QUERY: a pod watch in the background into FILE, its PID in $wpid
watch() { curl -s -N "$url/api/v1/pods?$2" >"$1" & wpid=$!; pids+=("$wpid"); }

check "kubeconfig names the server" grep -q "server: $url" "$d/kubeconfig"
out=$(pod web-0 n1 | ctl put -)
check "put assigns uid, resourceVersion and creationTimestamp" has "$out" '"resourceVersion":"1"'
has "$out" '"uid":"' && has "$out" '"creationTimestamp":"' || fail "put's uid and creationTimestamp" "$out"
pod other-0 n2 | ctl put - >/dev/null

get '/api/v1/pods?&fieldSelector=spec.nodeName%3Dn1&limit=500'
check "list: 200" [ "$code" = 200 ]
check "list: PodList with metadata.resourceVersion" has "$body" '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"2"},"items":['
check "list: spec.nodeName=n1 keeps web-0" has "$body" '"name":"web-0"'
check "list: and leaves out the pod on n2" bash -c '! grep -q other-0 <<<"$1"' _ "$body"
get '/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dother-0'
check "list: metadata.name selector" bash -c 'grep -q other-0 <<<"$1" && ! grep -q web-0 <<<"$1"' _ "$body"
get '/api/v1/pods?labelSelector=pre-oom-killer%3Denabled,app'
check "list: a label selector that matches nothing" has "$body" '"items":[]'
get '/api/v1/pods?fieldSelector=spec.containers%3Dx'
check "list: an unsupported field label is a 400" [ "$code" = 400 ]
check "list: with the apiserver's message" has "$body" '"message":"field label not supported: spec.containers","reason":"BadRequest","code":400'
get '/api/v1/pods?limit=1'
token=$(sed -n 's/.*"continue":"\([^"]*\)".*/\1/p' <<<"$body")
check "paging: limit=1 gives a continue token and remainingItemCount" has "$body" '"remainingItemCount":1'
get "/api/v1/pods?limit=1&continue=$token"
check "paging: the continue token gives the next pod" has "$body" '"name":"web-0"'
get "/api/v1/pods?limit=1&continue=$token&resourceVersion=5"
check "paging: continue with a resourceVersion is a 400" has "$body" 'specifying resource version is not allowed when using continue'
get '/api/v1/pods?resourceVersion=1&resourceVersionMatch=Exact'
check "list: Exact resourceVersion=1 is the state at 1" bash -c 'grep -q "\"resourceVersion\":\"1\"},\"items\":\[.*web-0" <<<"$1" && ! grep -q other-0 <<<"$1"' _ "$body"
get '/api/v1/pods?resourceVersionMatch=Exact'
check "list: resourceVersionMatch without resourceVersion is a 422" [ "$code" = 422 ]
get '/api/v1/namespaces/default/pods/web-0'
check "get: a pod" has "$body" '"kind":"Pod"'
get '/api/v1/namespaces/default/pods/nope'
check "get: a missing pod is NotFound" has "$body" '"message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404'

# A watch from 0 with bookmarks: ADDED for the existing pod, MODIFIED on a change, a
# BOOKMARK, and the end at timeoutSeconds.
w=$work/watch1
watch "$w" 'watch=true&timeoutSeconds=3&allowWatchBookmarks=true&resourceVersion=0&fieldSelector=spec.nodeName%3Dn1'
sleep 0.5
pod web-0 n1 | sed 's/"labels":{/"labels":{"changed":"yes",/' | ctl put - >/dev/null
pod other-0 n2 | sed 's/"labels":{/"labels":{"changed":"yes",/' | ctl put - >/dev/null
started=$(date +%s)
wait "$wpid"
took=$(( $(date +%s) - started ))
check "watch: ADDED for the pod on n1" grep -q '^{"type":"ADDED","object":{.*"name":"web-0"' "$w"
check "watch: MODIFIED after put" grep -q '^{"type":"MODIFIED","object":{.*"changed":"yes".*"name":"web-0".*"resourceVersion":"3"' "$w"
check "watch: BOOKMARK with only the resourceVersion" grep -q '^{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"4"},"spec":{"containers":null},"status":{}}}$' "$w"
check "watch: nothing about the pod on n2" bash -c '! grep -q other-0 "$1"' _ "$w"
check "watch: ends at timeoutSeconds" [ "$took" -le 4 ]

# expire: an open watch gets ERROR 410 and ends; a watch from before the compaction too.
w=$work/watch2
watch "$w" 'watch=1&resourceVersion=4'
sleep 0.3
ctl expire
wait "$wpid"; rc=$?
check "expire: the open watch ends cleanly" [ "$rc" = 0 ]
check "expire: with ERROR 410 Expired" grep -q '^{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The resourceVersion for the provided watch is too old.","reason":"Expired","code":410}}$' "$w"
pod web-1 n1 | ctl put - >/dev/null
get '/api/v1/pods?watch=true&resourceVersion=3'
check "expire: a watch from an older resourceVersion is 200" [ "$code" = 200 ]
check "expire: with one ERROR event, too old resource version" has "$body" '{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 3 (4)","reason":"Expired","code":410}}'
get '/api/v1/pods?resourceVersion=3&resourceVersionMatch=Exact'
check "expire: an Exact list from before it is 410" has "$body" '"message":"The resourceVersion for the provided list is too old.","reason":"Expired","code":410'
get '/api/v1/pods?watch=true&resourceVersion=4&timeoutSeconds=1'
check "expire: a watch from the compaction point goes on" has "$body" '{"type":"ADDED","object":'

get '/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1'
check "sendInitialEvents: the pods, then the initial-events-end bookmark" bash -c 'grep -q "^{\"type\":\"ADDED\"" <<<"$1" && grep -q "^{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"5\",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}" <<<"$1"' _ "$body"
get '/api/v1/pods?watch=true&resourceVersionMatch=NotOlderThan'
check "resourceVersionMatch on a watch without sendInitialEvents is a 422" has "$body" '"message":"ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"'

# drop: open watches are cut mid-stream.
w=$work/watch3
watch "$w" 'watch=true&resourceVersion=0'
sleep 0.3
ctl drop
wait "$wpid"; rc=$?
check "drop: the watch is cut (curl reports a broken transfer)" [ "$rc" != 0 ]
check "drop: after the events it had" grep -q '"type":"ADDED"' "$w"

# Evictions.
ev='{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web-1","namespace":"default"}}'
evict=/api/v1/namespaces/default/pods/web-1/eviction
post "$evict?dryRun=All" "$ev"
check "evict: dryRun is 201" [ "$code" = 201 ]
get /api/v1/namespaces/default/pods/web-1
check "evict: dryRun leaves the pod alone" bash -c '! grep -q deletionTimestamp <<<"$1"' _ "$body"
post "$evict" '{"metadata":{"name":"web-1"},"deleteOptions":{"dryRun":["All"]}}'
check "evict: dryRun in the body's deleteOptions is 201" [ "$code" = 201 ]
ctl respond default web-1 429 1
post "$evict" "$ev"
check "evict 429: code" [ "$code" = 429 ]
check "evict 429: the PDB refusal" has "$body" '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Cannot evict pod as it would violate the pod'"'"'s disruption budget.","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget default-pdb needs 1 healthy pods and has 1 currently"}]},"code":429}'
ctl respond default web-1 403 1
post "$evict" "$ev"
check "evict 403: RBAC's message" has "$body" '"message":"pods \"web-1\" is forbidden: User \"system:serviceaccount:kube-system:kubemem-node\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"name":"web-1","kind":"pods"},"code":403}'
ctl respond default web-1 500 1
post "$evict" "$ev"
check "evict 500: the eviction handler's own Status" has "$body" '"message":"This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.","code":500}'
ctl respond default web-1 404 1
post "$evict" "$ev"
check "evict 404 (chosen)" has "$body" '"message":"pods \"web-1\" not found","reason":"NotFound"'
post /api/v1/namespaces/default/pods/nope/eviction '{"metadata":{"name":"nope"}}'
check "evict 404 (no such pod)" has "$body" '"message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404'
post "$evict" '{"metadata":{"name":"web-0"}}'
check "evict: a name that is not the URL's is a 400" has "$body" '"message":"name in URL does not match name in Eviction object","reason":"BadRequest","code":400'
post "$evict" '{"apiVersion":"v1","kind":"Eviction","metadata":{"name":"web-1"}}'
check "evict: another API version is a 400" has "$body" 'the API version in the data (v1) does not match the expected API version (policy/v1)'
get "$evict" -X POST --data-binary '{"metadata":{"name":"web-1"}}'
check "evict: a form-encoded body is a 415" [ "$code" = 415 ]
hdr=$(curl -s -D - -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary '{"delete_options":null,"metadata":{"name":"web-1"}}' "$url$evict")
check "evict 201 (kube-rs's body, no kind): Created" has "$hdr" 'HTTP/1.1 201 Created'
check "evict: unknown fields are a Warning" has "$hdr" 'Warning: 299 - "unknown field \"delete_options\""'
get /api/v1/namespaces/default/pods/web-1
check "evict: the pod is being deleted gracefully" bash -c 'grep -q "\"deletionGracePeriodSeconds\":30" <<<"$1" && grep -q "\"deletionTimestamp\":\"" <<<"$1"' _ "$body"
post "$evict" "$ev"
check "evict: the success body" has "$body" '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}'
n=$(ctl evictions | wc -l)
check "ctl evictions: one line per eviction request" [ "$n" = 12 ]
check "ctl evictions: code, time, dryRun" bash -c 'ctl() { "$1" ctl "$2" evictions; }; ctl "$@" | head -1 | grep -q "\"code\":201,\"dryRun\":\[\"All\"\],\"name\":\"web-1\",\"namespace\":\"default\",\"time\":"' _ "$bin" "$d"
check "ctl wait-evictions: reached" ctl wait-evictions 12 1
ctl wait-evictions 13 1 2>/dev/null; rc=$?
check "ctl wait-evictions: times out with 1" [ "$rc" = 1 ]

# Events.
post /api/v1/namespaces/default/events '{"apiVersion":"v1","kind":"Event","metadata":{"generateName":"web-1."},"involvedObject":{"kind":"Pod","namespace":"default","name":"web-1"},"type":"Warning","reason":"PreOOMEviction","message":"level=failure used=90"}'
check "event: 201" [ "$code" = 201 ]
check "event: uid, resourceVersion, creationTimestamp filled" bash -c 'grep -q "\"uid\":\"" <<<"$1" && grep -q "\"resourceVersion\":\"" <<<"$1" && grep -q "\"creationTimestamp\":\"" <<<"$1" && grep -q "\"name\":\"web-1\.[a-z0-9]\{5\}\"" <<<"$1"' _ "$body"
post /api/v1/namespaces/default/events '{"metadata":{"name":"e1"},"involvedObject":{"namespace":"other"}}'
check "event: an involvedObject in another namespace is a 422" has "$body" '"message":"Event \"e1\" is invalid: involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"'
post /apis/events.k8s.io/v1/namespaces/default/events '{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"e2"},"eventTime":"2026-01-01T00:00:00.000000Z","regarding":{"kind":"Pod","namespace":"default","name":"web-1"},"type":"Warning","reason":"PreOOMEviction","action":"Evict","note":"n","reportingController":"kubemem-node","reportingInstance":"n1"}'
check "event (events.k8s.io/v1): 201" [ "$code" = 201 ]
events=$(ctl events)
check "ctl events: both, in core/v1 form" bash -c 'grep -c "\"kind\":\"Event\"" <<<"$1" | grep -qx 2 && grep -q "\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"web-1\",\"namespace\":\"default\"}.*\"message\":\"n\"" <<<"$1"' _ "$events"

# The request log.
reqs=$(ctl requests)
check "ctl requests: method, path, query, params, time, code" has "$reqs" '{"code":200,"method":"GET","params":{"fieldSelector":"spec.nodeName=n1","limit":"500"},"path":"/api/v1/pods","query":"&fieldSelector=spec.nodeName%3Dn1&limit=500","time":'
check "ctl requests: the control API is not in it" bash -c '! grep -q _test <<<"$1"' _ "$reqs"

# Paths, and garbage.
get /api/v1/foos
check "an unknown API path is a JSON 404" has "$body" '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}'
get /nowhere
check "a path outside the API is Go's plain 404" [ "$code:$body" = "404:404 page not found"$'\n' ]
reply=$(exec 3<>"/dev/tcp/127.0.0.1/$(cat "$d/port")"; printf 'garbage\r\n\r\n' >&3; timeout 5 cat <&3)
check "a garbage request is a plain 400" has "$reply" 'HTTP/1.1 400 Bad Request'
get '/api/v1/pods?limit=abc'
check "a non-number limit is a 400" [ "$code" = 400 ]
get /healthz
check "the server still answers" [ "$code:$body" = "200:ok" ]

# Bad control input: one line, exit 2.
for args in "respond default web-1 418" "respond default web-1 xx" "delete default nope" "frobnicate" "put $work/missing.json"; do
    # shellcheck disable=SC2086
    err=$("$bin" ctl "$d" $args 2>&1 >/dev/null); rc=$?
    check "ctl $args: exit 2 with one line" [ "$rc" = 2 ] && [ "$(wc -l <<<"$err")" = 1 ]
done
err=$(echo 'not json' | ctl put - 2>&1); rc=$?
check "ctl put of garbage: exit 2" [ "$rc:$(wc -l <<<"$err")" = "2:1" ]
"$bin" serve --listen 127.0.0.1:0 2>/dev/null; rc=$?
check "serve without --dir: exit 2" [ "$rc" = 2 ]

# ---------------------------------------------------------------- TLS
t=$work/tls
start "$t" --tls || exit 1
turl=https://127.0.0.1:$(cat "$t/port")
check "--tls writes ca.crt and token" [ -s "$t/ca.crt" -a -s "$t/token" ]
check "--tls kubeconfig has the CA and the token" bash -c 'grep -q "certificate-authority-data: " "$1/kubeconfig" && grep -q "token: $(cat "$1/token")" "$1/kubeconfig"' _ "$t"
body=$(curl -s --cacert "$t/ca.crt" "$turl/api/v1/pods")
check "--tls: no token is a 401" has "$body" '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'
pod web-0 n1 | "$bin" ctl "$t" put - >/dev/null
check "--tls: ctl works" [ "$("$bin" ctl "$t" requests | wc -l)" = 1 ]
auth="Authorization: Bearer $(cat "$t/token")"
body=$(curl -s --cacert "$t/ca.crt" -H "$auth" "https://localhost:$(cat "$t/port")/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
check "--tls: list with the token, certificate valid for localhost" has "$body" '"name":"web-0"'
body=$(curl -s -N --cacert "$t/ca.crt" -H "$auth" "$turl/api/v1/pods?watch=true&timeoutSeconds=2&allowWatchBookmarks=true")
check "--tls: watch" bash -c 'grep -q "^{\"type\":\"ADDED\"" <<<"$1" && grep -q "^{\"type\":\"BOOKMARK\"" <<<"$1"' _ "$body"

if [ "$failed" = 0 ]; then echo "selftest: all passed"; else echo "selftest: FAILED"; fi
exit "$failed"
