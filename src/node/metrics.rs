//! What the sampling thread and the async side share, and the HTTP server that shows it:
//! `GET /metrics` (Prometheus text format 0.0.4) and `GET /healthz` for the DaemonSet's
//! probes. A minimal HTTP/1.1 server on tokio's `TcpListener`: one request per connection,
//! answered with `Connection: close`; a metrics scrape needs no more, and no HTTP crate.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The outcomes counted by `kubemem_node_evictions_total`.
pub const OUTCOMES: [&str; 6] = [
    "evicted",
    "refused",
    "forbidden",
    "gone",
    "error",
    "dry-run",
];

/// The last sample of one watched container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauge {
    pub used: u64,
    /// `None`: no limit.
    pub limit: Option<u64>,
    pub threshold: Option<u64>,
    /// The kernel's OOM-kill count of the container's cgroup; `None`: unreadable.
    pub oom_kills: Option<u64>,
}

/// (namespace, pod, container).
pub type ContainerKey = (String, String, String);

#[derive(Debug, Default)]
pub struct Shared {
    pub containers: BTreeMap<ContainerKey, Gauge>,
    /// Pod UID -> some container of it is at or above its failure threshold (the 429 retry
    /// goes on only while this holds).
    pub above: HashMap<String, bool>,
    pub evictions: [u64; OUTCOMES.len()],
    pub watch_restarts: u64,
    /// The watcher's first list is complete.
    pub listed: bool,
    /// When the sampling thread last went round its loop.
    pub heartbeat: Option<Instant>,
}

/// The shared state, behind one mutex: every holder keeps it for a few map operations.
#[derive(Clone, Debug, Default)]
pub struct State(Arc<Mutex<Shared>>);

impl State {
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic elsewhere aborts the process (panic = "abort"), so poisoning cannot be
        // observed in the release build; in tests the data is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count(&self, outcome: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.lock().evictions[i] += 1;
        }
    }

    /// Healthy: the first list completed and the sampling thread went round its loop within
    /// `stale` (it wakes at least every interval).
    pub fn healthy(&self, stale: Duration) -> bool {
        let s = self.lock();
        s.listed && s.heartbeat.is_some_and(|h| h.elapsed() < stale)
    }
}

/// One of a container's gauges; `None` leaves the series out.
type GaugeValue = fn(&Gauge) -> Option<u64>;

/// The Prometheus text of `s`.
pub fn render(s: &Shared) -> String {
    let mut out = String::with_capacity(256 + s.containers.len() * 300);
    let gauges: [(&str, &str, GaugeValue); 4] = [
        (
            "kubemem_node_working_set_bytes",
            "Working set of the watched container (of its pod when the limit is the pod's).",
            |g| Some(g.used),
        ),
        (
            "kubemem_node_limit_bytes",
            "Effective memory limit of the watched container (absent: no limit).",
            |g| g.limit,
        ),
        (
            "kubemem_node_threshold_bytes",
            "Working set at which the pod is evicted.",
            |g| g.threshold,
        ),
        (
            "kubemem_node_oom_kills",
            "Processes of the watched container the kernel's OOM killer killed (its cgroup's \
             count: v2 memory.events oom_kill, v1 memory.oom_control oom_kill).",
            |g| g.oom_kills,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for ((ns, pod, c), g) in &s.containers {
            if let Some(v) = value(g) {
                let _ = writeln!(
                    out,
                    "{name}{{namespace=\"{}\",pod=\"{}\",container=\"{}\"}} {v}",
                    label(ns),
                    label(pod),
                    label(c)
                );
            }
        }
    }
    let name = "kubemem_node_evictions_total";
    let _ = writeln!(
        out,
        "# HELP {name} Eviction requests by outcome (dry-run: none sent).\n# TYPE {name} counter"
    );
    for (outcome, n) in OUTCOMES.iter().zip(s.evictions) {
        let _ = writeln!(out, "{name}{{outcome=\"{outcome}\"}} {n}");
    }
    let name = "kubemem_node_watch_restarts_total";
    let _ = writeln!(
        out,
        "# HELP {name} Times the pod watch was re-listed.\n# TYPE {name} counter\n{name} {}",
        s.watch_restarts
    );
    out
}

/// A label value escaped as the text format wants (Kubernetes names need none; be safe).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Status, content type and body for a request line's method and path.
pub fn route(method: &str, path: &str, state: &State, stale: Duration) -> (u16, String) {
    let path = path.split('?').next().unwrap_or(path);
    match (method, path) {
        ("GET", "/metrics") => (200, render(&state.lock())),
        ("GET", "/healthz") if state.healthy(stale) => (200, "ok\n".into()),
        ("GET", "/healthz") => (503, "not ready\n".into()),
        _ => (404, "not found\n".into()),
    }
}

/// Serves until the runtime stops.
pub async fn serve(listener: TcpListener, state: State, stale: Duration) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            // EMFILE and the like: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), answer(sock, &state, stale)).await;
        });
    }
}

/// Reads one request's head (at most 8 KiB) and answers it.
async fn answer(mut sock: TcpStream, state: &State, stale: Duration) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        if n == buf.len() {
            return respond(&mut sock, 431, "request head too large\n").await;
        }
        match sock.read(&mut buf[n..]).await? {
            0 => return Ok(()),
            k => n += k,
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (code, body) = route(method, path, state, stale);
    respond(&mut sock, code, &body).await
}

async fn respond(sock: &mut TcpStream, code: u16, body: &str) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text() {
        let state = State::default();
        {
            let mut s = state.lock();
            s.containers.insert(
                ("ns".into(), "web-0".into(), "app".into()),
                Gauge {
                    used: 900,
                    limit: Some(1000),
                    threshold: Some(800),
                    oom_kills: Some(2),
                },
            );
            s.containers.insert(
                ("ns".into(), "web-1".into(), "app".into()),
                Gauge {
                    used: 5,
                    limit: None,
                    threshold: None,
                    oom_kills: None,
                },
            );
            s.watch_restarts = 2;
        }
        state.count("evicted");
        state.count("dry-run");
        state.count("dry-run");
        let (code, text) = route("GET", "/metrics", &state, Duration::from_secs(1));
        assert_eq!(code, 200);
        for want in [
            "kubemem_node_working_set_bytes{namespace=\"ns\",pod=\"web-0\",container=\"app\"} 900\n",
            "kubemem_node_working_set_bytes{namespace=\"ns\",pod=\"web-1\",container=\"app\"} 5\n",
            "kubemem_node_limit_bytes{namespace=\"ns\",pod=\"web-0\",container=\"app\"} 1000\n",
            "kubemem_node_threshold_bytes{namespace=\"ns\",pod=\"web-0\",container=\"app\"} 800\n",
            "kubemem_node_oom_kills{namespace=\"ns\",pod=\"web-0\",container=\"app\"} 2\n",
            "kubemem_node_evictions_total{outcome=\"evicted\"} 1\n",
            "kubemem_node_evictions_total{outcome=\"dry-run\"} 2\n",
            "kubemem_node_evictions_total{outcome=\"refused\"} 0\n",
            "# TYPE kubemem_node_watch_restarts_total counter\nkubemem_node_watch_restarts_total 2\n",
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
        assert!(!text.contains("limit_bytes{namespace=\"ns\",pod=\"web-1\""));
        assert!(!text.contains("oom_kills{namespace=\"ns\",pod=\"web-1\""));
    }

    #[test]
    fn health_and_other_paths() {
        let state = State::default();
        let stale = Duration::from_secs(5);
        assert_eq!(route("GET", "/healthz", &state, stale).0, 503);
        state.lock().listed = true;
        assert_eq!(route("GET", "/healthz", &state, stale).0, 503);
        state.lock().heartbeat = Some(Instant::now());
        assert_eq!(
            route("GET", "/healthz", &state, stale),
            (200, "ok\n".into())
        );
        assert_eq!(route("GET", "/healthz", &state, Duration::ZERO).0, 503);
        assert_eq!(route("GET", "/", &state, stale).0, 404);
        assert_eq!(route("POST", "/metrics", &state, stale).0, 404);
    }
}
