//! The cluster's state: pods keyed as etcd keys them, one global resourceVersion (etcd's
//! revision: every write of any resource bumps it), the history of pod changes since the
//! last compaction (what the watch cache replays), and what the tests inspect.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::select::{Fields, Labels};
use crate::util::{now, rfc3339, uuid};

#[derive(Clone, Copy, PartialEq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

/// One write to a pod: the object before and after (after carries the new resourceVersion;
/// for a deletion it is the last state with the deletion's revision, as etcd3's watcher sends).
pub struct Write {
    pub rv: u64,
    pub change: Change,
    pub prev: Option<Arc<Value>>,
    pub cur: Arc<Value>,
}

/// Which pods a list or watch sees.
pub struct Scope {
    pub namespace: Option<String>,
    pub labels: Labels,
    pub fields: Fields,
}

impl Scope {
    pub fn matches(&self, pod: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| pod["metadata"]["namespace"] == ns)
            && self.labels.matches(pod)
            && self.fields.matches(pod)
    }

    /// What a watcher with this scope is sent for `w`, as the cacher's cacheWatcher decides
    /// (convertToWatchEvent): a pod that starts matching is ADDED, one that stops is DELETED
    /// (its previous state with the new resourceVersion).
    pub fn event(&self, w: &Write) -> Option<(&'static str, Value)> {
        let cur = self.matches(&w.cur);
        let prev = w.prev.as_deref().is_some_and(|p| self.matches(p));
        match (w.change, prev, cur) {
            (Change::Deleted, _, true) => Some(("DELETED", (*w.cur).clone())),
            (Change::Deleted, _, false) => None,
            (_, true, true) => Some(("MODIFIED", (*w.cur).clone())),
            (_, false, true) => Some(("ADDED", (*w.cur).clone())),
            (_, true, false) => {
                let mut old = (*w.prev.clone()?).clone();
                old["metadata"]["resourceVersion"] = json!(w.rv.to_string());
                Some(("DELETED", old))
            }
            (_, false, false) => None,
        }
    }
}

/// How the next evictions of one pod are answered.
pub struct Respond {
    pub code: u16,
    /// None: every one from now on.
    pub remaining: Option<u64>,
}

#[derive(Default)]
pub struct State {
    pub rv: u64,
    /// The revision of the last compaction: a watch from an older one gets 410 Gone.
    pub compacted: u64,
    /// "namespace/name", so iteration is etcd's key order.
    pub pods: BTreeMap<String, Arc<Value>>,
    /// Pod writes with rv > compacted, in order.
    pub log: Vec<Write>,
    /// Bumped by `drop` and `expire`: watches compare them with the values they started with.
    pub drops: u64,
    pub expires: u64,
    pub respond: HashMap<(String, String), Respond>,
    pub evictions: Vec<Value>,
    /// Events in core/v1 form, keyed "namespace/name", and one line per write for `ctl events`.
    pub events: BTreeMap<String, Value>,
    pub event_writes: Vec<Value>,
    pub requests: Vec<Value>,
}

pub fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

impl State {
    fn record(&mut self, change: Change, prev: Option<Arc<Value>>, cur: Value) -> Arc<Value> {
        let cur = Arc::new(cur);
        self.log.push(Write {
            rv: self.rv,
            change,
            prev,
            cur: cur.clone(),
        });
        cur
    }

    /// Creates or replaces a pod (the control API's `put`). A replacement keeps the pod's
    /// uid and creationTimestamp unless the new object names its own.
    pub fn put(&mut self, mut pod: Value) -> Result<Value, String> {
        if !pod.is_object() {
            return Err("the pod is not a JSON object".into());
        }
        for (field, want) in [("kind", "Pod"), ("apiVersion", "v1")] {
            match pod[field].as_str() {
                None => pod[field] = json!(want),
                Some(v) if v == want => {}
                Some(v) => return Err(format!("{field} is {v:?}, want {want:?}")),
            }
        }
        if !pod["metadata"].is_object() {
            return Err("the pod has no metadata object".into());
        }
        let name = match pod["metadata"]["name"].as_str() {
            Some(n) if !n.is_empty() && !n.contains('/') => n.to_string(),
            _ => return Err("the pod has no metadata.name (or it holds a slash)".into()),
        };
        let ns = match &pod["metadata"]["namespace"] {
            Value::Null => "default".to_string(),
            Value::String(n) if !n.is_empty() && !n.contains('/') => n.clone(),
            _ => return Err("metadata.namespace is not a name".into()),
        };
        let k = key(&ns, &name);
        let prev = self.pods.get(&k).cloned();
        let meta = &mut pod["metadata"];
        meta["namespace"] = json!(ns);
        for field in ["uid", "creationTimestamp"] {
            if meta[field].is_null() {
                meta[field] = match &prev {
                    Some(p) => p["metadata"][field].clone(),
                    None if field == "uid" => json!(uuid()),
                    None => json!(rfc3339(now())),
                };
            }
        }
        self.rv += 1;
        meta["resourceVersion"] = json!(self.rv.to_string());
        let change = if prev.is_some() {
            Change::Modified
        } else {
            Change::Added
        };
        let cur = self.record(change, prev, pod);
        self.pods.insert(k, cur.clone());
        Ok((*cur).clone())
    }

    /// Removes a pod for good: DELETED on watches.
    pub fn delete(&mut self, ns: &str, name: &str) -> Option<Value> {
        let prev = self.pods.remove(&key(ns, name))?;
        self.rv += 1;
        let mut cur = (*prev).clone();
        cur["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        Some((*self.record(Change::Deleted, Some(prev), cur)).clone())
    }

    /// The pod store's graceful deletion (registry/rest/delete.go BeforeDelete, the grace
    /// period from pod/strategy.go CheckGracefulDelete): a scheduled, running pod gets
    /// deletionTimestamp = now + grace and deletionGracePeriodSeconds (MODIFIED); an
    /// unscheduled or finished one, or a grace of 0, is deleted at once. A pod already being
    /// deleted is left as it is.
    pub fn delete_gracefully(&mut self, ns: &str, name: &str) {
        let Some(prev) = self.pods.get(&key(ns, name)).cloned() else {
            return;
        };
        if !prev["metadata"]["deletionTimestamp"].is_null() {
            return;
        }
        let phase = prev["status"]["phase"].as_str().unwrap_or("");
        let scheduled = prev["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let grace = prev["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30);
        if grace <= 0 || !scheduled || phase == "Succeeded" || phase == "Failed" {
            self.delete(ns, name);
            return;
        }
        self.rv += 1;
        let mut cur = (*prev).clone();
        let meta = &mut cur["metadata"];
        meta["deletionTimestamp"] = json!(rfc3339(now() + grace as f64));
        meta["deletionGracePeriodSeconds"] = json!(grace);
        meta["resourceVersion"] = json!(self.rv.to_string());
        let cur = self.record(Change::Modified, Some(prev), cur);
        self.pods.insert(key(ns, name), cur);
    }

    /// The pods as they were at revision `rv` (>= compacted): today's, with the later writes
    /// undone.
    pub fn pods_at(&self, rv: u64) -> BTreeMap<String, Arc<Value>> {
        let mut pods = self.pods.clone();
        for w in self.log.iter().rev().take_while(|w| w.rv > rv) {
            let k = key(
                w.cur["metadata"]["namespace"].as_str().unwrap_or(""),
                w.cur["metadata"]["name"].as_str().unwrap_or(""),
            );
            match &w.prev {
                Some(p) => pods.insert(k, p.clone()),
                None => pods.remove(&k),
            };
        }
        pods
    }

    /// The writes after `rv`.
    pub fn since(&self, rv: u64) -> &[Write] {
        let first = self.log.partition_point(|w| w.rv <= rv);
        &self.log[first..]
    }

    /// `expire`: etcd compacts at the current revision.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
        self.log.clear();
        self.expires += 1;
    }
}
