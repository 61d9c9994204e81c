#![no_main]
//! Fuzzes faceunlock::parsers' `sealed_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| (faceunlock::parsers::parser("sealed_state").run)(data));
