//! The Kubernetes API subset: pods (list, get, watch), the eviction subresource, events
//! (core/v1 and events.k8s.io/v1), /version, /healthz, and the request filters before them
//! (authentication, then RBAC's answer when a test asks for 403).

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{head, write_chunk, write_response, Bad, Conn, Request, Response};
use crate::select::{Fields, Labels};
use crate::status::{Cause, FieldError, FieldKind, Status};
use crate::store::{key, Scope, State};
use crate::util::{
    base64_url, base64_url_decode, go_json, go_quote, name_suffix, now, random, rfc3339, uuid,
};

/// Who the agent is: the user named in RBAC's 403.
pub const USER: &str = "system:serviceaccount:kube-system:kubemem-node";
const PDB_MESSAGE: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// The cacher sends a bookmark about every minute (cacher.go defaultBookmarkFrequency);
/// tests cannot wait that long, so every second here.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);
/// How long the cacher waits for a resourceVersion it has not seen (waitUntilFreshAndBlock).
const FRESH_WAIT: Duration = Duration::from_secs(3);
const JSON_TYPES: &str =
    "application/json, application/yaml, application/vnd.kubernetes.protobuf, application/cbor";

pub struct Server {
    pub state: Mutex<State>,
    pub changed: Condvar,
    /// The bearer token every request must carry (TLS only).
    pub token: Option<String>,
}

impl Server {
    pub fn new(token: Option<String>) -> Server {
        Server {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            token,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked cannot leave the state half-written (every write is a few
        // assignments), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn status(s: Status) -> Response {
    Response::json(s.code, s.json())
}

/// Serves one connection until the client closes it or a response ends it.
pub fn connection(server: &Server, mut conn: Conn) {
    loop {
        let req = match conn.read_request() {
            Ok(r) => r,
            Err(Bad::Gone) => return,
            Err(Bad::Answer(code, text)) => return conn.write_bad(code, text),
        };
        match handle(server, &mut conn, &req) {
            Ok(true) if !req.close => continue,
            _ => return,
        }
    }
}

/// Answers one request; Ok(false) when the connection must close.
fn handle(server: &Server, conn: &mut Conn, req: &Request) -> io::Result<bool> {
    let control = req.path.starts_with("/_test/");
    let idx = if control {
        None
    } else {
        let mut st = server.lock();
        let params: serde_json::Map<String, Value> = req
            .params()
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        st.requests.push(
            json!({"method": req.method, "path": req.path, "query": req.query,
                                "params": params, "time": now(), "code": null}),
        );
        Some(st.requests.len() - 1)
    };
    let set_code = |code: u16| {
        if let Some(i) = idx {
            server.lock().requests[i]["code"] = json!(code);
        }
    };
    // The authentication filter: without the token, 401 before anything else.
    if let Some(token) = &server.token {
        let given = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "));
        if given.map(str::trim) != Some(token.as_str()) {
            set_code(401);
            let r = status(Status::unauthorized());
            return write_response(conn, &r, req.close, false).map(|()| true);
        }
    }
    if control {
        let r = crate::control::handle(server, req);
        return write_response(conn, &r, req.close, true).map(|()| true);
    }
    let response = match route(server, req) {
        Route::Answer(r) => r,
        Route::Watch(scope, opts, rv) => {
            set_code(200);
            return watch(server, conn, &scope, &opts, rv);
        }
    };
    set_code(response.code);
    write_response(conn, &response, req.close, false)?;
    Ok(true)
}

enum Route {
    Answer(Response),
    /// With the resourceVersion, parsed.
    Watch(Scope, Opts, u64),
}

fn route(server: &Server, req: &Request) -> Route {
    let segs: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
    let m = req.method.as_str();
    let answer = |r: Response| Route::Answer(r);
    match (m, &segs[..]) {
        ("GET", ["version"]) => answer(Response::json(200, version())),
        ("GET", ["healthz" | "livez" | "readyz"]) => answer(Response::text(200, "ok".into())),
        ("GET", ["api", "v1", "pods"]) => pods(server, req, None, None, false),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            pods(server, req, Some(ns), None, false)
        }
        ("GET", ["api", "v1", "watch", "pods"]) => pods(server, req, None, None, true),
        ("GET", ["api", "v1", "watch", "namespaces", ns, "pods"]) => {
            pods(server, req, Some(ns), None, true)
        }
        ("GET", ["api", "v1", "watch", "namespaces", ns, "pods", name]) => {
            pods(server, req, Some(ns), Some(name), true)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => answer(get_pod(server, ns, name)),
        ("POST", ["api", "v1", "namespaces", ns, "pods", name, "eviction"]) => {
            answer(evict(server, req, ns, name))
        }
        ("POST", ["api", "v1", "namespaces", ns, "events"]) => {
            answer(create_event(server, req, ns, Api::Core))
        }
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"]) => {
            answer(create_event(server, req, ns, Api::Events))
        }
        ("PATCH", ["api", "v1", "namespaces", ns, "events", name]) => {
            answer(patch_event(server, req, ns, name, Api::Core))
        }
        ("PATCH", ["apis", "events.k8s.io", "v1", "namespaces", ns, "events", name]) => {
            answer(patch_event(server, req, ns, name, Api::Events))
        }
        // Known resources, a method this server does not implement: go-restful's 405.
        (_, ["api", "v1", "pods"] | ["api", "v1", "namespaces", _, "pods" | "events", ..])
        | (_, ["apis", "events.k8s.io", "v1", "namespaces", _, "events", ..]) => {
            answer(status(Status::no_route(405)))
        }
        (_, ["api" | "apis", ..]) => answer(status(Status::no_route(404))),
        // Outside the API groups kube-apiserver's mux falls through to Go's http.NotFound.
        _ => answer(
            Response::text(404, "404 page not found\n".into())
                .with("X-Content-Type-Options", "nosniff"),
        ),
    }
}

fn version() -> String {
    let v = json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "",
                   "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z",
                   "goVersion": "go1.24.2", "compiler": "gc", "platform": "linux/amd64"});
    go_json(&v) + "\n"
}

/// metainternalversion.ListOptions as the parameter codec decodes them.
pub struct Opts {
    watch: bool,
    rv: String,
    rv_match: String,
    limit: i64,
    continue_: String,
    timeout: Option<i64>,
    bookmarks: bool,
    send_initial: Option<bool>,
}

fn int_param(req: &Request, name: &str) -> Result<Option<i64>, Status> {
    match req.param(name) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            Status::bad_request(&format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                go_quote(&v)
            ))
        }),
    }
}

/// Go's Convert_Slice_string_To_bool: anything but "0" and "false" is true.
fn bool_param(req: &Request, name: &str) -> Option<bool> {
    req.param(name)
        .map(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

/// handlers/get.go listOpts: decode, validate (validation.go ValidateListOptions), then the
/// field selector's labels converted for pods.
fn list_opts(
    req: &Request,
    ns: Option<&str>,
    name: Option<&str>,
    force_watch: bool,
) -> Result<(Scope, Opts), Status> {
    let labels = Labels::parse(&req.param("labelSelector").unwrap_or_default())
        .map_err(|e| Status::bad_request(&e))?;
    let o = Opts {
        watch: force_watch || bool_param(req, "watch").unwrap_or(false),
        rv: req.param("resourceVersion").unwrap_or_default(),
        rv_match: req.param("resourceVersionMatch").unwrap_or_default(),
        limit: int_param(req, "limit")?.unwrap_or(0),
        continue_: req.param("continue").unwrap_or_default(),
        timeout: int_param(req, "timeoutSeconds")?,
        bookmarks: bool_param(req, "allowWatchBookmarks").unwrap_or(false),
        send_initial: bool_param(req, "sendInitialEvents"),
    };
    let mut errs = Vec::new();
    let forbid = |errs: &mut Vec<FieldError>, field: &str, detail: &str| {
        errs.push(FieldError::new(FieldKind::Forbidden, field, "", detail));
    };
    let m = o.rv_match.as_str();
    if o.watch {
        if o.send_initial.is_some() && m != "NotOlderThan" {
            forbid(
                &mut errs,
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            );
        }
        if !m.is_empty() {
            if o.send_initial.is_none() {
                forbid(&mut errs, "resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided");
            }
            if m != "NotOlderThan" {
                errs.push(FieldError::new(
                    FieldKind::NotSupported,
                    "resourceVersionMatch",
                    m,
                    "supported values: \"NotOlderThan\"",
                ));
            }
            if !o.continue_.is_empty() {
                forbid(
                    &mut errs,
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                );
            }
        }
    } else {
        if !m.is_empty() {
            if o.rv.is_empty() {
                forbid(
                    &mut errs,
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                );
            }
            if !o.continue_.is_empty() {
                forbid(
                    &mut errs,
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                );
            }
            if m != "Exact" && m != "NotOlderThan" {
                errs.push(FieldError::new(
                    FieldKind::NotSupported,
                    "resourceVersionMatch",
                    m,
                    "supported values: \"Exact\", \"NotOlderThan\", \"\"",
                ));
            }
            if m == "Exact" && o.rv == "0" {
                forbid(
                    &mut errs,
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                );
            }
        }
        if o.send_initial.is_some() {
            forbid(
                &mut errs,
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            );
        }
    }
    if !errs.is_empty() {
        return Err(Status::invalid("meta.k8s.io", "ListOptions", "", &errs));
    }
    let mut fields = Fields::parse_for_pods(&req.param("fieldSelector").unwrap_or_default())
        .map_err(|e| Status::bad_request(&e))?;
    if let Some(name) = name {
        if fields.is_empty() {
            fields = Fields::parse_for_pods(&format!(
                "metadata.name={}",
                name.replace('\\', "\\\\")
                    .replace(',', "\\,")
                    .replace('=', "\\=")
            ))
            .map_err(|e| Status::bad_request(&e))?;
        } else if fields.requires("metadata.name") != Some(name) {
            return Err(Status::bad_request(
                "fieldSelector metadata.name doesn't match requested name",
            ));
        }
    }
    let scope = Scope {
        namespace: ns.map(str::to_string),
        labels,
        fields,
    };
    Ok((scope, o))
}

/// APIObjectVersioner.ParseResourceVersion; the error names the field as storage does.
fn parse_rv(rv: &str) -> Result<u64, FieldError> {
    if rv.is_empty() || rv == "0" {
        return Ok(0);
    }
    rv.parse::<u64>().map_err(|_| {
        let detail = format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            go_quote(rv)
        );
        FieldError::new(FieldKind::Invalid, "resourceVersion", rv, &detail)
    })
}

fn pods(
    server: &Server,
    req: &Request,
    ns: Option<&str>,
    name: Option<&str>,
    force_watch: bool,
) -> Route {
    match list_opts(req, ns, name, force_watch) {
        Err(s) => Route::Answer(status(s)),
        Ok((scope, o)) if o.watch => match parse_rv(&o.rv) {
            // storage/errors InterpretWatchError: storage.InvalidError -> NewInvalid.
            Err(e) => Route::Answer(status(Status::invalid("", "pods", "", &[e]))),
            Ok(rv) => Route::Watch(scope, o, rv),
        },
        Ok((scope, o)) => Route::Answer(list(server, ns, &scope, &o).unwrap_or_else(status)),
    }
}

/// Waits (as the cacher does, a few seconds) for the store to reach `rv`.
fn wait_for<'a>(
    server: &'a Server,
    mut st: MutexGuard<'a, State>,
    rv: u64,
) -> Result<MutexGuard<'a, State>, Status> {
    let end = Instant::now() + FRESH_WAIT;
    while st.rv < rv {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Status::too_large_resource_version(rv, st.rv));
        }
        st = server
            .changed
            .wait_timeout(st, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    Ok(st)
}

const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to retrieve the \
remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were \
created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// storage.EncodeContinue: the key after the list's key prefix, and the list's revision.
fn continue_token(start: &str, rv: i64) -> String {
    // continueToken's field order: v, rv, start.
    let token = format!(
        r#"{{"v":"meta.k8s.io/v1","rv":{rv},"start":{}}}"#,
        json!(format!("{start}\u{0}"))
    );
    base64_url(token.as_bytes())
}

/// A list, as the etcd3 store serves it (store.go GetList, with interfaces.go
/// ValidateListOptions for the resourceVersion semantics and continue.go for paging).
fn list(server: &Server, ns: Option<&str>, scope: &Scope, o: &Opts) -> Result<Response, Status> {
    let prefix = ns.map(|n| format!("{n}/")).unwrap_or_default();
    let mut st = server.lock();
    let (snapshot, list_rv, start) = if !o.continue_.is_empty() {
        let invalid = |why: &str| {
            Status::bad_request(&format!(
                "invalid continue token: continue key is not valid{why}"
            ))
        };
        let raw =
            base64_url_decode(&o.continue_).ok_or_else(|| invalid(": illegal base64 data"))?;
        let token: Value = serde_json::from_slice(&raw).map_err(|e| invalid(&format!(": {e}")))?;
        if token["v"] != "meta.k8s.io/v1" {
            return Err(invalid(": server does not recognize this encoded version"));
        }
        let rv = token["rv"].as_i64().unwrap_or(0);
        let start = token["start"].as_str().unwrap_or("");
        if rv == 0 {
            return Err(invalid(
                ": incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ));
        }
        if start.is_empty() {
            return Err(invalid(
                ": encoded start key empty (version meta.k8s.io/v1)",
            ));
        }
        if !o.rv.is_empty() && o.rv != "0" {
            return Err(Status::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let start = format!("{prefix}{start}");
        if rv > 0 && (rv as u64) < st.compacted {
            // etcd3 errors.go handleCompactedErrorForPaging: a token to go on at the latest.
            let mut s = Status::expired(INCONSISTENT_CONTINUE);
            s.continue_ =
                continue_token(start.trim_start_matches(&prefix).trim_end_matches('\0'), -1);
            return Err(s);
        }
        if rv > 0 {
            (st.pods_at(rv as u64), rv as u64, Some(start))
        } else {
            (st.pods.clone(), st.rv, Some(start))
        }
    } else {
        let rv = parse_rv(&o.rv).map_err(|e| {
            Status::bad_request(&format!("invalid resource version: {}", e.error()))
        })?;
        let exact = o.rv_match == "Exact" || (o.rv_match.is_empty() && o.limit > 0 && rv > 0);
        if rv > st.rv {
            st = wait_for(server, st, rv)?;
        }
        if exact {
            if rv < st.compacted {
                return Err(Status::expired(
                    "The resourceVersion for the provided list is too old.",
                ));
            }
            (st.pods_at(rv), rv, None)
        } else {
            (st.pods.clone(), st.rv, None)
        }
    };
    drop(st);
    let matching: Vec<(&String, &Value)> = snapshot
        .iter()
        .filter(|(k, _)| start.as_ref().is_none_or(|s| k.as_str() >= s.as_str()))
        .filter(|(_, p)| scope.matches(p))
        .map(|(k, p)| (k, &**p))
        .collect();
    let page = if o.limit > 0 {
        (o.limit as usize).min(matching.len())
    } else {
        matching.len()
    };
    let mut meta = format!(r#""resourceVersion":"{list_rv}""#);
    if page < matching.len() {
        let last = matching[page - 1].0.trim_start_matches(&prefix);
        meta += &format!(r#","continue":"{}""#, continue_token(last, list_rv as i64));
        // PrepareContinueToken: a count only when nothing filters the items.
        if scope.labels.is_empty() && scope.fields.is_empty() {
            meta += &format!(r#","remainingItemCount":{}"#, matching.len() - page);
        }
    }
    let items: Vec<String> = matching[..page].iter().map(|(_, p)| go_json(p)).collect();
    let body = format!(
        r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{{meta}}},"items":[{}]}}"#,
        items.join(",")
    );
    Ok(Response::json(200, body + "\n"))
}

fn get_pod(server: &Server, ns: &str, name: &str) -> Response {
    match server.lock().pods.get(&key(ns, name)) {
        Some(p) => Response::json(200, go_json(p) + "\n"),
        None => status(Status::not_found("", "pods", name)),
    }
}

fn event_line(kind: &str, obj: &str) -> String {
    format!(r#"{{"type":"{kind}","object":{obj}}}"#) + "\n"
}

/// A bookmark: an empty Pod with only its resourceVersion (cacher.go, the watch cache's
/// bookmark event), encoded whole as the Go type is: containers is not omitempty.
fn bookmark(rv: u64, initial_end: bool) -> String {
    let annotations = if initial_end {
        r#","annotations":{"k8s.io/initial-events-end":"true"}"#
    } else {
        ""
    };
    let obj = format!(
        r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}"{annotations}}},"spec":{{"containers":null}},"status":{{}}}}"#
    );
    event_line("BOOKMARK", &obj)
}

/// The watch, as handlers/watch.go serves the cacher's watcher: 200 and a chunked stream
/// of WatchEvents, one JSON object per line, flushed per event; the stream ends (last
/// chunk) at timeoutSeconds; a resourceVersion older than the last compaction gets one
/// ERROR event with the 410 (cacher.go newErrWatcher, watch_cache_history.go). `drop` cuts
/// the connection; `expire` sends ERROR 410 as etcd3's watcher does on compaction
/// (etcd3/errors.go) and ends the stream.
fn watch(server: &Server, conn: &mut Conn, scope: &Scope, o: &Opts, rv: u64) -> io::Result<bool> {
    let timeout = match o.timeout {
        Some(t) if t > 0 => Duration::from_secs(t as u64),
        // handleWatch: minRequestTimeout (1800 s) times a random factor in [1, 2).
        _ => Duration::from_secs(1800 + u64::from(random(2)[0]) * 7),
    };
    // A timeout past what Instant can hold is as good as none.
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 32));
    let mut out = String::new();
    let mut st = server.lock();
    let (drops, expires) = (st.drops, st.expires);
    let mut failed = None;
    let initial = o.send_initial == Some(true) || o.rv.is_empty() || o.rv == "0";
    let mut cursor = st.rv;
    if o.send_initial == Some(false) || (!initial) {
        if rv > 0 && rv < st.compacted {
            failed = Some(Status::expired(&format!(
                "too old resource version: {rv} ({})",
                st.compacted
            )));
        } else if rv > st.rv {
            match wait_for(server, st, rv) {
                Ok(g) => st = g,
                Err(s) => {
                    failed = Some(s);
                    st = server.lock();
                }
            }
        }
        cursor = if rv > 0 { rv } else { st.rv };
    } else {
        for pod in st.pods.values().filter(|p| scope.matches(p)) {
            out += &event_line("ADDED", &go_json(pod));
        }
        if o.send_initial == Some(true) && o.bookmarks {
            out += &bookmark(st.rv, true);
        }
    }
    drop(st);
    let start = head(200, "application/json", &[]) + "Transfer-Encoding: chunked\r\n\r\n";
    use std::io::Write;
    conn.stream.write_all(start.as_bytes())?;
    conn.stream.flush()?;
    if let Some(s) = failed {
        write_chunk(conn, event_line("ERROR", s.json().trim_end()).as_bytes())?;
        write_chunk(conn, b"")?;
        return Ok(true);
    }
    let mut next_bookmark = Instant::now() + BOOKMARK_EVERY;
    loop {
        if !out.is_empty() {
            write_chunk(conn, out.as_bytes())?;
            out.clear();
        }
        let now = Instant::now();
        if now >= deadline {
            write_chunk(conn, b"")?;
            return Ok(true);
        }
        let mut st = server.lock();
        loop {
            if st.drops != drops {
                conn.cut();
                return Ok(false);
            }
            if st.expires != expires {
                let s = Status::expired("The resourceVersion for the provided watch is too old.");
                drop(st);
                write_chunk(conn, event_line("ERROR", s.json().trim_end()).as_bytes())?;
                write_chunk(conn, b"")?;
                return Ok(true);
            }
            for w in st.since(cursor) {
                if let Some((kind, obj)) = scope.event(w) {
                    out += &event_line(kind, &go_json(&obj));
                }
            }
            cursor = cursor.max(st.rv);
            let now = Instant::now();
            if o.bookmarks && now >= next_bookmark {
                out += &bookmark(cursor, false);
                next_bookmark = now + BOOKMARK_EVERY;
            }
            if !out.is_empty() || now >= deadline {
                break;
            }
            let wake = if o.bookmarks {
                next_bookmark.min(deadline)
            } else {
                deadline
            };
            st = server
                .changed
                .wait_timeout(st, wake.saturating_duration_since(now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// NegotiateInputSerializer: no Content-Type means JSON; another type is a 415.
fn json_body(req: &Request) -> Result<Value, Status> {
    let ct = req.header("content-type").unwrap_or("application/json");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" {
        return Err(Status::unsupported_media_type(JSON_TYPES));
    }
    let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
        Status::bad_request(&format!("couldn't get version/kind; json parse error: {e}"))
    })?;
    if !v.is_object() {
        return Err(Status::bad_request(
            "couldn't get version/kind; json parse error: json: cannot unmarshal non-object into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }",
        ));
    }
    Ok(v)
}

/// create.go's checks after decoding: the group/version the endpoint accepts, the kind,
/// and rest.EnsureObjectNamespaceMatchesRequestNamespace.
fn check_type(v: &mut Value, ns: &str, kind: &str, accepted: &[&str]) -> Result<(), Status> {
    let api_version = v["apiVersion"].as_str().unwrap_or(accepted[0]).to_string();
    if !accepted.contains(&api_version.as_str()) {
        return Err(Status::bad_request(&format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            accepted[0]
        )));
    }
    if let Some(k) = v["kind"].as_str() {
        if k != kind {
            return Err(Status::bad_request(&format!(
                "no kind {} is registered for version {} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                go_quote(k),
                go_quote(&api_version)
            )));
        }
    }
    if !v["metadata"].is_object() {
        v["metadata"] = json!({});
    }
    match v["metadata"]["namespace"].as_str() {
        Some(n) if !n.is_empty() && n != ns => Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            v["metadata"]["namespace"] = json!(ns);
            Ok(())
        }
    }
}

/// POST .../pods/NAME/eviction, as registry/core/pod/storage/eviction.go answers it (the
/// answer a test chose with `respond`, else the pod is evicted), after the filters: RBAC's
/// 403 comes before the body is read.
fn evict(server: &Server, req: &Request, ns: &str, name: &str) -> Response {
    let mut dry_run = req.param_all("dryRun");
    let mut warnings = Vec::new();
    let mut r = status(evict_answer(
        server,
        req,
        ns,
        name,
        &mut dry_run,
        &mut warnings,
    ));
    if r.code == 403 {
        r = r.with("X-Content-Type-Options", "nosniff");
    }
    for w in warnings {
        r = r.with("Warning", &format!("299 - {}", go_quote(&w)));
    }
    let mut st = server.lock();
    st.evictions.push(
        json!({"namespace": ns, "name": name, "code": r.code, "time": now(), "dryRun": dry_run}),
    );
    drop(st);
    server.changed.notify_all();
    r
}

/// Takes one use of the answer the test set for this pod, when there is one.
fn take_respond(
    st: &mut State,
    ns: &str,
    name: &str,
    applies: impl Fn(u16) -> bool,
) -> Option<u16> {
    let k = (ns.to_string(), name.to_string());
    let r = st.respond.get_mut(&k)?;
    if !applies(r.code) {
        return None;
    }
    let code = r.code;
    if let Some(n) = &mut r.remaining {
        *n -= 1;
        if *n == 0 {
            st.respond.remove(&k);
        }
    }
    Some(code)
}

fn evict_answer(
    server: &Server,
    req: &Request,
    ns: &str,
    name: &str,
    dry_run: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Status {
    let forbidden = take_respond(&mut server.lock(), ns, name, |c| c == 403);
    if forbidden.is_some() {
        let why = format!(
            "User {} cannot create resource \"pods/eviction\" in API group \"\" in the namespace {}",
            go_quote(USER),
            go_quote(ns)
        );
        return Status::forbidden("pods", name, &why);
    }
    if let Some(bad) = dry_run.iter().find(|d| *d != "All") {
        let e = FieldError::new(
            FieldKind::NotSupported,
            "dryRun",
            bad,
            "supported values: \"All\"",
        );
        return Status::invalid("meta.k8s.io", "CreateOptions", "", &[e]);
    }
    let mut eviction = match json_body(req) {
        Ok(v) => v,
        Err(s) => return s,
    };
    if let Err(s) = check_type(
        &mut eviction,
        ns,
        "Eviction",
        &["policy/v1", "policy/v1beta1"],
    ) {
        return s;
    }
    // fieldValidation defaults to Warn: unknown fields are dropped with a Warning header
    // (kube-rs sends its delete options as "delete_options").
    if let Some(obj) = eviction.as_object() {
        for k in obj.keys() {
            if !["kind", "apiVersion", "metadata", "deleteOptions"].contains(&k.as_str()) {
                warnings.push(format!("unknown field {}", go_quote(k)));
            }
        }
    }
    if eviction["metadata"]["name"].as_str() != Some(name) {
        return Status::bad_request("name in URL does not match name in Eviction object");
    }
    let body_dry: Vec<String> = eviction["deleteOptions"]["dryRun"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !body_dry.is_empty() && !dry_run.is_empty() && body_dry != *dry_run {
        let message = format!(
            "Non-matching dry-run options in request and content: [{}] and [{}]",
            dry_run.join(" "),
            body_dry.join(" ")
        );
        return Status::internal(&message);
    }
    if dry_run.is_empty() {
        *dry_run = body_dry;
    }
    let dry = !dry_run.is_empty();
    let mut st = server.lock();
    let code = take_respond(&mut st, ns, name, |_| true);
    let exists = st.pods.contains_key(&key(ns, name));
    match code {
        Some(404) => Status::not_found("", "pods", name),
        None if !exists => Status::not_found("", "pods", name),
        Some(429) => {
            let cause = Cause {
                reason: "DisruptionBudget".into(),
                message: format!("The disruption budget {ns}-pdb needs 1 healthy pods and has 1 currently"),
                field: String::new(),
            };
            Status::too_many_requests(PDB_MESSAGE, vec![cause])
        }
        Some(500) => Status::internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."),
        _ => {
            if !dry {
                st.delete_gracefully(ns, name);
                drop(st);
                server.changed.notify_all();
            }
            Status::success(201)
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Api {
    Core,
    Events,
}

impl Api {
    fn group(self) -> &'static str {
        match self {
            Api::Core => "",
            Api::Events => "events.k8s.io",
        }
    }
}

/// events.k8s.io/v1 <-> core/v1 field names (pkg/apis/events/v1/conversion.go): the store
/// keeps one form, each API answers in its own.
const RENAMES: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn convert(mut v: Value, to: Api) -> Value {
    if let Some(obj) = v.as_object_mut() {
        for (events, core) in RENAMES {
            let (from, into) = if to == Api::Core {
                (events, core)
            } else {
                (core, events)
            };
            if let Some(x) = obj.remove(from) {
                obj.insert(into.to_string(), x);
            }
        }
        let api_version = if to == Api::Core {
            "v1"
        } else {
            "events.k8s.io/v1"
        };
        obj.insert("apiVersion".into(), json!(api_version));
        obj.insert("kind".into(), json!("Event"));
    }
    v
}

/// pkg/apis/core/validation/events.go ValidateEventCreate (legacy rules for core/v1, the
/// strict ones too for events.k8s.io/v1), on the core form.
fn validate_event(e: &Value, api: Api) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let ns = s(&e["metadata"]["namespace"]);
    let involved_ns = s(&e["involvedObject"]["namespace"]);
    let mismatch = || {
        FieldError::new(
            FieldKind::Invalid,
            "involvedObject.namespace",
            &involved_ns,
            "does not match event.namespace",
        )
    };
    let required = |f: &str| FieldError::new(FieldKind::Required, f, "", "");
    if s(&e["metadata"]["name"]).is_empty() {
        errs.push(FieldError::new(
            FieldKind::Required,
            "metadata.name",
            "",
            "name or generateName is required",
        ));
    }
    if e["eventTime"].is_null() {
        if (involved_ns.is_empty() && !ns.is_empty() && ns != "default")
            || (!involved_ns.is_empty() && ns != involved_ns)
        {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        for f in [
            "reportingComponent",
            "reportingInstance",
            "action",
            "reason",
        ] {
            if s(&e[f]).is_empty() {
                let field = if f == "reportingComponent" {
                    "reportingController"
                } else {
                    f
                };
                errs.push(required(field));
            }
        }
    }
    if api == Api::Events {
        if e["eventTime"].is_null() {
            errs.push(required("eventTime"));
        }
        let t = s(&e["type"]);
        if t != "Normal" && t != "Warning" {
            errs.push(FieldError::new(
                FieldKind::Invalid,
                "type",
                "",
                &format!("has invalid value: {t}"),
            ));
        }
        for f in ["firstTimestamp", "lastTimestamp", "count", "source"] {
            if !e[f].is_null() && e[f] != json!({}) && e[f] != json!(0) {
                errs.push(FieldError::new(
                    FieldKind::Invalid,
                    f,
                    "",
                    "needs to be unset",
                ));
            }
        }
    }
    errs
}

fn create_event(server: &Server, req: &Request, ns: &str, api: Api) -> Response {
    let accepted: &[&str] = if api == Api::Core {
        &["v1"]
    } else {
        &["events.k8s.io/v1"]
    };
    let mut v = match json_body(req) {
        Ok(v) => v,
        Err(s) => return status(s),
    };
    if let Err(s) = check_type(&mut v, ns, "Event", accepted) {
        return status(s);
    }
    if !v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return status(Status::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    // rest.WipeObjectMetaSystemFields
    if let Some(meta) = v["metadata"].as_object_mut() {
        for f in [
            "creationTimestamp",
            "uid",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(f);
        }
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && !generate.is_empty()
        {
            meta.insert("name".into(), json!(format!("{generate}{}", name_suffix())));
        }
    }
    let mut core = convert(v, Api::Core);
    let name = core["metadata"]["name"].as_str().unwrap_or("").to_string();
    let errs = validate_event(&core, api);
    if !errs.is_empty() {
        return status(Status::invalid(api.group(), "Event", &name, &errs));
    }
    let mut st = server.lock();
    if st.events.contains_key(&key(ns, &name)) {
        return status(Status::already_exists(api.group(), "events", &name));
    }
    st.rv += 1;
    let meta = &mut core["metadata"];
    meta["uid"] = json!(uuid());
    meta["resourceVersion"] = json!(st.rv.to_string());
    meta["creationTimestamp"] = json!(rfc3339(now()));
    st.events.insert(key(ns, &name), core.clone());
    st.event_writes.push(core.clone());
    drop(st);
    server.changed.notify_all();
    Response::json(201, go_json(&convert(core, api)) + "\n")
}

/// RFC 7386 JSON merge patch (a strategic merge patch of an Event's scalar fields is the same).
fn merge(target: &mut Value, patch: &Value) {
    match patch.as_object() {
        Some(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        None => *target = patch.clone(),
    }
}

/// PATCH of an event (kube's Recorder patches the series of a repeated event).
fn patch_event(server: &Server, req: &Request, ns: &str, name: &str, api: Api) -> Response {
    let ct = req.header("content-type").unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media != "application/merge-patch+json" && media != "application/strategic-merge-patch+json"
    {
        return status(Status::unsupported_media_type(
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
        ));
    }
    let patch = match serde_json::from_slice::<Value>(&req.body) {
        Ok(p) if p.is_object() => p,
        Ok(_) => {
            return status(Status::bad_request(
                "error decoding patch: a merge patch must be a JSON object",
            ))
        }
        Err(e) => return status(Status::bad_request(&format!("error decoding patch: {e}"))),
    };
    let mut st = server.lock();
    let Some(stored) = st.events.get(&key(ns, name)).cloned() else {
        return status(Status::not_found(api.group(), "events", name));
    };
    let mut obj = convert(stored.clone(), api);
    merge(&mut obj, &patch);
    if !obj["metadata"].is_object() {
        let e = FieldError::new(FieldKind::Invalid, "metadata", "", "must be an object");
        return status(Status::invalid(api.group(), "Event", name, &[e]));
    }
    let mut core = convert(obj, Api::Core);
    st.rv += 1;
    core["metadata"]["name"] = json!(name);
    core["metadata"]["namespace"] = json!(ns);
    core["metadata"]["uid"] = stored["metadata"]["uid"].clone();
    core["metadata"]["creationTimestamp"] = stored["metadata"]["creationTimestamp"].clone();
    core["metadata"]["resourceVersion"] = json!(st.rv.to_string());
    st.events.insert(key(ns, name), core.clone());
    st.event_writes.push(core.clone());
    drop(st);
    server.changed.notify_all();
    Response::json(200, go_json(&convert(core, api)) + "\n")
}
