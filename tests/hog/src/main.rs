//! hog: a memory allocator driven by stdin, for the real-kernel tests.
//!
//! One command per line on stdin, one answer line per command on stdout:
//!   anon N     allocate N MiB more of private anonymous memory, touch every page, hold it
//!   leak R N   the same, N MiB in 1 MiB steps at R MiB/s (paced from the start, so a late
//!              step does not slow the rest); answers when done
//!   file PATH  read PATH to EOF (fills the page cache), keep it open
//!   free       release all anonymous memory
//!   exit       answer, then exit
//! Answers: `ok anon=<bytes held>` or `err <reason>`.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

extern "C" {
    // From libc (always linked by std); avoids a dependency on the libc crate.
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
}
const POSIX_FADV_DONTNEED: i32 = 4;

fn main() {
    let mut anon: Vec<Vec<u8>> = Vec::new();
    let mut files: Vec<File> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(_) => break,
        };
        let line = line.trim();
        let (cmd, arg) = match line.split_once(' ') {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        let result: Result<(), String> = match cmd {
            "anon" => match arg.parse::<usize>() {
                Ok(n) => {
                    anon.push(touched(n));
                    Ok(())
                }
                Err(_) => Err(format!("bad size {arg:?}")),
            },
            "leak" => match arg
                .split_once(' ')
                .map(|(r, n)| (r.parse::<u32>(), n.trim().parse::<u32>()))
            {
                Some((Ok(rate), Ok(n))) if rate > 0 => {
                    let start = Instant::now();
                    for i in 1..=n {
                        anon.push(touched(1));
                        let due = start + Duration::from_secs(u64::from(i)) / rate;
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    }
                    Ok(())
                }
                _ => Err(format!("bad rate and size {arg:?}")),
            },
            "file" => match File::open(arg) {
                Ok(mut f) => {
                    // Page cache is charged to the cgroup that first reads a page: drop this
                    // file's clean cached pages so that our read below is charged to us.
                    // SAFETY: a plain libc call on a descriptor we own; it touches no memory.
                    unsafe { posix_fadvise(f.as_raw_fd(), 0, 0, POSIX_FADV_DONTNEED) };
                    let mut res = Ok(());
                    loop {
                        match f.read(&mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) => {
                                res = Err(format!("read {arg}: {e}"));
                                break;
                            }
                        }
                    }
                    files.push(f);
                    res
                }
                Err(e) => Err(format!("open {arg}: {e}")),
            },
            "free" => {
                anon.clear();
                Ok(())
            }
            "exit" => Ok(()),
            _ => Err(format!("unknown command {line:?}")),
        };
        let held: usize = anon.iter().map(|b| b.len()).sum();
        let answer = match result {
            Ok(()) => format!("ok anon={held}\n"),
            Err(e) => format!("err {e}\n"),
        };
        if out
            .write_all(answer.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            break;
        }
        if cmd == "exit" {
            break;
        }
    }
}

/// `n` MiB of anonymous memory, every page written.
fn touched(n: usize) -> Vec<u8> {
    // calloc-backed: nothing is resident until each page is written below.
    let mut block = vec![0u8; n * MIB];
    for i in (0..block.len()).step_by(PAGE) {
        // volatile so the writes cannot be optimised away.
        // SAFETY: i < block.len(), so the pointer is inside the allocation.
        unsafe { std::ptr::write_volatile(block.as_mut_ptr().add(i), 1) };
    }
    block
}
