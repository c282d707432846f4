//! Capturing what `tracing` writes, to assert on the text of the log.

use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// Everything the capturing subscriber wrote, as it wrote it.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The log so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures, as plain text, every event at `level` or above that this
/// thread logs until the guard drops. Only this thread's: a test using it
/// belongs in a binary of its own, since a thread-local subscriber can miss
/// events of call sites other tests register at the same moment.
pub fn capture_logs(level: tracing::Level) -> (Captured, DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}
