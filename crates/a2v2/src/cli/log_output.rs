//! Where log lines go: standard error, in batches.
//!
//! Every request writes one access line, and one `write(2)` per line was the largest single
//! cost of the log on the request path (see docs/PERFORMANCE.md). Lines at INFO and below are
//! therefore gathered per thread and written together: when a thread has gathered
//! [`WRITE_AT`] bytes, and by a background thread every [`WRITE_EVERY`]. A WARN or ERROR
//! line writes everything gathered first, then itself, at once; so do a normal exit and a
//! panic. Only a killed process (SIGKILL) can lose lines: those of its last few milliseconds.
//!
//! Each thread has its own buffer behind its own lock, which only that thread and the
//! background writer ever take: no lock is shared between request threads.

use std::{
    io::{self, Write},
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
    time::Duration,
};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// A thread writes its gathered lines once they reach this many bytes.
const WRITE_AT: usize = 16 * 1024;
/// How often the background thread writes what every thread has gathered.
const WRITE_EVERY: Duration = Duration::from_millis(50);

type Buffer = Arc<Mutex<Vec<u8>>>;

/// The buffers of every thread that has logged, for the background writer.
static BUFFERS: Mutex<Vec<Weak<Mutex<Vec<u8>>>>> = Mutex::new(Vec::new());

/// This thread's buffer; written out when the thread ends.
struct Local(Buffer);

impl Drop for Local {
    fn drop(&mut self) {
        write_out(&mut lock(&self.0));
    }
}

thread_local! {
    static LOCAL: Local = {
        let buffer = Buffer::default();
        lock(&BUFFERS).push(Arc::downgrade(&buffer));
        Local(buffer)
    };
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write_out(pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        // Nothing sensible is left to do when standard error is gone.
        let _ = io::stderr().lock().write_all(pending);
        pending.clear();
    }
}

/// Writes every thread's gathered lines.
pub fn flush() {
    lock(&BUFFERS).retain(|weak| match weak.upgrade() {
        Some(buffer) => {
            write_out(&mut lock(&buffer));
            true
        }
        None => false,
    });
}

/// Starts the background writer and makes a panic write the gathered lines before its
/// message.
pub fn start() {
    let spawned = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(|| {
            loop {
                std::thread::sleep(WRITE_EVERY);
                flush();
            }
        });
    if let Err(err) = spawned {
        eprintln!(
            "warning: cannot start the log writer thread ({err}); lines are written when a thread has gathered {WRITE_AT} bytes"
        );
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic while a lock is held must not wait for that lock.
        if let Ok(mut buffers) = BUFFERS.try_lock() {
            for buffer in buffers.iter().filter_map(Weak::upgrade) {
                if let Ok(mut pending) = buffer.try_lock() {
                    write_out(&mut pending);
                }
            }
            buffers.retain(|weak| weak.strong_count() > 0);
        }
        previous(info);
    }));
}

/// The log's [`MakeWriter`]: gathers INFO and below, writes WARN and ERROR at once.
pub struct Batched;

pub enum Line {
    Gathered,
    Urgent,
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line::Urgent
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        if matches!(*meta.level(), Level::ERROR | Level::WARN) {
            Line::Urgent
        } else {
            Line::Gathered
        }
    }
}

impl Write for Line {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        match self {
            Line::Gathered => {
                let gathered = LOCAL.try_with(|local| {
                    let mut pending = lock(&local.0);
                    pending.extend_from_slice(line);
                    if pending.len() >= WRITE_AT {
                        write_out(&mut pending);
                    }
                });
                if gathered.is_err() {
                    // The thread is ending and its buffer is gone.
                    io::stderr().lock().write_all(line)?;
                }
            }
            Line::Urgent => {
                flush();
                io::stderr().lock().write_all(line)?;
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
