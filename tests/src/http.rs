//! The kit's HTTP client, reqwest's blocking one, for the node's API and
//! web UI ([`crate::TestNode::http`]), JupyterLab and chromedriver.
//!
//! Like a hand-made request it sends exactly what a test asks for (a
//! `Host` header given by the test replaces the real one, so DNS-rebinding
//! refusals can be tested), follows no redirect (a test sees the 303 of a
//! token traded for a cookie), keeps no cookies and no proxy, and opens a
//! fresh connection per request, so a node stopped and started again is
//! never reached through a stale pooled connection.
//!
//! One thing reqwest cannot send: a path it would rewrite. URLs are parsed
//! the way browsers do, so `input/../../escape.txt` leaves as `/escape.txt`
//! and a path-traversal test would silently probe a harmless path instead.
//! [`request`] sees that the parsed URL differs from the path it was given
//! and sends that request as written over a plain socket
//! ([`verbatim`]), the way an attacker's own client would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::{Method, Url, redirect};

/// How long a connection may take to open on loopback.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // iroh turns on reqwest's TLS, which then wants a crypto provider
        // even for plain HTTP; another part of the test may have set one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client::builder()
            .no_proxy()
            .redirect(redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .expect("the test kit's HTTP client")
    })
}

/// One exchange: `method url` with these headers and body, answered
/// within `timeout`. Returns the status and the body's bytes, or what went
/// wrong on the way (a method or header that is not HTTP, no connection,
/// no answer in time).
pub fn exchange(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|e| format!("{method:?} is not an HTTP method: {e}"))?;
    let mut request = client()
        .request(method.clone(), url)
        .timeout(timeout)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .map_err(|e| format!("{method} {url}: {e:#}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .map_err(|e| format!("reading the answer to {method} {url}: {e:#}"))?;
    Ok((status, bytes.to_vec()))
}

/// `method path` to `address` (host:port), with the path exactly as
/// written: through reqwest when its URL keeps the path as it is, else
/// through [`verbatim`].
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let url = format!("http://{address}{path}");
    let kept = Url::parse(&url).is_ok_and(|parsed| {
        let mut sent = parsed.path().to_owned();
        if let Some(query) = parsed.query() {
            sent.push('?');
            sent.push_str(query);
        }
        parsed.fragment().is_none() && sent == path
    });
    if kept {
        exchange(method, &url, headers, body, timeout)
    } else {
        verbatim(address, method, path, headers, &body, timeout)
    }
}

/// One HTTP/1.1 request written byte for byte as given (`Connection:
/// close`), for the paths a URL parser would rewrite; the answer is read to
/// the end of the stream.
fn verbatim(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let fail = |what: &str, e: std::io::Error| format!("{method} {path} to {address}: {what}: {e}");
    let mut stream = TcpStream::connect(address).map_err(|e| fail("connect", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| fail("timeout", e))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {address}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).map_err(|e| fail("send", e))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| fail("read", e))?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{method} {path}: no end of headers in the answer"))?;
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
    let body = &answer[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return Ok((status, dechunk(body)));
    }
    Ok((status, body.to_vec()))
}

/// A chunked body's data (its end, and any trailers, ignored).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..line]);
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        let data = &body[line + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        body = data[size..].strip_prefix(b"\r\n").unwrap_or(&data[size..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A one-shot server: answers `reply` to the first request and hands
    /// back what it received (head and body).
    fn serve_once(reply: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("read a header line");
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().expect("a length");
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("the body");
            let mut stream = reader.into_inner();
            stream.write_all(reply.as_bytes()).expect("reply");
            head.push_str(&String::from_utf8_lossy(&body));
            head
        });
        (address, thread)
    }

    #[test]
    fn a_given_host_is_sent_as_given_and_redirects_are_not_followed() {
        let (address, server) =
            serve_once("HTTP/1.1 303 See Other\r\nLocation: /x\r\nContent-Length: 2\r\n\r\nno");
        let answer = exchange(
            "POST",
            &format!("http://{address}/p?token=t"),
            &[("Host", "evil.example:80"), ("Cookie", "a=b")],
            b"body!".to_vec(),
            Duration::from_secs(10),
        );
        assert_eq!(answer, Ok((303, b"no".to_vec())));
        let seen = server.join().expect("server");
        let lower = seen.to_ascii_lowercase();
        assert!(seen.starts_with("POST /p?token=t HTTP/1.1\r\n"), "{seen}");
        assert!(lower.contains("host: evil.example:80\r\n"), "{seen}");
        assert!(!lower.contains(&format!("host: {address}")), "{seen}");
        assert!(lower.contains("cookie: a=b\r\n"), "{seen}");
        assert!(seen.ends_with("body!"), "{seen}");
    }

    /// A traversal probe reaches the node as written, not as a URL parser
    /// would tidy it; a clean path still goes through reqwest.
    #[test]
    fn paths_a_url_parser_would_rewrite_are_sent_as_written() {
        for path in [
            "/api/projects/lab/upload/input/../../escape.txt",
            "/raw/%2e%2e/key",
            "/a/./b",
            "/x#frag",
        ] {
            let (address, server) = serve_once(
                "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nno!\r\n0\r\n\r\n",
            );
            let answer = request(
                &address,
                "PUT",
                path,
                &[("Authorization", "Bearer t")],
                b"x".to_vec(),
                Duration::from_secs(10),
            );
            assert_eq!(answer, Ok((400, b"no!".to_vec())), "{path}");
            let seen = server.join().expect("server");
            assert!(
                seen.starts_with(&format!("PUT {path} HTTP/1.1\r\n")),
                "{seen}"
            );
            assert!(seen.contains(&format!("Host: {address}\r\n")), "{seen}");
            assert!(seen.ends_with("x"), "the body: {seen}");
        }
        let (address, server) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let answer = request(
            &address,
            "GET",
            "/api/projects?x=a%20b",
            &[],
            Vec::new(),
            Duration::from_secs(10),
        );
        assert_eq!(answer, Ok((200, b"ok".to_vec())));
        let seen = server.join().expect("server");
        assert!(
            seen.starts_with("GET /api/projects?x=a%20b HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(
            !seen.contains("Connection: close"),
            "reqwest, not the socket: {seen}"
        );
    }

    #[test]
    fn chunked_answers_are_read_whole_and_bad_input_is_an_error() {
        let (address, server) = serve_once(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"va\r\nA;x=1\r\nlue\":null}\r\n0\r\n\r\n",
        );
        let answer = exchange(
            "GET",
            &format!("http://{address}/"),
            &[],
            Vec::new(),
            Duration::from_secs(10),
        );
        assert_eq!(answer, Ok((200, b"{\"value\":null}".to_vec())));
        server.join().expect("server");

        let (address, server) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}");
        let short = exchange(
            "GET",
            &format!("http://{address}/"),
            &[],
            Vec::new(),
            Duration::from_secs(10),
        );
        server.join().expect("server");
        assert!(short.is_err(), "a short body is an error: {short:?}");

        let nobody = TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = nobody.local_addr().expect("address");
        drop(nobody);
        let refused = exchange(
            "GET",
            &format!("http://{closed}/"),
            &[],
            Vec::new(),
            Duration::from_secs(10),
        );
        assert!(refused.is_err(), "{refused:?}");
        assert!(
            exchange(
                "NOT A METHOD",
                "http://127.0.0.1:1/",
                &[],
                Vec::new(),
                CONNECT_TIMEOUT
            )
            .is_err()
        );
    }
}
