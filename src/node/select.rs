//! Which pods and containers are watched, and at which thresholds: pure functions of a Pod
//! object, so the rules are tested without a server.
//!
//! - pre-oom-killer's opt-in, meaning unchanged: the label `pre-oom-killer: enabled` with
//!   `pre-oom-killer.v1alpha1.k8s.io/target-container-name` (the container) and
//!   `pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold` (a percent of its limit: the
//!   failure threshold). Its annotations without the label mean nothing, as to pre-oom-killer.
//! - kubemem's own: any of `kubemem.io/failure`, `kubemem.io/warning` (the probe's THRESHOLD,
//!   parsed by the probe's parser), `kubemem.io/container` (all containers when absent) and
//!   `kubemem.io/lead` (the probe's `--lead` DURATION: also evict when the working set, at
//!   its recent rate, would reach the limit within it). They win over pre-oom-killer's when
//!   both are there, as in the probe's `--annotations`.
//! - The failure threshold defaults to the probe's 90%; a warning only when annotated.

use std::collections::BTreeMap;
use std::ffi::OsString;

use k8s_openapi::api::core::v1::Pod;
use kubemem::annotations::{self, Bad};
use kubemem::args::duration;
use kubemem::parse::{parse_threshold, Threshold};

pub const LABEL: &str = "pre-oom-killer";
pub const TARGET: &str = "pre-oom-killer.v1alpha1.k8s.io/target-container-name";
pub const PERCENT: &str = "pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold";
pub const FAILURE: &str = "kubemem.io/failure";
pub const WARNING: &str = "kubemem.io/warning";
pub const CONTAINER: &str = "kubemem.io/container";
pub const LEAD: &str = "kubemem.io/lead";

/// The probe's default failure threshold.
pub const DEFAULT_FAILURE: Threshold = Threshold::Percent(90_00);

/// What a pod asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub warning: Option<Threshold>,
    pub failure: Threshold,
    /// The one container to watch; `None`: every container.
    pub container: Option<String>,
    /// `kubemem.io/lead` (or the agent's `--lead`): evict this long before the limit.
    pub lead: Option<Lead>,
}

impl Thresholds {
    /// The agent's `--lead`, for a pod that annotates no lead of its own.
    pub fn or_lead(mut self, default: Option<&Lead>) -> Thresholds {
        if self.lead.is_none() {
            self.lead = default.cloned();
        }
        self
    }
}

/// A lead: its milliseconds, and the text as given (lines print it as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lead {
    pub ms: u64,
    pub text: String,
}

impl Lead {
    /// A DURATION above 0, refused with the probe's `--lead` wording under the name `what`
    /// (the flag or the annotation).
    pub fn parse(what: &str, text: OsString) -> Result<Lead, String> {
        let given = text.to_string_lossy().into_owned();
        match duration(what, text) {
            Ok(0) => Err(format!("{what}: must be above 0")),
            Ok(ms) => Ok(Lead { ms, text: given }),
            Err(e) => Err(String::from_utf8_lossy(&e.0).into_owned()),
        }
    }
}

/// The verdict on a pod's labels and annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Not opted in: never looked at.
    Ignored,
    Watched(Thresholds),
    /// Opted in, but an annotation is wrong: the message names it; the pod is not watched.
    Bad(String),
}

/// Applies the rules above to a pod's labels and annotations.
pub fn select(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> Selection {
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    let pre = labels.and_then(|l| l.get(LABEL)).map(String::as_str) == Some("enabled");
    let ours = [FAILURE, WARNING, CONTAINER, LEAD]
        .iter()
        .any(|k| get(k).is_some());
    if !pre && !ours {
        return Selection::Ignored;
    }
    match thresholds(pre, get) {
        Ok(t) => Selection::Watched(t),
        Err(e) => Selection::Bad(e),
    }
}

fn thresholds<'a>(pre: bool, get: impl Fn(&str) -> Option<&'a str>) -> Result<Thresholds, String> {
    let threshold = |key: &str| -> Result<Option<Threshold>, String> {
        get(key)
            .map(|v| {
                parse_threshold(v.as_bytes())
                    .map_err(|e| format!("{key}: invalid threshold '{v}': {}", e.reason()))
            })
            .transpose()
    };
    let warning = threshold(WARNING)?;
    let failure = threshold(FAILURE)?;
    let lead = get(LEAD).map(|v| Lead::parse(LEAD, v.into())).transpose()?;
    let mut container = get(CONTAINER).map(str::to_owned);
    let mut pre_percent = None;
    if pre {
        // pre-oom-killer needs both of its annotations, unless ours stand in for them.
        for (key, missing) in [(TARGET, container.is_none()), (PERCENT, failure.is_none())] {
            if missing && get(key).is_none() {
                return Err(format!(
                    "label {LABEL}: enabled without the annotation {key}"
                ));
            }
        }
        container = container.or(get(TARGET).map(str::to_owned));
        pre_percent = threshold(PERCENT)?;
        if let Some(Threshold::Bytes(_)) = pre_percent {
            let bad = Bad::NotAPercent(annotations::Key::PreOomKiller);
            return Err(format!("{PERCENT}: {}", bad.reason()));
        }
    }
    if container.as_deref() == Some("") {
        return Err("empty container name".into());
    }
    // The probe's rule for a warning above the failure (both given, of one kind); the
    // "line numbers" are the keys' order.
    let found = [warning, failure, pre_percent].map(|t| t.map(|t| (t, 1)));
    let _ = annotations::conclude(found).map_err(|m| m.bad.reason().to_owned())?;
    Ok(Thresholds {
        warning,
        failure: failure.or(pre_percent).unwrap_or(DEFAULT_FAILURE),
        container,
        lead,
    })
}

/// One container of a watched pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    /// `status.containerStatuses[].containerID` (`containerd://<id>`); `None` until the
    /// container is created.
    pub id: Option<String>,
}

/// What the agent keeps of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// `status.qosClass`; empty when not set yet.
    pub qos: String,
    pub selection: Selection,
    /// The containers to watch, or why there are none.
    pub targets: Result<Vec<Target>, String>,
}

/// Reads a pod. `None` for a pod that is not to be looked at at all: not opted in, being
/// deleted (already on its way out: evicted or not, its memory no longer matters), or
/// finished.
pub fn view(pod: &Pod) -> Option<PodView> {
    let meta = &pod.metadata;
    let selection = select(meta.labels.as_ref(), meta.annotations.as_ref());
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref());
    if selection == Selection::Ignored
        || meta.deletion_timestamp.is_some()
        || matches!(phase, Some("Succeeded" | "Failed"))
    {
        return None;
    }
    let names: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| c.name.as_str())
        .collect();
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    let id = |name: &str| {
        statuses?
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.container_id.clone())
            .filter(|id| !id.is_empty())
    };
    let targets = match &selection {
        Selection::Watched(Thresholds {
            container: Some(c), ..
        }) if !names.contains(&c.as_str()) => Err(format!(
            "container {c} is not in the pod (it has: {})",
            names.join(", ")
        )),
        Selection::Watched(t) => Ok(names
            .iter()
            .filter(|n| t.container.as_deref().is_none_or(|c| c == **n))
            .map(|n| Target {
                name: (*n).to_owned(),
                id: id(n),
            })
            .collect()),
        _ => Ok(Vec::new()),
    };
    Some(PodView {
        uid: meta.uid.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        qos: status.and_then(|s| s.qos_class.clone()).unwrap_or_default(),
        selection,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerStatus, PodSpec, PodStatus};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Selection {
        select(Some(&map(labels)), Some(&map(annotations)))
    }

    fn watched(warning: Option<Threshold>, failure: Threshold, c: Option<&str>) -> Selection {
        Selection::Watched(Thresholds {
            warning,
            failure,
            container: c.map(str::to_owned),
            lead: None,
        })
    }

    fn lead(ms: u64, text: &str) -> Option<Lead> {
        Some(Lead {
            ms,
            text: text.into(),
        })
    }

    const ON: (&str, &str) = (LABEL, "enabled");

    #[test]
    fn pre_oom_killer_pods_keep_their_meaning() {
        assert_eq!(
            sel(&[ON], &[(TARGET, "nginx"), (PERCENT, "60")]),
            watched(None, Threshold::Percent(60_00), Some("nginx"))
        );
        // Without the label its annotations mean nothing; a label with another value neither.
        assert_eq!(
            sel(&[], &[(TARGET, "nginx"), (PERCENT, "60")]),
            Selection::Ignored
        );
        assert_eq!(
            sel(&[(LABEL, "disabled")], &[(TARGET, "n"), (PERCENT, "60")]),
            Selection::Ignored
        );
        assert_eq!(select(None, None), Selection::Ignored);
        assert_eq!(
            sel(&[ON], &[(PERCENT, "60")]),
            Selection::Bad(format!(
                "label pre-oom-killer: enabled without the annotation {TARGET}"
            ))
        );
        assert_eq!(
            sel(&[ON], &[(TARGET, "nginx")]),
            Selection::Bad(format!(
                "label pre-oom-killer: enabled without the annotation {PERCENT}"
            ))
        );
        assert_eq!(
            sel(&[ON], &[(TARGET, "nginx"), (PERCENT, "600Mi")]),
            Selection::Bad(format!("{PERCENT}: an amount, expected a percent"))
        );
        assert_eq!(
            sel(&[ON], &[(TARGET, "nginx"), (PERCENT, "160")]),
            Selection::Bad(format!(
                "{PERCENT}: invalid threshold '160': a percent above 100"
            ))
        );
    }

    #[test]
    fn kubemem_annotations() {
        assert_eq!(
            sel(&[], &[(FAILURE, "900Mi")]),
            watched(None, Threshold::Bytes(900 << 20), None)
        );
        assert_eq!(
            sel(&[], &[(WARNING, "70"), (CONTAINER, "app")]),
            watched(
                Some(Threshold::Percent(70_00)),
                DEFAULT_FAILURE,
                Some("app")
            )
        );
        assert_eq!(
            sel(&[], &[(CONTAINER, "app")]),
            watched(None, DEFAULT_FAILURE, Some("app"))
        );
        assert_eq!(
            sel(&[], &[(FAILURE, "12x")]),
            Selection::Bad("kubemem.io/failure: invalid threshold '12x': unknown unit".into())
        );
        assert_eq!(
            sel(&[], &[(WARNING, "95"), (FAILURE, "90")]),
            Selection::Bad("kubemem.io/warning is above kubemem.io/failure".into())
        );
        // Of two kinds they are not compared, as in the probe.
        assert_eq!(
            sel(&[], &[(WARNING, "95"), (FAILURE, "1Gi")]),
            watched(
                Some(Threshold::Percent(95_00)),
                Threshold::Bytes(1 << 30),
                None
            )
        );
        assert_eq!(
            sel(&[], &[(CONTAINER, "")]),
            Selection::Bad("empty container name".into())
        );
    }

    #[test]
    fn a_lead_annotation() {
        // Alone it opts the pod in, with the default failure threshold.
        let Selection::Watched(t) = sel(&[], &[(LEAD, "3s")]) else {
            panic!("not watched")
        };
        assert_eq!((t.failure, t.lead), (DEFAULT_FAILURE, lead(3000, "3s")));
        // As given, whatever its spelling; beside pre-oom-killer's too.
        let Selection::Watched(t) = sel(&[ON], &[(TARGET, "app"), (PERCENT, "99"), (LEAD, "1.5m")])
        else {
            panic!("not watched")
        };
        assert_eq!(t.lead, lead(90_000, "1.5m"));
        assert_eq!(t.failure, Threshold::Percent(99_00));
        // Malformed: the pod is not watched, and the message says why, as the flag's would.
        assert_eq!(
            sel(&[], &[(FAILURE, "99"), (LEAD, "3")]),
            Selection::Bad(
                "kubemem.io/lead: invalid duration '3': unknown unit (use ms s m h) \
                 (expected a duration like 100ms, 1.5s or 1m)"
                    .into()
            )
        );
        assert_eq!(
            sel(&[], &[(LEAD, "0s")]),
            Selection::Bad("kubemem.io/lead: must be above 0".into())
        );
        assert!(matches!(sel(&[], &[(LEAD, "")]), Selection::Bad(_)));
        assert!(matches!(sel(&[], &[(LEAD, "-3s")]), Selection::Bad(_)));
        // The agent's --lead stands in for a missing annotation, never for a given one.
        let default = lead(10_000, "10s");
        let Selection::Watched(t) = sel(&[], &[(FAILURE, "80")]) else {
            panic!("not watched")
        };
        assert_eq!(t.or_lead(default.as_ref()).lead, default);
        let Selection::Watched(t) = sel(&[], &[(LEAD, "2s")]) else {
            panic!("not watched")
        };
        assert_eq!(t.or_lead(default.as_ref()).lead, lead(2000, "2s"));
    }

    #[test]
    fn ours_win_over_pre_oom_killers() {
        let a = [
            (TARGET, "nginx"),
            (PERCENT, "60"),
            (FAILURE, "80"),
            (CONTAINER, "app"),
        ];
        assert_eq!(
            sel(&[ON], &a),
            watched(None, Threshold::Percent(80_00), Some("app"))
        );
        // Ours stand in for a missing one of pre-oom-killer's.
        assert_eq!(
            sel(&[ON], &[(PERCENT, "60"), (CONTAINER, "app")]),
            watched(None, Threshold::Percent(60_00), Some("app"))
        );
        assert_eq!(
            sel(&[ON], &[(TARGET, "web"), (FAILURE, "1Gi")]),
            watched(None, Threshold::Bytes(1 << 30), Some("web"))
        );
    }

    pub fn pod(annotations: &[(&str, &str)], containers: &[(&str, Option<&str>)]) -> Pod {
        let mut p = Pod::default();
        p.metadata.uid = Some("u-1".into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.name = Some("web-0".into());
        p.metadata.annotations = Some(map(annotations));
        p.spec = Some(PodSpec {
            containers: containers
                .iter()
                .map(|(n, _)| Container {
                    name: n.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        p.status = Some(PodStatus {
            qos_class: Some("Burstable".into()),
            phase: Some("Running".into()),
            container_statuses: Some(
                containers
                    .iter()
                    .map(|(n, id)| ContainerStatus {
                        name: n.to_string(),
                        container_id: id.map(str::to_owned),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        p
    }

    fn target(name: &str, id: Option<&str>) -> Target {
        Target {
            name: name.into(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn a_pod_view_names_its_containers() {
        let cs = [("app", Some("containerd://aa")), ("sidecar", None)];
        let v = view(&pod(&[(FAILURE, "80")], &cs)).unwrap();
        assert_eq!(
            (
                v.uid.as_str(),
                v.namespace.as_str(),
                v.name.as_str(),
                v.qos.as_str()
            ),
            ("u-1", "ns", "web-0", "Burstable")
        );
        assert_eq!(
            v.targets,
            Ok(vec![
                target("app", Some("containerd://aa")),
                target("sidecar", None)
            ])
        );
        let v = view(&pod(&[(CONTAINER, "sidecar")], &cs)).unwrap();
        assert_eq!(v.targets, Ok(vec![target("sidecar", None)]));
        let v = view(&pod(&[(CONTAINER, "db")], &cs)).unwrap();
        assert_eq!(
            v.targets,
            Err("container db is not in the pod (it has: app, sidecar)".into())
        );
        // A bad annotation is a view (its error is reported), with no targets.
        let v = view(&pod(&[(FAILURE, "x")], &cs)).unwrap();
        assert!(matches!(v.selection, Selection::Bad(_)));
        assert_eq!(v.targets, Ok(vec![]));
    }

    #[test]
    fn ignored_deleted_and_finished_pods_have_no_view() {
        let cs = [("app", Some("containerd://aa"))];
        assert_eq!(view(&pod(&[], &cs)), None);
        let mut p = pod(&[(FAILURE, "80")], &cs);
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(view(&p), None);
        for phase in ["Succeeded", "Failed"] {
            let mut p = pod(&[(FAILURE, "80")], &cs);
            p.status.as_mut().unwrap().phase = Some(phase.into());
            assert_eq!(view(&p), None);
        }
    }
}
