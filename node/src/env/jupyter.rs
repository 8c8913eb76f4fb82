//! Following a JupyterLab server's kernels and turning what they execute
//! into cells: code, text output, errors and figures.
//!
//! Every kernel's IOPub channel is broadcast to each WebSocket connected to
//! the kernel (`/api/kernels/{id}/channels`), so the node connects as one
//! more listener: it sees every execution, from any notebook or console,
//! without changing the kernel or slowing it down.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::containers::Running;

/// How often the server is asked for new kernels.
const POLL: Duration = Duration::from_millis(200);
/// Unanswered polls in a row after which a server counts as gone (30 s).
const GONE_AFTER: u32 = 150;
/// Text output kept per cell; the rest is summarised by its length.
pub const OUTPUT_CAP: usize = 8 * 1024;
/// Figures larger than this are left out of the feed.
pub const MAX_FIGURE: usize = 8 * 1024 * 1024;
/// Figures kept per cell; code in the container decides how many it
/// displays, so a loop of `display()` calls must not fill the node's memory.
pub const MAX_FIGURES_PER_CELL: usize = 32;
/// Executions followed at once per kernel. A kernel (or code in it) can
/// announce inputs that never finish; past this the oldest are dropped.
pub const MAX_PENDING_CELLS: usize = 64;
/// Code kept per cell, like the output.
pub const CODE_CAP: usize = 256 * 1024;
/// Cells whose code carries this marker are not recorded.
pub const IGNORE_MARKER: &str = "# tandem: ignore";

/// A figure a cell displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// One executed cell, as seen on IOPub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub kernel: String,
    pub code: String,
    pub output: String,
    pub error: Option<String>,
    pub figures: Vec<Figure>,
}

impl Cell {
    pub fn ignored(&self) -> bool {
        self.code.contains(IGNORE_MARKER)
    }
}

/// The kernels a monitor is attached to, shared so the API can say so.
pub type Followed = Arc<Mutex<HashSet<String>>>;

/// Follows a server until the returned task is aborted: new kernels are
/// picked up as they start, and finished cells are sent to `cells`.
pub fn follow(
    running: Running,
    cells: mpsc::UnboundedSender<Cell>,
) -> (tokio::task::JoinHandle<()>, Followed) {
    let followed: Followed = Arc::default();
    let shared = followed.clone();
    let task = tokio::spawn(async move {
        let http = match super::docker::loopback_http() {
            Ok(http) => http,
            Err(e) => {
                tracing::error!(error = %e, "cannot follow JupyterLab");
                return;
            }
        };
        let list_url = format!("{}/api/kernels?token={}", running.base_url(), running.token);
        let mut silent = 0u32;
        loop {
            let answer = get_json::<Vec<KernelInfo>>(&http, &list_url, MAX_LIST_ANSWER).await;
            silent = if answer.is_some() { 0 } else { silent + 1 };
            if silent >= GONE_AFTER {
                // The server is gone (its container stopped outside Tandem).
                tracing::info!(project = %running.project_name, "JupyterLab stopped answering; no longer following it");
                return;
            }
            if let Some(kernels) = answer {
                for kernel in kernels {
                    let new = lock(&shared).insert(kernel.id.clone());
                    if new {
                        tokio::spawn(follow_kernel(
                            running.clone(),
                            kernel.id,
                            cells.clone(),
                            shared.clone(),
                        ));
                    }
                }
            }
            if cells.is_closed() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    });
    (task, followed)
}

/// Whether the server has a terminal open: while one is, the user can
/// install packages without running a cell, so drift is checked on a
/// timer as well. A server that does not answer has none.
pub async fn terminals_open(http: &reqwest::Client, running: &Running) -> bool {
    let url = format!(
        "{}/api/terminals?token={}",
        running.base_url(),
        running.token
    );
    get_json::<Vec<Value>>(http, &url, 64 * 1024)
        .await
        .is_some_and(|terminals| !terminals.is_empty())
}

/// Largest answer read from the server's kernel list (the server is the
/// container's: it may answer anything, and fast over loopback).
const MAX_LIST_ANSWER: usize = 1 << 20;

/// A JSON answer of at most `cap` bytes; anything larger, slower than the
/// client's timeout, or not that JSON is `None`.
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    cap: usize,
) -> Option<T> {
    let mut answer = http.get(url).send().await.ok()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.ok()? {
        if bytes.len() + chunk.len() > cap {
            return None;
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).ok()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Deserialize)]
struct KernelInfo {
    id: String,
}

async fn follow_kernel(
    running: Running,
    kernel: String,
    cells: mpsc::UnboundedSender<Cell>,
    followed: Followed,
) {
    let url = format!(
        "ws://127.0.0.1:{}/api/kernels/{}/channels?token={}",
        running.port, kernel, running.token
    );
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok((mut socket, _)) => {
            tracing::info!(kernel = %kernel, project = %running.project_name, "following kernel");
            let mut cells_in_flight = Collector::new(kernel.clone());
            while let Some(message) = socket.next().await {
                let text = match message {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                let Ok(message) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(cell) = cells_in_flight.observe(&message)
                    && cells.send(cell).is_err()
                {
                    break;
                }
            }
        }
        Err(e) => tracing::debug!(kernel = %kernel, error = %e, "kernel channel refused"),
    }
    // Forget it, so a restarted kernel with the same id is followed again.
    lock(&followed).remove(&kernel);
}

/// Assembles cells from IOPub messages, keyed by the execute request that
/// caused them.
pub struct Collector {
    kernel: String,
    /// Cells in flight by request id, with the order they arrived in.
    pending: HashMap<String, (u64, Cell)>,
    arrived: u64,
}

impl Collector {
    pub fn new(kernel: String) -> Self {
        Collector {
            kernel,
            pending: HashMap::new(),
            arrived: 0,
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(oldest) = self
            .pending
            .iter()
            .min_by_key(|(_, (order, _))| *order)
            .map(|(id, _)| id.clone())
        {
            tracing::debug!(kernel = %self.kernel, "too many executions in flight; forgetting the oldest");
            self.pending.remove(&oldest);
        }
    }

    fn cell(&mut self, parent: &str) -> Option<&mut Cell> {
        self.pending.get_mut(parent).map(|(_, cell)| cell)
    }

    /// Takes one message; returns a cell when its execution has finished.
    pub fn observe(&mut self, message: &Value) -> Option<Cell> {
        if message.get("channel").and_then(Value::as_str) != Some("iopub") {
            return None;
        }
        let kind = message.pointer("/header/msg_type")?.as_str()?;
        let parent = message.pointer("/parent_header/msg_id")?.as_str()?;
        let content = message.get("content")?;
        match kind {
            "execute_input" => {
                let mut code = String::new();
                push_capped_to(&mut code, content.get("code")?.as_str()?, CODE_CAP);
                if self.pending.len() >= MAX_PENDING_CELLS && !self.pending.contains_key(parent) {
                    self.drop_oldest();
                }
                self.arrived += 1;
                self.pending.insert(
                    parent.to_owned(),
                    (
                        self.arrived,
                        Cell {
                            kernel: self.kernel.clone(),
                            code,
                            ..Cell::default()
                        },
                    ),
                );
            }
            "stream" => {
                let cell = self.cell(parent)?;
                push_capped(&mut cell.output, content.get("text")?.as_str()?);
            }
            "execute_result" | "display_data" => {
                let cell = self.cell(parent)?;
                let data = content.get("data")?;
                let mut shown = false;
                for mime in ["image/png", "image/svg+xml", "image/jpeg"] {
                    let Some(value) = data.get(mime) else {
                        continue;
                    };
                    if cell.figures.len() >= MAX_FIGURES_PER_CELL {
                        break;
                    }
                    if let Some(bytes) = figure_bytes(mime, value)
                        && bytes.len() <= MAX_FIGURE
                    {
                        cell.figures.push(Figure {
                            mime: mime.to_owned(),
                            bytes,
                        });
                        shown = true;
                        break;
                    }
                }
                if !shown && let Some(text) = data.get("text/plain").and_then(Value::as_str) {
                    push_capped(&mut cell.output, text);
                    push_capped(&mut cell.output, "\n");
                }
            }
            "error" => {
                let cell = self.cell(parent)?;
                let name = content
                    .get("ename")
                    .and_then(Value::as_str)
                    .unwrap_or("Error");
                let value = content.get("evalue").and_then(Value::as_str).unwrap_or("");
                let mut error = String::new();
                push_capped(&mut error, &format!("{name}: {value}"));
                cell.error = Some(error);
                if let Some(lines) = content.get("traceback").and_then(Value::as_array) {
                    for line in lines.iter().filter_map(Value::as_str) {
                        if cell.output.len() >= OUTPUT_CAP {
                            break;
                        }
                        push_capped(&mut cell.output, &tandem_protocol::text::strip_ansi(line));
                        push_capped(&mut cell.output, "\n");
                    }
                }
            }
            "status" if content.get("execution_state").and_then(Value::as_str) == Some("idle") => {
                return self.pending.remove(parent).map(|(_, cell)| cell);
            }
            _ => {}
        }
        None
    }
}

fn figure_bytes(mime: &str, value: &Value) -> Option<Vec<u8>> {
    let text = match value {
        Value::String(text) => text.clone(),
        // SVG sometimes arrives as a list of lines.
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    if mime == "image/svg+xml" {
        return Some(text.into_bytes());
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

fn push_capped(output: &mut String, text: &str) {
    push_capped_to(output, text, OUTPUT_CAP);
}

fn push_capped_to(output: &mut String, text: &str, cap: usize) {
    if output.len() >= cap {
        return;
    }
    let room = cap - output.len();
    if text.len() <= room {
        output.push_str(text);
    } else {
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        output.push_str(&text[..cut]);
        output.push_str("\n… (output cut)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server in the container that answers each request with `json`
    /// and then `padding` (JSON whitespace) `times` times, forever if
    /// `None`, as hostile code serving the JupyterLab port could.
    async fn hostile_server(json: &'static [u8], times: Option<usize>) -> String {
        const PADDING: &[u8] = &[b' '; 1024];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/api/terminals",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let length = times
                        .map(|n| format!("content-length: {}\r\n", json.len() + PADDING.len() * n))
                        .unwrap_or_default();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}\r\n"
                    );
                    socket.write_all(head.as_bytes()).await?;
                    socket.write_all(json).await?;
                    let mut sent = 0;
                    while times.is_none_or(|n| sent < n) {
                        socket.write_all(PADDING).await?;
                        sent += 1;
                    }
                    Ok::<(), std::io::Error>(())
                });
            }
        });
        url
    }

    /// Each answer here is valid JSON of the type asked for, so only the
    /// cap can refuse it.
    #[tokio::test]
    async fn a_hostile_server_is_read_at_most_to_the_cap_and_never_holds_the_reader() {
        let http = crate::env::docker::loopback_http().expect("client");
        let one = br#"[{"name": "1"}]"#;
        let small = hostile_server(one, Some(10)).await;
        let open = get_json::<Vec<Value>>(&http, &small, 64 * 1024).await;
        assert_eq!(open.map(|t| t.len()), Some(1));
        // 2 MiB against a 64 KiB cap: refused, not read whole.
        let big = hostile_server(one, Some(2048)).await;
        assert!(
            get_json::<Vec<Value>>(&http, &big, 64 * 1024)
                .await
                .is_none()
        );
        // An answer that never ends: refused at the cap, long before the
        // client's own 5 s timeout would have ended it.
        let endless = hostile_server(one, None).await;
        let started = std::time::Instant::now();
        assert!(
            get_json::<Vec<Value>>(&http, &endless, MAX_LIST_ANSWER)
                .await
                .is_none()
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }

    fn iopub(kind: &str, parent: &str, content: Value) -> Value {
        json!({
            "channel": "iopub",
            "header": {"msg_type": kind, "msg_id": "x"},
            "parent_header": {"msg_id": parent},
            "content": content,
        })
    }

    #[test]
    fn code_in_the_kernel_cannot_make_the_recorder_hold_unbounded_figures_or_cells() {
        let mut collector = Collector::new("k".into());
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG fake");
        collector.observe(&iopub(
            "execute_input",
            "a",
            json!({"code": "for _ in range(10**6): display(fig)"}),
        ));
        for _ in 0..1_000 {
            collector.observe(&iopub(
                "display_data",
                "a",
                json!({"data": {"image/png": png}}),
            ));
        }
        // Inputs that never finish, as a hostile kernel could announce.
        for i in 0..10_000 {
            collector.observe(&iopub(
                "execute_input",
                &format!("never-{i}"),
                json!({"code": "x"}),
            ));
        }
        assert!(collector.pending.len() <= MAX_PENDING_CELLS);
        collector.observe(&iopub("execute_input", "b", json!({"code": "y"})));
        let cell = collector
            .observe(&iopub("status", "b", json!({"execution_state": "idle"})))
            .expect("the newest cell is still followed");
        assert_eq!(cell.code, "y");
        // "a" was the oldest and has been forgotten; a fresh one keeps at most the cap.
        let mut collector = Collector::new("k".into());
        collector.observe(&iopub(
            "execute_input",
            "a",
            json!({"code": "x".repeat(CODE_CAP * 2)}),
        ));
        for _ in 0..1_000 {
            collector.observe(&iopub(
                "display_data",
                "a",
                json!({"data": {"image/png": png}}),
            ));
        }
        let cell = collector
            .observe(&iopub("status", "a", json!({"execution_state": "idle"})))
            .expect("cell");
        assert_eq!(cell.figures.len(), MAX_FIGURES_PER_CELL);
        assert!(cell.code.len() <= CODE_CAP + 20);
    }

    #[test]
    fn a_cell_is_assembled_from_its_messages_and_ends_at_idle() {
        let mut collector = Collector::new("k".into());
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG fake");
        let messages = [
            iopub("status", "a", json!({"execution_state": "busy"})),
            iopub("execute_input", "a", json!({"code": "print(1)\nplot()"})),
            iopub("stream", "a", json!({"name": "stdout", "text": "1\n"})),
            iopub(
                "display_data",
                "a",
                json!({"data": {"image/png": png, "text/plain": "<Figure>"}}),
            ),
            iopub("execute_result", "a", json!({"data": {"text/plain": "42"}})),
            iopub("stream", "other", json!({"text": "not ours"})),
        ];
        for message in &messages {
            assert_eq!(collector.observe(message), None);
        }
        let cell = collector
            .observe(&iopub("status", "a", json!({"execution_state": "idle"})))
            .expect("done at idle");
        assert_eq!(cell.code, "print(1)\nplot()");
        assert_eq!(cell.output, "1\n42\n");
        assert_eq!(cell.figures.len(), 1);
        assert_eq!(cell.figures[0].bytes, b"\x89PNG fake");
        assert_eq!(cell.error, None);
    }

    #[test]
    fn errors_are_kept_without_colour_codes() {
        let mut collector = Collector::new("k".into());
        collector.observe(&iopub("execute_input", "b", json!({"code": "1/0"})));
        collector.observe(&iopub(
            "error",
            "b",
            json!({"ename": "ZeroDivisionError", "evalue": "division by zero",
                   "traceback": ["\u{1b}[0;31mZeroDivisionError\u{1b}[0m: division by zero"]}),
        ));
        let cell = collector
            .observe(&iopub("status", "b", json!({"execution_state": "idle"})))
            .expect("done");
        assert_eq!(
            cell.error.as_deref(),
            Some("ZeroDivisionError: division by zero")
        );
        assert_eq!(cell.output, "ZeroDivisionError: division by zero\n");
    }

    #[test]
    fn output_is_capped_and_the_ignore_marker_is_seen() {
        let mut output = String::new();
        push_capped(&mut output, &"é".repeat(OUTPUT_CAP));
        assert!(output.len() <= OUTPUT_CAP + 20 && output.ends_with("(output cut)"));
        let cell = Cell {
            code: "x = 1  # tandem: ignore".into(),
            ..Cell::default()
        };
        assert!(cell.ignored());
    }

    #[test]
    fn messages_from_other_channels_or_malformed_ones_are_skipped() {
        let mut collector = Collector::new("k".into());
        assert_eq!(collector.observe(&json!({"channel": "shell"})), None);
        assert_eq!(collector.observe(&json!({"channel": "iopub"})), None);
        assert_eq!(collector.observe(&json!(42)), None);
        assert_eq!(
            collector.observe(&iopub(
                "status",
                "nobody",
                json!({"execution_state": "idle"})
            )),
            None
        );
    }
}
