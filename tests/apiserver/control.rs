//! The control API under /_test/ (what `apiserver ctl` calls) and `ctl` itself.
//!
//! Server side: POST /_test/pods (a Pod), DELETE /_test/pods/NS/NAME, POST
//! /_test/respond?namespace=&name=&code=&count=, POST /_test/drop, POST /_test/expire, GET
//! /_test/{evictions,events,requests} (JSON lines), GET /_test/wait-evictions?n=&timeout=.
//! Errors are one plain-text line with status 400 or 404 (408 for a wait that timed out).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::Server;
use crate::http::{Request, Response};
use crate::store::Respond;

fn lines(values: &[Value]) -> Response {
    let mut body = String::new();
    for v in values {
        body += &v.to_string();
        body.push('\n');
    }
    let mut r = Response::text(200, body);
    r.content_type = "application/x-ndjson";
    r
}

fn error(code: u16, message: String) -> Response {
    Response::text(code, message + "\n")
}

pub fn handle(server: &Server, req: &Request) -> Response {
    let segs: Vec<&str> = req.path.split('/').skip(2).collect();
    let num = |name: &str| -> Result<Option<u64>, Response> {
        match req.param(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| error(400, format!("{name}={v:?} is not a whole number"))),
        }
    };
    let result = match (req.method.as_str(), &segs[..]) {
        ("POST", ["pods"]) => {
            let pod: Value = match serde_json::from_slice(&req.body) {
                Ok(p) => p,
                Err(e) => return error(400, format!("the pod is not JSON: {e}")),
            };
            let stored = server.lock().put(pod);
            server.changed.notify_all();
            match stored {
                Ok(p) => Ok(Response::text(200, p.to_string() + "\n")),
                Err(e) => Err(error(400, e)),
            }
        }
        ("DELETE", ["pods", ns, name]) => {
            let gone = server.lock().delete(ns, name);
            server.changed.notify_all();
            match gone {
                Some(p) => Ok(Response::text(200, p.to_string() + "\n")),
                None => Err(error(404, format!("no pod {ns}/{name}"))),
            }
        }
        ("POST", ["respond"]) => (|| {
            let ns = req.param("namespace").unwrap_or_default();
            let name = req.param("name").unwrap_or_default();
            let code = num("code")?.unwrap_or(0);
            if ![201, 429, 403, 404, 500].contains(&code) {
                return Err(error(
                    400,
                    format!("code {code} is not one of 201, 429, 403, 404, 500"),
                ));
            }
            let remaining = num("count")?;
            if ns.is_empty() || name.is_empty() || remaining == Some(0) {
                return Err(error(
                    400,
                    "respond needs a namespace, a name and a count above 0".into(),
                ));
            }
            let respond = Respond {
                code: code as u16,
                remaining,
            };
            server.lock().respond.insert((ns, name), respond);
            Ok(Response::text(200, String::new()))
        })(),
        ("POST", ["drop"]) => {
            server.lock().drops += 1;
            server.changed.notify_all();
            Ok(Response::text(200, String::new()))
        }
        ("POST", ["expire"]) => {
            server.lock().compact();
            server.changed.notify_all();
            Ok(Response::text(200, String::new()))
        }
        ("GET", ["evictions"]) => Ok(lines(&server.lock().evictions)),
        ("GET", ["events"]) => Ok(lines(&server.lock().event_writes)),
        ("GET", ["requests"]) => Ok(lines(&server.lock().requests)),
        ("GET", ["wait-evictions"]) => (|| {
            let n = num("n")?.unwrap_or(1) as usize;
            let timeout = num("timeout")?.unwrap_or(10);
            let end = Instant::now()
                .checked_add(Duration::from_secs(timeout))
                .ok_or_else(|| error(400, format!("timeout {timeout} is too long")))?;
            let mut st = server.lock();
            while st.evictions.len() < n {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let have = st.evictions.len();
                    return Err(error(
                        408,
                        format!("{have} evictions after {timeout} s, wanted {n}"),
                    ));
                }
                st = server
                    .changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            Ok(Response::text(200, format!("{}\n", st.evictions.len())))
        })(),
        _ => Err(error(
            404,
            format!("no control endpoint {} {}", req.method, req.path),
        )),
    };
    result.unwrap_or_else(|e| e)
}

const CTL_USAGE: &str = "usage: apiserver ctl DIR put FILE|- | delete NS NAME | respond NS NAME CODE [N] | drop | expire \
| evictions | events | requests | wait-evictions N [TIMEOUT_S]";

/// Percent-encodes a query value.
fn q(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `apiserver ctl DIR ...`: 0 done, 1 wait-evictions timed out, 2 anything else went wrong
/// (one line on standard error).
pub fn ctl(args: &[String]) -> Result<i32, String> {
    let [dir, cmd, rest @ ..] = args else {
        return Err(CTL_USAGE.into());
    };
    let dir = Path::new(dir);
    let int = |s: &str, what: &str| -> Result<u64, String> {
        s.parse()
            .map_err(|_| format!("{what} {s:?} is not a whole number"))
    };
    let (method, path, body): (&str, String, Vec<u8>) = match (cmd.as_str(), rest) {
        ("put", [file]) => {
            let data = if file == "-" {
                let mut d = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut d)
                    .map_err(|e| format!("standard input: {e}"))?;
                d
            } else {
                fs::read(file).map_err(|e| format!("{file}: {e}"))?
            };
            ("POST", "/_test/pods".into(), data)
        }
        ("delete", [ns, name]) => (
            "DELETE",
            format!("/_test/pods/{}/{}", q(ns), q(name)),
            vec![],
        ),
        ("respond", [ns, name, code, count @ ..]) if count.len() <= 1 => {
            let code = int(code, "CODE")?;
            let mut path = format!(
                "/_test/respond?namespace={}&name={}&code={code}",
                q(ns),
                q(name)
            );
            if let [n] = count {
                path += &format!("&count={}", int(n, "N")?);
            }
            ("POST", path, vec![])
        }
        ("drop", []) => ("POST", "/_test/drop".into(), vec![]),
        ("expire", []) => ("POST", "/_test/expire".into(), vec![]),
        ("evictions" | "events" | "requests", []) => ("GET", format!("/_test/{cmd}"), vec![]),
        ("wait-evictions", [n, timeout @ ..]) if timeout.len() <= 1 => {
            let n = int(n, "N")?;
            let t = match timeout {
                [t] => int(t, "TIMEOUT_S")?,
                _ => 10,
            };
            (
                "GET",
                format!("/_test/wait-evictions?n={n}&timeout={t}"),
                vec![],
            )
        }
        _ => return Err(CTL_USAGE.into()),
    };
    let (code, text) = request(dir, method, &path, &body)?;
    match code {
        200 => {
            if cmd != "wait-evictions" {
                print!("{text}");
            }
            Ok(0)
        }
        408 => {
            eprintln!("apiserver ctl: {}", text.trim_end());
            Ok(1)
        }
        _ => Err(text.trim_end().to_string()),
    }
}

/// One request to the server in DIR over a fresh connection (TLS when DIR/ca.crt exists).
fn request(dir: &Path, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
    let read = |f: &str| fs::read_to_string(dir.join(f));
    let kubeconfig =
        read("kubeconfig").map_err(|e| format!("{}: {e}", dir.join("kubeconfig").display()))?;
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .ok_or_else(|| format!("{}: no server line", dir.join("kubeconfig").display()))?;
    let (tls, hostport) = match server.split_once("://") {
        Some(("https", h)) => (true, h),
        Some(("http", h)) => (false, h),
        _ => return Err(format!("kubeconfig: cannot use server {server:?}")),
    };
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|e| format!("kubeconfig server {hostport:?}: {e}"))?;
    let token = read("token").ok();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: apiserver-ctl\r\nConnection: close\r\n");
    if let Some(t) = &token {
        head += &format!("Authorization: Bearer {}\r\n", t.trim());
    }
    head += &format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let mut raw = Vec::new();
    let io = |e: std::io::Error| format!("talking to {addr}: {e}");
    if tls {
        let ca = fs::read(dir.join("ca.crt"))
            .map_err(|e| format!("{}: {e}", dir.join("ca.crt").display()))?;
        let config = crate::tls::client(&ca)?;
        let name = crate::tls::server_name(&addr.ip().to_string())?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(&message).map_err(io)?;
        // The body is complete by its Content-Length even if the close is not clean.
        let _ = s.read_to_end(&mut raw);
    } else {
        let mut s = tcp;
        s.write_all(&message).map_err(io)?;
        s.read_to_end(&mut raw).map_err(io)?;
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr} answered no HTTP response"))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr} answered {:?}", head.lines().next().unwrap_or("")))?;
    let length = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if length.is_some_and(|n| n != body.len()) {
        return Err(format!("{addr} cut its answer short"));
    }
    Ok((code, body.to_string()))
}
