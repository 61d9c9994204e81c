#![no_main]
//! Fuzzes faceunlock::parsers' `onnx_model`. Model loading catches tract's own panics on
//! malformed graphs and refuses the file (`tensor_io::without_panics`); libfuzzer-sys's panic
//! hook would abort before that catch, so the default hook is put back. A panic outside the
//! guarded load still reaches libfuzzer-sys's catch and aborts: it is still a finding.

libfuzzer_sys::fuzz_target!(
    init: {
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| faceunlock::parsers::onnx_model(data)
);
