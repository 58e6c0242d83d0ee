//! The HTTP layer: everything a connection says in HTTP that is not WebSocket frames.
//!
//! * [`response`]: writing responses (status line, fields, body).
//! * [`refusal`]: every refusal the server gives, with its status, built from the protocol's
//!   and the policy's errors.
//! * [`pages`]: static pages (the built-in page, the browser terminal).
//!
//! A request that is not an upgrade is handled here as a request in its own right: the server
//! hands it to [`respond`] and writes what comes back.

pub mod message;
pub mod pages;
pub mod refusal;
pub mod response;

pub use self::pages::{Page, PageSource};
pub use self::refusal::Refusal;

use crate::auth::Policy;
use crate::protocol::http::RequestHead;

/// What the server knows that plain HTTP requests need.
pub struct Site<'a> {
    /// Host and Origin rules.
    pub policy: &'a Policy,
    /// The pages served for GET.
    pub pages: &'a dyn PageSource,
}

/// Answer a request that is not a WebSocket upgrade: a page for `GET` and `HEAD`, else a
/// refusal. The response is appended to `out`.
pub fn respond(head: &RequestHead<'_>, site: &Site<'_>, out: &mut Vec<u8>) {
    let with_body = match head.method {
        "GET" => true,
        "HEAD" => false,
        _ => return Refusal::MethodNotAllowed("GET, HEAD").write(out),
    };
    let page = site
        .policy
        .check_host(head.authority().unwrap_or(""))
        .map_err(Refusal::from)
        .and_then(|()| site.pages.get(head.path()).ok_or(Refusal::NotFound));
    match page {
        Ok(page) => pages::write_page(&page, with_body, out),
        Err(refusal) => refusal.write(out),
    }
}
