//! The pod's annotations as the downward API writes them, for per-pod thresholds that need no
//! change to the probe command (`--annotations FILE`).
//!
//! kubelet writes `metadata.annotations` as one `key="value"` line per annotation, sorted by
//! key, with no newline after the last line; each value is quoted as Go's `strconv.Quote`
//! quotes (`%q`): `\"` `\\` `\a` `\b` `\f` `\n` `\r` `\t` `\v`, `\xNN` for a byte that is not
//! valid UTF-8 or a control character, `\uXXXX` and `\UXXXXXXXX` for other unprintable
//! characters. `strconv.Unquote` also accepts `\NNN` (octal, at most `\377`), so this does too.
//!
//! Kubernetes caps an object's annotations at 256 KiB in all, but quoting can make a value up
//! to four times longer (`\xNN` per byte), and one line alone
//! (`kubectl.kubernetes.io/last-applied-configuration`) is often tens of KiB. So the file is
//! not read whole, nor line by line as mountinfo is: [`Parser`] is a byte-level state machine
//! fed with whatever each `read` returns. It keeps the key being read (at most [`KEY_MAX`]
//! bytes: a longer key is not one of ours) and the decoded value of one of our keys (at most
//! [`VALUE_MAX`] bytes), so any file, with lines of any length, goes through one fixed buffer
//! (see [`read`]) and nothing is allocated.
//!
//! Keys read: `kubemem.io/warning` and `kubemem.io/failure` (THRESHOLD, as the flags), and
//! pre-oom-killer's `pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold` (a percent), which
//! is the failure threshold when `kubemem.io/failure` is absent. Every other line is checked
//! for its syntax only, so a file that is not what kubelet writes is an error naming its line.

use core::ffi::CStr;

use memchr::memchr3;

use crate::error::Fault;
use crate::parse::{parse_threshold, BadNumber, Threshold};
use crate::sys::Buf;

/// The annotations kubemem reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `kubemem.io/warning`
    Warning,
    /// `kubemem.io/failure`
    Failure,
    /// `pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold`
    PreOomKiller,
}

const KEYS: [(Key, &str); 3] = [
    (Key::Warning, "kubemem.io/warning"),
    (Key::Failure, "kubemem.io/failure"),
    (
        Key::PreOomKiller,
        "pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold",
    ),
];

impl Key {
    pub const fn name(self) -> &'static str {
        KEYS[self as usize].1
    }
}

/// The longest key of ours; a longer key is someone else's and is not kept.
pub const KEY_MAX: usize = KEYS[2].1.len();

/// Room for the decoded value of one of our keys. The longest threshold kubemem accepts is
/// about 25 bytes (20 digits, a point, two decimals and a unit); more is an error, never a
/// truncated parse.
pub const VALUE_MAX: usize = 32;

/// What is wrong with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// No `=`, or nothing before it.
    NoKey,
    /// `=` not followed by `"`.
    NotQuoted,
    /// An escape sequence `strconv.Unquote` rejects (`\'`, `\q`, `\x4`, `\400`, `\ud800`).
    Escape,
    /// The line (or the file) ends inside the quotes.
    Unterminated,
    /// Something after the closing quote other than the end of the line.
    TrailingData,
    /// One of our values is longer than [`VALUE_MAX`].
    TooLong(Key),
    /// One of our values is not a threshold.
    Threshold(Key, BadNumber),
    /// pre-oom-killer's threshold is an amount, not a percent.
    NotAPercent(Key),
    /// One of our keys twice (kubelet never writes that; which one would win is a guess).
    Duplicate(Key),
    /// Both thresholds from the file, of one kind, and the warning above the failure.
    WarningAboveFailure,
}

impl Bad {
    /// The key the problem is about, if it is one of ours.
    pub const fn key(self) -> Option<Key> {
        match self {
            Bad::TooLong(k) | Bad::Threshold(k, _) | Bad::NotAPercent(k) | Bad::Duplicate(k) => {
                Some(k)
            }
            _ => None,
        }
    }

    /// Why, without the key.
    pub const fn reason(self) -> &'static str {
        match self {
            Bad::NoKey => "line without a key and =",
            Bad::NotQuoted => "value does not start with a double quote",
            Bad::Escape => "invalid escape sequence in the quoted value",
            Bad::Unterminated => "value without its closing double quote",
            Bad::TrailingData => "data after the closing double quote",
            Bad::TooLong(_) => "value too long for a threshold",
            Bad::Threshold(_, e) => e.reason(),
            Bad::NotAPercent(_) => "an amount, expected a percent",
            Bad::Duplicate(_) => "annotation given twice",
            Bad::WarningAboveFailure => "kubemem.io/warning is above kubemem.io/failure",
        }
    }
}

/// A malformed line: its number (from 1) and what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub line: u32,
    pub bad: Bad,
}

/// The thresholds the file sets; `None` where it sets none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    pub warning: Option<Threshold>,
    /// `kubemem.io/failure`, else pre-oom-killer's percent.
    pub failure: Option<Threshold>,
}

/// How many more digits an escape takes, and what they make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Digits {
    /// `\xNN`: a byte.
    Hex,
    /// `\NNN`: a byte, at most `\377`.
    Octal,
    /// `\uXXXX` and `\UXXXXXXXX`: a character, encoded as UTF-8.
    Unicode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    Key,
    /// Just after `=`: the opening quote must follow.
    Equals,
    Value,
    /// Just after a backslash in the value.
    Escape,
    /// In a numeric escape: `left` digits to go, `code` so far.
    Digits {
        kind: Digits,
        left: u8,
        code: u32,
    },
    /// After the closing quote: the line must end.
    Closed,
}

/// The streaming parser: [`Parser::feed`] it the file in pieces split anywhere, then
/// [`Parser::finish`].
#[derive(Clone, Debug)]
pub struct Parser {
    state: State,
    /// The line being read, from 1.
    line: u32,
    key: [u8; KEY_MAX],
    /// Bytes of the key seen, also past `KEY_MAX` (then it is not ours).
    key_len: usize,
    /// The key of this line, once its `=` is seen, if it is ours.
    ours: Option<Key>,
    value: [u8; VALUE_MAX],
    /// Decoded bytes of our value, also past `VALUE_MAX` (then it is too long).
    value_len: usize,
    /// Each key's threshold and the line that set it.
    found: [Option<(Threshold, u32)>; 3],
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    pub const fn new() -> Parser {
        Parser {
            state: State::LineStart,
            line: 1,
            key: [0; KEY_MAX],
            key_len: 0,
            ours: None,
            value: [0; VALUE_MAX],
            value_len: 0,
            found: [None; 3],
        }
    }

    /// Reads the next piece of the file. After an error the parser is done with: feed it
    /// nothing more.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), Malformed> {
        let mut i = 0;
        while i < piece.len() {
            if self.state == State::Value && self.ours.is_none() {
                // Someone else's value, perhaps long: skip to the next byte that matters.
                match memchr3(b'"', b'\\', b'\n', &piece[i..]) {
                    Some(n) => i += n,
                    None => return Ok(()),
                }
            }
            self.byte(piece[i]).map_err(|bad| Malformed {
                line: self.line,
                bad,
            })?;
            i += 1;
        }
        Ok(())
    }

    /// The end of the file: the last line needs no newline.
    pub fn finish(mut self) -> Result<Annotations, Malformed> {
        let at = self.line;
        let err = |bad| Malformed { line: at, bad };
        match self.state {
            State::LineStart => {}
            State::Key => return Err(err(Bad::NoKey)),
            State::Equals => return Err(err(Bad::NotQuoted)),
            State::Value | State::Escape | State::Digits { .. } => {
                return Err(err(Bad::Unterminated))
            }
            State::Closed => self.end_line().map_err(err)?,
        }
        conclude(self.found)
    }

    fn byte(&mut self, c: u8) -> Result<(), Bad> {
        self.state = match (self.state, c) {
            // Empty lines are skipped (kubelet writes none; a hand-made file may).
            (State::LineStart, b'\n') => {
                self.line = self.line.saturating_add(1);
                State::LineStart
            }
            (State::LineStart, b'=') => return Err(Bad::NoKey),
            (State::LineStart, c) => {
                self.key_len = 0;
                self.push_key(c);
                State::Key
            }
            (State::Key, b'=') => {
                let key = &self.key[..self.key_len.min(KEY_MAX)];
                self.ours = KEYS
                    .iter()
                    .find(|(_, name)| self.key_len <= KEY_MAX && name.as_bytes() == key)
                    .map(|&(k, _)| k);
                self.value_len = 0;
                State::Equals
            }
            (State::Key, b'\n') => return Err(Bad::NoKey),
            (State::Key, c) => {
                self.push_key(c);
                State::Key
            }
            (State::Equals, b'"') => State::Value,
            (State::Equals, _) => return Err(Bad::NotQuoted),
            (State::Value, b'"') => State::Closed,
            (State::Value, b'\\') => State::Escape,
            (State::Value, b'\n') => return Err(Bad::Unterminated),
            (State::Value, c) => {
                self.push_value(c);
                State::Value
            }
            (State::Escape, c) => self.escape(c)?,
            (State::Digits { kind, left, code }, c) => self.digit(kind, left, code, c)?,
            (State::Closed, b'\n') => {
                self.end_line()?;
                self.line = self.line.saturating_add(1);
                State::LineStart
            }
            (State::Closed, _) => return Err(Bad::TrailingData),
        };
        Ok(())
    }

    fn escape(&mut self, c: u8) -> Result<State, Bad> {
        let decoded = match c {
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'\\' | b'"' => c,
            b'x' => return Ok(digits(Digits::Hex, 2, 0)),
            b'u' => return Ok(digits(Digits::Unicode, 4, 0)),
            b'U' => return Ok(digits(Digits::Unicode, 8, 0)),
            b'0'..=b'7' => return Ok(digits(Digits::Octal, 2, u32::from(c - b'0'))),
            b'\n' => return Err(Bad::Unterminated),
            _ => return Err(Bad::Escape),
        };
        self.push_value(decoded);
        Ok(State::Value)
    }

    fn digit(&mut self, kind: Digits, left: u8, code: u32, c: u8) -> Result<State, Bad> {
        let d = match (kind, c) {
            (_, b'\n') => return Err(Bad::Unterminated),
            (Digits::Octal, b'0'..=b'7') => c - b'0',
            (Digits::Octal, _) => return Err(Bad::Escape),
            (_, c) => match (c as char).to_digit(16) {
                Some(d) => d as u8,
                None => return Err(Bad::Escape),
            },
        };
        let radix = if kind == Digits::Octal { 8 } else { 16 };
        // At most 8 hex digits: fits in u32.
        let code = code * radix + u32::from(d);
        if left > 1 {
            return Ok(digits(kind, left - 1, code));
        }
        match kind {
            Digits::Hex => self.push_value(code as u8),
            Digits::Octal => self.push_value(u8::try_from(code).map_err(|_| Bad::Escape)?),
            Digits::Unicode => {
                let ch = char::from_u32(code).ok_or(Bad::Escape)?;
                for &b in ch.encode_utf8(&mut [0; 4]).as_bytes() {
                    self.push_value(b);
                }
            }
        }
        Ok(State::Value)
    }

    fn push_key(&mut self, c: u8) {
        if let Some(slot) = self.key.get_mut(self.key_len) {
            *slot = c;
        }
        self.key_len = self.key_len.saturating_add(1);
    }

    fn push_value(&mut self, c: u8) {
        if self.ours.is_none() {
            return;
        }
        if let Some(slot) = self.value.get_mut(self.value_len) {
            *slot = c;
        }
        self.value_len = self.value_len.saturating_add(1);
    }

    /// A complete line: if its key is ours, its value must be a threshold.
    fn end_line(&mut self) -> Result<(), Bad> {
        let Some(key) = self.ours.take() else {
            return Ok(());
        };
        let value = self.value.get(..self.value_len).ok_or(Bad::TooLong(key))?;
        let t = parse_threshold(value).map_err(|e| Bad::Threshold(key, e))?;
        if key == Key::PreOomKiller && !matches!(t, Threshold::Percent(_)) {
            return Err(Bad::NotAPercent(key));
        }
        let slot = &mut self.found[key as usize];
        if slot.is_some() {
            return Err(Bad::Duplicate(key));
        }
        *slot = Some((t, self.line));
        Ok(())
    }
}

/// The thresholds of a file whose lines were all fine, from each key's threshold and the line
/// that set it (indexed by [`Key`]): a warning above the failure is an error only when both
/// come from the file and are of one kind (the later line is named). kubemem-node applies
/// the same rule to a pod's annotations.
pub fn conclude(found: [Option<(Threshold, u32)>; 3]) -> Result<Annotations, Malformed> {
    let [warning, failure, pre_oom] = found;
    if let (Some((w, wl)), Some((f, fl))) = (warning, failure) {
        let above = match (w, f) {
            (Threshold::Percent(w), Threshold::Percent(f)) => w > f,
            (Threshold::Bytes(w), Threshold::Bytes(f)) => w > f,
            _ => false,
        };
        if above {
            return Err(Malformed {
                line: wl.max(fl),
                bad: Bad::WarningAboveFailure,
            });
        }
    }
    Ok(Annotations {
        warning: warning.map(|(t, _)| t),
        failure: failure.or(pre_oom).map(|(t, _)| t),
    })
}

const fn digits(kind: Digits, left: u8, code: u32) -> State {
    State::Digits { kind, left, code }
}

/// Parses a whole annotations file held in memory.
pub fn parse(text: &[u8]) -> Result<Annotations, Malformed> {
    let mut p = Parser::new();
    p.feed(text)?;
    p.finish()
}

/// Why the annotations file could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// It could not be opened or read.
    File(Fault),
    Malformed(Malformed),
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Error {
        Error::File(f)
    }
}

/// Reads the annotations file at `path` through a 4 KiB buffer, in pieces as `read` returns
/// them (see the module docs): a page holds a typical file whole, so it takes one `read` and
/// the one that returns 0. Never inlined, so that a probe without `--annotations` does not
/// carry the buffer in its stack frame.
#[inline(never)]
pub fn read(path: &CStr) -> Result<Annotations, Error> {
    let mut parser = Parser::new();
    let mut buf = Buf::<4096>::new();
    crate::read::for_each_chunk(path, &mut buf, |piece| {
        parser.feed(piece).map_err(Error::Malformed)
    })?;
    parser.finish().map_err(Error::Malformed)
}

#[cfg(test)]
mod tests;
