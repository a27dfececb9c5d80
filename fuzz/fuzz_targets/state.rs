#![no_main]
// The property lives in the library (kubemem::check::state) so that cargo test replays the
// corpus through the same code.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kubemem::check::state(data));
