#![no_main]
//! Fuzzes faceunlock::parsers' `board_config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceunlock::parsers::board_config(data));
