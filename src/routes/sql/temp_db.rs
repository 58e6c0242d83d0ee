//! A database file in the temp directory that removes itself (and its WAL files) when dropped:
//! for tests, benchmarks and examples that need a real SQLite file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh database path under the temp directory, unique in this process.
pub struct TempDb {
    /// The database file (not created here; SQLite creates it).
    pub path: PathBuf,
}

impl TempDb {
    /// A path named after `name`, with nothing at it yet.
    pub fn new(name: &str) -> TempDb {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "wsbridge-{}-{}-{name}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let db = TempDb { path };
        db.remove();
        db
    }

    /// The path as a string, as `--db` and [`super::SqlConfig::db`] take it.
    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}
