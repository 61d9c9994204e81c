#![no_main]
//! Fuzzes faceunlock::parsers' `template_store`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceunlock::parsers::template_store(data));
