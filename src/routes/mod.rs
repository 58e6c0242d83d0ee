//! Routes.

pub mod sql;
