//! Taking the test PostgreSQL server down and bringing it back, for the
//! tests of what happens when it goes away. `scripts/test` starts the
//! server as an unprivileged user and exports where its binaries, data
//! directory and log are; without them these helpers panic and say so.
//!
//! Each helper blocks until its command has finished: call it from a
//! blocking thread (`tokio::task::spawn_blocking`) where the runtime's
//! workers must keep running meanwhile.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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
/// that drops packets would, and returns once every process has stopped.
///
/// Only this test server's processes: its postmaster (from the data
/// directory's `postmaster.pid`) and that postmaster's children, which are
/// all of PostgreSQL's processes. Matching by user or name would also
/// freeze the TLS server beside it and the servers of any other test run
/// on the machine.
pub fn signal_server(signal: &str) {
    let postmaster = postmaster_pid().expect("the test server is running");
    assert!(
        signal_postmaster_and_children(signal, postmaster),
        "kill -s {signal} found no server process {postmaster} or no child of it"
    );
}

/// Sends `signal` to `postmaster`, then to its children; whether it found
/// the postmaster and at least one child. The postmaster goes first, and a `STOP` is waited
/// for: stopped, it cannot fork a backend the signal to its children
/// would miss.
fn signal_postmaster_and_children(signal: &str, postmaster: u32) -> bool {
    let stopping = signal == "STOP";
    if !send(signal, &[postmaster]) {
        return false;
    }
    if stopping {
        wait_until_stopped(postmaster);
    }
    let children = children_of(postmaster);
    // A child may exit between the listing and the signal (a backend whose
    // client left): `kill` then fails for it alone and signals the rest.
    send(signal, &children);
    if stopping {
        children.iter().for_each(|&child| wait_until_stopped(child));
    }
    !children.is_empty()
}

/// `kill -s signal pids…`; whether it succeeded.
fn send(signal: &str, pids: &[u32]) -> bool {
    Command::new("kill")
        .args(["-s", signal])
        .args(pids.iter().map(u32::to_string))
        .status()
        .expect("kill runs")
        .success()
}

/// The state letter and parent of process `pid`, from `/proc/<pid>/stat`
/// (`pid (name) state ppid …`; the name may hold spaces and parentheses,
/// so the fields are read after its last `)`); `None` once it has exited.
fn process_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Every process whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&child| matches!(process_state(child), Some((_, parent)) if parent == pid))
        .collect()
}

/// Waits (at most 10 s) until process `pid` is stopped (`T`), has exited
/// (`Z`, `X`: a stopped postmaster cannot reap its children) or is gone.
fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some((state, _)) = process_state(pid) {
        if matches!(state, 'T' | 'Z' | 'X') {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} did not stop: state {state}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The postmaster's process id: the first line of `postmaster.pid` in the
/// data directory (a server in single-user mode writes it negated, which
/// is refused here, as `kill` would take it for a process group); `None`
/// when the server is stopped.
fn postmaster_pid() -> Option<u32> {
    let file = format!("{}/postmaster.pid", var("API_TOKENS_PG_DATA"));
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Leaves the server running and answering however the test ends (an
/// assertion failing mid-outage included), so the tests after it still
/// have a server: resumes it if frozen, starts it if stopped.
pub struct ServerBack;

impl Drop for ServerBack {
    fn drop(&mut self) {
        if let Some(postmaster) = postmaster_pid() {
            signal_postmaster_and_children("CONT", postmaster);
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
