//! Running Hrana statements, batches, sequences and descriptions on one SQLite connection.
//! Everything here runs on a stream's worker thread, never on the event loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, Statement};

use super::bind::{bind, cols_json_size, columns, is_begin_readonly, is_blank_sql, value_from_ref};
use super::error::{self, Phase};
use super::proto::{
    self, BatchResult, Col, DescribeCol, DescribeParam, DescribeResult, Error, StmtResult, Value,
};

/// A statement ready to run: the SQL text is resolved (`sql_id` looked up by the session).
#[derive(Debug, Clone)]
pub(crate) struct ExecStmt {
    pub sql: Arc<str>,
    pub args: Vec<Value>,
    pub named_args: Vec<(String, Value)>,
    pub want_rows: bool,
}

impl ExecStmt {
    /// Heap bytes it holds, for the memory budget (an estimate: texts and blobs counted).
    pub(crate) fn heap_size(&self) -> usize {
        let value = |v: &Value| match v {
            Value::Text(t) => t.len(),
            Value::Blob(b) => b.len(),
            _ => 0,
        } + std::mem::size_of::<Value>();
        self.sql.len()
            + self.args.iter().map(value).sum::<usize>()
            + self
                .named_args
                .iter()
                .map(|(name, v)| name.len() + value(v))
                .sum::<usize>()
    }
}

/// A batch step with its validated condition.
#[derive(Debug, Clone)]
pub(crate) struct ExecStep {
    pub cond: Option<Cond>,
    pub stmt: ExecStmt,
}

/// A batch condition whose step references were checked to point at earlier steps.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Ok(usize),
    Error(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    IsAutocommit,
}

/// What happened to a batch step, for conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Skipped,
    Ok,
    Failed,
}

impl Cond {
    /// Evaluates the condition; `outcomes` holds every earlier step.
    pub(crate) fn eval(&self, outcomes: &[Outcome], is_autocommit: bool) -> bool {
        let outcome = |step: &usize| outcomes.get(*step).copied().unwrap_or(Outcome::Skipped);
        match self {
            Cond::Ok(step) => outcome(step) == Outcome::Ok,
            Cond::Error(step) => outcome(step) == Outcome::Failed,
            Cond::Not(cond) => !cond.eval(outcomes, is_autocommit),
            Cond::And(conds) => conds.iter().all(|c| c.eval(outcomes, is_autocommit)),
            Cond::Or(conds) => conds.iter().any(|c| c.eval(outcomes, is_autocommit)),
            Cond::IsAutocommit => is_autocommit,
        }
    }
}

/// Cross-thread control of a worker's running statement: the per-statement deadline, checked by
/// SQLite's progress handler, and cancellation when the session closes.
pub(crate) struct Control {
    base: Instant,
    /// Milliseconds since `base` plus one; 0 means no deadline.
    deadline: AtomicU64,
    timed_out: AtomicBool,
    cancelled: AtomicBool,
}

impl Control {
    pub(crate) fn new() -> Arc<Control> {
        Arc::new(Control {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        })
    }

    fn arm(&self, limit: Duration) {
        let at = self.base.elapsed().saturating_add(limit).as_millis();
        self.timed_out.store(false, Ordering::Relaxed);
        self.deadline.store(
            u64::try_from(at).unwrap_or(u64::MAX - 1) + 1,
            Ordering::Relaxed,
        );
    }

    fn disarm(&self) {
        self.deadline.store(0, Ordering::Relaxed);
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// The progress handler: true interrupts the running statement.
    fn should_interrupt(&self) -> bool {
        if self.is_cancelled() {
            return true;
        }
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline != 0 && self.base.elapsed().as_millis() + 1 >= u128::from(deadline) {
            self.timed_out.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// How many virtual-machine instructions run between two progress-handler calls: small enough
/// that a runaway statement is caught within about a millisecond, large enough to cost nothing.
const PROGRESS_OPS: i32 = 10_000;

/// An estimate-based budget for the JSON size of one response.
pub(crate) struct Budget {
    remaining: usize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            remaining: limit,
            limit,
        }
    }

    fn take(&mut self, n: usize) -> Result<(), Error> {
        match self.remaining.checked_sub(n) {
            Some(rest) => {
                self.remaining = rest;
                Ok(())
            }
            None => {
                self.remaining = 0;
                Err(too_large(self.limit))
            }
        }
    }

    fn charge(&mut self, n: usize) {
        self.remaining = self.remaining.saturating_sub(n);
    }
}

pub(crate) fn too_large(limit: usize) -> Error {
    Error::new(
        error::RESPONSE_TOO_LARGE,
        format!("the response would exceed the limit of {limit} bytes"),
    )
}

/// One stream's SQLite connection with the settings that apply to it.
pub(crate) struct StreamConn {
    conn: Connection,
    ctl: Arc<Control>,
    statement_timeout: Duration,
    read_only: bool,
    /// `BEGIN TRANSACTION READONLY` (libSQL syntax, sent by `@libsql/client` for
    /// `transaction("read")`) is emulated with `BEGIN DEFERRED` + `PRAGMA query_only`; this is
    /// true while that transaction is open.
    emulated_read_tx: bool,
}

/// A rewrite of libSQL-only SQL into what SQLite understands.
enum Rewrite {
    None,
    BeginReadOnly,
}

impl StreamConn {
    pub(crate) fn new(
        mut conn: Connection,
        ctl: Arc<Control>,
        statement_timeout: Duration,
        read_only: bool,
    ) -> rusqlite::Result<StreamConn> {
        let handler_ctl = Arc::clone(&ctl);
        conn.progress_handler(PROGRESS_OPS, Some(move || handler_ctl.should_interrupt()))?;
        // ATTACH (and VACUUM INTO, which attaches its target) would let a client create or
        // open arbitrary files on the server.
        conn.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
            AuthAction::Attach { .. } => Authorization::Deny,
            _ => Authorization::Allow,
        }))?;
        Ok(StreamConn {
            conn,
            ctl,
            statement_timeout,
            read_only,
            emulated_read_tx: false,
        })
    }

    pub(crate) fn is_autocommit(&self) -> bool {
        self.conn.is_autocommit()
    }

    /// Rolls back an open transaction (idle timeout, stream close). Returns true if there was one.
    pub(crate) fn rollback(&mut self) -> bool {
        if self.conn.is_autocommit() {
            return false;
        }
        if let Err(e) = self.conn.execute_batch("ROLLBACK") {
            log::warn!("rollback failed: {e}");
        }
        self.after_statement();
        true
    }

    /// Runs `f` with the statement deadline armed, then restores the connection's state and
    /// turns an interrupt into a clear error.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        self.ctl.arm(self.statement_timeout);
        let res = f(self);
        self.ctl.disarm();
        self.after_statement();
        res.map_err(|e| self.explain_interrupt(e))
    }

    fn explain_interrupt(&self, e: Error) -> Error {
        if e.code != error::SQLITE_INTERRUPT {
            return e;
        }
        if self.ctl.timed_out.load(Ordering::Relaxed) {
            Error::new(
                error::SQLITE_INTERRUPT,
                format!(
                    "statement interrupted: it ran longer than the time limit of {} ms",
                    self.statement_timeout.as_millis()
                ),
            )
        } else if self.ctl.is_cancelled() {
            Error::new(
                error::SQLITE_INTERRUPT,
                "statement interrupted: the connection closed",
            )
        } else {
            e
        }
    }

    fn after_statement(&mut self) {
        if self.emulated_read_tx && self.conn.is_autocommit() {
            self.emulated_read_tx = false;
            if !self.read_only
                && let Err(e) = self.conn.execute_batch("PRAGMA query_only = OFF")
            {
                log::warn!("cannot leave query_only mode: {e}");
            }
        }
    }

    /// Checks the text and applies libSQL-compatibility rewrites.
    fn rewrite<'s>(&self, sql: &'s str) -> Result<(&'s str, Rewrite), Error> {
        if is_blank_sql(sql) {
            return Err(Error::new(
                error::SQL_NO_STATEMENT,
                "SQL string does not contain any statement",
            ));
        }
        if is_begin_readonly(sql) {
            return Ok(("BEGIN DEFERRED", Rewrite::BeginReadOnly));
        }
        Ok((sql, Rewrite::None))
    }

    fn check_writable(&self, stmt: &Statement<'_>) -> Result<(), Error> {
        if self.read_only && !stmt.readonly() {
            return Err(Error::new(
                error::SQLITE_READONLY,
                "the server is read-only (--read-only): statements that write are refused",
            ));
        }
        Ok(())
    }

    fn start_emulated_read_tx(&mut self) -> Result<(), Error> {
        if !self.read_only {
            self.conn
                .execute_batch("PRAGMA query_only = ON")
                .map_err(|e| error::from_sqlite(&e, Phase::Step))?;
        }
        self.emulated_read_tx = true;
        Ok(())
    }

    /// `execute`: runs one statement and collects its result.
    pub(crate) fn execute(
        &mut self,
        stmt: &ExecStmt,
        budget: &mut Budget,
    ) -> Result<StmtResult, Error> {
        let started = std::time::Instant::now();
        let result = self.guarded(|this| this.execute_inner(stmt, budget));
        super::stats::SQL_STATS.record(started.elapsed(), result.is_ok());
        result
    }

    fn execute_inner(&mut self, stmt: &ExecStmt, budget: &mut Budget) -> Result<StmtResult, Error> {
        let (sql, rewrite) = self.rewrite(&stmt.sql)?;
        let result = {
            let mut st = self
                .conn
                .prepare_cached(sql)
                .map_err(|e| error::from_sqlite(&e, Phase::Prepare))?;
            self.check_writable(&st)?;
            bind(&mut st, stmt)?;
            let cols = columns(&st);
            // Column headers are charged without failing: a statement that returns no rows
            // (COMMIT, ROLLBACK) must still run when an earlier step used up the budget.
            budget.charge(cols_json_size(&cols));
            let total_before = self.conn.total_changes();
            let mut out = Vec::new();
            let mut rows = st.raw_query();
            loop {
                match rows.next() {
                    Ok(Some(row)) => {
                        if stmt.want_rows {
                            let mut values = Vec::with_capacity(cols.len());
                            for i in 0..cols.len() {
                                let v = row
                                    .get_ref(i)
                                    .map_err(|e| error::from_sqlite(&e, Phase::Step))?;
                                budget.take(proto::value_json_size(&v) + 1)?;
                                values.push(value_from_ref(v));
                            }
                            out.push(values);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(error::from_sqlite(&e, Phase::Step)),
                }
            }
            drop(rows);
            let affected_row_count = if self.conn.total_changes() != total_before {
                self.conn.changes()
            } else {
                0
            };
            StmtResult {
                cols,
                rows: out,
                affected_row_count,
                last_insert_rowid: Some(self.conn.last_insert_rowid()),
            }
        };
        if let Rewrite::BeginReadOnly = rewrite {
            self.start_emulated_read_tx()?;
        }
        Ok(result)
    }

    /// `batch`: runs the steps in order, skipping those whose condition is false. A failing step
    /// is reported in `step_errors` and does not stop the batch.
    pub(crate) fn batch(&mut self, steps: &[ExecStep], budget: &mut Budget) -> BatchResult {
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut result = BatchResult {
            step_results: Vec::with_capacity(steps.len()),
            step_errors: Vec::with_capacity(steps.len()),
        };
        for step in steps {
            let run = match &step.cond {
                Some(cond) => cond.eval(&outcomes, self.conn.is_autocommit()),
                None => true,
            };
            if !run {
                outcomes.push(Outcome::Skipped);
                result.step_results.push(None);
                result.step_errors.push(None);
                continue;
            }
            match self.execute(&step.stmt, budget) {
                Ok(r) => {
                    outcomes.push(Outcome::Ok);
                    result.step_results.push(Some(r));
                    result.step_errors.push(None);
                }
                Err(e) => {
                    outcomes.push(Outcome::Failed);
                    result.step_results.push(None);
                    result.step_errors.push(Some(e));
                }
            }
        }
        result
    }

    /// `sequence`: runs every statement of the text, ignoring rows, stopping at the first error.
    pub(crate) fn sequence(&mut self, sql: &str) -> Result<(), Error> {
        if is_blank_sql(sql) {
            return Ok(());
        }
        self.guarded(|this| {
            let mut batch = rusqlite::Batch::new(&this.conn, sql);
            loop {
                let mut st = match batch.next() {
                    Ok(Some(st)) => st,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(error::from_sqlite(&e, Phase::Prepare)),
                };
                this.check_writable(&st)?;
                let mut rows = st.raw_query();
                while rows
                    .next()
                    .map_err(|e| error::from_sqlite(&e, Phase::Step))?
                    .is_some()
                {}
            }
        })
    }

    /// `describe`: compiles the statement without running it.
    pub(crate) fn describe(&mut self, sql: &str) -> Result<DescribeResult, Error> {
        let (sql, _) = self.rewrite(sql)?;
        let st = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| error::from_sqlite(&e, Phase::Prepare))?;
        let params = (1..=st.parameter_count())
            .map(|i| DescribeParam {
                name: st.parameter_name(i).map(str::to_owned),
            })
            .collect();
        let cols = st
            .columns()
            .map(|c| DescribeCol {
                name: c.name().to_owned(),
                decltype: c.decl_type().map(str::to_owned),
            })
            .collect();
        Ok(DescribeResult {
            params,
            cols,
            is_explain: st.is_explain() != 0,
            is_readonly: st.readonly(),
        })
    }

    /// Runs one cursor step: prepares and binds, then hands each row to `on_row`. `on_begin`
    /// receives the columns before the first row.
    pub(crate) fn run_streaming(
        &mut self,
        stmt: &ExecStmt,
        on_begin: &mut dyn FnMut(Vec<Col>) -> Result<(), Error>,
        on_row: &mut dyn FnMut(Vec<Value>, usize) -> Result<(), Error>,
    ) -> Result<(u64, i64), Error> {
        self.guarded(|this| {
            let (sql, rewrite) = this.rewrite(&stmt.sql)?;
            let counts = {
                let mut st = this
                    .conn
                    .prepare_cached(sql)
                    .map_err(|e| error::from_sqlite(&e, Phase::Prepare))?;
                this.check_writable(&st)?;
                bind(&mut st, stmt)?;
                let cols = columns(&st);
                let ncols = cols.len();
                on_begin(cols)?;
                let total_before = this.conn.total_changes();
                let mut rows = st.raw_query();
                while let Some(row) = rows
                    .next()
                    .map_err(|e| error::from_sqlite(&e, Phase::Step))?
                {
                    if !stmt.want_rows {
                        continue;
                    }
                    let mut values = Vec::with_capacity(ncols);
                    let mut size = 2;
                    for i in 0..ncols {
                        let v = row
                            .get_ref(i)
                            .map_err(|e| error::from_sqlite(&e, Phase::Step))?;
                        size += proto::value_json_size(&v) + 1;
                        values.push(value_from_ref(v));
                    }
                    on_row(values, size)?;
                }
                drop(rows);
                let affected = if this.conn.total_changes() != total_before {
                    this.conn.changes()
                } else {
                    0
                };
                (affected, this.conn.last_insert_rowid())
            };
            if let Rewrite::BeginReadOnly = rewrite {
                this.start_emulated_read_tx()?;
            }
            Ok(counts)
        })
    }
}

/// Re-arms the deadline between two fetches of a cursor, while a statement stays open.
pub(crate) fn rearm(ctl: &Control, limit: Duration) {
    ctl.arm(limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        use Outcome::*;
        let outcomes = [Ok, Failed, Skipped];
        assert!(Cond::Ok(0).eval(&outcomes, true));
        assert!(!Cond::Ok(1).eval(&outcomes, true));
        assert!(!Cond::Ok(2).eval(&outcomes, true));
        assert!(Cond::Error(1).eval(&outcomes, true));
        assert!(!Cond::Error(2).eval(&outcomes, true));
        assert!(Cond::Not(Box::new(Cond::Ok(2))).eval(&outcomes, true));
        assert!(Cond::And(vec![]).eval(&outcomes, true));
        assert!(!Cond::Or(vec![]).eval(&outcomes, true));
        assert!(Cond::Or(vec![Cond::Ok(1), Cond::Error(1)]).eval(&outcomes, true));
        assert!(!Cond::And(vec![Cond::Ok(0), Cond::IsAutocommit]).eval(&outcomes, false));
    }
}
