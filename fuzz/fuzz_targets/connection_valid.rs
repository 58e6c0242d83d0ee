#![no_main]

libfuzzer_sys::fuzz_target!(|script: wsbridge_fuzz::script::Script| {
    wsbridge_fuzz::script::check(&script)
});
