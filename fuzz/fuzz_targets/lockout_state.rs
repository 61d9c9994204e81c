#![no_main]
//! Fuzzes faceunlock::parsers' `lockout_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceunlock::parsers::lockout_state(data));
