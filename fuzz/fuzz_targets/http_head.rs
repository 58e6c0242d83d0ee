#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsbridge_fuzz::targets::http_head(data));
