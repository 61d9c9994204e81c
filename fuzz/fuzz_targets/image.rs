#![no_main]
//! Fuzzes faceunlock::parsers' `image`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceunlock::parsers::image(data));
