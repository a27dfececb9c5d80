//! Label and field selectors: apimachinery's pkg/labels/selector.go and pkg/fields/selector.go
//! grammar, and the Pod field labels kubernetes accepts (pkg/apis/core/v1/conversion.go; the
//! values from pkg/registry/core/pod/strategy.go ToSelectableFields).

use serde_json::Value;

enum Op {
    Exists,
    NotExists,
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

pub struct Labels(Vec<(String, Op)>);

/// Splits on commas outside parentheses.
fn split_outside_parens(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn set(values: &str, whole: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: found '{whole}', expected: '('"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

impl Labels {
    pub fn parse(s: &str) -> Result<Labels, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Labels(reqs));
        }
        for part in split_outside_parens(s) {
            let p = part.trim();
            let bad = || format!("unable to parse requirement: {}", crate::util::go_quote(p));
            let (key, op) = if let Some(k) = p.strip_prefix('!') {
                (k.trim().to_string(), Op::NotExists)
            } else if let Some((k, v)) = p.split_once("!=") {
                (k.trim().to_string(), Op::NotIn(vec![v.trim().to_string()]))
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                (k.trim().to_string(), Op::In(vec![v.trim().to_string()]))
            } else if let Some((k, v)) = p.split_once(" notin ") {
                (k.trim().to_string(), Op::NotIn(set(v, p)?))
            } else if let Some((k, v)) = p.split_once(" in ") {
                (k.trim().to_string(), Op::In(set(v, p)?))
            } else if let Some((k, v)) = p.split_once('>') {
                (
                    k.trim().to_string(),
                    Op::Gt(v.trim().parse().map_err(|_| bad())?),
                )
            } else if let Some((k, v)) = p.split_once('<') {
                (
                    k.trim().to_string(),
                    Op::Lt(v.trim().parse().map_err(|_| bad())?),
                )
            } else {
                (p.to_string(), Op::Exists)
            };
            if !valid_key(&key) {
                return Err(bad());
            }
            reqs.push((key, op));
        }
        Ok(Labels(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.0.iter().all(|(key, op)| {
            let v = labels[key.as_str()].as_str();
            match op {
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::In(vals) => v.is_some_and(|v| vals.iter().any(|x| x == v)),
                Op::NotIn(vals) => !v.is_some_and(|v| vals.iter().any(|x| x == v)),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed field selector: (field, equal?, value) terms, all of which must hold.
pub struct Fields(Vec<(String, bool, String)>);

/// fields.UnescapeValue: `\` escapes only `\`, `,` and `=`.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{}",
                        s
                    ))
                }
            },
            ',' | '=' => return Err(format!("invalid field selector: unescaped {c} in {s}")),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Fields {
    /// Parses as fields.ParseSelector does, then transforms each label as the Pod's
    /// field label conversion does; its error is the 400's message.
    pub fn parse_for_pods(s: &str) -> Result<Fields, String> {
        let mut terms = Vec::new();
        // splitTerms: commas not escaped by a backslash.
        let mut parts = Vec::new();
        let (mut start, mut escaped) = (0, false);
        for (i, c) in s.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                ',' => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        parts.sort_unstable();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let (lhs, eq, rhs) = ["!=", "==", "="]
                .iter()
                .filter_map(|op| part.find(op).map(|i| (i, *op)))
                .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
                .map(|(i, op)| (&part[..i], op != "!=", &part[i + op.len()..]))
                .ok_or_else(|| format!("invalid selector: '{s}'; can't understand '{part}'"))?;
            let value = unescape(rhs)?;
            let field = match lhs {
                "metadata.name"
                | "metadata.namespace"
                | "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.podIPs"
                | "status.nominatedNodeName" => lhs,
                // old v1 clients' name for spec.nodeName
                "spec.host" => "spec.nodeName",
                _ => return Err(format!("field label not supported: {lhs}")),
            };
            terms.push((field.to_string(), eq, value));
        }
        Ok(Fields(terms))
    }

    pub fn matches(&self, pod: &Value) -> bool {
        self.0
            .iter()
            .all(|(field, eq, value)| (pod_field(pod, field) == *value) == *eq)
    }

    /// The value of `field=X` when the selector requires exactly that.
    pub fn requires(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == field && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn pod_field(pod: &Value, field: &str) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    match field {
        "spec.hostNetwork" => pod["spec"]["hostNetwork"]
            .as_bool()
            .unwrap_or(false)
            .to_string(),
        "status.podIPs" => pod["status"]["podIPs"]
            .as_array()
            .map(|ips| {
                ips.iter()
                    .map(|ip| s(&ip["ip"]))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        _ => {
            let (a, b) = field.split_once('.').unwrap_or((field, ""));
            s(&pod[a][b])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let pod = serde_json::json!({"metadata": {"name": "a", "labels": {"app": "web"}},
                                     "spec": {"nodeName": "n1"}});
        assert!(Fields::parse_for_pods("spec.nodeName=n1")
            .unwrap()
            .matches(&pod));
        assert!(!Fields::parse_for_pods("spec.nodeName!=n1")
            .unwrap()
            .matches(&pod));
        assert!(Fields::parse_for_pods("spec.host==n1,metadata.name=a")
            .unwrap()
            .matches(&pod));
        assert_eq!(
            Fields::parse_for_pods("spec.foo=1").err().unwrap(),
            "field label not supported: spec.foo"
        );
        assert!(Fields::parse_for_pods("nonsense").is_err());
        assert!(Labels::parse("app in (web, db),!gone")
            .unwrap()
            .matches(&pod));
        assert!(!Labels::parse("app!=web").unwrap().matches(&pod));
        assert!(Labels::parse("app=(").is_err() || !Labels::parse("app=(").unwrap().matches(&pod));
    }
}
