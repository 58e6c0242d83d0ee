//! `POST /v3/cursor` (Hrana 3, "Execute a batch using a cursor"): the batch's entries streamed
//! as newline-delimited JSON in a chunked body, its first line `{"baton", "base_url"}`. Rows
//! are fetched from the worker a batch at a time, and the next fetch is asked only when the
//! connection's output has room: a huge result never sits whole in memory.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::super::exec::ExecStep;
use super::super::worker::{CURSOR_DONE, CURSOR_MORE, Job};
use super::streams::{Streams, Taken};
use crate::http::message::Response as HttpResponse;
use crate::routes::http::Progress;

/// Entries asked of the worker per fetch.
const FETCH_ENTRIES: u32 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The head goes out first.
    Head,
    /// Then the first line.
    BatonLine,
    /// Waiting for the cursor to open.
    Opening,
    /// Fetching; whether a fetch is with the worker.
    Fetching {
        asked: bool,
    },
    /// Waiting for the worker to close the cursor.
    Closing,
    Done,
}

pub(crate) struct CursorRun {
    streams: Arc<Mutex<Streams>>,
    taken: Option<Taken>,
    baton: String,
    stage: Stage,
    /// The last entries, held back until the stream is back in its place: a client that reads
    /// `step_end` may send its next request, on another connection, at once (the Rust `libsql`
    /// crate does), and its baton must work by then.
    last: Option<Vec<u8>>,
}

impl CursorRun {
    pub fn start(streams: Arc<Mutex<Streams>>, taken: Taken, steps: Vec<ExecStep>) -> CursorRun {
        let baton = streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .baton(taken.id, taken.next_seq);
        let mut run = CursorRun {
            streams,
            taken: Some(taken),
            baton,
            stage: Stage::Head,
            last: None,
        };
        run.send(Job::OpenCursor {
            request_id: 0,
            steps,
        });
        run
    }

    fn send(&mut self, job: Job) -> bool {
        let Some(taken) = &self.taken else {
            return false;
        };
        let size = job.heap_size();
        taken.stream.held.fetch_add(size, Ordering::Relaxed);
        if taken.stream.handle.jobs.send(job).is_err() {
            taken.stream.held.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn next_reply(&mut self) -> Option<String> {
        let stream = &mut self.taken.as_mut()?.stream;
        loop {
            let text = stream.replies.try_recv().ok()?;
            stream.held.fetch_sub(text.len(), Ordering::Relaxed);
            if stream.opening {
                stream.opening = false;
                continue;
            }
            return Some(text);
        }
    }

    pub fn held_bytes(&self) -> usize {
        self.taken.as_ref().map_or(0, |t| t.stream.held_bytes())
    }

    pub fn poll(&mut self, now: Instant) -> Progress {
        loop {
            match self.stage {
                Stage::Head => {
                    self.stage = Stage::BatonLine;
                    return Progress::Head(HttpResponse::chunked(200, "text/plain"));
                }
                Stage::BatonLine => {
                    self.stage = Stage::Opening;
                    let line = format!("{{\"baton\":\"{}\",\"base_url\":null}}\n", self.baton);
                    return Progress::Chunk(line.into_bytes());
                }
                Stage::Opening => {
                    let Some(text) = self.next_reply() else {
                        return Progress::Waiting;
                    };
                    if text.starts_with("{\"type\":\"ok\"") {
                        self.stage = Stage::Fetching { asked: false };
                    } else {
                        // `{"type":"error","error":...}` is also the cursor's `error` entry.
                        self.last = Some(line_of(text));
                        self.stage = Stage::Closing;
                        if !self.send(Job::CloseCursor { request_id: 2 }) {
                            self.stage = Stage::Done;
                        }
                    }
                }
                Stage::Fetching { asked: false } => {
                    let asked = self.send(Job::FetchCursor {
                        request_id: 1,
                        max_count: FETCH_ENTRIES,
                    });
                    if !asked {
                        self.stage = Stage::Done;
                        return Progress::End;
                    }
                    self.stage = Stage::Fetching { asked: true };
                }
                Stage::Fetching { asked: true } => {
                    let Some(text) = self.next_reply() else {
                        return Progress::Waiting;
                    };
                    let (entries, done) = match text.as_bytes().first() {
                        Some(&CURSOR_MORE) => (text.as_bytes()[1..].to_vec(), false),
                        Some(&CURSOR_DONE) => (text.as_bytes()[1..].to_vec(), true),
                        // An error result (the fetch failed): the cursor's `error` entry.
                        _ => (line_of(text), true),
                    };
                    if !done {
                        self.stage = Stage::Fetching { asked: false };
                        return Progress::Chunk(entries);
                    }
                    self.last = Some(entries);
                    self.stage = Stage::Closing;
                    if !self.send(Job::CloseCursor { request_id: 2 }) {
                        self.stage = Stage::Done;
                    }
                }
                Stage::Closing => {
                    if self.next_reply().is_none() {
                        return Progress::Waiting;
                    }
                    self.stage = Stage::Done;
                }
                Stage::Done => {
                    if let Some(taken) = self.taken.take() {
                        self.streams
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .put_back(taken, now);
                    }
                    if let Some(last) = self.last.take() {
                        return Progress::Chunk(last);
                    }
                    return Progress::End;
                }
            }
        }
    }
}

fn line_of(mut text: String) -> Vec<u8> {
    text.push('\n');
    text.into_bytes()
}

impl Drop for CursorRun {
    fn drop(&mut self) {
        if let Some(taken) = self.taken.take() {
            self.streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(taken.id);
        }
    }
}
