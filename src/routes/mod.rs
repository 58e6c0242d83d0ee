//! Routes.

pub mod tty;
