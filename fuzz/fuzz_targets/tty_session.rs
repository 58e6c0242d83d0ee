#![no_main]

libfuzzer_sys::fuzz_target!(|script: wsbridge_fuzz::tty_session::Script| {
    wsbridge_fuzz::tty_session::check(&script)
});
