//! Taking the test PostgreSQL server down and bringing it back, for the
//! tests of what happens when it goes away. `scripts/test` starts the
//! server as an unprivileged user and exports where its binaries, data
//! directory and log are; without them these helpers panic and say so.
//!
//! Each helper blocks until its command has finished: call it from a
//! blocking thread (`tokio::task::spawn_blocking`) where the runtime's
//! workers must keep running meanwhile.

use std::process::{Command, ExitStatus, Stdio};

/// The environment variable `name`, which `scripts/test` sets.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `scripts/test`, which starts the server")
    })
}

/// `program args`, to run as the user that owns the server (PostgreSQL
/// refuses to run as root, so as root `runuser` switches to that user).
fn as_server_user(program: &str, args: &[&str]) -> Command {
    let user = var("API_TOKENS_PG_USER");
    let me = Command::new("id").arg("-un").output().expect("id runs");
    if String::from_utf8_lossy(&me.stdout).trim() == user {
        let mut command = Command::new(program);
        command.args(args);
        command
    } else {
        let mut command = Command::new("runuser");
        command.args(["-u", &user, "--", program]).args(args);
        command
    }
}

/// Runs `command` to the end.
fn run(mut command: Command) -> ExitStatus {
    command.status().expect("the command runs")
}

/// `pg_ctl <action> [options]` on the test server, waiting (`-w`) until
/// it has done it: `stop` returns once the server is down, `start` once it
/// accepts connections.
pub fn pg_ctl(action: &str, options: &[&str]) {
    let pg_ctl = format!("{}/pg_ctl", var("API_TOKENS_PG_BIN"));
    let (data, log) = (var("API_TOKENS_PG_DATA"), var("API_TOKENS_PG_LOG"));
    let mut args = vec!["-D", &data, "-l", &log, "-w", action];
    args.extend(options);
    assert!(
        run(as_server_user(&pg_ctl, &args)).success(),
        "pg_ctl {action} failed"
    );
}

/// Sends `signal` (`STOP`, `CONT`) to every process of the server: `STOP`
/// freezes it with its connections open, as a hung server or a network
/// that drops packets would.
///
/// Only this test server's processes: its postmaster (from the data
/// directory's `postmaster.pid`) and that postmaster's children. Matching
/// by user or name would also freeze the TLS server beside it and the
/// servers of any other test run on the machine.
pub fn signal_server(signal: &str) {
    let postmaster = postmaster_pid().expect("the test server is running");
    assert!(
        signal_postmaster_and_children(signal, &postmaster),
        "kill -s {signal} found no server process {postmaster} or no child of it"
    );
}

/// Sends `signal` to the children of `postmaster`, then to it; whether
/// both found a process.
fn signal_postmaster_and_children(signal: &str, postmaster: &str) -> bool {
    let children = Command::new("pkill")
        .args(["--signal", signal, "--parent", postmaster])
        .status()
        .expect("pkill runs");
    let itself = Command::new("kill")
        .args(["-s", signal, postmaster])
        .status()
        .expect("kill runs");
    children.success() && itself.success()
}

/// The postmaster's process id, from the first line of `postmaster.pid`
/// in the data directory; `None` when the server is stopped.
fn postmaster_pid() -> Option<String> {
    let file = format!("{}/postmaster.pid", var("API_TOKENS_PG_DATA"));
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().next().map(|line| line.trim().to_owned())
}

/// Leaves the server running and answering however the test ends (an
/// assertion failing mid-outage included), so the tests after it still
/// have a server: resumes it if frozen, starts it if stopped.
pub struct ServerBack;

impl Drop for ServerBack {
    fn drop(&mut self) {
        if let Some(postmaster) = postmaster_pid() {
            signal_postmaster_and_children("CONT", &postmaster);
        }
        let pg_ctl = format!("{}/pg_ctl", var("API_TOKENS_PG_BIN"));
        let data = var("API_TOKENS_PG_DATA");
        let mut status = as_server_user(&pg_ctl, &["-D", &data, "status"]);
        // Only whether it runs matters, not what it says.
        status.stdout(Stdio::null());
        if !run(status).success() {
            let log = var("API_TOKENS_PG_LOG");
            run(as_server_user(
                &pg_ctl,
                &["-D", &data, "-l", &log, "-w", "start"],
            ));
        }
    }
}
