//! The commands behind the command line, one module each; `main` picks the exit code
//! from the [`Outcome`] they end with.

pub mod apply;
pub mod args;
pub mod init;
pub mod offline;
pub mod plan;

/// What a command ended with, before it becomes an exit code.
pub enum Outcome {
    Success,
    /// Changes are present (exit 2 with `--detailed-exitcode`).
    Changes,
    /// The user's input or the world was wrong; the message has already been printed.
    Failed,
    /// `apply` stopped at a wait longer than `--max-wait` (exit 3 with
    /// `--detailed-exitcode`, else 0).
    Paused,
    /// Stopped by Ctrl-C (exit 130).
    Interrupted,
}

/// Runs a command on a runtime of its own. The runtime is then shut down without waiting
/// for a thread still blocked (a question on the terminal left unanswered at Ctrl-C).
pub fn block_on<F: std::future::Future<Output = anyhow::Result<Outcome>>>(
    command: F,
) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(command);
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    outcome
}

/// The error is a write to a closed pipe (`reconcile plan | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    e.downcast_ref::<std::io::Error>().map(|e| e.kind()) == pipe
        || e.downcast_ref::<serde_json::Error>()
            .and_then(|e| e.io_error_kind())
            == pipe
}
