//! A problem found in a manifest: what is wrong, where (JSON path and line:column), and
//! what to do about it.

use std::fmt;

use serde::Serialize;

use super::span::{Path, Pos, SpanIndex};

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// JSON path of the offending field, e.g. `load_balancer.listeners[1].certificate`;
    /// empty for the document as a whole.
    pub path: String,
    /// 1-based line where the field (or its nearest enclosing field) starts, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong, as a sentence.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(path: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: path.as_str().to_owned(),
            line: None,
            column: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn at(mut self, pos: Option<Pos>) -> Diagnostic {
        if let Some(pos) = pos {
            self.line = Some(pos.line);
            self.column = Some(pos.column);
        }
        self
    }

    /// Fills in line and column from the index when not already known.
    pub fn locate(mut self, spans: &SpanIndex) -> Diagnostic {
        if self.line.is_none() {
            let pos = spans.nearest(&self.path);
            self = self.at(pos);
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "{path}")?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        // Values quoted in messages are shown with invisible and control characters
        // escaped, so that a manifest cannot drive the terminal.
        write!(f, ": {}", super::span::visible(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", super::span::visible(hint))?;
        }
        Ok(())
    }
}

/// How many problems the human report shows; the JSON report has them all.
const MAX_SHOWN: usize = 100;

/// Every problem found in one manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub file: String,
    pub problems: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {n} problem{} in the manifest; nothing was sent to AWS",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(MAX_SHOWN) {
            writeln!(f, "error: {p}")?;
        }
        if n > MAX_SHOWN {
            writeln!(
                f,
                "... and {} more problems (`reconcile validate --json` lists them all)",
                n - MAX_SHOWN
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
