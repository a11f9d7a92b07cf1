//! Errors that point into an input file (a scenario, a mig-parted file): `file:line:column:
//! message`. Beside the scenario and layout modules rather than in either, as both use it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario that cannot be used, located in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not at one place (an unreadable file).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ScenarioError {
    /// An error at byte `span` of `text` (the start of the span is reported).
    pub fn at(file: &Path, text: &str, span: Option<Range<usize>>, message: String) -> Self {
        let offset = span.map_or(0, |s| s.start.min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ScenarioError {
            file: file.to_path_buf(),
            line,
            column,
            message: shorten_quoted(message.trim_end()),
        }
    }

    /// `what`: `the scenario`, `the mig-parted file`.
    pub fn unreadable(file: &Path, what: &str, e: &std::io::Error) -> Self {
        ScenarioError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read {what}: {e}"),
        }
    }

    pub fn io(file: &Path, e: &std::io::Error) -> Self {
        ScenarioError::unreadable(file, "the scenario", e)
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for ScenarioError {}

/// One step into a TOML document: a key of a table, or an index into an array (of tables).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where the value at `path` is in `text`: for checks made after parsing, on fields that carry
/// no span of their own (a workload's or a load's). When the value is not written (a default),
/// where its nearest enclosing table or value is; `None` when nothing on the path has a place.
pub fn span_of(text: &str, path: &[Step]) -> Option<Range<usize>> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut found = None;
    for step in path {
        let next = match *step {
            Step::Key(key) => item.get(key),
            Step::Index(i) => item.get(i),
        };
        let Some(next) = next else { break };
        item = next;
        // A `[table]` header's span; a key/value's value span.
        found = item.span().or(found);
    }
    found
}

/// Where the key that ends `path` is written (the `NAME` of `[workloads.NAME]`), else where its
/// value is.
pub fn key_span_of(text: &str, path: &[Step]) -> Option<Range<usize>> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let (Some(Step::Key(last)), parent) = (path.last(), &path[..path.len().saturating_sub(1)])
    else {
        return span_of(text, path);
    };
    let mut item = doc.as_item();
    for step in parent {
        item = match *step {
            Step::Key(key) => item.get(key),
            Step::Index(i) => item.get(i),
        }?;
    }
    let key_span = match item {
        toml_edit::Item::Table(t) => t.key(last).and_then(|k| k.span()),
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
            t.key(last).and_then(|k| k.span())
        }
        _ => None,
    };
    key_span.or_else(|| span_of(text, path))
}

/// A TOML parse error of `text`, by line and column with the parser's message alone: its
/// `Display` quotes the line it stopped at, which for a file that is not TOML at all
/// (`/etc/shadow` named as a workload) would print the file.
pub fn toml_error(file: &Path, text: &str, e: &toml::de::Error) -> ScenarioError {
    let message = match e.message().trim() {
        // The TOML parser says nothing about some bytes (a NUL in a comment).
        "" => unexpected(text, e.span()),
        m => m.to_string(),
    };
    ScenarioError::at(file, text, e.span(), message)
}

/// What is wrong with JSON `text` (a whole file, or a line of a JSONL file), quoting nothing of a
/// text that is not even a JSON object: serde_json's message for a string where an object
/// belongs quotes the string, which for a file named by mistake is its first line. Where it is
/// wrong is `e.line()` and `e.column()`.
pub fn json_error(text: &str, e: &serde_json::Error) -> String {
    // serde_json's syntax messages say what was expected, never what was found.
    let message = e.to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    if !e.is_data() {
        return format!("not JSON: {message}");
    }
    let found = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) | Err(_) => return shorten_quoted(message),
        Ok(serde_json::Value::Null) => "null",
        Ok(serde_json::Value::Bool(_)) => "a boolean",
        Ok(serde_json::Value::Number(_)) => "a number",
        Ok(serde_json::Value::String(_)) => "a string",
        Ok(serde_json::Value::Array(_)) => "a list",
    };
    format!("found {found}, not an object")
}

/// An error at the first byte of `bytes` that is not UTF-8, by line and column.
pub fn not_utf8(file: &Path, bytes: &[u8], e: &std::str::Utf8Error) -> ScenarioError {
    let valid = &bytes[..e.valid_up_to()];
    // Valid by construction.
    let text = std::str::from_utf8(valid).unwrap_or_default();
    ScenarioError::at(
        file,
        text,
        Some(text.len()..text.len()),
        format!(
            "not UTF-8: byte 0x{:02x} at offset {} cannot start or continue a character; a \
             scenario is UTF-8 text",
            bytes[e.valid_up_to()],
            e.valid_up_to()
        ),
    )
}

/// "not valid TOML here", naming the character at the start of `span`.
pub fn unexpected(text: &str, span: Option<Range<usize>>) -> String {
    let at = span.map_or(0, |s| s.start.min(text.len()));
    match text.get(at..).and_then(|rest| rest.chars().next()) {
        Some(c) if c.is_control() => format!(
            "not valid TOML here: found the control character U+{:04X}; TOML allows none but tab \
             outside strings, and none but tab in strings unless escaped",
            c as u32
        ),
        Some(c) => format!(
            "not valid TOML here: found {}",
            crate::bounds::quote(&c.to_string())
        ),
        None => "not valid TOML: the file ends too soon".to_string(),
    }
}

/// `message` with every value quoted in it (`"..."` or `` `...` ``, as serde and the TOML parser
/// quote what they found) cut short when long: a megabyte-long value stays one readable line.
fn shorten_quoted(message: &str) -> String {
    const LONG: usize = 80;
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            rest = after;
            break;
        };
        let inside = &after[..close];
        if inside.len() > LONG {
            out.push_str(&crate::bounds::short(inside));
            out.push(quote);
            out.push_str(&format!(" ({} bytes)", inside.len()));
        } else {
            out.push_str(inside);
            out.push(quote);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}
