//! The kubemem binary: parse the command line, run the probe or the supervisor, exit.
//! Nothing else happens here.
//!
//! `#![no_main]`: kubemem starts at the C `main` that glibc's start-up code calls, skipping
//! Rust std's runtime set-up (`lang_start`), which costs 19 system calls and about 25 µs
//! per run (a SIGPIPE disposition, stack-guard discovery through /proc/self/maps, a
//! sigaltstack) that a probe running every few seconds in every pod does not need.
//!
//! The arguments come from `main`'s own `argc` and `argv` (`sys::args`), never from std's
//! `args_os()`: without `lang_start`, only glibc fills that in (through `.init_array`); on
//! musl, the libc of the release binary, it is empty and kubemem would ignore every flag.
#![no_main]
#![deny(unsafe_code)]

use std::alloc::System;
use std::ffi::{c_char, c_int, OsStr};
use std::os::unix::ffi::OsStrExt;

use kubemem::args::{self, Parsed};
use kubemem::report::write_all;
use kubemem::sys;
use kubemem::Exit;
use rustix::stdio::{stderr, stdout};

/// Argument parsing's few hundred bytes come from static memory, without the system calls
/// of the C library's heap; anything beyond 4 KiB from `malloc` (see `sys::Arena`).
#[global_allocator]
static HEAP: sys::Arena<4096, System> = sys::Arena::new(System);

// `no_mangle` counts as unsafe code (the symbol could clash); `main` is the one symbol the C
// start-up code calls, and nothing else in the program defines it.
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let exit = match args::parse(lexopt::Parser::from_args(
        sys::args(argc, argv).map(OsStr::from_bytes),
    )) {
        Ok(Parsed::Probe(args)) => {
            let cfg = args.config(stdout(), stderr());
            let exit = kubemem::run(&cfg);
            // The eviction's answer does not change the exit code: when it is refused, the
            // liveness restart is the fallback.
            #[cfg(feature = "evict")]
            if let (Exit::Failure, Some(opts)) = (exit, &args.evict) {
                kubemem::evict::evict(&cfg, opts);
            }
            exit
        }
        Ok(Parsed::Run(args, run)) => return supervise(&args, run),
        Ok(Parsed::Install(dest)) => kubemem::install::install(&dest, stderr()),
        Ok(Parsed::Help) => print(stdout(), args::HELP.as_bytes(), Exit::Ok),
        Ok(Parsed::Version) => print(
            stdout(),
            concat!("kubemem ", env!("CARGO_PKG_VERSION"), "\n").as_bytes(),
            Exit::Ok,
        ),
        Err(e) => {
            let msg = [b"kubemem: ".as_slice(), &e.0, b" (see kubemem --help)\n"].concat();
            print(stderr(), &msg, Exit::Usage)
        }
    };
    exit as c_int
}

/// `kubemem run`, out of line: inlined, the supervisor's locals made `main`'s stack frame,
/// which every probe run enters (and Rust probes page by page), 4 KiB larger.
#[inline(never)]
fn supervise(args: &args::Args, mut run: args::RunArgs) -> c_int {
    // kubemem run's own lines go to standard error (or --logfile), never into CMD's standard
    // output, which is the application's stream (`docker run img | jq`).
    let cfg = args.config(stderr(), stderr());
    kubemem::supervise::run(&cfg, &run.options()).into()
}

fn print(fd: rustix::fd::BorrowedFd<'_>, text: &[u8], exit: Exit) -> Exit {
    let _ = write_all(fd, text);
    exit
}
