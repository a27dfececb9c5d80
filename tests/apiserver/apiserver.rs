//! A test Kubernetes API server for the kubemem-node scenarios: the HTTP API subset the
//! agent uses, with the protocol and the JSON of kube-apiserver, and a control API under
//! /_test/ on the same listener that a test drives with `apiserver ctl`.
//!
//!   apiserver serve --listen 127.0.0.1:0 --dir DIR [--tls]
//!   apiserver ctl DIR put FILE|- | delete NS NAME | respond NS NAME CODE [N] | drop | expire
//!                     | evictions | events | requests | wait-evictions N [TIMEOUT_S]
//!
//! `serve` writes DIR/kubeconfig (for KUBECONFIG), with --tls DIR/ca.crt and DIR/token,
//! then DIR/port last (a test waits for it), and serves until killed. It serves:
//! - GET /api/v1/pods, /api/v1/namespaces/NS/pods: PodList with metadata.resourceVersion;
//!   labelSelector, fieldSelector (every Pod field label; others are a 400), limit and
//!   continue, resourceVersion and resourceVersionMatch (Exact, NotOlderThan, legacy).
//! - the same with watch=true (and /api/v1/watch/...): a chunked stream of WatchEvents,
//!   ADDED/MODIFIED/DELETED, BOOKMARK every second with allowWatchBookmarks, sendInitialEvents,
//!   timeoutSeconds, ERROR 410 for a compacted resourceVersion.
//! - GET /api/v1/namespaces/NS/pods/NAME.
//! - POST .../pods/NAME/eviction: 201, or what `respond` chose (429, 403, 404, 500), with the
//!   real Status bodies; a 201 deletes the pod gracefully (deletionTimestamp, MODIFIED).
//! - POST /api/v1/namespaces/NS/events and /apis/events.k8s.io/v1/namespaces/NS/events,
//!   PATCH of either (kube's Recorder patches a repeated event's series).
//! - with --tls, only requests carrying the token (else 401).
//!
//! Every answer follows the Kubernetes sources (kubernetes/kubernetes, kubernetes/apiserver,
//! kubernetes/apimachinery; kube-rs 5 for what the client sends):
//! - apiserver pkg/endpoints/handlers/get.go (listOpts, handleWatch), watch.go (the chunked
//!   stream, flush per event, the end at the timeout), create.go (decoding, the API version
//!   check, namespace check, 201 for a Status), rest.go (fieldValidation Warn: unknown fields
//!   become Warning headers), finisher/finisher.go (a failure Status is an error),
//!   responsewriters/{writers.go,status.go,errors.go} (Status encoding, RBAC's forbidden
//!   message), pkg/endpoints/filters/warning.go and apimachinery pkg/util/net/http.go
//!   (Warning: 299 - "..."), pkg/util/notfoundhandler/not_found_handler.go (plain 404
//!   outside the API).
//! - apiserver pkg/storage/cacher/cacher.go (newErrWatcher: errors after a watch starts are an
//!   ERROR event; bookmarks; initial-events-end), cacher/watch_cache_history.go ("too old
//!   resource version: X (Y)"), cacher/cache_watcher.go (bookmark timing, DELETED for an
//!   object that stops matching), pkg/storage/etcd3/errors.go (410 messages for a list and a
//!   continue token, ERROR 410 on compaction), pkg/storage/interfaces.go
//!   (ValidateListOptions), pkg/storage/continue.go (continue tokens), pkg/storage/errors.go
//!   (too large resource version), pkg/storage/api_object_versioner.go.
//! - apimachinery pkg/api/errors/errors.go (every Status body), pkg/apis/meta/v1/types.go
//!   (Status, ListMeta, WatchEvent, ObjectMeta's omitzero creationTimestamp),
//!   pkg/apis/meta/internalversion/validation/validation.go, pkg/fields/selector.go,
//!   pkg/labels/selector.go, pkg/runtime/conversion.go (query parameter decoding),
//!   pkg/util/validation/field/errors.go.
//! - kubernetes pkg/registry/core/pod/storage/eviction.go (the eviction handler, its 429 and
//!   500), pkg/registry/core/pod/strategy.go (graceful deletion), pkg/apis/core/v1/conversion.go
//!   (Pod field labels), pkg/apis/core/validation/events.go (Event validation),
//!   pkg/apis/events/v1/conversion.go (events.k8s.io <-> core field names).
//! - kube-rs kube-core/src/params.rs and request.rs (list: limit=500 and no resourceVersion;
//!   watch: timeoutSeconds=290, allowWatchBookmarks, resourceVersion), subresource.rs (the
//!   eviction body), kube-runtime/src/watcher.rs (re-list after ERROR 410).
//!
//! Deliberately not reproduced: managedFields, protobuf and CBOR, gzip, discovery, other
//! resources, PodDisruptionBudget objects (the 429 is chosen by the test with `respond`).

mod api;
mod control;
mod http;
mod select;
mod status;
mod store;
mod tls;
mod util;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use api::Server;
use http::Conn;

const USAGE: &str = "usage: apiserver serve --listen ADDR --dir DIR [--tls]\n       apiserver ctl DIR COMMAND [ARGS...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]).map(|()| 0),
        Some("ctl") => control::ctl(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(0)
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("apiserver: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: &[String]) -> Result<(), String> {
    let (mut listen, mut dir, mut tls) = (None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => listen = it.next().cloned(),
            "--dir" => dir = it.next().map(PathBuf::from),
            "--tls" => tls = true,
            _ => return Err(format!("serve: unknown argument {a:?}\n{USAGE}")),
        }
    }
    let listen = listen.ok_or("serve: --listen ADDR is required")?;
    let dir = dir.ok_or("serve: --dir DIR is required")?;
    if !dir.is_dir() {
        return Err(format!("serve: --dir {}: not a directory", dir.display()));
    }
    let listener =
        TcpListener::bind(&listen).map_err(|e| format!("serve: --listen {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("serve: {e}"))?;
    let (server_tls, token) = if tls {
        let (config, ca_pem) = tls::make()?;
        let token = util::hex(&util::random(24));
        tls::write_atomically(&dir.join("ca.crt"), ca_pem.as_bytes())?;
        tls::write_atomically(&dir.join("token"), token.as_bytes())?;
        let kubeconfig = tls::kubeconfig(addr, Some((&ca_pem, &token)));
        tls::write_atomically(&dir.join("kubeconfig"), kubeconfig.as_bytes())?;
        (Some(config), Some(token))
    } else {
        tls::write_atomically(
            &dir.join("kubeconfig"),
            tls::kubeconfig(addr, None).as_bytes(),
        )?;
        (None, None)
    };
    tls::write_atomically(&dir.join("port"), format!("{}\n", addr.port()).as_bytes())?;
    eprintln!(
        "apiserver: serving on {addr} ({})",
        if tls { "https" } else { "http" }
    );
    let server = Arc::new(Server::new(token));
    for tcp in listener.incoming() {
        let Ok(tcp) = tcp else { continue };
        let (server, config) = (server.clone(), server_tls.clone());
        let spawned = thread::Builder::new().spawn(move || {
            let _ = tcp.set_nodelay(true);
            let Ok(raw) = tcp.try_clone() else { return };
            let stream: Box<dyn http::Stream> = match config {
                Some(config) => match rustls::ServerConnection::new(config) {
                    Ok(c) => Box::new(rustls::StreamOwned::new(c, tcp)),
                    Err(_) => return,
                },
                None => Box::new(tcp),
            };
            api::connection(&server, Conn::new(stream, raw));
        });
        if let Err(e) = spawned {
            eprintln!("apiserver: cannot start a connection thread: {e}");
        }
    }
    Ok(())
}
