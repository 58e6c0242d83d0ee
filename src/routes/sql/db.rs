//! The database behind the SQL route: configuration, limits, and how each stream's connection
//! is opened.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::auth::Policy;

/// The `--db` value that means one in-memory database shared by every stream.
pub const MEMORY: &str = ":memory:";

/// How hard a commit tries to reach the disk before its `response_ok` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `PRAGMA synchronous = FULL` (the default): in WAL mode the WAL is fsync'ed at every
    /// commit, before `sqlite3_step` returns for the COMMIT (or the autocommit statement). A
    /// write whose `response_ok` left the server survives `kill -9` and power loss.
    Full,
    /// `PRAGMA synchronous = NORMAL`: the commit is written to the WAL through the OS page cache
    /// and fsync'ed only at checkpoints. It survives `kill -9` of the server (the kernel still has
    /// the pages) but the last commits can be lost on power loss or a kernel crash.
    Normal,
}

// Durability choice: `Synchronous::Full` is the default. A network database acknowledges a
// write with `response_ok`, and the client then forgets it; losing it on power failure would
// break that promise, while the price (one fsync per write transaction) is paid on a worker
// thread, never on the event loop, and reads pay nothing. `Normal` stays available for
// deployments that only need to survive a crash of the process.

/// Options and limits of the SQL route. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    /// Database file path (created if missing, switched to WAL mode), or `:memory:`.
    pub db: String,
    /// Open the database read-only and refuse every statement that would write.
    pub read_only: bool,
    /// Time limit of one statement (enforced by SQLite's progress handler).
    pub statement_timeout: Duration,
    /// A stream inside a transaction that receives no request for this long is rolled back;
    /// the next request on it gets a `TRANSACTION_TIMEOUT` error. Also closes idle cursors.
    pub idle_transaction_timeout: Duration,
    /// How long a statement waits for another connection's lock (`busy_timeout`).
    pub busy_timeout: Duration,
    /// Maximum size in bytes of one response message (JSON text).
    pub max_response_bytes: usize,
    /// Maximum number of open streams on one WebSocket connection.
    pub max_streams_per_connection: usize,
    /// Maximum number of open streams (worker threads) in the whole server.
    pub max_streams_total: usize,
    /// Above this many requests in flight on one connection, `wants_input()` turns false.
    pub max_outstanding_requests: usize,
    /// Maximum number of SQL texts stored with `store_sql` on one connection.
    pub max_stored_sqls: usize,
    /// Maximum bytes of SQL texts stored with `store_sql` on one connection.
    pub max_stored_sql_bytes: usize,
    /// See [`Synchronous`].
    pub synchronous: Synchronous,
    /// Hrana over HTTP: a stream with no request for this long is closed (sqld: 10 s).
    pub http_stream_expiry: Duration,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            db: "wsbridge.db".to_owned(),
            read_only: false,
            statement_timeout: Duration::from_secs(10),
            idle_transaction_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            max_response_bytes: 10 * 1024 * 1024,
            max_streams_per_connection: 64,
            max_streams_total: 1024,
            max_outstanding_requests: 128,
            max_stored_sqls: 150,
            http_stream_expiry: Duration::from_secs(10),
            max_stored_sql_bytes: 4 << 20,
            synchronous: Synchronous::Full,
        }
    }
}

/// Why the database could not be prepared at start.
#[derive(Debug)]
pub struct SqlInitError {
    pub db: String,
    pub source: rusqlite::Error,
}

impl fmt::Display for SqlInitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot open database {:?}: {}", self.db, self.source)
    }
}

impl std::error::Error for SqlInitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

enum Target {
    File(PathBuf),
    /// A shared-cache in-memory database, named uniquely per [`SqlShared`].
    Memory {
        uri: String,
        /// Keeps the database alive while no stream is open: a shared-cache in-memory
        /// database disappears with its last connection. Only held, never used.
        _anchor: Mutex<Connection>,
    },
}

/// State shared by every SQL connection of a server: configuration, the access policy (the
/// token), the database.
pub struct SqlShared {
    config: SqlConfig,
    policy: Arc<Policy>,
    target: Target,
    live_streams: AtomicUsize,
}

static MEMORY_DB_COUNTER: AtomicU64 = AtomicU64::new(0);

impl SqlShared {
    /// Prepares the database: creates the file and switches it to WAL mode (or checks that a
    /// read-only database can be read), or creates the shared in-memory database and its
    /// anchor connection. This blocks: call it at start, before the event loop runs.
    ///
    /// `policy`: the server's, whose token `hello` must carry (none: authentication off).
    pub fn new(config: SqlConfig, policy: Arc<Policy>) -> Result<Arc<SqlShared>, SqlInitError> {
        let init_err = |source| SqlInitError {
            db: config.db.clone(),
            source,
        };
        let target = if config.db == MEMORY {
            let uri = format!(
                "file:wsbridge-memdb-{}-{}?mode=memory&cache=shared",
                std::process::id(),
                MEMORY_DB_COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let anchor = Connection::open_with_flags(
                &uri,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(init_err)?;
            Target::Memory {
                uri,
                _anchor: Mutex::new(anchor),
            }
        } else {
            let path = PathBuf::from(&config.db);
            if config.read_only {
                let conn =
                    Connection::open_with_flags(&path, read_only_flags()).map_err(init_err)?;
                conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
                    .map_err(init_err)?;
            } else {
                let conn =
                    Connection::open_with_flags(&path, read_write_flags()).map_err(init_err)?;
                conn.busy_timeout(config.busy_timeout).map_err(init_err)?;
                // WAL is persistent in the file: set once here, every later connection uses it.
                let mode: String = conn
                    .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                    .map_err(init_err)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    log::warn!(
                        "database {:?} is in journal mode {mode:?}, not WAL",
                        config.db
                    );
                }
            }
            Target::File(path)
        };
        Ok(Arc::new(SqlShared {
            config,
            policy,
            target,
            live_streams: AtomicUsize::new(0),
        }))
    }

    pub fn config(&self) -> &SqlConfig {
        &self.config
    }

    /// The server's access policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Number of streams (worker threads) alive in the whole server.
    pub fn live_streams(&self) -> usize {
        self.live_streams.load(Ordering::Relaxed)
    }

    /// Reserves one stream slot in the server-wide budget.
    pub(crate) fn try_acquire_stream(self: &Arc<Self>) -> Option<StreamSlot> {
        let max = self.config.max_streams_total;
        self.live_streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot {
                shared: Arc::clone(self),
            })
    }

    /// Opens and configures one connection for a stream. Runs on the stream's worker thread.
    pub(crate) fn open_connection(&self) -> rusqlite::Result<Connection> {
        let conn = match &self.target {
            Target::File(path) => {
                let flags = if self.config.read_only {
                    read_only_flags()
                } else {
                    read_write_flags()
                };
                Connection::open_with_flags(path, flags)?
            }
            Target::Memory { uri, .. } => {
                let mut flags = OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                flags |= if self.config.read_only {
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                } else {
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                };
                Connection::open_with_flags(uri, flags)?
            }
        };
        // In shared-cache mode a conflicting table lock returns SQLITE_LOCKED at once; rusqlite's
        // `unlock_notify` feature makes the statement wait for the lock instead (with SQLite's
        // deadlock detection). For files, WAL plus busy_timeout does the same job.
        conn.busy_timeout(self.config.busy_timeout)?;
        let sync = match self.config.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {sync}"))?;
        if self.config.read_only {
            conn.execute_batch("PRAGMA query_only = ON")?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}

fn read_write_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

fn read_only_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// One stream's share of `max_streams_total`, released when the worker thread ends.
pub(crate) struct StreamSlot {
    shared: Arc<SqlShared>,
}

impl StreamSlot {
    pub(crate) fn shared(&self) -> &Arc<SqlShared> {
        &self.shared
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.shared.live_streams.fetch_sub(1, Ordering::AcqRel);
    }
}
