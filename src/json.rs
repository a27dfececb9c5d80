//! Just enough JSON for `--evict`: a string escaped into the request body, and the fields of
//! a Kubernetes `Status` object (the body of every answer to an eviction) that kubemem logs.
//!
//! Pure, no allocation, no panics on any input (fuzzed: `check::http_response`). The reader
//! checks the whole document's syntax, nesting at most [`DEPTH`] deep, and keeps only the
//! fields it names; strings stay escaped ([`Str`]) until they are written out.

/// How deep objects and arrays may nest. A `Status` nests three deep
/// (`details.causes[0]`); the limit bounds the recursion on any input.
pub const DEPTH: usize = 32;

/// A JSON string as it appears between its quotes, escapes not decoded yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Str<'a>(pub &'a [u8]);

impl<'a> Str<'a> {
    /// The string's bytes: escapes decoded, `\u` escapes to UTF-8 (a lone surrogate becomes
    /// U+FFFD).
    pub fn bytes(self) -> Unescape<'a> {
        Unescape {
            rest: self.0,
            pending: [0; 4],
            at: 0,
            len: 0,
        }
    }
}

/// Iterator over the decoded bytes of a [`Str`].
#[derive(Clone, Debug)]
pub struct Unescape<'a> {
    rest: &'a [u8],
    /// The UTF-8 bytes of the last `\u` escape: `pending[at..len]` are still to hand out.
    pending: [u8; 4],
    at: usize,
    len: usize,
}

impl Iterator for Unescape<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.at < self.len {
            self.at += 1;
            return Some(self.pending[self.at - 1]);
        }
        let (&c, rest) = self.rest.split_first()?;
        self.rest = rest;
        if c != b'\\' {
            return Some(c);
        }
        let (&e, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(match e {
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let c = self.code_point();
                self.len = c.encode_utf8(&mut self.pending).len();
                self.at = 1;
                self.pending[0]
            }
            other => other,
        })
    }
}

impl Unescape<'_> {
    /// The code point of a `\u` escape (its `\u` already read), with a following low
    /// surrogate escape when it is a high one.
    fn code_point(&mut self) -> char {
        let unit = |b: &[u8]| b.get(..4).and_then(hex4);
        let Some(hi) = unit(self.rest) else {
            return char::REPLACEMENT_CHARACTER;
        };
        self.rest = &self.rest[4..];
        if (0xd800..0xdc00).contains(&hi) {
            if let Some(lo) = self.rest.strip_prefix(b"\\u").and_then(unit) {
                if (0xdc00..0xe000).contains(&lo) {
                    self.rest = &self.rest[6..];
                    let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                    return char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
                }
            }
        }
        char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    b.iter()
        .try_fold(0, |n, &c| Some(n * 16 + (c as char).to_digit(16)?))
}

/// Escapes `s` for the inside of a JSON string: `"`, `\` and control characters. Other bytes
/// are copied (Kubernetes names are ASCII).
pub fn escape(s: &[u8], mut out: impl FnMut(&[u8])) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &c in s {
        match c {
            b'"' => out(b"\\\""),
            b'\\' => out(b"\\\\"),
            0..=0x1f => out(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ]),
            _ => out(&[c]),
        }
    }
}

/// The fields of a Kubernetes `Status` (apimachinery `metav1.Status`) that kubemem logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status<'a> {
    pub kind: Option<Str<'a>>,
    /// `Success` or `Failure`.
    pub status: Option<Str<'a>>,
    /// What happened, for people: "Cannot evict pod as it would violate the pod's
    /// disruption budget."
    pub message: Option<Str<'a>>,
    /// For machines: `TooManyRequests`, `Forbidden`, `NotFound`...
    pub reason: Option<Str<'a>>,
    pub code: Option<u64>,
    /// `details.kind`: the kind of the object the status is about (`pods`,
    /// `poddisruptionbudget`).
    pub details_kind: Option<Str<'a>>,
    /// `details.causes[0].message`: for a disruption budget, which one and why.
    pub cause: Option<Str<'a>>,
}

/// Not JSON, or nested deeper than [`DEPTH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid;

/// Reads a `Status` from a JSON document. Keys are compared as written (Go never escapes
/// letters in keys); a field of another type than expected is skipped; a repeated key's last
/// value wins, as with Go's encoding/json. Any document that is an object is accepted, with
/// the fields it has.
pub fn status(doc: &[u8]) -> Result<Status<'_>, Invalid> {
    let mut s = Status::default();
    let end = object(doc, ws(doc, 0), 1, &mut |key, at| {
        Ok(match key {
            b"kind" => string_into(doc, at, &mut s.kind),
            b"status" => string_into(doc, at, &mut s.status),
            b"message" => string_into(doc, at, &mut s.message),
            b"reason" => string_into(doc, at, &mut s.reason),
            b"code" => integer(doc, at).map(|(n, end)| {
                s.code = Some(n);
                end
            }),
            b"details" => Some(details(doc, at, &mut s)?),
            _ => None,
        })
    })?;
    match ws(doc, end) == doc.len() {
        true => Ok(s),
        false => Err(Invalid),
    }
}

/// `details`: `kind`, and the first cause's `message`.
fn details<'a>(doc: &'a [u8], at: usize, s: &mut Status<'a>) -> Result<usize, Invalid> {
    if doc.get(at) != Some(&b'{') {
        return value(doc, at, 2);
    }
    object(doc, at, 2, &mut |key, at| match key {
        b"kind" => Ok(string_into(doc, at, &mut s.details_kind)),
        b"causes" if doc.get(at) == Some(&b'[') => {
            let mut first = true;
            array(doc, at, 3, &mut |at| {
                if core::mem::take(&mut first) && doc.get(at) == Some(&b'{') {
                    let mut message = None;
                    let end = object(doc, at, 4, &mut |key, at| {
                        Ok(match key {
                            b"message" => string_into(doc, at, &mut message),
                            _ => None,
                        })
                    })?;
                    s.cause = message;
                    return Ok(end);
                }
                value(doc, at, 4)
            })
            .map(Some)
        }
        _ => Ok(None),
    })
}

/// When a string starts at `at`: stores it in `slot` and returns where it ends.
fn string_into<'a>(doc: &'a [u8], at: usize, slot: &mut Option<Str<'a>>) -> Option<usize> {
    let (s, end) = string(doc, at).ok()?;
    *slot = Some(s);
    Some(end)
}

/// An integer that fits in a u64 (no sign, fraction or exponent) at `at`, and where it ends.
fn integer(doc: &[u8], at: usize) -> Option<(u64, usize)> {
    let end = number(doc, at).ok()?;
    let text = &doc[at..end];
    if text.iter().all(u8::is_ascii_digit) && text.len() <= 19 {
        Some((
            text.iter().fold(0, |n, c| n * 10 + u64::from(c - b'0')),
            end,
        ))
    } else {
        None
    }
}

/// The index of the first byte at or after `at` that is not JSON whitespace.
fn ws(doc: &[u8], mut at: usize) -> usize {
    while matches!(doc.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Reads an object member's value: `(key, value start)` -> where the value ends, or `None`
/// to have it skipped.
type Member<'m> = dyn FnMut(&[u8], usize) -> Result<Option<usize>, Invalid> + 'm;

/// An object at `at` (after whitespace). For each member, `member(key, value start)` may read
/// the value and return where it ends, or `None` to have it skipped. Returns where the object
/// ends.
fn object(doc: &[u8], at: usize, depth: usize, member: &mut Member<'_>) -> Result<usize, Invalid> {
    sequence(doc, at, depth, *b"{}", &mut |at| {
        let (key, end) = string(doc, at)?;
        let colon = ws(doc, end);
        if doc.get(colon) != Some(&b':') {
            return Err(Invalid);
        }
        let start = ws(doc, colon + 1);
        match member(key.0, start)? {
            Some(end) => Ok(end),
            None => value(doc, start, depth + 1),
        }
    })
}

/// An array at `at`; `element(start)` reads each element and returns where it ends.
fn array(
    doc: &[u8],
    at: usize,
    depth: usize,
    element: &mut dyn FnMut(usize) -> Result<usize, Invalid>,
) -> Result<usize, Invalid> {
    sequence(doc, at, depth, *b"[]", element)
}

/// Items between `open` and `close` at `at`, separated by commas; `item(start)` reads one
/// and returns where it ends. Returns where the sequence ends.
fn sequence(
    doc: &[u8],
    at: usize,
    depth: usize,
    [open, close]: [u8; 2],
    item: &mut dyn FnMut(usize) -> Result<usize, Invalid>,
) -> Result<usize, Invalid> {
    if depth > DEPTH || doc.get(at) != Some(&open) {
        return Err(Invalid);
    }
    let mut at = ws(doc, at + 1);
    if doc.get(at) == Some(&close) {
        return Ok(at + 1);
    }
    loop {
        at = ws(doc, item(at)?);
        match doc.get(at) {
            Some(b',') => at = ws(doc, at + 1),
            Some(&c) if c == close => return Ok(at + 1),
            _ => return Err(Invalid),
        }
    }
}

/// Any value at `at`; returns where it ends.
fn value(doc: &[u8], at: usize, depth: usize) -> Result<usize, Invalid> {
    match doc.get(at) {
        Some(b'{') => object(doc, at, depth, &mut |_, _| Ok(None)),
        Some(b'[') => array(doc, at, depth, &mut |at| value(doc, at, depth + 1)),
        Some(b'"') => string(doc, at).map(|(_, end)| end),
        Some(b't') => literal(doc, at, b"true"),
        Some(b'f') => literal(doc, at, b"false"),
        Some(b'n') => literal(doc, at, b"null"),
        _ => number(doc, at),
    }
}

fn literal(doc: &[u8], at: usize, word: &[u8]) -> Result<usize, Invalid> {
    match doc[at..].starts_with(word) {
        true => Ok(at + word.len()),
        false => Err(Invalid),
    }
}

/// A string at `at`: its raw contents and where it ends (after the closing quote). Escapes
/// are checked, not decoded; control characters must be escaped.
fn string(doc: &[u8], at: usize) -> Result<(Str<'_>, usize), Invalid> {
    if doc.get(at) != Some(&b'"') {
        return Err(Invalid);
    }
    let mut i = at + 1;
    loop {
        match doc.get(i) {
            Some(b'"') => return Ok((Str(&doc[at + 1..i]), i + 1)),
            Some(b'\\') => match doc.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') if doc.get(i + 2..i + 6).and_then(hex4).is_some() => i += 6,
                _ => return Err(Invalid),
            },
            Some(0..=0x1f) | None => return Err(Invalid),
            Some(_) => i += 1,
        }
    }
}

/// A number at `at`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; returns where it ends.
fn number(doc: &[u8], at: usize) -> Result<usize, Invalid> {
    let digits = |mut i: usize| {
        let start = i;
        while doc.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i).ok_or(Invalid)
    };
    let mut i = at + usize::from(doc.get(at) == Some(&b'-'));
    i = match doc.get(i) {
        Some(b'0') => i + 1,
        _ => digits(i)?,
    };
    if doc.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(doc.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(doc.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: Option<Str<'_>>) -> String {
        String::from_utf8(s.expect("field missing").bytes().collect()).unwrap()
    }

    #[test]
    fn kube_apiserver_statuses() {
        // As kube-apiserver writes them (metav1.Status, field order of the Go struct).
        let pdb = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Cannot evict pod as it would violate the pod's disruption budget.","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web needs 2 healthy pods and has 2 currently"}]},"code":429}"#;
        let s = status(pdb).unwrap();
        assert_eq!(text(s.kind), "Status");
        assert_eq!(text(s.status), "Failure");
        assert_eq!(
            text(s.message),
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(text(s.reason), "TooManyRequests");
        assert_eq!(s.code, Some(429));
        assert_eq!(
            text(s.cause),
            "The disruption budget web needs 2 healthy pods and has 2 currently"
        );
        let ok =
            br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}"#;
        let s = status(ok).unwrap();
        assert_eq!(
            (text(s.status), s.code, s.message),
            ("Success".into(), Some(201), None)
        );
        let forbidden = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web-0\" is forbidden: User \"system:serviceaccount:default:web\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"name":"web-0","kind":"pods"},"code":403}"#;
        let s = status(forbidden).unwrap();
        assert!(text(s.message).starts_with("pods \"web-0\" is forbidden: User \""));
        assert_eq!((text(s.details_kind), s.cause), ("pods".into(), None));
    }

    #[test]
    fn escapes_decode_to_utf8() {
        let s =
            status(br#" { "message" : "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x" } "#).unwrap();
        assert_eq!(text(s.message), "a\"\\/\u{8}\u{c}\n\r\té😀\u{fffd}x");
        let mut out = Vec::new();
        escape(b"a\"b\\c\n\x01", |b| out.extend_from_slice(b));
        assert_eq!(out, br#"a\"b\\c\u000a\u0001"#);
    }

    #[test]
    fn other_types_are_skipped_and_bad_json_is_refused() {
        let s = status(br#"{"message":7,"code":"429","details":[1,{"a":[true,null,-1.5e3]}]}"#)
            .unwrap();
        assert_eq!(s, Status::default());
        let s = status(br#"{"code":429,"code":500}"#).unwrap();
        assert_eq!(s.code, Some(500));
        for bad in [
            &b""[..],
            b"[]",
            b"Forbidden",
            b"{",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":01}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":tru}",
            b"{} {}",
        ] {
            assert_eq!(
                status(bad),
                Err(Invalid),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = [&[b'['; 40][..], &[b']'; 40][..]].concat();
        let doc = [&b"{\"a\":"[..], &deep, b"}"].concat();
        assert_eq!(status(&doc), Err(Invalid));
    }
}
