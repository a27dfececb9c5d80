//! Rows for the annotations parser: what kubelet writes, Go's escapes, and one row per way a
//! line can be wrong, with its line number. Each row also goes through the naive oracle and
//! through the parser fed a byte at a time.

use super::*;
use crate::check::naive_annotations;
use crate::parse::Threshold::{Bytes, Percent};

fn ok(warning: Option<Threshold>, failure: Option<Threshold>) -> Result<Annotations, Malformed> {
    Ok(Annotations { warning, failure })
}

fn bad(line: u32, bad: Bad) -> Result<Annotations, Malformed> {
    Err(Malformed { line, bad })
}

fn bytewise(text: &[u8]) -> Result<Annotations, Malformed> {
    let mut p = Parser::new();
    for b in text.chunks(1) {
        p.feed(b)?;
    }
    p.finish()
}

#[test]
fn rows() {
    use Key::*;
    let rows: &[(&[u8], Result<Annotations, Malformed>)] = &[
        (b"", ok(None, None)),
        (b"\n\n", ok(None, None)),
        (b"a=\"\"", ok(None, None)),
        // kubelet's layout: sorted, no newline after the last line
        (
            b"app=\"x\"\nkubemem.io/failure=\"95\"\nkubemem.io/warning=\"85%\"",
            ok(Some(Percent(85_00)), Some(Percent(95_00))),
        ),
        // a final newline (a hand-made file) and empty lines are fine
        (
            b"kubemem.io/warning=\"900Mi\"\n\nkubemem.io/failure=\"1.5Gi\"\n",
            ok(Some(Bytes(900 << 20)), Some(Bytes(3 << 29))),
        ),
        // pre-oom-killer's percent is the failure threshold, unless kubemem.io/failure is set
        (
            b"pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold=\"80\"",
            ok(None, Some(Percent(80_00))),
        ),
        (
            b"kubemem.io/failure=\"92.5\"\npre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold=\"80\"",
            ok(None, Some(Percent(92_50))),
        ),
        // escapes decode before the threshold is parsed
        (b"kubemem.io/failure=\"\\x39\\x35\"", ok(None, Some(Percent(95_00)))),
        (b"kubemem.io/failure=\"\\071\\065%\"", ok(None, Some(Percent(95_00)))),
        (
            b"kubemem.io/failure=\"\\u0039\\U00000035\"",
            ok(None, Some(Percent(95_00))),
        ),
        // someone else's values: every escape Go writes, raw UTF-8, a long line
        (
            b"x=\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\xff\\377\\u00a0\\U0001f600 \xc3\xa9\"\nkubemem.io/warning=\"1\"",
            ok(Some(Percent(1_00)), None),
        ),
        // keys are matched whole
        (b"kubemem.io/failurex=\"junk\"", ok(None, None)),
        (b"xkubemem.io/failure=\"junk\"", ok(None, None)),
        (
            b"pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold-x=\"junk\"",
            ok(None, None),
        ),
        // the warning may be above a failure only when they are of different kinds
        (
            b"kubemem.io/failure=\"1Gi\"\nkubemem.io/warning=\"95\"",
            ok(Some(Percent(95_00)), Some(Bytes(1 << 30))),
        ),
        (b"kubemem.io/failure=\"90\"\nkubemem.io/warning=\"90\"", ok(Some(Percent(90_00)), Some(Percent(90_00)))),
        // errors, with the line
        (b"a=\"1\"\njust text", bad(2, Bad::NoKey)),
        (b"a=\"1\"\njust text\n", bad(2, Bad::NoKey)),
        (b"=\"1\"", bad(1, Bad::NoKey)),
        (b"a=1", bad(1, Bad::NotQuoted)),
        (b"a=", bad(1, Bad::NotQuoted)),
        (b"a= \"1\"", bad(1, Bad::NotQuoted)),
        (b"a=\"1\"\r\nb=\"2\"", bad(1, Bad::TrailingData)),
        (b"a=\"1\" ", bad(1, Bad::TrailingData)),
        (b"a=\"1\"\"", bad(1, Bad::TrailingData)),
        (b"a=\"1\nb=\"2\"", bad(1, Bad::Unterminated)),
        (b"\n\na=\"1", bad(3, Bad::Unterminated)),
        (b"a=\"1\\", bad(1, Bad::Unterminated)),
        (b"a=\"\\x4", bad(1, Bad::Unterminated)),
        (b"a=\"\\x4\n\"", bad(1, Bad::Unterminated)),
        (b"a=\"\\'\"", bad(1, Bad::Escape)),
        (b"a=\"\\q\"", bad(1, Bad::Escape)),
        (b"a=\"\\x4g\"", bad(1, Bad::Escape)),
        (b"a=\"\\400\"", bad(1, Bad::Escape)),
        (b"a=\"\\18\"", bad(1, Bad::Escape)),
        (b"a=\"\\ud800\"", bad(1, Bad::Escape)),
        (b"a=\"\\U00110000\"", bad(1, Bad::Escape)),
        (b"a=\"\\u+041\"", bad(1, Bad::Escape)),
        (
            b"kubemem.io/failure=\"95x\"",
            bad(1, Bad::Threshold(Failure, BadNumber::UnknownUnit)),
        ),
        (
            b"a=\"1\"\nkubemem.io/warning=\"\"",
            bad(2, Bad::Threshold(Warning, BadNumber::NotANumber)),
        ),
        (
            b"kubemem.io/failure=\"000000000000000000000000000000095\"",
            bad(1, Bad::TooLong(Failure)),
        ),
        (
            b"pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold=\"512Mi\"",
            bad(1, Bad::NotAPercent(PreOomKiller)),
        ),
        (
            b"pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold=\"101\"",
            bad(1, Bad::Threshold(PreOomKiller, BadNumber::Above100)),
        ),
        (
            b"kubemem.io/failure=\"90\"\nkubemem.io/failure=\"95\"",
            bad(2, Bad::Duplicate(Failure)),
        ),
        (
            b"kubemem.io/failure=\"90\"\nx=\"y\"\nkubemem.io/warning=\"95\"",
            bad(3, Bad::WarningAboveFailure),
        ),
        (
            b"kubemem.io/warning=\"2Gi\"\nkubemem.io/failure=\"1Gi\"",
            bad(2, Bad::WarningAboveFailure),
        ),
    ];
    for (text, want) in rows {
        let shown = String::from_utf8_lossy(text);
        assert_eq!(parse(text), *want, "{shown:?}");
        assert_eq!(bytewise(text), *want, "byte at a time: {shown:?}");
        assert_eq!(naive_annotations(text), *want, "oracle: {shown:?}");
    }
}

#[test]
fn kubelets_file_in_any_pieces() {
    let text = include_bytes!("../../tests/annotations/kubelet");
    // Longer than the read buffer, so the CLI tests cross a piece boundary inside a line.
    assert!(text.len() > 4096);
    let want = ok(Some(Percent(80_00)), Some(Percent(92_50)));
    assert_eq!(parse(text), want);
    assert_eq!(naive_annotations(text), want);
    assert_eq!(bytewise(text), want);
    for size in [2, 3, 7, 64, 1000, 4096] {
        let mut p = Parser::new();
        for piece in text.chunks(size) {
            p.feed(piece).unwrap();
        }
        assert_eq!(p.finish(), want, "pieces of {size}");
    }
}

#[test]
fn a_line_of_any_length() {
    let mut text = b"kubectl.kubernetes.io/last-applied-configuration=\"".to_vec();
    for _ in 0..300_000 {
        text.extend_from_slice(b"\\\"x");
    }
    text.extend_from_slice(b"\"\nkubemem.io/failure=\"77\"");
    assert_eq!(parse(&text), ok(None, Some(Percent(77_00))));
}

#[test]
fn reasons_name_the_problem() {
    assert_eq!(Key::PreOomKiller.name().len(), KEY_MAX);
    assert_eq!(
        Bad::Threshold(Key::Failure, BadNumber::UnknownUnit).reason(),
        "unknown unit"
    );
    assert_eq!(Bad::Duplicate(Key::Warning).key(), Some(Key::Warning));
    assert_eq!(Bad::NoKey.key(), None);
}
