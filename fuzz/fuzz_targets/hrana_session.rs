#![no_main]

libfuzzer_sys::fuzz_target!(|script: wsbridge_fuzz::hrana_session::Script| {
    wsbridge_fuzz::hrana_session::check(&script)
});
