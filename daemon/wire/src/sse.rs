//! A Server-Sent Events parser: bytes in, complete messages out (no I/O, so it is easy to test).

/// One complete SSE message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseMessage {
    /// `event:` (default `message`).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// `id:` if the message had one.
    pub id: Option<String>,
}

/// Incremental parser; feed it chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: Vec<String>,
    id: Option<String>,
    saw_cr: bool,
}

/// Longest line kept; a longer one is cut, so a hostile peer cannot grow memory without bound.
const MAX_LINE: usize = 4 * 1024 * 1024;

impl SseParser {
    /// A new parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the messages they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseMessage> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.saw_cr {
                self.saw_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.saw_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(m) = self.line_done(&String::from_utf8_lossy(&line)) {
                        out.push(m);
                    }
                }
                _ if self.line.len() < MAX_LINE => self.line.push(b),
                _ => {}
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<SseMessage> {
        if line.is_empty() {
            if self.data.is_empty() {
                self.event.clear();
                return None;
            }
            let msg = SseMessage {
                event: if self.event.is_empty() {
                    "message".into()
                } else {
                    std::mem::take(&mut self.event)
                },
                data: std::mem::take(&mut self.data).join("\n"),
                id: self.id.clone(),
            };
            self.event.clear();
            return Some(msg);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_across_chunks_and_line_endings() {
        let mut p = SseParser::new();
        let mut got = p.push(b": keep-alive\n\nevent: job\nid: 7\ndata: {\"a\":");
        assert!(got.is_empty());
        got.extend(p.push(b"1}\n\r\nevent: queue\r\ndata: x\r\ndata: y\r\n\r\n"));
        assert_eq!(
            got,
            vec![
                SseMessage {
                    event: "job".into(),
                    data: "{\"a\":1}".into(),
                    id: Some("7".into())
                },
                SseMessage {
                    event: "queue".into(),
                    data: "x\ny".into(),
                    id: Some("7".into())
                },
            ]
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic, and however a stream is cut into chunks, the messages are the same.
        #[test]
        fn chunking_does_not_change_messages(bytes in proptest::collection::vec(any::<u8>(), 0..2048), cut in 1usize..64) {
            let whole = SseParser::new().push(&bytes);
            let mut p = SseParser::new();
            let mut parts = Vec::new();
            for chunk in bytes.chunks(cut) {
                parts.extend(p.push(chunk));
            }
            prop_assert_eq!(whole, parts);
        }

        /// Well-formed events round-trip.
        #[test]
        fn events_round_trip(name in "[a-z]{1,8}", data in "[ -~]{0,64}", id in 0u64..u64::MAX) {
            let text = format!("event: {name}\nid: {id}\ndata: {data}\n\n");
            let got = SseParser::new().push(text.as_bytes());
            prop_assert_eq!(got, vec![SseMessage { event: name, data, id: Some(id.to_string()) }]);
        }
    }
}
