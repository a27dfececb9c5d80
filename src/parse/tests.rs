//! Edge rows for every parser, and a naive std oracle for the integer parser.

use super::*;
use crate::check::naive_u64;
use crate::error::Malformed::*;

#[test]
fn u64_rows() {
    let rows: &[(&[u8], Result<u64, Malformed>)] = &[
        (b"0\n", Ok(0)),
        (b"0", Ok(0)),
        (b"4096\n", Ok(4096)),
        (b"007\n", Ok(7)),
        (b"18446744073709551615\n", Ok(u64::MAX)),
        (b"18446744073709551615", Ok(u64::MAX)), // missing newline is accepted
        (b"18446744073709551616\n", Err(Overflow)),
        (b"99999999999999999999999\n", Err(Overflow)),
        (b"", Err(Empty)),
        (b"\n", Err(Empty)),
        (b"123\r\n", Err(CarriageReturn)),
        (b"123\r", Err(CarriageReturn)),
        (b"\r\n", Err(CarriageReturn)),
        (b"-1\n", Err(Sign)),
        (b"+1\n", Err(Sign)),
        (b"123k\n", Err(UnitSuffix)),
        (b"512M", Err(UnitSuffix)),
        (b"1\n\n", Err(TrailingData)),
        (b"1\n2\n", Err(TrailingData)),
        // Blanks around the number are padding; inside it, or alone, they are not a number.
        (b" 1\n", Ok(1)),
        (b"1 \n", Ok(1)),
        (b"720719872  \n", Ok(720719872)),
        (b"\t 42\t\n", Ok(42)),
        (b"  7", Ok(7)),
        (b"  \n", Err(Empty)),
        (b"\t", Err(Empty)),
        (b"1 2\n", Err(NotANumber)),
        (b" 123\r\n", Err(CarriageReturn)),
        (b" -1\n", Err(Sign)),
        (b" 12k \n", Err(UnitSuffix)),
        (b"1\n \n", Err(TrailingData)),
        (b"max\n", Err(NotANumber)),
        (b"1.5\n", Err(NotANumber)),
        (b"1-\n", Err(NotANumber)),
        (b"\x001\n", Err(NotANumber)),
    ];
    for (input, want) in rows {
        assert_eq!(
            parse_u64(input),
            *want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(
            parse_u64(input).ok(),
            naive_u64(input),
            "oracle on {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn max_rows() {
    assert_eq!(parse_max(b"max\n"), Ok(None));
    assert_eq!(parse_max(b"max"), Ok(None));
    assert_eq!(parse_max(b"1073741824\n"), Ok(Some(1 << 30)));
    assert_eq!(parse_max(b"0\n"), Ok(Some(0)));
    assert_eq!(parse_max(b"max\r\n"), Err(CarriageReturn));
    assert_eq!(parse_max(b"maxx\n"), Err(NotANumber));
    assert_eq!(parse_max(b"MAX\n"), Err(NotANumber));
    assert_eq!(parse_max(b" max \n"), Ok(None));
    assert_eq!(parse_max(b"1024\t\n"), Ok(Some(1024)));
    assert_eq!(parse_max(b"m ax\n"), Err(NotANumber));
    assert_eq!(parse_max(b"max max\n"), Err(NotANumber));
    assert_eq!(parse_max(b""), Err(Empty));
}

const V2_STAT: &[u8] =
    b"anon 104857600\nfile 52428800\nkernel 4194304\nshmem 0\ninactive_anon 104857600\n\
active_anon 0\ninactive_file 41943040\nactive_file 10485760\nunevictable 0\npgfault 1234\n";

#[test]
fn stat_picks_whole_keys() {
    let s = parse_stat(V2_STAT).unwrap();
    assert_eq!(s.inactive_file, Some(41943040));
    assert_eq!(s.total_inactive_file, None);
    assert_eq!(s.hierarchical_memory_limit, None);

    // active_file first, inactive_file later; total_inactive_file must not match inactive_file.
    let s =
        parse_stat(b"active_file 1\ntotal_active_file 2\ntotal_inactive_file 3\ninactive_file 4\n")
            .unwrap();
    assert_eq!((s.inactive_file, s.total_inactive_file), (Some(4), Some(3)));

    // Keys that merely contain or extend a wanted key are not it.
    let s = parse_stat(b"inactive_file_x 1\nxinactive_file 2\ninactive_fil 3\n").unwrap();
    assert_eq!(s, Stat::default());
}

#[test]
fn stat_v1_layout() {
    let text = b"cache 1654784\nrss 1728512\ninactive_file 1302528\nactive_file 352256\n\
hierarchical_memory_limit 67108864\nhierarchical_memsw_limit 9223372036854771712\n\
total_cache 1654784\ntotal_inactive_file 2302528\ntotal_active_file 352256\n";
    let s = parse_stat(text).unwrap();
    assert_eq!(s.inactive_file, Some(1302528));
    assert_eq!(s.total_inactive_file, Some(2302528));
    assert_eq!(s.hierarchical_memory_limit, Some(67108864));
}

#[test]
fn stat_edges() {
    assert_eq!(parse_stat(b""), Ok(Stat::default()));
    // Last line without a newline.
    assert_eq!(
        parse_stat(b"anon 1\ninactive_file 7")
            .unwrap()
            .inactive_file,
        Some(7)
    );
    // Reordered, unknown keys: position never matters.
    assert_eq!(
        parse_stat(b"zswap 0\ninactive_file 9\nanon 1\nnew_key_2030 5\n")
            .unwrap()
            .inactive_file,
        Some(9)
    );
    // First occurrence wins.
    assert_eq!(
        parse_stat(b"inactive_file 1\ninactive_file 2\n")
            .unwrap()
            .inactive_file,
        Some(1)
    );
    // Max u64 and overflow.
    assert_eq!(
        parse_stat(b"inactive_file 18446744073709551615\n")
            .unwrap()
            .inactive_file,
        Some(u64::MAX)
    );
    assert_eq!(
        parse_stat(b"inactive_file 18446744073709551616\n"),
        Err((Some(StatKey::InactiveFile), Overflow))
    );
    // Malformed wanted values are errors naming the key; unknown keys may hold anything.
    assert_eq!(
        parse_stat(b"inactive_file 12x\n"),
        Err((Some(StatKey::InactiveFile), UnitSuffix))
    );
    assert_eq!(
        parse_stat(b"inactive_file 12\r\n"),
        Err((Some(StatKey::InactiveFile), CarriageReturn))
    );
    assert_eq!(
        parse_stat(b"inactive_file \n"),
        Err((Some(StatKey::InactiveFile), Empty))
    );
    assert_eq!(
        parse_stat(b"inactive_file -1\n"),
        Err((Some(StatKey::InactiveFile), Sign))
    );
    assert_eq!(
        parse_stat(b"hierarchical_memory_limit 1 2\n"),
        Err((Some(StatKey::HierarchicalMemoryLimit), NotANumber))
    );
    assert_eq!(
        parse_stat(b"anon whatever\ninactive_file 3\n")
            .unwrap()
            .inactive_file,
        Some(3)
    );
    // A line without a value is not a memory.stat.
    assert_eq!(parse_stat(b"anon 1\ngarbage\n"), Err((None, StatLine)));
    assert_eq!(
        parse_stat(b"anon 1\n\ninactive_file 3\n"),
        Err((None, StatLine))
    );
}

#[test]
fn memtotal_rows() {
    assert_eq!(
        parse_memtotal(b"MemTotal:       24684084 kB\nMemFree:  1 kB\n"),
        Ok(24684084 * 1024)
    );
    assert_eq!(parse_memtotal(b"MemFree:  1 kB\nMemTotal: 2 kB"), Ok(2048));
    assert_eq!(parse_memtotal(b"MemFree:  1 kB\n"), Err(NoMemTotal));
    assert_eq!(parse_memtotal(b""), Err(NoMemTotal));
    assert_eq!(parse_memtotal(b"MemTotal: 2 MB\n"), Err(NoMemTotal));
    assert_eq!(parse_memtotal(b"MemTotal: x kB\n"), Err(NotANumber));
    assert_eq!(
        parse_memtotal(b"MemTotal: 18446744073709551615 kB\n"),
        Err(Overflow)
    );
}

#[test]
fn proc_cgroup_rows() {
    let hybrid = b"12:memory:/kubepods/pod1/c1\n11:cpu,cpuacct:/kubepods/pod1/c1\n1:name=systemd:/x\n0::/system.slice/containerd.service\n";
    let p = parse_proc_cgroup(hybrid).unwrap();
    assert_eq!(p.v1_memory, Some(&b"/kubepods/pod1/c1"[..]));
    assert_eq!(p.v2, Some(&b"/system.slice/containerd.service"[..]));

    let v2 = parse_proc_cgroup(b"0::/\n").unwrap();
    assert_eq!((v2.v1_memory, v2.v2), (None, Some(&b"/"[..])));

    // Co-mounted controllers; memory not first.
    let p = parse_proc_cgroup(b"4:cpu,cpuacct,memory:/a\n").unwrap();
    assert_eq!(p.v1_memory, Some(&b"/a"[..]));
    // `memory` only as a whole name.
    let p = parse_proc_cgroup(b"4:memoryx,name=memory:/a\n0::/b").unwrap();
    assert_eq!((p.v1_memory, p.v2), (None, Some(&b"/b"[..])));
    // Colons in the path: split on the first two only.
    let p = parse_proc_cgroup(b"0::/kubepods.slice/x.slice:cri-containerd:abc\n").unwrap();
    assert_eq!(
        p.v2,
        Some(&b"/kubepods.slice/x.slice:cri-containerd:abc"[..])
    );
    // RHEL 7 order and no newline at the end.
    let p = parse_proc_cgroup(b"3:cpuacct,cpu:/\n9:memory:/docker/abc").unwrap();
    assert_eq!(p.v1_memory, Some(&b"/docker/abc"[..]));
    // A v1 hierarchy with an empty controller list is not the unified one.
    assert_eq!(
        parse_proc_cgroup(b"3::/x\n").unwrap(),
        ProcCgroup::default()
    );

    assert_eq!(parse_proc_cgroup(b""), Ok(ProcCgroup::default()));
    assert_eq!(parse_proc_cgroup(b"0:/\n"), Err(CgroupLine));
    assert_eq!(parse_proc_cgroup(b"x::/\n"), Err(CgroupLine));
    assert_eq!(parse_proc_cgroup(b"0::relative\n"), Err(CgroupLine));
    assert_eq!(
        parse_proc_cgroup(b"0::/\r\n"),
        Ok(ProcCgroup {
            v1_memory: None,
            v2: Some(&b"/\r"[..])
        })
    );
}

#[test]
fn mount_rows() {
    let m = parse_mount(
        b"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:15 - cgroup cgroup rw,memory",
    )
    .unwrap();
    assert_eq!(
        (m.root, m.mount_point, m.fstype, m.super_options),
        (
            &b"/"[..],
            &b"/sys/fs/cgroup/memory"[..],
            &b"cgroup"[..],
            &b"rw,memory"[..]
        )
    );
    // No optional fields.
    let m = parse_mount(b"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw")
        .unwrap();
    assert_eq!((m.fstype, m.super_options), (&b"cgroup2"[..], &b"rw"[..]));
    // Several optional fields.
    let m = parse_mount(
        b"1 2 0:3 /a /b rw master:1 shared:2 propagate_from:3 - cgroup2 none rw,nsdelegate",
    )
    .unwrap();
    assert_eq!(
        (m.root, m.super_options),
        (&b"/a"[..], &b"rw,nsdelegate"[..])
    );
    // Raw spaces in super options (WSL2) stay in the options.
    let m = parse_mount(b"1 2 0:3 / /c rw - 9p drvfs rw,path=C:\\Program Files").unwrap();
    assert_eq!(m.super_options, &b"rw,path=C:\\Program Files"[..]);
    // Empty super options.
    assert_eq!(
        parse_mount(b"1 2 0:3 / /c rw - tmpfs tmpfs")
            .unwrap()
            .super_options,
        b""
    );

    assert_eq!(parse_mount(b""), Err(MountinfoLine));
    assert_eq!(
        parse_mount(b"1 2 0:3 / /c rw cgroup2 none rw"),
        Err(MountinfoLine)
    );
    assert_eq!(parse_mount(b"1 2 0:3 / /c rw -"), Err(MountinfoLine));
    assert_eq!(
        parse_mount(b"1 2 0:3 relative /c rw - tmpfs tmpfs rw"),
        Err(MountinfoLine)
    );
}

#[test]
fn unescape_rows() {
    let u = |b: &[u8]| unescape(b).collect::<Vec<u8>>();
    assert_eq!(u(b"/a\\040b"), b"/a b");
    assert_eq!(u(b"\\011\\012\\134"), b"\t\n\\");
    assert_eq!(u(b"\\0"), b"\\0");
    assert_eq!(u(b"\\400"), b"\\400");
    assert_eq!(u(b"\\08x"), b"\\08x");
    assert_eq!(u(b"end\\"), b"end\\");
    assert_eq!(u(b""), b"");
}

#[test]
fn strip_root_rows() {
    type Row<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
    let rows: &[Row] = &[
        (b"/", b"/", Some(b"")),
        (b"/", b"/a/b", Some(b"/a/b")),
        (b"/docker/abc", b"/docker/abc", Some(b"")),
        (b"/docker/abc", b"/docker/abc/sub", Some(b"/sub")),
        (b"/docker/abc", b"/docker/abcd", None),
        (b"/docker/abc", b"/docker/ab", None),
        (b"/docker/A", b"/docker/B/x", None),
        (b"/..", b"/", None),
        (b"/../../x", b"/x", None),
        (b"/", b"/../../kubepods/x", None),
        (b"/a\\040b", b"/a b/c", Some(b"/c")),
        (b"/a..b", b"/a..b/c", Some(b"/c")),
    ];
    for (root, path, want) in rows {
        assert_eq!(
            strip_root(root, path),
            *want,
            "{:?} {:?}",
            String::from_utf8_lossy(root),
            String::from_utf8_lossy(path)
        );
    }
}

#[test]
fn threshold_rows() {
    use BadNumber::*;
    use Threshold::*;
    let rows: &[(&[u8], Result<Threshold, BadNumber>)] = &[
        (b"85", Ok(Percent(85_00))),
        (b"85%", Ok(Percent(85_00))),
        (b"92.5", Ok(Percent(92_50))),
        (b"92.25%", Ok(Percent(92_25))),
        (b"0", Ok(Percent(0))),
        (b"100", Ok(Percent(10_000))),
        (b"100.00", Ok(Percent(10_000))),
        (b"100.01", Err(Above100)),
        (b"18446744073709551615", Err(Above100)),
        (b"99999999999999999999", Err(Overflow)),
        (b"92.125", Err(TooPrecise)),
        (b"900Mi", Ok(Bytes(900 << 20))),
        (b"1.5Gi", Ok(Bytes(3 << 29))),
        (b"512M", Ok(Bytes(512_000_000))),
        (b"2G", Ok(Bytes(2_000_000_000))),
        (b"1Ki", Ok(Bytes(1024))),
        (b"1k", Ok(Bytes(1000))),
        (b"3Ti", Ok(Bytes(3 << 40))),
        (b"2T", Ok(Bytes(2_000_000_000_000))),
        (b"0.001Ki", Ok(Bytes(2))), // 1.024 bytes rounds up, as Kubernetes does
        (b"0.000000001k", Ok(Bytes(1))),
        (b"0.0000000001k", Err(TooPrecise)),
        (b"16777216Ti", Err(Overflow)),
        (b"16777215Ti", Ok(Bytes(16777215 << 40))),
        (b"", Err(NotANumber)),
        (b"%", Err(NotANumber)),
        (b"abc", Err(UnknownUnit)),
        (b"1.5", Ok(Percent(1_50))),
        (b".5", Err(NotANumber)),
        (b"5.", Err(NotANumber)),
        (b"1..5", Err(NotANumber)),
        (b".5", Err(NotANumber)),
        (b"5 Mi", Err(UnknownUnit)),
        (b"5mi", Err(UnknownUnit)),
        (b"5m", Err(UnknownUnit)),
        (b"5Mi%", Err(NotANumber)),
        (b"1e3", Err(UnknownUnit)),
        (b"Mi", Err(NotANumber)),
    ];
    check_rows(parse_threshold, rows);
}

/// Asserts `parse(input) == want` on every row.
fn check_rows<T: PartialEq + core::fmt::Debug>(parse: fn(&[u8]) -> T, rows: &[(&[u8], T)]) {
    for (input, want) in rows {
        let input = *input;
        assert_eq!(parse(input), *want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn duration_rows() {
    use BadNumber::*;
    let rows: &[(&[u8], Result<u64, BadNumber>)] = &[
        (b"100ms", Ok(100)),
        (b"30s", Ok(30_000)),
        (b"1.5s", Ok(1_500)),
        (b"1m", Ok(60_000)),
        (b"2h", Ok(7_200_000)),
        (b"0s", Ok(0)),
        (b"0.0001s", Ok(1)), // rounds up to a whole millisecond
        (b"1.5ms", Ok(2)),
        (b"0.000000001h", Ok(1)),
        (b"0.0000000001h", Err(TooPrecise)),
        (b"30", Err(UnknownUnit)),
        (b"5x", Err(UnknownUnit)),
        (b"5 s", Err(UnknownUnit)),
        (b"5S", Err(UnknownUnit)),
        (b"5sec", Err(UnknownUnit)),
        (b"-5s", Err(UnknownUnit)),
        (b"s", Err(NotANumber)),
        (b"", Err(UnknownUnit)),
        (b".5s", Err(NotANumber)),
        (b"1..5s", Err(NotANumber)),
        (b"18446744073709551615ms", Ok(u64::MAX)),
        (b"18446744073709551616ms", Err(Overflow)),
        (b"5124095576030432h", Err(Overflow)),
    ];
    check_rows(parse_duration, rows);
}

#[test]
fn signal_rows() {
    for (input, want) in [
        ("TERM", Some(Signal::TERM)),
        ("SIGTERM", Some(Signal::TERM)),
        ("sigterm", Some(Signal::TERM)),
        ("usr1", Some(Signal::USR1)),
        ("SIGUSR2", Some(Signal::USR2)),
        ("15", Some(Signal::TERM)),
        ("9", Some(Signal::KILL)),
        ("WINCH", Some(Signal::WINCH)),
        ("ALRM", Some(Signal::ALARM)),
        ("0", None),
        ("34", None), // real-time
        ("99999999999", None),
        ("", None),
        ("SIG", None),
        ("SIGSIGTERM", None),
        ("TERM ", None),
        ("+15", None),
        ("15\n", None),
    ] {
        assert_eq!(parse_signal(input.as_bytes()), want, "{input:?}");
    }
    // Every named signal prints a name that reads back.
    for n in 1..=64 {
        if let Some(s) = Signal::from_named_raw(n) {
            assert_eq!(parse_signal(signal_name(s).as_bytes()), Some(s), "{n}");
        }
    }
}

#[test]
fn oom_events_of_both_versions() {
    // cgroup v2 memory.events, 6.x (oom_group_kill since 5.13).
    let v2 = b"low 0\nhigh 12\nmax 345\noom 3\noom_kill 2\noom_group_kill 0\n";
    assert_eq!(
        parse_oom_events(v2),
        Ok(OomEvents {
            high: 12,
            max: 345,
            oom: 3,
            oom_kill: 2,
            under_oom: 0
        })
    );
    // cgroup v1 memory.oom_control.
    let v1 = b"oom_kill_disable 0\nunder_oom 1\noom_kill 7\n";
    let e = parse_oom_events(v1).unwrap();
    assert_eq!((e.oom_kill, e.under_oom, e.max), (7, 1, 0));
    // Before 4.13 v1 had no oom_kill: 0.
    assert_eq!(
        parse_oom_events(b"oom_kill_disable 0\nunder_oom 0\n")
            .unwrap()
            .oom_kill,
        0
    );
    assert_eq!(parse_oom_events(b""), Ok(OomEvents::default()));
    assert_eq!(parse_oom_events(b"oom_kill\n"), Err(Malformed::StatLine));
    assert!(parse_oom_events(b"oom_kill -1\n").is_err());
    assert!(parse_oom_events(b"oom_kill 1\r\n").is_err());
}
