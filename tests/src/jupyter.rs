//! A small client for a JupyterLab server's own API, as a notebook front end
//! uses it: start a kernel over HTTP, execute code over the kernel's
//! WebSocket channel and wait for the reply.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::http_request;

pub struct Jupyter {
    /// `127.0.0.1:PORT`
    pub address: String,
    pub token: String,
}

/// What an execution answered.
#[derive(Debug)]
pub struct Reply {
    /// `ok` or `error`
    pub status: String,
    /// Everything the code printed on stdout.
    pub stdout: String,
}

impl Jupyter {
    /// From the URL `tandem launch` prints (`http://127.0.0.1:PORT/lab?token=T`).
    pub fn from_url(url: &str) -> Self {
        let rest = url.strip_prefix("http://").expect("an http URL");
        let (address, query) = rest.split_once('/').expect("a path");
        let token = query.split_once("token=").expect("a token").1.to_owned();
        Jupyter {
            address: address.to_owned(),
            token,
        }
    }

    /// Starts a Python kernel, as opening a notebook does; returns its id.
    pub fn start_kernel(&self) -> String {
        self.start_kernel_named("python3")
    }

    /// Starts the kernel JupyterLab knows as `name` (`python3`, `ir`).
    pub fn start_kernel_named(&self, name: &str) -> String {
        let (status, body) = http_request(
            &self.address,
            "POST",
            &format!("/api/kernels?token={}", self.token),
            &[("Content-Type", "application/json")],
            &serde_json::json!({ "name": name }).to_string(),
        );
        assert!(
            status == 200 || status == 201,
            "start kernel: {status} {body}"
        );
        let kernel: serde_json::Value = serde_json::from_str(&body).expect("kernel JSON");
        kernel["id"].as_str().expect("kernel id").to_owned()
    }

    /// A file through JupyterLab's contents API, as the notebook editor
    /// reads it (`type` notebook: its JSON as the server parsed it).
    pub fn get_notebook(&self, path: &str) -> serde_json::Value {
        let (status, body) = http_request(
            &self.address,
            "GET",
            &format!(
                "/api/contents/{path}?type=notebook&content=1&token={}",
                self.token
            ),
            &[],
            "",
        );
        assert_eq!(status, 200, "open {path} in JupyterLab: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("contents JSON");
        answer["content"].clone()
    }

    /// Saves a notebook as the notebook editor does: the server writes it
    /// with nbformat.
    pub fn save_notebook(&self, path: &str, notebook: &serde_json::Value) {
        let body = serde_json::json!({"type": "notebook", "format": "json", "content": notebook});
        let (status, answer) = http_request(
            &self.address,
            "PUT",
            &format!("/api/contents/{path}?token={}", self.token),
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        assert!(
            status == 200 || status == 201,
            "save {path}: {status} {answer}"
        );
    }

    /// Opens a terminal, as JupyterLab's launcher does; returns its name.
    pub fn open_terminal(&self) -> String {
        let (status, body) = http_request(
            &self.address,
            "POST",
            &format!("/api/terminals?token={}", self.token),
            &[("Content-Type", "application/json")],
            "{}",
        );
        assert!(
            status == 200 || status == 201,
            "open a terminal: {status} {body}"
        );
        let terminal: serde_json::Value = serde_json::from_str(&body).expect("terminal JSON");
        terminal["name"].as_str().expect("terminal name").to_owned()
    }

    /// Closes a terminal.
    pub fn close_terminal(&self, name: &str) {
        let (status, body) = http_request(
            &self.address,
            "DELETE",
            &format!("/api/terminals/{name}?token={}", self.token),
            &[],
            "",
        );
        assert!(
            status == 204 || status == 200,
            "close terminal {name}: {status} {body}"
        );
    }

    /// Runs `code` in the kernel and waits for it to finish.
    pub fn execute(&self, kernel: &str, code: &str) -> Reply {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(self.execute_async(kernel, code))
    }

    /// Runs `code` `times` times, one execution after another over one
    /// connection, as a notebook re-running a cell would; returns how long
    /// all of them took.
    pub fn execute_many(&self, kernel: &str, code: &str, times: usize) -> Duration {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut socket = self.connect(kernel).await;
            let started = std::time::Instant::now();
            for n in 0..times {
                let reply = run_one(&mut socket, &format!("many-{n}"), code).await;
                assert_eq!(reply.status, "ok", "execution {n}: {reply:?}");
            }
            started.elapsed()
        })
    }

    async fn connect(&self, kernel: &str) -> Socket {
        let url = format!(
            "ws://{}/api/kernels/{kernel}/channels?token={}",
            self.address, self.token
        );
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("kernel channel")
            .0
    }

    async fn execute_async(&self, kernel: &str, code: &str) -> Reply {
        let mut socket = self.connect(kernel).await;
        let msg_id = format!("test-{}-{}", std::process::id(), code.len());
        let reply = run_one(&mut socket, &msg_id, code).await;
        let _ = socket.close(None).await;
        reply
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run_one(socket: &mut Socket, msg_id: &str, code: &str) -> Reply {
    let request = serde_json::json!({
        "header": {
            "msg_id": msg_id,
            "username": "test",
            "session": "tandem-e2e",
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": false,
            "store_history": true,
            "user_expressions": {},
            "allow_stdin": false,
            "stop_on_error": true,
        },
        "channel": "shell",
        "buffers": [],
    });
    socket
        .send(Message::Text(request.to_string().into()))
        .await
        .expect("send execute_request");
    let mut stdout = String::new();
    let mut status = None;
    let mut idle = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while status.is_none() || !idle {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the kernel answers in time")
            .expect("the channel stays open")
            .expect("a message");
        let Message::Text(text) = next else { continue };
        let message: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        if message["parent_header"]["msg_id"] != msg_id {
            continue;
        }
        match message["header"]["msg_type"].as_str() {
            Some("stream") if message["content"]["name"] == "stdout" => {
                stdout.push_str(message["content"]["text"].as_str().unwrap_or_default());
            }
            Some("execute_reply") => {
                status = Some(
                    message["content"]["status"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned(),
                );
            }
            Some("status") if message["content"]["execution_state"] == "idle" => idle = true,
            _ => {}
        }
    }
    Reply {
        status: status.unwrap_or_default(),
        stdout,
    }
}
