#![no_main]
// The property lives in the library (kubemem::check::oom_events) so that cargo test replays
// the corpus through the same code.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kubemem::check::oom_events(data));
