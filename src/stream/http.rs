//! Sending line protocol to an InfluxDB 1.x server: `POST
//! {url}/write?db={database}&precision=ns`, in batches of at most
//! [`BATCH_LINES`] lines, over plain HTTP (ureq, no TLS: the metrics
//! server is local). Success is `204 No Content`; any other answer is an
//! error quoting the server's message, and an unreachable server is an
//! error naming the address.

use anyhow::{bail, ensure, Result};
use std::time::Duration;

/// Lines per request (InfluxDB advises 5,000 to 10,000).
pub const BATCH_LINES: usize = 5_000;

/// Where metrics go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port`, no trailing slash.
    pub url: String,
    pub database: String,
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Target {
    /// Checks the address: `http://` only (this build has no TLS).
    pub fn new(url: &str, database: &str) -> Result<Target> {
        let url = url.trim_end_matches('/');
        ensure!(
            url.starts_with("http://") && url.len() > "http://".len(),
            "url must be an http:// address such as 'http://127.0.0.1:8086', got '{url}' (https is not supported)"
        );
        ensure!(
            !database.is_empty(),
            "database is empty; pass the name of an InfluxDB database"
        );
        Ok(Target {
            url: url.to_string(),
            database: database.to_string(),
        })
    }

    fn write_url(&self) -> String {
        format!(
            "{}/write?db={}&precision=ns",
            self.url,
            percent_encode(&self.database)
        )
    }
}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub lines: u64,
    pub requests: u64,
    pub bytes: u64,
}

/// A connection-reusing writer.
pub struct Writer {
    target: Target,
    agent: ureq::Agent,
    pub written: Written,
}

impl Writer {
    pub fn new(target: Target, timeout: Duration) -> Writer {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Writer {
            target,
            agent,
            written: Written::default(),
        }
    }

    /// Sends `lines` (each one point, no newline), in batches.
    pub fn send<S: AsRef<str>>(&mut self, lines: &[S]) -> Result<()> {
        for batch in lines.chunks(BATCH_LINES) {
            let mut body = String::new();
            for line in batch {
                body.push_str(line.as_ref());
                body.push('\n');
            }
            self.post(&body)?;
            self.written.lines += batch.len() as u64;
        }
        Ok(())
    }

    /// Sends a body of newline-terminated lines as one request.
    pub fn post(&mut self, body: &str) -> Result<()> {
        if body.is_empty() {
            return Ok(());
        }
        let url = &self.target.url;
        let mut response = match self.agent.post(&self.target.write_url()).send(body) {
            Ok(r) => r,
            Err(e) => bail!(
                "could not reach InfluxDB at {url} ({e}); start the server or pass url := 'http://host:port'"
            ),
        };
        self.written.requests += 1;
        self.written.bytes += body.len() as u64;
        let status = response.status().as_u16();
        if status != 204 {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            bail!(
                "InfluxDB at {url} answered HTTP {status} to a write to database '{}': {}",
                self.target.database,
                text.trim()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn addresses_are_checked_and_names_encoded() {
        assert!(Target::new("https://x", "db")
            .unwrap_err()
            .to_string()
            .contains("https is not supported"));
        assert!(Target::new("http://", "db").is_err());
        assert!(Target::new("http://h:1", "").is_err());
        let t = Target::new("http://127.0.0.1:8086/", "my db&x").unwrap();
        assert_eq!(
            t.write_url(),
            "http://127.0.0.1:8086/write?db=my%20db%26x&precision=ns"
        );
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut w = Writer::new(
            Target::new(&format!("http://127.0.0.1:{port}"), "db").unwrap(),
            Duration::from_secs(5),
        );
        let err = w.send(&["m x=1"]).unwrap_err().to_string();
        assert!(
            err.contains("could not reach InfluxDB at http://127.0.0.1:"),
            "{err}"
        );
    }

    /// A one-shot local listener that answers 404 with InfluxDB's JSON error.
    #[test]
    fn a_server_error_is_quoted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // The whole request (headers, then Content-Length bytes of body)
            // before answering: closing with unread bytes would reset the
            // connection before the client reads the answer.
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).unwrap();
                received.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if received.len() >= end + 4 + length {
                        break;
                    }
                }
                assert!(n > 0, "the client closed before sending its request");
            }
            let request = String::from_utf8_lossy(&received).to_string();
            let body = r#"{"error":"database not found: \"nope\""}"#;
            write!(s, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
            s.flush().unwrap();
            request
        });
        let mut w = Writer::new(
            Target::new(&format!("http://127.0.0.1:{port}"), "nope").unwrap(),
            Duration::from_secs(5),
        );
        let err = w.send(&["m x=1"]).unwrap_err().to_string();
        assert!(
            err.contains("answered HTTP 404") && err.contains("database not found"),
            "{err}"
        );
        let request = server.join().unwrap();
        assert!(
            request.starts_with("POST /write?db=nope&precision=ns HTTP/1.1"),
            "{request}"
        );
    }
}
