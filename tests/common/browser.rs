//! A real headless Chromium for the pages' tests, driven over WebDriver
//! through its own chromedriver: Debian's `chromium` and `chromium-driver`,
//! which `scripts/test` installs and names in `API_TOKENS_CHROMIUM` and
//! `API_TOKENS_CHROMEDRIVER` (by default `/usr/bin/chromium` and
//! `/usr/bin/chromedriver`). Without them [`start`] panics and says how to
//! get them: a browser test fails, it is never skipped.
//!
//! Each [`Browser`] is a chromedriver and a Chromium of its own, with a
//! fresh profile and its own clipboard, so tests run in parallel. Dropping
//! it (a test that panics drops it too) ends both and deletes the profile.
//!
//! A click through WebDriver is a user's click: a page's
//! `navigator.clipboard.writeText` succeeds on it, and is refused without
//! one, as for a user. [`Browser::clipboard_text`] reads the clipboard
//! back.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use url::Url;

/// What a test that has no browser tells the developer.
const HOW_TO_GET: &str = "run the tests with `scripts/test`, which installs Debian's chromium and \
     chromium-driver, or install them (apt-get install chromium chromium-driver), or set \
     API_TOKENS_CHROMIUM and API_TOKENS_CHROMEDRIVER to a Chromium and its chromedriver";

/// How long chromedriver may take to start or to quit its browser, and a
/// page to show a text.
const PATIENCE: Duration = Duration::from_secs(10);

/// A headless Chromium with a WebDriver session open: use it as the
/// fantoccini [`Client`] it derefs to.
pub struct Browser {
    client: Client,
    test: String,
    screenshots_taken: AtomicUsize,
    // Last, so dropped after the client that talks to it.
    driver: Driver,
}

/// Starts chromedriver and a headless Chromium and opens a session.
/// `test` names the folder of the browser's screenshots,
/// `target/browser-screenshots/<test>/`, which this empties: give each
/// browser of a run its own name.
pub async fn start(test: &str) -> Browser {
    assert_file_name(test);
    let chromium = program("API_TOKENS_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = program("API_TOKENS_CHROMEDRIVER", "/usr/bin/chromedriver");
    let mut driver = Driver::start(test, &chromedriver).await;
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                // Chromium will not run sandboxed as root, which CI is.
                "--no-sandbox",
                "--disable-gpu",
                // /dev/shm is small in containers; a full one crashes tabs.
                "--disable-dev-shm-usage",
                // Nothing from outside: the tests talk to loopback only.
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", driver.dir.join("profile").display()),
                // Over a pipe, Chromium quits when its chromedriver dies
                // (a test killed, say); over a port it would outlive it.
                "--remote-debugging-pipe",
            ],
            // Start on about:blank (4: open the startup URLs), not on the
            // new tab page: chromedriver's first command waits for that
            // page, which began to load only after 5 s in one start of
            // ten when browsers started side by side.
            "prefs": {
                "session.restore_on_startup": 4,
                "session.startup_urls": ["about:blank"],
            },
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("the capabilities are a JSON object")
    };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "chromedriver could not start {}: {error}\n{}",
                chromium.display(),
                driver.output()
            )
        });
    driver.session = client.session_id().await.expect("the session's id");
    // A window opened on a startup URL is not focused, and a page without
    // focus cannot use the clipboard: click into it, as a user would,
    // while it shows about:blank, where nothing reacts to a click.
    let blank = client.find(Locator::Css("html")).await;
    blank
        .expect("about:blank")
        .click()
        .await
        .expect("a click on about:blank");
    let screenshots = screenshots_dir(test);
    match fs::remove_dir_all(&screenshots) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            panic!("cannot empty {}: {error}", screenshots.display())
        }
        _ => {}
    }
    Browser {
        client,
        test: test.to_owned(),
        screenshots_taken: AtomicUsize::new(0),
        driver,
    }
}

impl Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Browser {
    /// Saves what the window shows as
    /// `target/browser-screenshots/<test>/<NN>-<step>.png`, numbered in the
    /// order taken, and returns the file's path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        assert_file_name(step);
        let png = self.client.screenshot().await.expect("a screenshot");
        let number = self.screenshots_taken.fetch_add(1, Ordering::Relaxed) + 1;
        let dir = screenshots_dir(&self.test);
        fs::create_dir_all(&dir).expect("the screenshots' folder");
        let path = dir.join(format!("{number:02}-{step}.png"));
        fs::write(&path, png).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        path
    }

    /// What the browser's clipboard holds, read by the page as
    /// `navigator.clipboard.readText()`: the clipboard a user pastes from.
    /// The page must be a secure context, as one served from 127.0.0.1 is.
    ///
    /// Reading needs the `clipboard-read` permission, which a headless
    /// browser cannot ask the user for: this grants it for the page's
    /// origin just for the read, then sets it back to `prompt`, as in a
    /// fresh profile. (While granted, Chromium also lets a page write the
    /// clipboard without a click, so it must not stay granted: the tests
    /// would miss a page that copies at the wrong time.)
    pub async fn clipboard_text(&self) -> String {
        self.set_permission("clipboard-read", "granted").await;
        let read = self
            .client
            .execute_async(
                "const done = arguments[0];
                 navigator.clipboard.readText().then(
                     text => done({ text }),
                     error => done({ error: String(error) }));",
                vec![],
            )
            .await;
        self.set_permission("clipboard-read", "prompt").await;
        let read = read.expect("the clipboard-reading script runs");
        match (read["text"].as_str(), read["error"].as_str()) {
            (Some(text), _) => text.to_owned(),
            (None, error) => panic!("the page cannot read the clipboard: {error:?}"),
        }
    }

    /// Waits until the element `css` is on the page and its text is
    /// `expected` (what a script shows once a promise settles, say), and
    /// fails after a few seconds saying what the text was.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        let mut text = None;
        while Instant::now() < deadline {
            // Any error: the page may be between two documents; look again.
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(shown) = element.text().await
            {
                if shown == expected {
                    return;
                }
                text = Some(shown);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{css} should show {expected:?}, but shows {text:?} (None: not on the page)");
    }

    /// Ends the session, which quits the browser, then chromedriver.
    pub async fn close(mut self) {
        self.client
            .clone()
            .close()
            .await
            .expect("the browser quits");
        self.driver.session = None;
    }

    /// WebDriver's Set Permission, from the Permissions spec, which
    /// chromedriver implements: `name` is `state` for the page's origin.
    async fn set_permission(&self, name: &'static str, state: &'static str) {
        self.client
            .issue_cmd(SetPermission { name, state })
            .await
            .unwrap_or_else(|error| panic!("cannot set {name} to {state}: {error}"));
    }
}

#[derive(Debug)]
struct SetPermission {
    name: &'static str,
    state: &'static str,
}

impl WebDriverCompatibleCommand for SetPermission {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        let session = session.expect("a session is open");
        base.join(&format!("session/{session}/permissions"))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        let body = json!({ "descriptor": { "name": self.name }, "state": self.state });
        (Method::POST, Some(body.to_string()))
    }
}

/// A chromedriver listening on a loopback port, with a folder for the
/// browser's profile and chromedriver's output. On drop it ends the
/// session, if still open, then chromedriver, and deletes the folder.
struct Driver {
    process: Child,
    port: u16,
    session: Option<String>,
    dir: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits until it
    /// listens.
    async fn start(test: &str, chromedriver: &Path) -> Driver {
        // Port 0: chromedriver takes a port free on [::1] and listens on
        // 127.0.0.1 too, where another socket may hold that port (one
        // start in about twenty here): it then exits, and the next try
        // gets another port. Ten tries make all ten fail about once in
        // 10^13 starts; three failed about once in 8,000, too often for
        // eight starts a run.
        const TRIES: usize = 10;
        let mut output = String::new();
        for _ in 0..TRIES {
            let mut driver = Driver::spawn(test, chromedriver);
            match driver.said_port().await {
                Ok(port) => {
                    driver.port = port;
                    return driver;
                }
                Err(exited) => output = exited,
            }
        }
        panic!("chromedriver exited {TRIES} times; the last time:\n{output}");
    }

    /// Runs `chromedriver --port=0`, in a folder of its own.
    fn spawn(test: &str, chromedriver: &Path) -> Driver {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "browser/{test}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("the browser's folder");
        let output = File::create(dir.join("chromedriver.out")).expect("chromedriver.out");
        let process = Command::new(chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("chromedriver.out"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {}: {error}; {HOW_TO_GET}",
                    chromedriver.display()
                )
            });
        Driver {
            process,
            port: 0,
            session: None,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port chromedriver listens on, once it has said so, or what it
    /// said if it exited instead.
    async fn said_port(&mut self) -> Result<u16, String> {
        const SAYS: &str = "ChromeDriver was started successfully on port ";
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            let output = self.output();
            // Whole lines only: the last one may be half written.
            let lines = &output[..output.rfind('\n').map_or(0, |end| end + 1)];
            let port = lines.lines().find_map(|line| {
                let port = line.strip_prefix(SAYS)?.strip_suffix('.')?;
                port.parse().ok()
            });
            if let Some(port) = port {
                return Ok(port);
            }
            if let Some(status) = self.process.try_wait().expect("chromedriver's status") {
                return Err(format!("({status}) {output}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "chromedriver did not say its port within {PATIENCE:?}:\n{}",
            self.output()
        );
    }

    /// WebDriver's Delete Session, by hand: a drop cannot wait for
    /// fantoccini. chromedriver answers once Chromium has quit (and keeps
    /// the connection open after, whatever its `Connection: close` says,
    /// so the answer's first bytes are all we wait for).
    fn quit(&self, session: &str) {
        let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let request = format!("DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read(&mut [0; 512]);
        }
    }

    /// What chromedriver printed, for a failure's message.
    fn output(&self) -> String {
        fs::read_to_string(self.dir.join("chromedriver.out")).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium writes its profile as it quits: killing chromedriver
        // first would have it write into a folder being deleted. No
        // panics here: this runs while a failed test unwinds too.
        if let Some(session) = &self.session {
            self.quit(session);
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The program the environment variable `var` names, or `default`.
fn program(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "no {} ({var}): {HOW_TO_GET}",
        path.display()
    );
    path
}

/// `target/browser-screenshots/<test>`, in the build's target folder
/// (`CARGO_TARGET_TMPDIR` is its `tmp`), wherever CARGO_TARGET_DIR puts it.
fn screenshots_dir(test: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent();
    target
        .expect("CARGO_TARGET_TMPDIR is in the target folder")
        .join("browser-screenshots")
        .join(test)
}

/// Test and step names become file names.
fn assert_file_name(name: &str) {
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{name:?} should be letters, digits, - and _ only: it names a file"
    );
}
