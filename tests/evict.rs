//! `--evict` against the API server's real behaviour: a TLS server in this file (certificates
//! made at test time with rcgen) implements the eviction endpoint as kube-apiserver does. It
//! authenticates the bearer token (401), authorizes `create pods/eviction` per service
//! account and namespace as RBAC would (403, with the authorizer's message), routes only POST
//! to `.../pods/{name}/eviction`, wants `application/json` (415) and an `Eviction` whose
//! name matches the URL (400), and then answers from the pod's state: 201 evicted, 429 when
//! a PodDisruptionBudget allows no disruption (with the server's message and cause), 500 for
//! a pod under two budgets, 404 for no such pod; each answer a real `Status` object. It can
//! also stall, in the handshake or before answering.
//!
//! Each test runs the kubemem binary (built with the feature) on a copy of a fixture cgroup
//! tree where usage is above `--failure`, with the service account's files (a projected
//! volume's layout, symlinks included) and the test CA below the same `--root`.
#![cfg(feature = "evict")]

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

mod common;
use common::bin;
const PDB_MESSAGE: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// The fixture's working set is 47.2% of its limit: these thresholds fail it.
const FAILING: [&str; 4] = ["--warning", "40", "--failure", "45"];

/// A CA, and the API server's certificate for 127.0.0.1 and ::1 signed by it.
struct Pki {
    ca_pem: String,
    server: Arc<ServerConfig>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pki() -> Pki {
    let ca = ca("kubernetes");
    // kube-apiserver's serving certificate names the service IP and the DNS names.
    let mut params = CertificateParams::new(vec!["kubernetes.default.svc".to_string()]).unwrap();
    for ip in ["127.0.0.1", "::1"] {
        params
            .subject_alt_names
            .push(SanType::IpAddress(ip.parse().unwrap()));
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server: Arc::new(server),
    }
}

/// A pod as the eviction handler sees it.
#[derive(Clone, Copy)]
enum Pod {
    Evictable,
    /// Covered by one budget that allows no disruption now.
    Budget {
        name: &'static str,
        desired: u32,
        current: u32,
    },
    /// Covered by two budgets, which the eviction subresource refuses.
    TwoBudgets,
}

/// When the server stops answering.
#[derive(Clone, Copy, PartialEq)]
enum Stall {
    Never,
    /// Accepts the connection and sends nothing.
    Handshake,
    /// Reads the request and sends nothing.
    Response,
}

/// A request as the server received it.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// The cluster's state: service-account tokens, RBAC grants, pods.
struct Api {
    /// token -> (user, the namespaces where it may create pods/eviction)
    tokens: Mutex<HashMap<String, (String, Vec<String>)>>,
    pods: Mutex<HashMap<(String, String), Pod>>,
    stall: Stall,
    /// Answer with the chunked coding (Go's net/http does past its 2 KiB buffer).
    chunked: bool,
    seen: Mutex<Vec<Seen>>,
    connections: AtomicUsize,
}

impl Api {
    fn new() -> Api {
        let mut tokens = HashMap::new();
        tokens.insert(
            "token-a".to_string(),
            (
                "system:serviceaccount:default:web".to_string(),
                vec!["default".to_string()],
            ),
        );
        tokens.insert(
            "token-no-rbac".to_string(),
            ("system:serviceaccount:default:plain".to_string(), vec![]),
        );
        let mut pods = HashMap::new();
        let pod = |name: &str| ("default".to_string(), name.to_string());
        pods.insert(pod("web-0"), Pod::Evictable);
        pods.insert(
            pod("guarded-0"),
            Pod::Budget {
                name: "web-pdb",
                desired: 2,
                current: 2,
            },
        );
        pods.insert(pod("twice-0"), Pod::TwoBudgets);
        Api {
            tokens: Mutex::new(tokens),
            pods: Mutex::new(pods),
            stall: Stall::Never,
            chunked: false,
            seen: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The answer to one request, as kube-apiserver's filters and the eviction handler give
    /// it, in their order: authentication, authorization, routing, decoding, the handler.
    fn answer(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut lines = head.split("\r\n");
        let request_line: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
        let header = |name: &str| {
            head.split("\r\n").skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let token = header("authorization")
            .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
            .unwrap_or_default();
        let Some((user, grants)) = self.tokens.lock().unwrap().get(&token).cloned() else {
            return status(401, "Unauthorized", "Unauthorized", None);
        };
        let (method, path) = (request_line[0], request_line.get(1).copied().unwrap_or(""));
        let parts: Vec<&str> = path.split('/').collect();
        let (ns, name) = match parts[..] {
            ["", "api", "v1", "namespaces", ns, "pods", name, "eviction"] => (ns, name),
            _ => {
                return status(
                    404,
                    "the server could not find the requested resource",
                    "NotFound",
                    None,
                )
            }
        };
        if method == "POST" && !grants.iter().any(|g| g == ns) {
            let message = format!(
                "pods {name:?} is forbidden: User {user:?} cannot create resource \"pods/eviction\" \
                 in API group \"\" in the namespace {ns:?}"
            );
            let details = serde_json::json!({"name": name, "kind": "pods"});
            return status(403, &message, "Forbidden", Some(details));
        }
        if method != "POST" {
            let message = format!("{method} is not supported for pods/eviction");
            return status(405, &message, "MethodNotAllowed", None);
        }
        if header("content-type").as_deref() != Some("application/json") {
            let message = "the body of the request was in an unknown format";
            return status(415, message, "UnsupportedMediaType", None);
        }
        let eviction: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return status(400, &e.to_string(), "BadRequest", None),
        };
        let api_version = eviction["apiVersion"].as_str().unwrap_or("");
        if eviction["kind"] != "Eviction" || !["policy/v1", "policy/v1beta1"].contains(&api_version)
        {
            return status(400, "not an Eviction", "BadRequest", None);
        }
        if eviction["metadata"]["name"] != name {
            let message = "name in URL does not match name in Eviction object";
            return status(400, message, "BadRequest", None);
        }
        if eviction["metadata"]["namespace"]
            .as_str()
            .is_some_and(|n| n != ns)
        {
            let message = "the namespace of the provided object does not match the namespace \
                           sent on the request";
            return status(400, message, "BadRequest", None);
        }
        let pod = self
            .pods
            .lock()
            .unwrap()
            .get(&(ns.to_string(), name.to_string()))
            .copied();
        match pod {
            None => {
                let details = serde_json::json!({"name": name, "kind": "pods"});
                status(
                    404,
                    &format!("pods {name:?} not found"),
                    "NotFound",
                    Some(details),
                )
            }
            Some(Pod::Evictable) => {
                self.pods.lock().unwrap().remove(&(ns.into(), name.into()));
                (
                    201,
                    r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}"#
                        .to_string(),
                )
            }
            Some(Pod::Budget {
                name: pdb,
                desired,
                current,
            }) => {
                let cause = format!(
                    "The disruption budget {pdb} needs {desired} healthy pods and has {current} currently"
                );
                let details = serde_json::json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
                status(429, PDB_MESSAGE, "TooManyRequests", Some(details))
            }
            Some(Pod::TwoBudgets) => {
                // The handler's own Status: no reason.
                let message = "This pod has more than one PodDisruptionBudget, which the eviction \
                               subresource does not support.";
                status(500, message, "", None)
            }
        }
    }
}

/// A failure `Status` with metav1.Status's fields in the order Go writes them, empty ones
/// left out (omitempty).
fn status(code: u16, message: &str, reason: &str, details: Option<Value>) -> (u16, String) {
    let mut json =
        String::from(r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","#);
    json += &format!(r#""message":{}"#, Value::from(message));
    if !reason.is_empty() {
        json += &format!(r#","reason":{}"#, Value::from(reason));
    }
    if let Some(d) = details {
        json += &format!(r#","details":{d}"#);
    }
    json += &format!(r#","code":{code}}}"#);
    (code, json)
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    }
}

/// Serves `api` over TLS on `bind` (port 0) until the test process ends.
fn serve(bind: &str, api: Arc<Api>, tls: Arc<ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let (api, tls) = (api.clone(), tls.clone());
            thread::spawn(move || connection(&api, tls, tcp.unwrap()));
        }
    });
    addr
}

fn connection(api: &Api, tls: Arc<ServerConfig>, tcp: TcpStream) {
    api.connections.fetch_add(1, Ordering::SeqCst);
    if api.stall == Stall::Handshake {
        thread::sleep(Duration::from_secs(20));
        return;
    }
    let mut stream = StreamOwned::new(ServerConnection::new(tls).unwrap(), tcp);
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    // The head, then Content-Length bytes of body. A refused handshake ends here.
    let (head, body) = loop {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            break (head, data[end + 4..end + 4 + length].to_vec());
        }
    };
    api.seen.lock().unwrap().push(Seen {
        head: head.clone(),
        body: body.clone(),
    });
    if api.stall == Stall::Response {
        thread::sleep(Duration::from_secs(20));
        return;
    }
    let (code, json) = api.answer(&head, &body);
    let mut response = format!(
        "HTTP/1.1 {code} {}\r\nAudit-Id: 4a5b\r\nCache-Control: no-cache, private\r\n\
         Content-Type: application/json\r\nX-Kubernetes-Pf-Flowschema-Uid: 1\r\n",
        reason_phrase(code)
    );
    if api.chunked {
        let (a, b) = json.split_at(json.len() / 2);
        response += &format!(
            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        );
    } else {
        response += &format!("Content-Length: {}\r\n\r\n{json}", json.len());
    }
    let _ = stream.write_all(response.as_bytes());
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A `--root` tree: the fixture's cgroup files, and the service account's projected volume.
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(ca_pem: &str, token: &str) -> Tree {
        let root = std::env::temp_dir().join(format!(
            "kubemem-evict-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s-v2-cgroupns");
        let copied = Command::new("cp")
            .arg("-r")
            .arg(&fixture)
            .arg(&root)
            .status()
            .unwrap();
        assert!(copied.success());
        let tree = Tree { root };
        fs::create_dir_all(tree.sa()).unwrap();
        tree.project(ca_pem, token);
        for file in ["token", "ca.crt", "namespace"] {
            symlink(format!("..data/{file}"), tree.sa().join(file)).unwrap();
        }
        tree
    }

    fn sa(&self) -> PathBuf {
        self.root
            .join("var/run/secrets/kubernetes.io/serviceaccount")
    }

    /// Writes the volume's files as kubelet's atomic writer does: a new timestamped
    /// directory, then `..data` switched to it with a rename.
    fn project(&self, ca_pem: &str, token: &str) {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = format!("..2024_01_01_00_00_{n:02}.000000001");
        let data = self.sa().join(&dir);
        fs::create_dir(&data).unwrap();
        fs::write(data.join("token"), token).unwrap();
        fs::write(data.join("ca.crt"), ca_pem).unwrap();
        fs::write(data.join("namespace"), "default").unwrap();
        let tmp = self.sa().join("..data_tmp");
        symlink(&dir, &tmp).unwrap();
        fs::rename(&tmp, self.sa().join("..data")).unwrap();
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Out {
    /// The line of the eviction.
    fn evict_line(&self) -> &str {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            2,
            "want the verdict and the eviction: {self:?}"
        );
        assert!(lines[0].starts_with("level=failure "), "{self:?}");
        assert!(lines[1].len() < 400, "{self:?}");
        lines[1]
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A cluster for one test: the API server on `bind`, and a `--root` tree whose service
/// account holds `token` and the server's CA.
struct Cluster {
    pki: Pki,
    api: Arc<Api>,
    server: SocketAddr,
    tree: Tree,
}

impl Cluster {
    fn new(api: Api) -> Cluster {
        Cluster::at("127.0.0.1:0", api, "token-a")
    }

    fn at(bind: &str, api: Api, token: &str) -> Cluster {
        let pki = pki();
        let api = Arc::new(api);
        let server = serve(bind, api.clone(), pki.server.clone());
        let tree = Tree::new(&pki.ca_pem, token);
        Cluster {
            pki,
            api,
            server,
            tree,
        }
    }

    /// Runs kubemem with `args` and the in-cluster environment, POD_NAME=web-0; `env` adds to
    /// it or, with an empty value, removes a variable.
    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Out {
        let mut cmd = Command::new(bin());
        cmd.env_clear()
            .env("KUBERNETES_SERVICE_HOST", self.server.ip().to_string())
            .env("KUBERNETES_SERVICE_PORT", self.server.port().to_string())
            .env("POD_NAME", "web-0");
        for (k, v) in env {
            match v.is_empty() {
                true => cmd.env_remove(k),
                false => cmd.env(k, v),
            };
        }
        cmd.arg("--root").arg(&self.tree.root).args(args);
        let start = Instant::now();
        let out = cmd.output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
            took: start.elapsed(),
        }
    }

    /// The line of an eviction that got no answer from this cluster's server.
    fn no_answer(&self, error: &str) -> String {
        format!(
            "level=error action=evict namespace=default pod=web-0 server={} error=\"{error}\"",
            self.server
        )
    }

    /// A failing probe with `--evict` and `more` arguments.
    fn evict(&self, env: &[(&str, &str)], more: &[&str]) -> Out {
        self.run(env, &[&FAILING[..], &["--evict"], more].concat())
    }
}

const EXACT_BODY: &str = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web-0","namespace":"default"}}"#;

#[test]
fn evicted_201() {
    let c = Cluster::at("127.0.0.1:0", Api::new(), "token-a\n");
    let out = c.evict(&[], &[]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(
        out.evict_line(),
        "level=info action=evict status=201 namespace=default pod=web-0"
    );
    let seen = c.api.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0]
        .head
        .starts_with("POST /api/v1/namespaces/default/pods/web-0/eviction HTTP/1.1\r\n"));
    for header in [
        "Authorization: Bearer token-a",
        "Content-Type: application/json",
        "Connection: close",
        &format!("Host: 127.0.0.1:{}", c.server.port()),
    ] {
        assert!(seen[0].head.contains(header), "{header}: {}", seen[0].head);
    }
    assert_eq!(String::from_utf8_lossy(&seen[0].body), EXACT_BODY);
    let pods = c.api.pods.lock().unwrap();
    assert!(!pods.contains_key(&("default".into(), "web-0".into())));
}

#[test]
fn forbidden_by_rbac_403_names_the_missing_rule() {
    let out = Cluster::at("127.0.0.1:0", Api::new(), "token-no-rbac").evict(&[], &[]);
    assert_eq!(out.code, 4, "{out:?}");
    let line = out.evict_line();
    for part in [
        "level=error action=evict status=403 namespace=default pod=web-0 reason=\"Forbidden\" ",
        " error=\"forbidden: the service account needs a Role rule allowing create on \
         pods/eviction in namespace default\" ",
        r#" message="pods \"web-0\" is forbidden: User \"system:serviceaccount:default:plain\" cannot create resource \"pods/eviction\""#,
    ] {
        assert!(line.contains(part), "{part}\n{line}");
    }
}

/// 429 (a budget), 404 (no such pod), 500 (two budgets; in the chunked coding): each
/// logged with the server's Status, and exit 4 all the same.
#[test]
fn refusals_429_404_500() {
    let rows = [
        (
            "guarded-0",
            format!(
                "level=error action=evict status=429 namespace=default pod=guarded-0 \
                 reason=\"TooManyRequests\" \
                 error=\"eviction refused for now (the liveness restart follows)\" \
                 message=\"{PDB_MESSAGE}\" \
                 cause=\"The disruption budget web-pdb needs 2 healthy pods and has 2 currently\""
            ),
        ),
        (
            "ghost",
            "level=error action=evict status=404 namespace=default pod=ghost reason=\"NotFound\" \
             error=\"no such pod (POD_NAME from metadata.name?)\" \
             message=\"pods \\\"ghost\\\" not found\""
                .to_string(),
        ),
        (
            "twice-0",
            "level=error action=evict status=500 namespace=default pod=twice-0 \
             error=\"API server error\" message=\"This pod has more than one \
             PodDisruptionBudget, which the eviction subresource does not support.\""
                .to_string(),
        ),
    ];
    for (chunked, (pod, line)) in rows.iter().enumerate() {
        let mut api = Api::new();
        api.chunked = chunked == 2;
        let out = Cluster::new(api).evict(&[("POD_NAME", pod)], &[]);
        assert_eq!(out.code, 4, "{out:?}");
        assert_eq!(out.evict_line(), line);
    }
}

#[test]
fn json_lines() {
    let c = Cluster::new(Api::new());
    let out = c.evict(&[("POD_NAME", "guarded-0")], &["--log-format", "json"]);
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["level"], "failure");
    assert_eq!(lines[1]["action"], "evict");
    assert_eq!(lines[1]["status"], 429);
    assert_eq!(lines[1]["message"], PDB_MESSAGE);
}

#[test]
fn the_token_is_read_on_every_run() {
    let c = Cluster::new(Api::new());
    let run = |pod: &str| c.evict(&[("POD_NAME", pod)], &[]);
    assert!(run("web-0").evict_line().contains("status=201"));
    // kubelet rotates the bound token: the server stops accepting the old one...
    let grant = c.api.tokens.lock().unwrap().remove("token-a").unwrap();
    c.api.tokens.lock().unwrap().insert("token-b".into(), grant);
    c.api
        .pods
        .lock()
        .unwrap()
        .insert(("default".into(), "web-1".into()), Pod::Evictable);
    let stale = run("web-1");
    assert_eq!(stale.code, 4);
    assert!(
        stale.evict_line().contains(
            "status=401 namespace=default pod=web-1 reason=\"Unauthorized\" \
             error=\"unauthorized: the API server refused the token\""
        ),
        "{stale:?}"
    );
    // ...and writes the new one into the volume: the next run sends it.
    c.tree.project(&c.pki.ca_pem, "token-b");
    let fresh = run("web-1");
    assert!(fresh.evict_line().contains("status=201"), "{fresh:?}");
    let seen = c.api.seen();
    assert!(seen[1].head.contains("Bearer token-a\r\n"));
    assert!(seen[2].head.contains("Bearer token-b\r\n"));
}

#[test]
fn a_server_not_signed_by_ca_crt_is_refused() {
    let c = Cluster::new(Api::new());
    c.tree.project(&ca("someone else").pem(), "token-a");
    let out = c.evict(&[], &[]);
    assert_eq!(out.code, 4, "{out:?}");
    let refused = c.no_answer("TLS: the server's certificate is not signed by ca.crt");
    assert_eq!(out.evict_line(), refused);
    assert!(
        c.api.seen().is_empty(),
        "a request reached an unverified server"
    );
}

#[test]
fn ipv6_api_server() {
    if TcpListener::bind("[::1]:0").is_err() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "CI=true: this test needs IPv6 on the loopback (::1)");
        eprintln!("SKIP ipv6_api_server: cannot bind [::1]");
        return;
    }
    let c = Cluster::at("[::1]:0", Api::new(), "token-a");
    let out = c.evict(&[], &[]);
    assert_eq!(
        out.evict_line(),
        "level=info action=evict status=201 namespace=default pod=web-0"
    );
    let head = &c.api.seen()[0].head;
    let host = format!("\r\nHost: [::1]:{}\r\n", c.server.port());
    assert!(head.contains(&host), "{head}");
}

#[test]
fn without_pod_name_the_hostname_is_the_pod_name() {
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let hostname = hostname.trim();
    let api = Api::new();
    api.pods
        .lock()
        .unwrap()
        .insert(("default".into(), hostname.into()), Pod::Evictable);
    let c = Cluster::new(api);
    let out = c.evict(&[("POD_NAME", "")], &[]);
    let is_name = hostname
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if !is_name {
        assert!(
            out.evict_line().contains("is not a Kubernetes name"),
            "{out:?}"
        );
        return;
    }
    assert_eq!(
        out.evict_line(),
        format!("level=info action=evict status=201 namespace=default pod={hostname}")
    );
    let path = format!("/pods/{hostname}/eviction ");
    assert!(c.api.seen()[0].head.contains(&path));
}

#[test]
fn a_stalled_server_is_given_up_at_the_deadline() {
    for (stall, step) in [
        (Stall::Handshake, "in the TLS handshake"),
        (Stall::Response, "waiting for the response"),
    ] {
        let mut api = Api::new();
        api.stall = stall;
        let c = Cluster::new(api);
        let out = c.evict(&[], &["--evict-timeout", "300ms"]);
        assert_eq!(out.code, 4, "{out:?}");
        // It ended on its own, long before the server's 20 s stall.
        assert!(out.took < Duration::from_secs(10), "{out:?}");
        let timeout = format!("no answer within --evict-timeout (300ms), {step}");
        assert_eq!(out.evict_line(), c.no_answer(&timeout));
    }
}

#[test]
fn nothing_listening() {
    let mut c = Cluster::new(Api::new());
    c.server = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = c.evict(&[], &[]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.evict_line(), c.no_answer("connect: connection refused"));
}

#[test]
fn configuration_errors_are_one_clear_line() {
    let c = Cluster::new(Api::new());
    let rows: &[(&[(&str, &str)], &str)] = &[
        (
            &[("KUBERNETES_SERVICE_HOST", "")],
            "error=\"KUBERNETES_SERVICE_HOST is not set (not in a pod?)\"",
        ),
        (
            &[("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")],
            "error=\"KUBERNETES_SERVICE_HOST is not an IP address (kubemem resolves no names)\"",
        ),
        (
            &[("KUBERNETES_SERVICE_PORT", "https")],
            "error=\"KUBERNETES_SERVICE_PORT is not a port number\"",
        ),
        (
            &[("POD_NAME", "Web_0")],
            "error=\"the pod name (POD_NAME or the hostname) is not a Kubernetes name \
             (lowercase letters, digits, '-', '.')\"",
        ),
        // POD_NAMESPACE wins over the file (and this one has no grant).
        (
            &[("POD_NAMESPACE", "other")],
            "status=403 namespace=other pod=web-0 ",
        ),
    ];
    for (env, want) in rows {
        let out = c.evict(env, &[]);
        assert_eq!(out.code, 4, "{out:?}");
        assert!(out.evict_line().contains(want), "{env:?}: {out:?}");
    }
    fs::remove_file(c.tree.sa().join("token")).unwrap();
    assert_eq!(
        c.evict(&[], &[]).evict_line(),
        format!(
            "level=error action=evict namespace=default pod=web-0 file={}/token \
             error=\"cannot open: no such file or directory\"",
            c.tree.sa().display()
        )
    );
    let seen = c.api.seen().len();
    assert_eq!(seen, 1, "only POD_NAMESPACE=other reached the server");
}

#[test]
fn a_healthy_probe_does_not_call_the_api_server() {
    let c = Cluster::new(Api::new());
    let out = c.run(&[], &["--evict"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert_eq!(c.api.connections.load(Ordering::SeqCst), 0);
}
