//! Property checks behind the fuzz targets (`fuzz/fuzz_targets/*.rs` call these), also
//! replayed by `cargo test` over the seed corpus and kept crash cases
//! (`tests/fuzz_replay.rs`). Each takes arbitrary bytes, runs one parser, and panics when the
//! result disagrees with a naive std implementation or breaks a round trip: "no panic" alone
//! proves little.
//!
//! Not used by the probe; LTO drops it from the binary.
#![doc(hidden)]

extern crate std;

use std::string::{String, ToString};
use std::vec::Vec;

use crate::annotations::{Annotations, Bad, Malformed};
use crate::locate::{Selector, Version};
use crate::parse::{self, Threshold};

/// The obvious integer parser: optional single `\n`, then only ASCII digits, std's parse.
pub fn naive_u64(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.strip_suffix('\n').unwrap_or(s).trim_matches([' ', '\t']);
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `parse_u64` and `parse_max` agree with std.
pub fn u64(data: &[u8]) {
    assert_eq!(
        parse::parse_u64(data).ok(),
        naive_u64(data),
        "parse_u64 on {data:?}"
    );
    let value = data.strip_suffix(b"\n").unwrap_or(data);
    let want = match std::str::from_utf8(value).map(|v| v.trim_matches([' ', '\t'])) {
        Ok("max") => Some(None),
        _ => naive_u64(data).map(Some),
    };
    assert_eq!(parse::parse_max(data).ok(), want, "parse_max on {data:?}");
}

/// `parse_stat` finds exactly what a naive first-match line search finds.
pub fn stat(data: &[u8]) {
    let Ok(stat) = parse::parse_stat(data) else {
        return;
    };
    let naive = |key: &[u8]| {
        data.split(|&c| c == b'\n').find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(b" ")?;
            Some(naive_u64(value).expect("a parsed stat holds only valid wanted values"))
        })
    };
    assert_eq!(stat.inactive_file, naive(b"inactive_file"));
    assert_eq!(stat.total_inactive_file, naive(b"total_inactive_file"));
    assert_eq!(
        stat.hierarchical_memory_limit,
        naive(b"hierarchical_memory_limit")
    );
}

/// `parse_oom_events` finds what a naive line search finds (the last line of a key wins;
/// the kernel writes each once), and fails only on a line without a space or a bad value of
/// a key it reads.
pub fn oom_events(data: &[u8]) {
    let naive = |key: &[u8]| {
        data.split(|&c| c == b'\n').rev().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(b" ")?;
            Some(naive_u64(value))
        })
    };
    let keys: [&[u8]; 5] = [b"high", b"max", b"oom", b"oom_kill", b"under_oom"];
    match parse::parse_oom_events(data) {
        Ok(e) => {
            let got = [e.high, e.max, e.oom, e.oom_kill, e.under_oom];
            for (key, got) in keys.iter().zip(got) {
                let want = naive(key).map(|v| v.expect("a parsed value is valid"));
                assert_eq!(got, want.unwrap_or(0), "{key:?} in {data:?}");
            }
        }
        Err(_) => {
            let body = data.strip_suffix(b"\n").unwrap_or(data);
            let bad_line = body.split(|&c| c == b'\n').any(|l| !l.contains(&b' '));
            let bad_value = keys.iter().any(|key| {
                data.split(|&c| c == b'\n').any(|line| {
                    line.strip_prefix(*key)
                        .and_then(|r| r.strip_prefix(b" "))
                        .is_some_and(|v| naive_u64(v).is_none())
                })
            });
            assert!(bad_line || bad_value, "refused {data:?}");
        }
    }
}

/// The probe's state file: whatever the bytes (with their checksum made right, so that the
/// fuzzer gets past it), a decoded trend is one that encodes back to itself, and working
/// with it (another sample, the rate, the time left) never panics.
pub fn state(data: &[u8]) {
    use crate::state::{decode, encode, Owner, SIZE};
    let mut bytes = [0u8; SIZE];
    let n = data.len().min(SIZE);
    bytes[..n].copy_from_slice(&data[..n]);
    let words: [u64; 8] =
        core::array::from_fn(|i| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap()));
    let word = |i: usize| words[i];
    // The owner and the time as the file says, so that they can match.
    let owner = Owner {
        boot: word(1),
        cgroup: word(2),
    };
    let now = word(3).saturating_add(data.get(SIZE).copied().unwrap_or(0).into());
    let lead = u64::from(data.get(SIZE + 1).copied().unwrap_or(0)) * 1000;
    crate::state::seal(&mut bytes);
    let Some(mut trend) = decode(&bytes, owner, lead, now) else {
        return;
    };
    let mut again = [0u8; SIZE];
    encode(&trend, owner, &mut again);
    assert_eq!(decode(&again, owner, lead, now), Some(trend));
    let _ = trend.eta(word(6), word(5));
    let _ = trend.push(now.saturating_add(100), word(7));
    let _ = trend.rate();
}

/// `parse_proc_cgroup` agrees with `splitn(3, ':')`.
pub fn proc_cgroup(data: &[u8]) {
    let Ok(p) = parse::parse_proc_cgroup(data) else {
        return;
    };
    let lines = || {
        data.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.splitn(3, |&c| c == b':'))
    };
    let v2 = lines().find_map(|mut f| {
        let (id, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        (id == b"0" && ctrl.is_empty()).then_some(path)
    });
    let v1 = lines().find_map(|mut f| {
        let (id, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        (id != b"0" && ctrl.split(|&c| c == b',').any(|c| c == b"memory")).then_some(path)
    });
    assert_eq!((p.v1_memory, p.v2), (v1, v2), "{data:?}");
}

/// `/proc/self/cgroup`, a NUL, then mountinfo. The fast [`Selector::feed_lines`] (whole
/// runs, in two parts split at a line boundary) must choose what feeding every line to
/// [`Selector::feed`] chooses whenever that succeeds; and the chosen directory must be a
/// mount point of the right type followed by the cgroup path's part below that mount's root.
pub fn mountinfo(data: &[u8]) {
    let (cgroup, mounts) = match data.iter().position(|&c| c == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let Ok(paths) = parse::parse_proc_cgroup(cgroup) else {
        return;
    };
    let body = mounts.strip_suffix(b"\n").unwrap_or(mounts);
    let lines: Vec<&[u8]> = match body {
        [] => Vec::new(),
        _ => body.split(|&c| c == b'\n').collect(),
    };
    let mut reference = Selector::new(paths);
    let reference_ok = lines.iter().try_for_each(|l| reference.feed(l)).is_ok();

    let cut = mounts[..mounts.len() / 2]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    let mut fast = Selector::new(paths);
    let fast_ok =
        fast.feed_lines(&mounts[..cut]).is_ok() && fast.feed_lines(&mounts[cut..]).is_ok();
    if reference_ok {
        assert!(fast_ok, "feed_lines failed where feed did not");
        assert_eq!(
            fast.finish(),
            reference.finish(),
            "feed_lines and feed disagree"
        );
    }
    if !fast_ok {
        return;
    }
    let Some((version, dir, mount_len)) = fast.finish() else {
        return;
    };
    let (fstype, path): (&[u8], _) = match version {
        Version::V1 => (
            b"cgroup",
            paths.v1_memory.expect("v1 chosen without a v1 line"),
        ),
        Version::V2 => (b"cgroup2", paths.v2.expect("v2 chosen without a 0:: line")),
    };
    let found = lines
        .iter()
        .filter_map(|l| parse::parse_mount(l).ok())
        .any(|m| {
            let mp: Vec<u8> = parse::unescape(m.mount_point).collect();
            let mp: &[u8] = if mp == b"/" { b"" } else { &mp };
            let Some(rest) = parse::strip_root(m.root, path) else {
                return false;
            };
            m.fstype == fstype
                && dir.starts_with(mp)
                && &dir[mp.len()..] == rest
                && mount_len == mp.len().max(1)
                && (version == Version::V2 || parse::has_option(m.super_options, b"memory"))
        });
    assert!(
        found || dir == b"/",
        "dir {:?} from no mount line",
        String::from_utf8_lossy(dir)
    );
}

/// `parse_threshold` round-trips through its printed form and agrees with a float estimate.
pub fn threshold(data: &[u8]) {
    let Ok(t) = parse::parse_threshold(data) else {
        return;
    };
    let mut buf = [0u8; 32];
    let text = crate::report::threshold_text(t, &mut buf);
    match t {
        // Bytes print as a plain count (which would read back as a percent).
        Threshold::Bytes(b) => assert_eq!(text, std::format!("{b}").as_bytes()),
        Threshold::Percent(_) => {
            assert_eq!(parse::parse_threshold(text), Ok(t), "{data:?} -> {text:?}")
        }
    }
    let s = std::str::from_utf8(data).expect("a parsed threshold is ASCII");
    let unit = s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let number: f64 = s[..s.len() - unit.len()]
        .parse()
        .expect("a parsed threshold has a number");
    let estimate = match unit {
        "" | "%" => number * 100.0,
        "Ki" => number * 1024.0,
        "Mi" => number * 1048576.0,
        "Gi" => number * 1073741824.0,
        "Ti" => number * 1099511627776.0,
        "k" => number * 1e3,
        "M" => number * 1e6,
        "G" => number * 1e9,
        "T" => number * 1e12,
        u => panic!("accepted unknown unit {u:?}"),
    };
    let exact = match t {
        Threshold::Percent(h) => f64::from(h),
        Threshold::Bytes(b) => b as f64,
    };
    assert!(
        (exact - estimate).abs() <= 1.0 + estimate * 1e-12,
        "{s}: {exact} vs {estimate}"
    );
}

/// NUL-separated argv: parsing never panics, and a parsed command line's thresholds print
/// and read back the same. For `kubemem run`: the interval is above 0, the command is the
/// first value with everything after it, and the signals print names that read back.
pub fn args(data: &[u8]) {
    use crate::args::Parsed;
    use std::os::unix::ffi::OsStrExt;
    let argv = data
        .split(|&c| c == 0)
        .map(|a| std::ffi::OsStr::from_bytes(a).to_os_string());
    let a = match crate::args::parse(lexopt::Parser::from_args(argv)) {
        Ok(Parsed::Probe(a)) => a,
        Ok(Parsed::Run(a, run)) => {
            assert!(run.interval_ms > 0, "accepted a zero interval");
            let args: Vec<&[u8]> = data.split(|&c| c == 0).collect();
            let command: Vec<&[u8]> = run.command.iter().map(|c| c.to_bytes()).collect();
            assert_eq!(args[0], b"run", "run without the subcommand");
            assert!(!command.is_empty(), "accepted run without a command");
            assert!(
                args.ends_with(&command),
                "the command is not the arguments' tail"
            );
            for s in core::iter::once(run.signal).chain(run.warning_signal) {
                assert_eq!(
                    parse::parse_signal(parse::signal_name(s).as_bytes()),
                    Some(s)
                );
            }
            a
        }
        Ok(Parsed::Install(dest)) => {
            let args: Vec<&[u8]> = data.split(|&c| c == 0).collect();
            assert_eq!(args, [b"install".as_slice(), dest.to_bytes()]);
            return;
        }
        _ => return,
    };
    for t in [a.warning, a.failure] {
        if let Threshold::Percent(_) = t {
            let mut buf = [0u8; 32];
            assert_eq!(
                parse::parse_threshold(crate::report::threshold_text(t, &mut buf)),
                Ok(t)
            );
        }
    }
    if let (Threshold::Percent(w), Threshold::Percent(f)) = (a.warning, a.failure) {
        assert!(w <= f, "accepted warning above failure");
    }
}

/// The annotations file the obvious way: split into lines, each split at its first `=`, the
/// value unquoted into a `Vec` with the escapes of Go's `strconv.Unquote`, then the same
/// rules as [`crate::annotations`] (an error names the first bad line). Only the last step
/// (from each key's threshold to the result) is shared with the parser.
pub fn naive_annotations(data: &[u8]) -> Result<Annotations, Malformed> {
    use crate::annotations::Key;
    let keys = [Key::Warning, Key::Failure, Key::PreOomKiller];
    let mut found: [Option<(Threshold, u32)>; 3] = [None; 3];
    for (i, line) in data.split(|&c| c == b'\n').enumerate() {
        let n = i as u32 + 1;
        let fail = |bad| Err(Malformed { line: n, bad });
        if line.is_empty() {
            continue;
        }
        let (key, rest) = match line.iter().position(|&c| c == b'=') {
            Some(0) | None => return fail(Bad::NoKey),
            Some(eq) => (&line[..eq], &line[eq + 1..]),
        };
        let Some(quoted) = rest.strip_prefix(b"\"") else {
            return fail(Bad::NotQuoted);
        };
        let value = match naive_unquote(quoted) {
            Ok((value, [])) => value,
            Ok(_) => return fail(Bad::TrailingData),
            Err(bad) => return fail(bad),
        };
        let Some(&k) = keys.iter().find(|k| k.name().as_bytes() == key) else {
            continue;
        };
        if value.len() > crate::annotations::VALUE_MAX {
            return fail(Bad::TooLong(k));
        }
        let t = match parse::parse_threshold(&value) {
            Ok(t) => t,
            Err(e) => return fail(Bad::Threshold(k, e)),
        };
        if k == Key::PreOomKiller && !matches!(t, Threshold::Percent(_)) {
            return fail(Bad::NotAPercent(k));
        }
        if found[k as usize].is_some() {
            return fail(Bad::Duplicate(k));
        }
        found[k as usize] = Some((t, n));
    }
    // The last step, from what each key set, is the parser's own.
    crate::annotations::conclude(found)
}

/// Go's unquoting of a double-quoted string whose opening quote is already gone: the value
/// and what follows the closing quote.
fn naive_unquote(s: &[u8]) -> Result<(Vec<u8>, &[u8]), Bad> {
    let mut out = Vec::new();
    let mut i = 0;
    // The digits of a numeric escape: past the line's end it is unterminated, a wrong digit
    // is a bad escape.
    let number = |from: usize, count: usize, radix: u32, mut v: u32| -> Result<u32, Bad> {
        for j in from..from + count {
            let c = *s.get(j).ok_or(Bad::Unterminated)?;
            v = v * radix + char::from(c).to_digit(radix).ok_or(Bad::Escape)?;
        }
        Ok(v)
    };
    while i < s.len() {
        let c = s[i];
        i += 1;
        match c {
            b'"' => return Ok((out, &s[i..])),
            b'\\' => {
                let e = *s.get(i).ok_or(Bad::Unterminated)?;
                i += 1;
                let simple = b"a\x07b\x08f\x0cn\nr\rt\tv\x0b\\\\\"\"";
                if let Some(pair) = simple.chunks(2).find(|p| p[0] == e) {
                    out.push(pair[1]);
                    continue;
                }
                let (count, radix, first): (usize, u32, u32) = match e {
                    b'x' => (2, 16, 0),
                    b'u' => (4, 16, 0),
                    b'U' => (8, 16, 0),
                    b'0'..=b'7' => (2, 8, u32::from(e - b'0')),
                    _ => return Err(Bad::Escape),
                };
                let v = number(i, count, radix, first)?;
                i += count;
                match e {
                    b'u' | b'U' => {
                        let ch = char::from_u32(v).ok_or(Bad::Escape)?;
                        out.extend_from_slice(ch.to_string().as_bytes());
                    }
                    _ => out.push(u8::try_from(v).map_err(|_| Bad::Escape)?),
                }
            }
            c => out.push(c),
        }
    }
    Err(Bad::Unterminated)
}

/// The annotations parser agrees with [`naive_annotations`], and gives the same result
/// whether the file comes whole, in three pieces split anywhere, or a byte at a time (as
/// `read` may return it).
pub fn annotations(data: &[u8]) {
    let whole = crate::annotations::parse(data);
    assert_eq!(whole, naive_annotations(data), "parser and oracle disagree");
    let (a, b) = (data.len() / 3, data.len() * 2 / 3);
    for pieces in [
        &[&data[..a], &data[a..b], &data[b..]][..],
        &data.chunks(1).collect::<Vec<_>>()[..],
    ] {
        let mut p = crate::annotations::Parser::new();
        let fed = pieces.iter().try_for_each(|piece| p.feed(piece));
        let result = fed.and_then(|()| p.finish());
        assert_eq!(result, whole, "in {} pieces", pieces.len());
    }
}

/// An HTTP response, as `--evict` reads it. `http::parse` agrees with [`naive_response`] at
/// the end of the connection, and one it finds complete before the end is the same response;
/// the body and the bytes themselves go through `json::status` (no panic); and the bytes, as
/// text, survive a round trip through a `Status` message (escaped with `\u`, surrogate pairs
/// included) and a cause (raw UTF-8).
#[cfg(feature = "http")]
pub fn http_response(data: &[u8]) {
    use crate::{http, json};
    let naive = naive_response(data);
    let mut buf = data.to_vec();
    let parsed = http::parse(&mut buf, true).map(|r| (r.code, r.body.to_vec()));
    assert_eq!(
        parsed.clone().ok(),
        naive,
        "http::parse and the naive reader disagree"
    );
    if let Ok(early) = http::check(data, false) {
        let mut buf = data.to_vec();
        let body = early.body(&mut buf).to_vec();
        assert_eq!(
            Some((early.code, body)),
            naive,
            "complete before the end, but not the same response"
        );
    }
    if let Ok((_, body)) = &parsed {
        let _ = json::status(body);
    }
    let _ = json::status(data);

    let text = String::from_utf8_lossy(data);
    let escape = |s: &str, ascii_only: bool| {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() || (ascii_only && !c.is_ascii()) => {
                    for unit in c.encode_utf16(&mut [0; 2]) {
                        out.push_str(&std::format!("\\u{unit:04X}"));
                    }
                }
                c => out.push(c),
            }
        }
        out
    };
    let doc = std::format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{}","reason":"X","details":{{"causes":[{{"reason":"DisruptionBudget","message":"{}"}},{{"message":"second"}}]}},"code":{}}}"#,
        escape(&text, true),
        escape(&text, false),
        data.len()
    );
    let s = json::status(doc.as_bytes()).expect("a Status that kubemem wrote is refused");
    let decoded = |f: Option<json::Str<'_>>| f.map(|s| s.bytes().collect::<Vec<u8>>());
    assert_eq!(decoded(s.message).as_deref(), Some(text.as_bytes()));
    assert_eq!(decoded(s.cause).as_deref(), Some(text.as_bytes()));
    assert_eq!(s.code, Some(data.len() as u64));
}

/// The obvious reader of an HTTP/1.1 response that has all arrived: the head up to the
/// first blank line, lines split at CRLF, header names compared in lowercase, the body by
/// Content-Length, chunks decoded one by one, or the rest. `None` for anything malformed.
#[cfg(feature = "http")]
pub fn naive_response(data: &[u8]) -> Option<(u16, Vec<u8>)> {
    fn lines(b: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i + 1 < b.len() {
            if &b[i..i + 2] == b"\r\n" {
                out.push(&b[start..i]);
                start = i + 2;
                i += 2;
            } else {
                i += 1;
            }
        }
        out.push(&b[start..]);
        out
    }
    fn trim(s: &[u8]) -> &[u8] {
        let s = &s[s
            .iter()
            .position(|c| *c != b' ' && *c != b'\t')
            .unwrap_or(s.len())..];
        &s[..s
            .iter()
            .rposition(|c| *c != b' ' && *c != b'\t')
            .map_or(0, |i| i + 1)]
    }
    fn number(s: &[u8], radix: u32, max_digits: usize) -> Option<usize> {
        if s.is_empty() || s.len() > max_digits {
            return None;
        }
        usize::from_str_radix(std::str::from_utf8(s).ok()?, radix)
            .ok()
            .filter(|_| s.iter().all(|c| c.is_ascii_hexdigit()))
    }
    let split = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = lines(&data[..split]);
    let rest = &data[split + 4..];
    let status = head[0];
    let ok = status.len() >= 12
        && status.starts_with(b"HTTP/1.")
        && status[7].is_ascii_digit()
        && status[8] == b' '
        && status[9..12].iter().all(u8::is_ascii_digit)
        && (status.len() == 12 || status[12] == b' ');
    let code: u16 = std::str::from_utf8(status.get(9..12)?).ok()?.parse().ok()?;
    if !ok || !(200..600).contains(&code) {
        return None;
    }
    let (mut length, mut chunked) = (None, None);
    for line in &head[1..] {
        let colon = line.iter().position(|&c| c == b':')?;
        let name = line[..colon].to_ascii_lowercase();
        if name.is_empty() || name.contains(&b' ') || name.contains(&b'\t') {
            return None;
        }
        let value = trim(&line[colon + 1..]).to_ascii_lowercase();
        match &name[..] {
            b"content-length" => {
                if !value.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let n = number(&value, 10, 18)?;
                if length.is_some_and(|l| l != n) {
                    return None;
                }
                length = Some(n);
            }
            b"transfer-encoding" => {
                let last = trim(value.split(|&c| c == b',').next_back().unwrap_or(b""));
                chunked = Some(last == b"chunked");
            }
            _ => {}
        }
    }
    if code == 204 || code == 304 {
        return Some((code, Vec::new()));
    }
    let body = match (chunked, length) {
        (Some(true), _) => {
            let mut body = Vec::new();
            let mut rest = rest;
            loop {
                let end = rest.windows(2).position(|w| w == b"\r\n")?;
                let size_text = rest[..end].split(|&c| c == b';').next().unwrap_or(b"");
                let size = number(size_text, 16, 15)?;
                rest = &rest[end + 2..];
                if size == 0 {
                    loop {
                        let end = rest.windows(2).position(|w| w == b"\r\n")?;
                        if end == 0 {
                            break;
                        }
                        rest[..end].iter().position(|&c| c == b':')?;
                        rest = &rest[end + 2..];
                    }
                    break body;
                }
                if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
                    return None;
                }
                body.extend_from_slice(&rest[..size]);
                rest = &rest[size + 2..];
            }
        }
        (None, Some(n)) => rest.get(..n)?.to_vec(),
        _ => rest.to_vec(),
    };
    Some((code, body))
}
