//! The HTTP layer: everything a connection says in HTTP that is not WebSocket frames.
//!
//! * [`response`]: writing responses (status line, fields, body).
//! * [`refusal`]: every refusal the server gives, with its status, built from the protocol's
//!   and the policy's errors.
//! * [`pages`]: static pages (the built-in page, the browser terminal).
//! * [`exposition`]: the Prometheus text format of `GET /metrics`.
//! * [`message`]: responses as values, written for a connection kept alive or closed, whole
//!   or in chunks.
//!
//! Plain requests are driven by the server (`server/http1.rs`); the resources behind them are
//! the pages here and the routes' HTTP services (`routes::http`).

pub mod exposition;
pub mod message;
pub mod pages;
pub mod refusal;
pub mod response;

pub use self::pages::{Page, PageSource};
pub use self::refusal::Refusal;
