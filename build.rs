//! Installs the browser terminal's npm dependencies (xterm.js and its fit addon) for embedding.
//!
//! `web/package.json` and `web/package-lock.json` are copied to `$OUT_DIR/web` and `npm ci` runs
//! there: the source tree stays clean, and concurrent cargo builds (each with its own OUT_DIR) do not
//! race. A stamp file records what was installed, so a rerun with unchanged files does nothing.
//! `src/routes/tty/assets.rs` embeds the installed files with `include_bytes!`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// Files whose change must rerun this script (our page is embedded straight from web/).
const WATCHED: &[&str] = &[
    "web/package.json",
    "web/package-lock.json",
    "web/index.html",
    "web/app.js",
    "web/style.css",
];

/// Files assets.rs embeds from the installed packages, relative to `$OUT_DIR/web`.
const INSTALLED: &[&str] = &[
    "node_modules/@xterm/xterm/lib/xterm.mjs",
    "node_modules/@xterm/xterm/css/xterm.css",
    "node_modules/@xterm/addon-fit/lib/addon-fit.mjs",
];

fn main() {
    for file in WATCHED {
        println!("cargo::rerun-if-changed={file}");
    }
    println!("cargo::rerun-if-env-changed=NPM");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    let package = read("web/package.json");
    let lock = read("web/package-lock.json");
    let mut wanted = package.clone();
    wanted.extend_from_slice(b"\n--- lock ---\n");
    wanted.extend_from_slice(&lock);

    let stamp = out.join(".wsbridge-installed");
    let up_to_date = fs::read(&stamp).is_ok_and(|s| s == wanted)
        && INSTALLED.iter().all(|f| out.join(f).is_file());
    if up_to_date {
        return;
    }

    let _ = fs::remove_file(&stamp);
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("creating {}: {e}", out.display()));
    write(&out.join("package.json"), &package);
    write(&out.join("package-lock.json"), &lock);

    let npm = env::var_os("NPM").unwrap_or_else(|| "npm".into());
    let result = Command::new(&npm)
        .args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--loglevel=error",
        ])
        .current_dir(&out)
        .output();
    let output = match result {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "\n\nwsbridge's build needs npm (Node.js) to install the browser terminal's xterm.js from \
             web/package-lock.json, and `{}` was not found.\nInstall it (Debian: `apt-get install npm`) \
             or point the NPM environment variable at it.\n",
            npm.to_string_lossy()
        ),
        Err(e) => panic!("running `{} ci`: {e}", npm.to_string_lossy()),
    };
    if !output.status.success() {
        panic!(
            "\n\n`npm ci` for the browser terminal failed ({}) in {}:\n{}\n{}\n",
            output.status,
            out.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for file in INSTALLED {
        if !out.join(file).is_file() {
            panic!("`npm ci` did not install {file}: check web/package.json");
        }
    }
    write(&stamp, &wanted);
}

fn read(path: &str) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
