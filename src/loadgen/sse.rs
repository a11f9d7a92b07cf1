//! Server-sent events as OpenAI-compatible servers stream them: `data: {...}` lines, an event per
//! blank line, `data: [DONE]` at the end. Bytes arrive in arbitrary pieces (a line, or an event,
//! may be split across network reads), so the parser keeps what it has not yet seen end.
//!
//! migbench's simulated server stamps its events with the simulated instant they were made, in
//! a comment line (`: sim-t=SECONDS`) that other clients skip; the parser hands the last stamp
//! seen to every event after it.

/// The SSE comment by which the simulated server stamps the events after it with the simulated
/// instant they were made: a stamped stream is timed by its stamps, not by the wall clock.
pub const STAMP: &str = ": sim-t=";
/// The request header by which migbench's load generator says it reads stamps and answers each
/// stream's end (so the simulated clock may wait for it); other clients do not. Its value is the
/// request's number in the load: requests that reach the simulated server at one simulated
/// instant are queued by it, as the order in which the network delivers them varies.
pub const STAMPED_CLIENT: &str = "x-migbench-sim-clock";

/// One event: its `data`, and the simulated instant of the last stamp before it.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub data: String,
    pub stamp: Option<f64>,
}

/// An incremental parser: feed it the bytes as they arrive, take out whole events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes after the last line ending seen.
    pending: Vec<u8>,
    /// `data` lines of the event being read, joined with `\n`; `None` before the first.
    data: Option<String>,
    /// The last byte fed was `\r`: a `\n` right after it belongs to the same line ending.
    after_cr: bool,
    /// The last stamp seen.
    stamp: Option<f64>,
}

impl SseParser {
    /// Feeds `bytes`; returns each event they complete, in order. Lines are ended by `\n`,
    /// `\r\n` or `\r`; several `data` lines of one event are joined with `\n`; comments (`:`)
    /// other than stamps, and the `event`, `id` and `retry` fields, are skipped.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if std::mem::take(&mut self.after_cr) && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        // Line by line (a simulated stream's read holds hundreds of events).
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.pending.is_empty() {
                self.line(&String::from_utf8_lossy(&rest[..end]), &mut events);
            } else {
                self.pending.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.pending);
                self.line(&String::from_utf8_lossy(&line), &mut events);
            }
            let cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.pending.extend_from_slice(rest);
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(SseEvent {
                    data,
                    stamp: self.stamp,
                });
            }
            return;
        }
        if let Some(t) = line.strip_prefix(STAMP) {
            self.stamp = t.trim().parse().ok().filter(|t: &f64| t.is_finite());
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: Vec<SseEvent>) -> Vec<String> {
        events.into_iter().map(|e| e.data).collect()
    }

    #[test]
    fn events_split_anywhere_come_out_whole_and_in_order() {
        let stream = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";
        for cut in 0..stream.len() {
            let mut p = SseParser::default();
            let mut got = data(p.feed(&stream[..cut]));
            got.extend(data(p.feed(&stream[cut..])));
            assert_eq!(got, ["{\"a\":1}", "{\"b\":2}", "[DONE]"], "cut at {cut}");
        }
    }

    #[test]
    fn multi_line_data_is_joined_and_other_fields_are_skipped() {
        let mut p = SseParser::default();
        let got = data(p.feed(b"event: message\nid: 7\ndata: one\ndata:two\r\rdata: x"));
        assert_eq!(got, ["one\ntwo"]);
        // The last event has no blank line yet: nothing until it comes.
        assert_eq!(data(p.feed(b"\n")), Vec::<String>::new());
        assert_eq!(data(p.feed(b"\n")), ["x"]);
    }

    #[test]
    fn a_utf8_character_split_across_reads_survives() {
        let text = "data: caf\u{e9}\n\n".as_bytes();
        let mut p = SseParser::default();
        let mut got = data(p.feed(&text[..10]));
        got.extend(data(p.feed(&text[10..])));
        assert_eq!(got, ["caf\u{e9}"]);
    }

    #[test]
    fn stamps_carry_over_to_the_events_after_them() {
        let mut p = SseParser::default();
        let got = p
            .feed(b"data: a\n\n: sim-t=1.25\ndata: b\n\ndata: c\n\n: sim-t=2\n: keep\ndata: d\n\n");
        let stamps: Vec<Option<f64>> = got.iter().map(|e| e.stamp).collect();
        assert_eq!(stamps, [None, Some(1.25), Some(1.25), Some(2.0)]);
        assert_eq!(data(got), ["a", "b", "c", "d"]);
    }
}
