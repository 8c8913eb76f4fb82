//! An audit trail of what peers sent this node: with `TANDEM_WIRE_LOG`
//! set to a file path, every request and response received over the sync
//! protocol, and every gossip message, is appended to it as one JSON line. It lets a user (or a test)
//! check exactly what crossed the wire, e.g. that a peer without a role
//! never received a byte of a project.

use std::fs::File;
use std::io::Write;

use serde::Serialize;
use tandem_protocol::wire::{Request, Response};

pub const ENV: &str = "TANDEM_WIRE_LOG";

#[derive(Serialize)]
struct Line<'a> {
    from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<&'a Request>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a Response>,
    /// A gossip message: its topic and its bytes as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    gossip: Option<GossipLine<'a>>,
}

#[derive(Serialize)]
struct GossipLine<'a> {
    /// The peer that published it (gossipsub's signed source).
    source: Option<String>,
    topic: &'a str,
    /// The payload as text (sealed announcements show as noise).
    data: String,
}

/// The open log, or nothing when the variable is unset.
pub struct WireLog(Option<File>);

impl WireLog {
    pub fn from_env() -> Self {
        let file = std::env::var_os(ENV).and_then(|path| {
            let opened = crate::fsutil::open_append(std::path::Path::new(&path));
            if let Err(e) = &opened {
                tracing::warn!(error = %e, "cannot open {ENV}; not recording");
            }
            opened.ok()
        });
        Self(file)
    }

    pub fn request(&mut self, from: &str, request: &Request) {
        // An invite's secret works like a password: never written down.
        let redacted;
        let request = match request {
            Request::Join { project, .. } => {
                redacted = Request::Join {
                    project: *project,
                    secret: tandem_protocol::invite::InviteSecret::from_bytes([0; 32]),
                };
                &redacted
            }
            other => other,
        };
        self.write(Line {
            from: from.to_owned(),
            request: Some(request),
            response: None,
            gossip: None,
        });
    }

    pub fn response(&mut self, from: &str, response: &Response) {
        self.write(Line {
            from: from.to_owned(),
            request: None,
            response: Some(response),
            gossip: None,
        });
    }

    pub fn gossip(&mut self, from: &str, source: Option<String>, topic: &str, data: &[u8]) {
        self.write(Line {
            from: from.to_owned(),
            request: None,
            response: None,
            gossip: Some(GossipLine {
                source,
                topic,
                data: String::from_utf8_lossy(data).into_owned(),
            }),
        });
    }

    fn write(&mut self, line: Line<'_>) {
        let Some(file) = &mut self.0 else {
            return;
        };
        if let Ok(mut text) = serde_json::to_vec(&line) {
            text.push(b'\n');
            let _ = file.write_all(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::invite::InviteSecret;

    #[test]
    fn an_invite_secret_never_reaches_the_wire_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wire.jsonl");
        let file = crate::fsutil::open_append(&path).expect("open");
        let mut log = WireLog(Some(file));
        let project = tandem_protocol::project::Genesis::create(
            &"p".parse().expect("name"),
            &tandem_protocol::SecretKey::from_bytes([1; 32]),
            0,
            [1; 16],
        )
        .project_id();
        let secret = [0xab; 32];
        log.request(
            "12D3KooW",
            &Request::Join {
                project,
                secret: InviteSecret::from_bytes(secret),
            },
        );
        drop(log);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("join") || text.contains("Join"), "{text}");
        assert!(!text.contains(&hex::encode(secret)), "{text}");
        assert!(!text.contains(&"ab".repeat(8)), "{text}");
    }
}
