//! The terminal: the one place that writes to standard output and standard error (with
//! [`super::progress`], which writes an apply's progress). Output is written whole and
//! flushed; a closed standard error is not worth a panic, and a closed standard output is
//! an error the caller sees (`plan | head` stops writing, it does not crash).

use std::io::{IsTerminal as _, Write as _};

use super::human::Style;

/// Where the commands write, and what it is.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    /// Standard output is a terminal.
    pub terminal: bool,
    /// Standard input and output are both a terminal: someone can answer a question.
    pub interactive: bool,
    /// Colours (only on a terminal, and never with `NO_COLOR`).
    pub style: Style,
}

impl Console {
    pub fn detect() -> Console {
        let terminal = std::io::stdout().is_terminal();
        Console {
            terminal,
            interactive: terminal && std::io::stdin().is_terminal(),
            style: Style::detect(terminal),
        }
    }

    /// Writes `text` to standard output as it is.
    pub fn out(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// Writes `text` and a line end to standard output.
    pub fn line(&self, text: &str) -> std::io::Result<()> {
        self.out(&format!("{text}\n"))
    }

    /// Writes a JSON document (indented) and a line end to standard output.
    pub fn json<T: serde::Serialize>(&self, value: &T) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
        self.line(&text)
    }

    /// Writes `text` to standard error as it is.
    pub fn err(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    /// Writes `text` and a line end to standard error.
    pub fn note(&self, text: &str) {
        self.err(&format!("{text}\n"));
    }

    /// `error: <text>` on standard error.
    pub fn error(&self, text: &str) {
        self.note(&format!("error: {text}"));
    }

    /// `warning: <text>` on standard error.
    pub fn warning(&self, text: &str) {
        self.note(&format!("warning: {text}"));
    }

    /// Asks `question` on standard output and reads one line of answer, trimmed.
    pub fn ask(&self, question: &str) -> std::io::Result<String> {
        self.out(question)?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        Ok(answer.trim().to_owned())
    }
}

/// `--debug` (or `RUST_LOG`): reconcile's and the SDK's events on standard error, each AWS
/// answer with its operation, status and request id. `RUST_LOG` picks what, e.g.
/// `RUST_LOG=aws_smithy_runtime=trace`.
pub fn init_debug(debug: bool) {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    if !debug && from_env.is_none() {
        return;
    }
    let filter =
        tracing_subscriber::EnvFilter::new(from_env.unwrap_or_else(|| {
            "reconcile=debug,aws_config=info,aws_smithy_runtime=info".to_owned()
        }));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
