//! Cursors (Hrana 3): a batch run lazily, its entries produced as `fetch_cursor` requests ask
//! for them, with the current statement kept open between fetches.

use super::*;

/// How a cursor ended.
pub(super) enum CursorEnd {
    /// `close_cursor` with this request id.
    Closed(i32),
    /// `close_stream` with this request id.
    StreamClosed(i32),
    /// The session dropped its handle.
    Disconnected,
    /// No `fetch_cursor` arrived within the idle timeout.
    IdleTimeout,
}

impl Worker {
    /// Runs a batch through a cursor: entries are produced lazily, as `fetch_cursor` requests
    /// ask for them, with the current statement kept open between fetches.
    pub(super) fn run_cursor(&mut self, steps: &[ExecStep]) -> CursorEnd {
        let config = self.shared.config();
        let mut feed = Feed {
            rx: &self.rx,
            replier: &self.replier,
            idle: config.idle_transaction_timeout,
            statement_timeout: config.statement_timeout,
            // Leave room for the envelope: the exact size is checked when replying.
            fetch_bytes: config.max_response_bytes / 2,
            pending: Vec::new(),
            pending_bytes: 0,
            fetch: None,
            end: None,
            failure: None,
        };
        let Some(conn) = self.conn.as_mut() else {
            return CursorEnd::Disconnected;
        };
        // Nothing runs before the first fetch.
        if feed.wait_fetch() {
            let mut outcomes = Vec::with_capacity(steps.len());
            for (i, step) in steps.iter().enumerate() {
                if feed.stopped() {
                    break;
                }
                let step_index = u32::try_from(i).unwrap_or(u32::MAX);
                let run = step
                    .cond
                    .as_ref()
                    .is_none_or(|c| c.eval(&outcomes, conn.is_autocommit()));
                if !run {
                    outcomes.push(Outcome::Skipped);
                    continue;
                }
                let res = {
                    let feed_cell = std::cell::RefCell::new(&mut feed);
                    let mut on_begin = |cols| {
                        let size = 64 + 32 * usize::max(1, Vec::len(&cols));
                        feed_cell.borrow_mut().push(
                            CursorEntry::StepBegin {
                                step: step_index,
                                cols,
                            },
                            size,
                        )
                    };
                    let mut on_row = |row, size| {
                        feed_cell
                            .borrow_mut()
                            .push(CursorEntry::Row { row }, size + 24)
                    };
                    conn.run_streaming(&step.stmt, &mut on_begin, &mut on_row)
                };
                if feed.stopped() {
                    break;
                }
                match res {
                    Ok((affected_row_count, last_insert_rowid)) => {
                        outcomes.push(Outcome::Ok);
                        feed.push(
                            CursorEntry::StepEnd {
                                affected_row_count,
                                last_insert_rowid: Some(last_insert_rowid),
                            },
                            96,
                        )
                        .ok();
                    }
                    Err(error) => {
                        outcomes.push(Outcome::Failed);
                        let size = 96 + error.message.len();
                        feed.push(
                            CursorEntry::StepError {
                                step: step_index,
                                error,
                            },
                            size,
                        )
                        .ok();
                    }
                }
            }
            if feed.end.is_none() {
                if feed.failure.is_none() {
                    feed.flush(true);
                }
                // The batch is over: later fetches get no entries (or the failure) and `done`.
                while feed.fetch.is_some() || feed.wait_fetch() {
                    let entries = match feed.failure.take() {
                        Some(error) => vec![CursorEntry::Error { error }],
                        None => Vec::new(),
                    };
                    feed.pending = entries;
                    feed.flush(true);
                }
            }
        }
        feed.end.unwrap_or(CursorEnd::Disconnected)
    }
}

/// The producer side of a cursor: buffers entries and answers `fetch_cursor` requests.
struct Feed<'a> {
    rx: &'a Receiver<Job>,
    replier: &'a Replier,
    idle: Duration,
    statement_timeout: Duration,
    fetch_bytes: usize,
    pending: Vec<CursorEntry>,
    pending_bytes: usize,
    /// The fetch being filled: request id and maximum number of entries.
    fetch: Option<(i32, usize)>,
    end: Option<CursorEnd>,
    /// A fetch response was too large; the cursor stops and reports this error.
    failure: Option<Error>,
}

impl Feed<'_> {
    fn stopped(&self) -> bool {
        self.end.is_some() || self.failure.is_some()
    }

    /// Adds an entry; when the current fetch is full, answers it and waits for the next one.
    /// `Err` means the cursor must stop (closed, timed out, or failed).
    fn push(&mut self, entry: CursorEntry, size: usize) -> Result<(), Error> {
        if self.stopped() {
            return Err(stop_error());
        }
        self.pending.push(entry);
        self.pending_bytes += size;
        let full = match self.fetch {
            Some((_, max)) => self.pending.len() >= max || self.pending_bytes >= self.fetch_bytes,
            None => true,
        };
        if full {
            if !self.flush(false) {
                return Err(stop_error());
            }
            if !self.wait_fetch() {
                return Err(stop_error());
            }
        }
        Ok(())
    }

    /// Answers the current fetch with the pending entries. False if the answer was too large.
    fn flush(&mut self, done: bool) -> bool {
        let Some((request_id, _)) = self.fetch.take() else {
            return true;
        };
        let entries = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let fit = self
            .replier
            .reply(request_id, Ok(Response::FetchCursor { entries, done }));
        if !fit {
            self.failure = Some(exec::too_large(self.replier.max_bytes));
        }
        fit
    }

    /// Waits for the next `fetch_cursor`. False when the cursor ends instead (`self.end`).
    fn wait_fetch(&mut self) -> bool {
        loop {
            let job = match self.rx.recv_timeout(self.idle) {
                Ok(job) => {
                    self.replier.out.took(&job);
                    job
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.end = Some(CursorEnd::IdleTimeout);
                    return false;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.end = Some(CursorEnd::Disconnected);
                    return false;
                }
            };
            if self.replier.ctl.is_cancelled() {
                self.end = Some(CursorEnd::Disconnected);
                return false;
            }
            match job {
                Job::FetchCursor {
                    request_id,
                    max_count,
                } => {
                    if max_count == 0 {
                        self.replier.reply(
                            request_id,
                            Ok(Response::FetchCursor {
                                entries: Vec::new(),
                                done: false,
                            }),
                        );
                        continue;
                    }
                    self.fetch = Some((request_id, max_count as usize));
                    exec::rearm(&self.replier.ctl, self.statement_timeout);
                    return true;
                }
                Job::CloseCursor { request_id } => {
                    self.end = Some(CursorEnd::Closed(request_id));
                    return false;
                }
                Job::CloseStream { request_id } => {
                    self.end = Some(CursorEnd::StreamClosed(request_id));
                    return false;
                }
                other => {
                    self.replier.reply(
                        other.request_id(),
                        Err(Error::new(
                            "CURSOR_OPEN",
                            "a cursor is open on this stream: close it before other requests",
                        )),
                    );
                }
            }
        }
    }
}

/// The error a cursor callback returns to unwind the running statement; never sent.
fn stop_error() -> Error {
    Error::new(error::INTERNAL, "cursor stopped")
}
