//! The API server's side of a crossing: the `policy/v1` Eviction (through kube-rs's
//! `Api::<Pod>::evict`) and a core/v1 Event on the pod for each eviction, refusal and dry run,
//! so that `kubectl describe pod` says why.
//!
//! - 201: evicted; the pod is never evicted again.
//! - 429 (a PodDisruptionBudget allows no disruption now): retried with backoff, 1 s doubling
//!   to 30 s, while the container stays at or above its threshold, each refusal said.
//! - 404: the pod is gone; forgotten.
//! - 403: one line naming the missing permission.
//! - anything else (5xx, a broken connection): said once, retried as a 429 is.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{EvictParams, PostParams};
use kube::{Api, Client};

use crate::log::Line;
use crate::metrics::State;
use crate::sampling::Crossing;

pub const REASON: &str = "PreOOMEviction";
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// How an eviction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Evicted,
    Gone,
    Forbidden,
    /// Refused or failed until the container fell below its threshold, or the pod was
    /// forgotten.
    GaveUp,
}

/// The delay after the `n`th refusal (from 0): 1 s doubling, at most 30 s.
pub fn backoff(n: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX))
        .min(MAX_RETRY)
}

/// Evicts the crossing's pod, retrying as the module says. One runs per pod at a time.
pub async fn evict(client: Client, node: String, state: State, c: Crossing) -> Outcome {
    let api: Api<Pod> = Api::namespaced(client.clone(), &c.namespace);
    let mut refusals = 0;
    let mut said_error = false;
    loop {
        let code = match api.evict(&c.name, &EvictParams::default()).await {
            Ok(_) => 201,
            Err(kube::Error::Api(status)) => match status.code {
                0 => 500,
                code => code,
            },
            Err(e) => {
                if !std::mem::replace(&mut said_error, true) {
                    state.count("error");
                    Line::new("error", "error")
                        .pod(&c.namespace, &c.name)
                        .str(
                            "error",
                            &format!("eviction request failed: {}", crate::log::chain(&e)),
                        )
                        .emit();
                }
                0
            }
        };
        let pod = |level, event| Line::new(level, event).pod(&c.namespace, &c.name);
        match code {
            201 | 200 => {
                state.count("evicted");
                pod("info", "evicted").str("container", &c.container).emit();
                record(&client, &node, &c, &c.message, "Evicted").await;
                return Outcome::Evicted;
            }
            404 => {
                state.count("gone");
                pod("info", "gone")
                    .str("reason", "the pod no longer exists (404): forgotten")
                    .emit();
                return Outcome::Gone;
            }
            403 => {
                state.count("forbidden");
                pod("error", "forbidden")
                    .str("namespace", &c.namespace)
                    .str("permission", "create pods/eviction")
                    .str(
                        "error",
                        "403 Forbidden: the agent's service account may not create \
                         pods/eviction in this namespace",
                    )
                    .emit();
                return Outcome::Forbidden;
            }
            _ => {}
        }
        let delay = backoff(refusals);
        refusals += 1;
        if code == 429 {
            state.count("refused");
            let line = pod("warning", "refused")
                .str("container", &c.container)
                .num("code", 429)
                .str("retry_in", &format!("{}ms", delay.as_millis()))
                .str(
                    "reason",
                    "a PodDisruptionBudget allows no disruption now; retried while above",
                );
            let message = format!(
                "eviction refused (429, a PodDisruptionBudget), retried in {}ms: {}",
                delay.as_millis(),
                c.message
            );
            line.emit();
            // In its own task, so that the backoff is the one announced.
            let (client, node, c) = (client.clone(), node.clone(), c.clone());
            tokio::spawn(
                async move { record(&client, &node, &c, &message, "EvictionRefused").await },
            );
        } else if code != 0 && !std::mem::replace(&mut said_error, true) {
            state.count("error");
            pod("error", "error")
                .str("container", &c.container)
                .num("code", code.into())
                .str(
                    "error",
                    &format!("eviction answered {code}; retried while above"),
                )
                .emit();
        }
        tokio::time::sleep(delay).await;
        let above = state.lock().above.get(&c.uid).copied();
        if above != Some(true) {
            pod("info", "retry-stopped")
                .str("container", &c.container)
                .str(
                    "reason",
                    match above {
                        Some(_) => "below the threshold again",
                        None => "the pod is no longer watched",
                    },
                )
                .emit();
            return Outcome::GaveUp;
        }
    }
}

/// `--dry-run`: the Event only.
pub async fn dry_run(client: Client, node: String, state: State, c: Crossing) {
    state.count("dry-run");
    record(&client, &node, &c, &c.message, "DryRun").await;
}

/// Creates the core/v1 Event on the crossing's pod (type Warning, reason PreOOMEviction).
/// A failure is a line; the eviction stands either way.
async fn record(client: &Client, node: &str, c: &Crossing, message: &str, action: &str) {
    let api: Api<Event> = Api::namespaced(client.clone(), &c.namespace);
    let ev = event(node, c, message, action);
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        Line::new("error", "error")
            .pod(&c.namespace, &c.name)
            .str(
                "error",
                &format!("cannot record the Event: {}", crate::log::chain(&e)),
            )
            .emit();
    }
}

/// The Event object; named as client-go names them, `<pod>.<unique hex>`.
pub fn event(node: &str, c: &Crossing, message: &str, action: &str) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut ev = Event {
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(c.namespace.clone()),
            name: Some(c.name.clone()),
            uid: Some(c.uid.clone()),
            field_path: Some(format!("spec.containers{{{}}}", c.container)),
            ..Default::default()
        },
        reason: Some(REASON.into()),
        message: Some(message.chars().take(1024).collect()),
        type_: Some("Warning".into()),
        action: Some(action.into()),
        source: Some(EventSource {
            component: Some("kubemem-node".into()),
            host: Some(node.into()),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some("kubemem-node".into()),
        reporting_instance: Some(node.into()),
        ..Default::default()
    };
    ev.metadata.name = Some(format!("{}.{:x}", c.name, now.as_nanosecond()));
    ev.metadata.namespace = Some(c.namespace.clone());
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let secs: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn the_event_names_the_pod() {
        let c = Crossing {
            uid: "u-1".into(),
            namespace: "ns".into(),
            name: "web-0".into(),
            container: "app".into(),
            message: "level=failure event=evict".into(),
        };
        let ev = event("node-1", &c, &c.message, "Evicted");
        let o = &ev.involved_object;
        assert_eq!(
            (
                o.kind.as_deref(),
                o.name.as_deref(),
                o.namespace.as_deref(),
                o.uid.as_deref()
            ),
            (Some("Pod"), Some("web-0"), Some("ns"), Some("u-1"))
        );
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.reason.as_deref(), Some(REASON));
        assert_eq!(ev.message.as_deref(), Some("level=failure event=evict"));
        assert!(ev.metadata.name.unwrap().starts_with("web-0."));
        assert_eq!(ev.metadata.namespace.as_deref(), Some("ns"));
    }
}
