//! Errors that point into the scenario file: `file:line:column: message`.

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
            message: message.trim_end().to_string(),
        }
    }

    pub fn io(file: &Path, e: &std::io::Error) -> Self {
        ScenarioError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the scenario: {e}"),
        }
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
