//! Where the command line's audit events go: one JSON object per line, to
//! the file `--audit-log` names (appended to) or to stderr.
//!
//! The service embedding this crate has its own sink, which this program
//! cannot reach; so its events are written where the operator points them,
//! in the `AuditEvent` serde form with one field added, `operator`: who ran
//! the command. (Most events name the operator as their `actor` already;
//! `purged` has no actor of its own.)

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use api_tokens::{AuditEvent, AuditSink, async_trait};
use serde_json::Value;

use crate::failure::Failure;

/// Writes each event as one JSON line, and remembers whether a write
/// failed, so the command can say its audit trail is incomplete.
pub(crate) struct JsonLinesSink {
    operator: Option<String>,
    out: Mutex<Box<dyn Write + Send>>,
    failed: AtomicBool,
}

impl JsonLinesSink {
    /// A sink appending to `path` (created if missing), or writing to
    /// stderr without one.
    ///
    /// # Errors
    ///
    /// Exit code 2 when the file cannot be opened: checked before anything
    /// is changed, so no change goes unaudited for it.
    pub(crate) fn open(path: Option<&Path>, operator: Option<String>) -> Result<Self, Failure> {
        let out: Box<dyn Write + Send> = match path {
            Some(path) => Box::new(append(path).map_err(|error| {
                Failure::input(format!(
                    "cannot open the audit log {}: {error}",
                    path.display()
                ))
            })?),
            None => Box::new(io::stderr()),
        };
        Ok(JsonLinesSink {
            operator,
            out: Mutex::new(out),
            failed: AtomicBool::new(false),
        })
    }

    /// Whether any event could not be written.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn line(&self, event: &AuditEvent) -> serde_json::Result<Vec<u8>> {
        let mut value = serde_json::to_value(event)?;
        if let (Some(operator), Value::Object(fields)) = (&self.operator, &mut value) {
            fields.insert("operator".to_owned(), Value::String(operator.clone()));
        }
        let mut line = serde_json::to_vec(&value)?;
        line.push(b'\n');
        Ok(line)
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[async_trait]
impl AuditSink for JsonLinesSink {
    async fn record(&self, event: AuditEvent) {
        let written = match self.line(&event) {
            // No lock is held across an await: there is none here.
            Ok(line) => match self.out.lock() {
                Ok(mut out) => out.write_all(&line).and_then(|()| out.flush()).is_ok(),
                Err(_) => false,
            },
            Err(_) => false,
        };
        if !written {
            self.failed.store(true, Ordering::SeqCst);
        }
    }
}
