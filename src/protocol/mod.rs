//! RFC 6455, sans-IO.
#![forbid(unsafe_code)]
