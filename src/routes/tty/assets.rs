//! The browser terminal, embedded in the binary: our page and script, and xterm.js with its fit addon
//! as installed by `build.rs` from `web/package-lock.json` (never committed, never from a CDN).
//!
//! Paths are those the page asks for (it uses relative URLs, so it also works under a path prefix).
#![forbid(unsafe_code)]

macro_rules! installed {
    ($path:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/web/node_modules/", $path))
    };
}

macro_rules! ours {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path))
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `(path, content type, body)` of every embedded file.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("/", HTML, ours!("index.html")),
    ("/index.html", HTML, ours!("index.html")),
    ("/assets/app.js", JS, ours!("app.js")),
    ("/assets/sql.js", JS, ours!("sql.js")),
    ("/assets/style.css", CSS, ours!("style.css")),
    (
        "/assets/xterm.mjs",
        JS,
        installed!("@xterm/xterm/lib/xterm.mjs"),
    ),
    (
        "/assets/xterm.css",
        CSS,
        installed!("@xterm/xterm/css/xterm.css"),
    ),
    (
        "/assets/addon-fit.mjs",
        JS,
        installed!("@xterm/addon-fit/lib/addon-fit.mjs"),
    ),
];

/// The content type and body served for a GET of `path` (query string already removed), if any.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, content_type, body)| (content_type, body))
}

/// Every embedded path (for tests and listings).
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(p, _, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_there() {
        for path in paths() {
            let (ct, body) = asset(path).unwrap();
            assert!(!body.is_empty(), "{path}");
            assert!(ct.contains("charset=utf-8"));
        }
        assert!(asset("/nope").is_none());
        assert!(asset("/assets/../Cargo.toml").is_none());
        let (_, xterm) = asset("/assets/xterm.mjs").unwrap();
        assert!(
            xterm
                .windows(16)
                .any(|w| w == b"export{Dl as Te" || w.starts_with(b"export{"))
        );
    }

    #[test]
    fn the_page_loads_only_embedded_files() {
        let (_, html) = asset("/").unwrap();
        let html = std::str::from_utf8(html).unwrap();
        for reference in ["assets/app.js", "assets/style.css", "assets/xterm.css"] {
            assert!(html.contains(reference), "{reference}");
            assert!(asset(&format!("/{reference}")).is_some());
        }
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "external reference"
        );
        let (_, app) = asset("/assets/app.js").unwrap();
        let app = std::str::from_utf8(app).unwrap();
        assert!(app.contains("./xterm.mjs") && app.contains("./addon-fit.mjs"));
    }
}
