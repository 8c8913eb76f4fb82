//! A small blocking W3C WebDriver client for the web UI end-to-end tests.
//!
//! [`Browser::start`] runs a private `chromedriver` on a free loopback port
//! and opens one headless Chromium session with its own throwaway profile,
//! so two browsers in one test are two separate users (no shared cookies or
//! storage). Everything is blocking and panics with a message that says what
//! was being done and what WebDriver answered: these are test helpers, and a
//! failed step should fail the test loudly rather than be handled.
//!
//! It talks to chromedriver through the kit's blocking HTTP client
//! ([`crate::http`]) instead of pulling in an async WebDriver crate: the
//! tests only need a handful of commands, and a synchronous client keeps
//! them easy to read and free of a runtime.
//!
//! Headless Chromium is required, never optional: if it is missing,
//! [`Browser::start`] panics with the install command rather than skipping,
//! so a machine without a browser cannot pass the web UI tests by accident.

use std::fmt;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key under which W3C WebDriver wraps a reference to a DOM element, in
/// command results and in script arguments (the "web element identifier" of
/// the spec; chromedriver uses exactly this string).
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long [`Browser::find`] waits for an element to appear: pages render
/// asynchronously, so a test asks for what it expects and lets this wait.
pub const FIND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the waiting helpers poll.
const POLL: Duration = Duration::from_millis(100);

/// Timeout of one HTTP exchange with chromedriver; longer than the
/// page-load and script timeouts of the session, so those report first with
/// WebDriver's own message.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long chromedriver may take to answer `/status` as ready.
const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The message when the browser or its driver is not installed.
const MISSING: &str =
    "headless Chromium is needed for the web UI tests: apt-get install chromium chromium-driver";

/// Chromium's switches. `--no-sandbox` is needed because the tests run as
/// root (in containers), where Chromium refuses to start with its sandbox;
/// `--disable-dev-shm-usage` because containers often have a tiny
/// `/dev/shm`, which makes Chromium crash on large pages.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
];

/// An error answered by WebDriver (or a failure to reach it).
#[derive(Debug, Clone)]
struct WdError {
    /// The HTTP status, 0 when chromedriver could not be reached.
    status: u16,
    /// The W3C error code, such as `no such element`.
    error: String,
    message: String,
}

impl WdError {
    fn transport(e: impl fmt::Display) -> Self {
        Self {
            status: 0,
            error: "transport error".into(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for WdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.error, self.status, self.message)
    }
}

/// Where a session lives: enough to send it commands. Cheap to clone, so
/// every [`Element`] carries its own copy instead of borrowing the browser.
#[derive(Debug, Clone)]
struct Session {
    port: u16,
    id: String,
}

impl Session {
    /// Sends one command to `/session/{id}{suffix}`.
    fn try_cmd(&self, method: &str, suffix: &str, body: Option<&Value>) -> Result<Value, WdError> {
        command(
            self.port,
            method,
            &format!("/session/{}{suffix}", self.id),
            body,
        )
    }

    /// Like [`Session::try_cmd`], panicking with `what` and WebDriver's error.
    fn cmd(&self, what: &str, method: &str, suffix: &str, body: Option<&Value>) -> Value {
        self.try_cmd(method, suffix, body)
            .unwrap_or_else(|e| panic!("WebDriver: {what} failed: {e}"))
    }

    /// The page's URL for error messages; never panics, since it is called
    /// while reporting another failure.
    fn url_for_message(&self) -> String {
        match self.try_cmd("GET", "/url", None) {
            Ok(Value::String(url)) => url,
            Ok(other) => other.to_string(),
            Err(e) => format!("<unknown URL: {e}>"),
        }
    }

    fn element(&self, value: &Value, selector: &str) -> Element {
        Element::from_value(self.clone(), value, selector).unwrap_or_else(|| {
            panic!("WebDriver: finding `{selector}` returned no element reference: {value}")
        })
    }

    /// Finds the first element matching `css` under `root` (an element id)
    /// or the document; `Ok(None)` when there is none yet.
    fn try_find(&self, root: Option<&str>, css: &str) -> Result<Option<Element>, WdError> {
        let suffix = match root {
            Some(id) => format!("/element/{id}/element"),
            None => "/element".to_owned(),
        };
        let body = json!({"using": "css selector", "value": css});
        match self.try_cmd("POST", &suffix, Some(&body)) {
            Ok(value) => Ok(Some(self.element(&value, css))),
            Err(e) if e.error == "no such element" => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn try_find_all(&self, root: Option<&str>, css: &str) -> Result<Vec<Element>, WdError> {
        let suffix = match root {
            Some(id) => format!("/element/{id}/elements"),
            None => "/elements".to_owned(),
        };
        let body = json!({"using": "css selector", "value": css});
        let value = self.try_cmd("POST", &suffix, Some(&body))?;
        let list = value.as_array().cloned().unwrap_or_default();
        Ok(list.iter().map(|v| self.element(v, css)).collect())
    }

    /// Polls for an element for up to [`FIND_TIMEOUT`], panicking with the
    /// selector and the URL.
    fn find(&self, root: Option<&str>, css: &str) -> Element {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            match self.try_find(root, css) {
                Ok(Some(el)) => return el,
                Ok(None) => {}
                Err(e) => panic!("WebDriver: finding `{css}` failed: {e}"),
            }
            if Instant::now() >= deadline {
                panic!(
                    "WebDriver: no element matches `{css}` after {FIND_TIMEOUT:?} on {}",
                    self.url_for_message()
                );
            }
            sleep(POLL);
        }
    }
}

/// The chromedriver process; killed and reaped on drop, also when
/// [`Browser::start`] panics halfway, so no driver outlives its test.
struct Driver {
    child: Child,
    log: PathBuf,
}

impl Driver {
    /// The end of chromedriver's output, for startup error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium, driven through its own chromedriver.
///
/// Dropping it ends the session (which closes Chromium), stops chromedriver
/// and deletes the profile.
pub struct Browser {
    session: Session,
    // Field order matters: the driver is stopped before the profile it
    // points Chromium at is deleted.
    driver: Driver,
    profile: tempfile::TempDir,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("port", &self.session.port)
            .field("session", &self.session.id)
            .field("driver_pid", &self.driver.child.id())
            .field("profile", &self.profile.path())
            .finish()
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium
    /// session in a fresh temporary profile.
    ///
    /// Panics if Chromium or chromedriver is missing (the tests must fail,
    /// never skip), or if either fails to start, with chromedriver's output.
    pub fn start() -> Browser {
        let driver_bin = find_program("chromedriver", &["/usr/bin/chromedriver"])
            .unwrap_or_else(|| panic!("{MISSING} (chromedriver not found)"));
        let chromium =
            chromium_binary().unwrap_or_else(|| panic!("{MISSING} (chromium not found)"));

        let profile = tempfile::Builder::new()
            .prefix("tandem-chromium-")
            .tempdir()
            .expect("creating a temporary Chromium profile directory");
        let log = profile.path().join("chromedriver.log");
        let user_data = profile.path().join("user-data");

        // Picking a free port and handing it to chromedriver races with other
        // processes doing the same; if chromedriver dies (port taken), try
        // another port.
        let mut attempts = 0;
        let (port, driver) = loop {
            attempts += 1;
            let port = free_port();
            let log_file = File::create(&log).expect("creating chromedriver's log file");
            let child = Command::new(&driver_bin)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("cloning the log file handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", driver_bin.display()));
            let mut driver = Driver {
                child,
                log: log.clone(),
            };
            match wait_driver_ready(port, &mut driver) {
                Ok(()) => break (port, driver),
                Err(e) if attempts < 3 => {
                    eprintln!("chromedriver on port {port} failed ({e}); retrying");
                }
                Err(e) => panic!(
                    "chromedriver ({}) did not become ready: {e}\n--- chromedriver output ---\n{}",
                    driver_bin.display(),
                    driver.log_tail()
                ),
            }
        };

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", user_data.display()));
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "goog:chromeOptions": {
                        "binary": chromium.to_string_lossy(),
                        "args": args,
                    },
                    // Leave confirm()/alert() open for the test to accept or
                    // dismiss explicitly, instead of WebDriver closing them
                    // on the next command.
                    "unhandledPromptBehavior": "ignore",
                    // Fail a hung page or script before the HTTP timeout, so
                    // the error is WebDriver's and says what timed out.
                    "timeouts": {"pageLoad": 30_000, "script": 30_000, "implicit": 0},
                }
            }
        });
        let value = command(port, "POST", "/session", Some(&caps)).unwrap_or_else(|e| {
            panic!(
                "WebDriver: creating a Chromium session ({}) failed: {e}\n--- chromedriver output ---\n{}",
                chromium.display(),
                driver.log_tail()
            )
        });
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("WebDriver: new session answer has no sessionId: {value}"))
            .to_owned();
        Browser {
            session: Session { port, id },
            driver,
            profile,
        }
    }

    /// Sends any session command not wrapped here, e.g.
    /// `command("POST", "/back", Some(json!({})))`; `path` is relative to
    /// `/session/{id}`. Returns the answer's `value`.
    pub fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.session
            .cmd(&format!("{method} {path}"), method, path, body.as_ref())
    }

    /// Navigates and waits for the page load (WebDriver's default
    /// `normal` strategy).
    pub fn goto(&self, url: &str) {
        self.session.cmd(
            &format!("navigating to {url}"),
            "POST",
            "/url",
            Some(&json!({ "url": url })),
        );
    }

    /// The URL of the current page (after redirects).
    pub fn current_url(&self) -> String {
        string(self.session.cmd("reading the URL", "GET", "/url", None))
    }

    /// The document's `<title>`.
    pub fn title(&self) -> String {
        string(self.session.cmd("reading the title", "GET", "/title", None))
    }

    /// The current DOM serialized as HTML (not the bytes the server sent).
    pub fn source(&self) -> String {
        string(
            self.session
                .cmd("reading the page source", "GET", "/source", None),
        )
    }

    /// History back; waits for the page load.
    pub fn back(&self) {
        self.session
            .cmd("going back", "POST", "/back", Some(&json!({})));
    }

    /// Reloads the page; waits for the page load.
    pub fn refresh(&self) {
        self.session
            .cmd("reloading", "POST", "/refresh", Some(&json!({})));
    }

    /// The first element matching `css`, waiting up to [`FIND_TIMEOUT`] for
    /// it to appear; panics with the selector and URL if it never does.
    pub fn find(&self, css: &str) -> Element {
        self.session.find(None, css)
    }

    /// All elements matching `css` right now (no waiting).
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.session
            .try_find_all(None, css)
            .unwrap_or_else(|e| panic!("WebDriver: finding all `{css}` failed: {e}"))
    }

    /// The first element matching `css` right now, if any (no waiting).
    pub fn try_find(&self, css: &str) -> Option<Element> {
        self.session
            .try_find(None, css)
            .unwrap_or_else(|e| panic!("WebDriver: finding `{css}` failed: {e}"))
    }

    /// Waits until some element matching `css` has `needle` in its text and
    /// returns that text; panics with the texts it saw last.
    pub fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<String>;
        loop {
            // Elements may be replaced between finding and reading them
            // (stale references) while the page re-renders: poll again.
            seen = match self.session.try_find_all(None, css) {
                Ok(elements) => elements.iter().filter_map(|e| e.try_text().ok()).collect(),
                Err(e) => vec![format!("<error: {e}>")],
            };
            if let Some(hit) = seen.iter().find(|t| t.contains(needle)) {
                return hit.clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "WebDriver: no `{css}` contained {needle:?} after {timeout:?} on {}; texts seen: {seen:?}",
                    self.session.url_for_message()
                );
            }
            sleep(POLL);
        }
    }

    /// Polls `check` until it returns true; panics naming `what` after
    /// `timeout`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&Browser) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            if Instant::now() >= deadline {
                panic!(
                    "WebDriver: timed out after {timeout:?} waiting for {what} on {}",
                    self.session.url_for_message()
                );
            }
            sleep(POLL);
        }
    }

    /// Runs `script` as the body of a function (use `return` and
    /// `arguments[i]`) and returns its result. Pass elements with
    /// [`Element::as_arg`]; returned elements come back as
    /// `{ELEMENT_KEY: id}` objects ([`Browser::element_from`]).
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.session.cmd(
            &format!("running script {script:?}"),
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Runs `script` with a callback as its last argument
    /// (`arguments[arguments.length - 1]`) and returns what it is called
    /// with; times out after the session's 30 s script timeout.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.session.cmd(
            &format!("running async script {script:?}"),
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Turns an element reference returned by a script into an [`Element`].
    pub fn element_from(&self, value: &Value) -> Option<Element> {
        Element::from_value(self.session.clone(), value, "<from script>")
    }

    /// The text of the open alert/confirm/prompt, `None` if none is open.
    pub fn alert_text(&self) -> Option<String> {
        match self.session.try_cmd("GET", "/alert/text", None) {
            Ok(v) => Some(string(v)),
            Err(e) if e.error == "no such alert" => None,
            Err(e) => panic!("WebDriver: reading the alert text failed: {e}"),
        }
    }

    /// Clicks OK on the open dialog (true for `confirm()`), waiting up to
    /// [`FIND_TIMEOUT`] for one to open.
    pub fn accept_alert(&self) {
        self.close_alert("accept");
    }

    /// Clicks Cancel on the open dialog (false for `confirm()`), waiting up
    /// to [`FIND_TIMEOUT`] for one to open.
    pub fn dismiss_alert(&self) {
        self.close_alert("dismiss");
    }

    fn close_alert(&self, action: &str) {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            match self
                .session
                .try_cmd("POST", &format!("/alert/{action}"), Some(&json!({})))
            {
                Ok(_) => return,
                Err(e) if e.error == "no such alert" && Instant::now() < deadline => sleep(POLL),
                Err(e) => panic!("WebDriver: {action}ing the dialog failed: {e}"),
            }
        }
    }

    /// Saves a PNG of the viewport to `path`, creating parent directories.
    pub fn screenshot(&self, path: &Path) {
        let value = self
            .session
            .cmd("taking a screenshot", "GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(string(value))
            .expect("WebDriver: screenshot is not valid base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Resizes the outer window (the viewport is somewhat smaller).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.session.cmd(
            &format!("resizing the window to {width}x{height}"),
            "POST",
            "/window/rect",
            Some(&json!({ "width": width, "height": height })),
        );
    }

    /// The cookies visible to the current page, as WebDriver cookie objects
    /// (`name`, `value`, `domain`, `path`, `httpOnly`, ...).
    pub fn cookies(&self) -> Vec<Value> {
        match self.session.cmd("reading cookies", "GET", "/cookie", None) {
            Value::Array(list) => list,
            other => panic!("WebDriver: cookies answer is not a list: {other}"),
        }
    }

    /// chromedriver's port, e.g. to put in a failure message.
    pub fn driver_port(&self) -> u16 {
        self.session.port
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; killing only chromedriver
        // would leave it running. Errors are ignored: the test has already
        // failed or finished, and the driver is killed anyway.
        // chromedriver itself is killed and reaped by `Driver::drop`, right
        // after this.
        let _ = self.session.try_cmd("DELETE", "", None);
    }
}

/// A DOM element of a [`Browser`] page. It stays valid while the element is
/// in the document; after a re-render, find it again.
#[derive(Debug, Clone)]
pub struct Element {
    session: Session,
    id: String,
    /// How it was found, for error messages.
    selector: String,
}

impl Element {
    fn from_value(session: Session, value: &Value, selector: &str) -> Option<Element> {
        let id = value.get(ELEMENT_KEY)?.as_str()?.to_owned();
        Some(Element {
            session,
            id,
            selector: selector.to_owned(),
        })
    }

    /// The WebDriver reference, to pass as a script argument.
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    fn cmd(&self, what: &str, method: &str, suffix: &str, body: Option<&Value>) -> Value {
        self.session.cmd(
            &format!("{what} `{}`", self.selector),
            method,
            &format!("/element/{}{suffix}", self.id),
            body,
        )
    }

    /// Clicks the element's centre. Retries for a few seconds while it is
    /// covered or not yet interactable (e.g. during a CSS transition).
    pub fn click(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let suffix = format!("/element/{}/click", self.id);
        loop {
            match self.session.try_cmd("POST", &suffix, Some(&json!({}))) {
                Ok(_) => return,
                Err(e)
                    if (e.error == "element click intercepted"
                        || e.error == "element not interactable")
                        && Instant::now() < deadline =>
                {
                    sleep(POLL)
                }
                Err(e) => panic!("WebDriver: clicking `{}` failed: {e}", self.selector),
            }
        }
    }

    /// Types `text` into the element (W3C "element send keys"): focuses it
    /// and appends at the end; use [`Element::clear`] first to replace.
    pub fn type_text(&self, text: &str) {
        self.cmd(
            "typing into",
            "POST",
            "/value",
            Some(&json!({ "text": text })),
        );
    }

    /// Empties an input or textarea.
    pub fn clear(&self) {
        self.cmd("clearing", "POST", "/clear", Some(&json!({})));
    }

    /// The rendered text (hidden parts excluded, as a user sees it).
    pub fn text(&self) -> String {
        string(self.cmd("reading the text of", "GET", "/text", None))
    }

    fn try_text(&self) -> Result<String, WdError> {
        self.session
            .try_cmd("GET", &format!("/element/{}/text", self.id), None)
            .map(string)
    }

    /// The attribute as written in the HTML, `None` when absent. For live
    /// state such as an input's current value use [`Element::property`].
    pub fn attr(&self, name: &str) -> Option<String> {
        let value = self.cmd(
            &format!("reading attribute {name:?} of"),
            "GET",
            &format!("/attribute/{}", tandem_protocol::text::url_segment(name)),
            None,
        );
        match value {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }

    /// A DOM property, e.g. `value` or `checked`; `Null` when undefined.
    pub fn property(&self, name: &str) -> Value {
        self.cmd(
            &format!("reading property {name:?} of"),
            "GET",
            &format!("/property/{}", tandem_protocol::text::url_segment(name)),
            None,
        )
    }

    /// Whether a user could see it (WebDriver's visibility heuristic:
    /// `display:none`, `visibility:hidden`, zero size, ... count as hidden).
    pub fn is_displayed(&self) -> bool {
        self.cmd("checking visibility of", "GET", "/displayed", None)
            .as_bool()
            .unwrap_or(false)
    }

    /// Selects `file` in an `<input type=file>`; the path is made absolute,
    /// since chromedriver resolves it in its own working directory.
    pub fn upload(&self, file: &Path) {
        let abs = file
            .canonicalize()
            .unwrap_or_else(|e| panic!("file to upload {}: {e}", file.display()));
        let text = abs
            .to_str()
            .unwrap_or_else(|| panic!("file to upload has a non-UTF-8 path: {}", abs.display()));
        self.cmd(
            &format!("uploading {text} with"),
            "POST",
            "/value",
            Some(&json!({ "text": text })),
        );
    }

    /// The first descendant matching `css`, waiting up to [`FIND_TIMEOUT`].
    pub fn find(&self, css: &str) -> Element {
        self.session.find(Some(&self.id), css)
    }

    /// All descendants matching `css` right now.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.session
            .try_find_all(Some(&self.id), css)
            .unwrap_or_else(|e| {
                panic!(
                    "WebDriver: finding all `{css}` in `{}` failed: {e}",
                    self.selector
                )
            })
    }
}

/// A JSON string's contents, other values as JSON text.
fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// An attribute or property name as one URL path segment.
/// `name` from `$PATH`, else the first of `fallbacks` that exists.
fn find_program(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    from_path
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Debian's `/usr/bin/chromium` is a shell script that sources
/// `/etc/chromium.d` (adding flags such as `--load-extension`, and printing
/// a shell error on some `/dev/shm` setups) before running the real binary;
/// the real binary is used when present so the switches are only ours.
fn chromium_binary() -> Option<PathBuf> {
    let real = Path::new("/usr/lib/chromium/chromium");
    if real.is_file() {
        return Some(real.to_path_buf());
    }
    find_program("chromium", &["/usr/bin/chromium"])
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0 to pick a free port")
        .port()
}

/// Waits until chromedriver answers `/status` with `ready: true`.
fn wait_driver_ready(port: u16, driver: &mut Driver) -> Result<(), String> {
    let deadline = Instant::now() + DRIVER_READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = driver.child.try_wait() {
            return Err(format!("chromedriver exited with {status}"));
        }
        if let Ok(value) = command(port, "GET", "/status", None)
            && value["ready"] == Value::Bool(true)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("no ready /status after {DRIVER_READY_TIMEOUT:?}"));
        }
        sleep(POLL);
    }
}

/// One WebDriver command: sends it and returns the answer's `value`, or the
/// W3C error it carries.
fn command(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WdError> {
    let (status, bytes) = http(port, method, path, body).map_err(WdError::transport)?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|e| WdError {
        status,
        error: "invalid answer".into(),
        message: format!("{e}: {}", String::from_utf8_lossy(&bytes)),
    })?;
    let value = json.get("value").cloned().unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(value);
    }
    Err(WdError {
        status,
        error: value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned(),
        message: value["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string()),
    })
}

/// One blocking HTTP exchange with chromedriver on loopback; returns the
/// status and the body.
///
/// chromedriver (156 at least) answers `Connection: close` but keeps the
/// socket open: the answer is complete when its framing says so, which the
/// client reads rather than waiting for the end of the stream.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Vec<u8>), String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut headers = vec![("Accept", "application/json")];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json; charset=utf-8"));
    }
    crate::http::exchange(
        method,
        &format!("http://127.0.0.1:{port}{path}"),
        &headers,
        body.into_bytes(),
        HTTP_TIMEOUT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_references_use_the_w3c_key() {
        let session = Session {
            port: 1,
            id: "s".into(),
        };
        let el = Element::from_value(session, &json!({ ELEMENT_KEY: "abc" }), "#x")
            .expect("a W3C element reference");
        assert_eq!(
            el.as_arg(),
            json!({ "element-6066-11e4-a52e-4f735466cecf": "abc" })
        );
        assert_eq!(tandem_protocol::text::url_segment("data-x y"), "data-x%20y");
    }
}
