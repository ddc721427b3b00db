//! Arbitrary UTF-8 through the whole front-end (reader + compiler), with the
//! sandbox's globals as pipelines get them: errors are fine, panics (and
//! stack overflows) are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quire_core::fennel::compile_source;
use quire_core::lua::Sandbox;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = compile_source(text, "fuzz.fnl", &Sandbox::compile_options());
    }
});
