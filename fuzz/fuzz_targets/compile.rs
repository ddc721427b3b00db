//! Arbitrary UTF-8 through the whole front-end (reader + compiler): errors are
//! fine, panics are not. Not run until the compiler has landed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quire_core::fennel::{CompileOptions, compile_source};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = compile_source(text, "fuzz.fnl", &CompileOptions::default());
    }
});
