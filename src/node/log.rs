//! The agent's lines, in the probe's two formats: logfmt (`key=value`, a value quoted when it
//! holds a space, a quote or an `=`) or JSON (one object, numbers bare). One line per event,
//! `level` and `event` first, every line about a pod with `pod=NAMESPACE/NAME`. All of them
//! go to standard output (the DaemonSet's log), errors too: one stream, in order.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

use kubemem::Format;

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Chooses the format of every later line (once, at start).
pub fn set_format(format: Format) {
    let _ = FORMAT.set(format);
}

fn format() -> Format {
    FORMAT.get().copied().unwrap_or(Format::Logfmt)
}

/// A line being built.
#[derive(Clone, Debug)]
pub struct Line {
    text: String,
    json: bool,
}

impl Line {
    /// `level=<level> event=<event>` in the chosen format.
    pub fn new(level: &str, event: &str) -> Line {
        Line::in_format(format(), level, event)
    }

    pub fn in_format(format: Format, level: &str, event: &str) -> Line {
        let json = format == Format::Json;
        let line = Line {
            text: String::with_capacity(200),
            json,
        };
        line.str("level", level).str("event", event)
    }

    fn key(&mut self, key: &str) {
        match (self.json, self.text.is_empty()) {
            (true, true) => self.text.push_str("{\""),
            (true, false) => self.text.push_str(",\""),
            (false, true) => {}
            (false, false) => self.text.push(' '),
        }
        self.text.push_str(key);
        self.text.push_str(if self.json { "\":" } else { "=" });
    }

    /// A string value, quoted and escaped as the format needs.
    pub fn str(mut self, key: &str, value: &str) -> Line {
        self.key(key);
        let quote = self.json
            || value.is_empty()
            || value
                .bytes()
                .any(|c| matches!(c, b' ' | b'"' | b'=' | b'\\') || c < 0x20);
        if !quote {
            self.text.push_str(value);
            return self;
        }
        self.text.push('"');
        for c in value.chars() {
            match c {
                '"' => self.text.push_str("\\\""),
                '\\' => self.text.push_str("\\\\"),
                '\n' => self.text.push_str("\\n"),
                '\r' => self.text.push_str("\\r"),
                '\t' => self.text.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(self.text, "\\u{:04x}", c as u32);
                }
                c => self.text.push(c),
            }
        }
        self.text.push('"');
        self
    }

    pub fn num(mut self, key: &str, value: u64) -> Line {
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    /// A number in tenths with one decimal (`953` -> `95.3`), bare in both formats.
    pub fn tenths(mut self, key: &str, value: u128) -> Line {
        self.key(key);
        let _ = write!(self.text, "{}.{}", value / 10, value % 10);
        self
    }

    /// `pod=NAMESPACE/NAME`.
    pub fn pod(self, namespace: &str, name: &str) -> Line {
        self.str("pod", &format!("{namespace}/{name}"))
    }

    /// The line without its newline (an Event's message is the logfmt form).
    pub fn text(&self) -> String {
        let mut t = self.text.clone();
        if self.json {
            t.push('}');
        }
        t
    }

    /// Writes the line to standard output: one `write` of the whole line under the lock, so
    /// that the sampling thread's lines and the async side's never interleave.
    pub fn emit(self) {
        let mut t = self.text();
        t.push('\n');
        let _ = std::io::stdout().lock().write_all(t.as_bytes());
    }
}

/// An error and its sources, as one text: kube-rs's own message is often only
/// "client error (Connect)", and the reason (a certificate, a refused connection) is below.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_and_json_carry_the_same_keys() {
        let line = |f| {
            Line::in_format(f, "info", "evict")
                .pod("ns", "web-0")
                .str("container", "app")
                .num("used", 900)
                .tenths("percent", 953)
                .str("error", "cannot open: \"x\"")
                .text()
        };
        assert_eq!(
            line(Format::Logfmt),
            "level=info event=evict pod=ns/web-0 container=app used=900 percent=95.3 \
             error=\"cannot open: \\\"x\\\"\""
        );
        assert_eq!(
            line(Format::Json),
            "{\"level\":\"info\",\"event\":\"evict\",\"pod\":\"ns/web-0\",\"container\":\"app\",\
             \"used\":900,\"percent\":95.3,\"error\":\"cannot open: \\\"x\\\"\"}"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let t = Line::in_format(Format::Logfmt, "error", "x")
            .str("k", "a\u{1}b")
            .text();
        assert_eq!(t, "level=error event=x k=\"a\\u0001b\"");
        let t = Line::in_format(Format::Logfmt, "error", "x")
            .str("k", "")
            .text();
        assert_eq!(t, "level=error event=x k=\"\"");
    }
}
