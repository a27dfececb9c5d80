//! `kubemem-node`: the node agent, run as a DaemonSet (cargo feature `node`). It watches the
//! annotated pods of its own node and evicts a pod whose container's working set crosses its
//! threshold. Unlike the probe it allocates and runs async (kube-rs on tokio): it is a binary
//! crate of its own, so the `no_std` library stays as it is and only lends it the probe's
//! measurement (`kubemem::measure`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut p = lexopt::Parser::from_env();
    while let Ok(Some(arg)) = p.next() {
        if arg == lexopt::Arg::Long("version") {
            println!("kubemem-node {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("kubemem-node: not implemented yet");
    ExitCode::from(3)
}
