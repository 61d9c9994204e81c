#![no_main]
//! Fuzzes faceunlock::parsers' `board_config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| (faceunlock::parsers::parser("board_config").run)(data));
