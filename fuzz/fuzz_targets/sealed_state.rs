#![no_main]
//! Fuzzes faceunlock::parsers' `sealed_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceunlock::parsers::sealed_state(data));
