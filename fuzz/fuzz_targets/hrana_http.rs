#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsbridge_fuzz::http_body::hrana_http(data));
