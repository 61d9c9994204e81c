#![no_main]
//! Fuzzes faceunlock::parsers' `model_manifest`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| faceunlock::parsers::model_manifest(data));
