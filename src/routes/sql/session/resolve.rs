//! From the wire's statements to what a worker runs: `sql_id`s looked up, batch conditions
//! checked to refer only to earlier steps, features held to the negotiated version.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::exec::{Cond, ExecStep, ExecStmt};
use super::super::proto::{self, BatchCond, Stmt, Version};
use super::SessionError;

/// What statements are resolved against: the negotiated version and the stored SQL texts.
/// Shared by both transports (a WebSocket session, an HTTP stream).
pub(crate) struct Resolver<'a> {
    pub version: Version,
    pub sqls: &'a HashMap<i32, Arc<str>>,
}

impl Resolver<'_> {
    pub(crate) fn require(&self, min: Version, what: &str) -> Result<(), SessionError> {
        if self.version < min {
            return Err(SessionError::Protocol(format!(
                "{what} needs {min} or later (negotiated {})",
                self.version
            )));
        }
        Ok(())
    }

    pub(crate) fn resolve_sql(
        &self,
        sql: Option<String>,
        sql_id: Option<i32>,
    ) -> Result<Arc<str>, SessionError> {
        if sql_id.is_some() {
            self.require(Version::Hrana2, "`sql_id`")?;
        }
        match (sql, sql_id) {
            (Some(sql), None) => Ok(Arc::from(sql)),
            (None, Some(id)) => self
                .sqls
                .get(&id)
                .cloned()
                .ok_or_else(|| SessionError::Protocol(format!("SQL text {id} not found"))),
            (Some(_), Some(_)) => Err(SessionError::Protocol(
                "a statement has both `sql` and `sql_id`".to_owned(),
            )),
            (None, None) => Err(SessionError::Protocol(
                "a statement has neither `sql` nor `sql_id`".to_owned(),
            )),
        }
    }

    pub(crate) fn resolve_stmt(&self, stmt: Stmt) -> Result<ExecStmt, SessionError> {
        Ok(ExecStmt {
            sql: self.resolve_sql(stmt.sql, stmt.sql_id)?,
            args: stmt.args,
            named_args: stmt
                .named_args
                .into_iter()
                .map(|a| (a.name, a.value))
                .collect(),
            want_rows: stmt.want_rows.unwrap_or(true),
        })
    }

    pub(crate) fn resolve_batch(&self, batch: proto::Batch) -> Result<Vec<ExecStep>, SessionError> {
        batch
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| {
                Ok(ExecStep {
                    cond: step
                        .condition
                        .map(|c| self.resolve_cond(c, i))
                        .transpose()?,
                    stmt: self.resolve_stmt(step.stmt)?,
                })
            })
            .collect()
    }

    /// Checks a condition of step `step_i`: it may only refer to earlier steps.
    pub(crate) fn resolve_cond(
        &self,
        cond: BatchCond,
        step_i: usize,
    ) -> Result<Cond, SessionError> {
        let step = |s: u32| -> Result<usize, SessionError> {
            match usize::try_from(s) {
                Ok(s) if s < step_i => Ok(s),
                _ => Err(SessionError::Protocol(format!(
                    "the condition of batch step {step_i} refers to step {s}, which is not an \
                     earlier step"
                ))),
            }
        };
        Ok(match cond {
            BatchCond::Ok { step: s } => Cond::Ok(step(s)?),
            BatchCond::Error { step: s } => Cond::Error(step(s)?),
            BatchCond::Not { cond } => Cond::Not(Box::new(self.resolve_cond(*cond, step_i)?)),
            BatchCond::And { conds } => Cond::And(
                conds
                    .into_iter()
                    .map(|c| self.resolve_cond(c, step_i))
                    .collect::<Result<_, _>>()?,
            ),
            BatchCond::Or { conds } => Cond::Or(
                conds
                    .into_iter()
                    .map(|c| self.resolve_cond(c, step_i))
                    .collect::<Result<_, _>>()?,
            ),
            BatchCond::IsAutocommit {} => {
                self.require(Version::Hrana3, "the `is_autocommit` condition")?;
                Cond::IsAutocommit
            }
        })
    }
}
