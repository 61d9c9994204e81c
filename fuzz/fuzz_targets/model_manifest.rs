#![no_main]
//! Fuzzes faceunlock::parsers' `model_manifest`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| (faceunlock::parsers::parser("model_manifest").run)(data));
