//! The commands that make no AWS call: `validate`, `schema`, `backend`; and loading
//! manifests with their problems reported before any call.

use std::path::{Path, PathBuf};

use reconcile::app;
use reconcile::manifest;
use reconcile::render::console::Console;
use reconcile::render::messages;

use super::Outcome;

pub fn print_json(value: &serde_json::Value) -> anyhow::Result<Outcome> {
    Console::detect().json(value)?;
    Ok(Outcome::Success)
}

/// Writes generated text (completions, the man page) to standard output.
pub fn print_text(bytes: &[u8]) -> anyhow::Result<Outcome> {
    Console::detect().out(&String::from_utf8_lossy(bytes))?;
    Ok(Outcome::Success)
}

pub fn validate(args: &[PathBuf], json: bool) -> anyhow::Result<Outcome> {
    let console = Console::detect();
    // Folders as `plan` takes them.
    let files = match app::manifest_files(args) {
        Ok(f) => f,
        Err(e) => {
            console.error(&e.to_string());
            return Ok(Outcome::Failed);
        }
    };
    let results: Vec<_> = files.iter().map(|f| (f, manifest::load(f))).collect();
    let ok = results.iter().all(|(_, r)| r.is_ok());
    if json {
        let docs: Vec<_> = results
            .iter()
            .map(|(f, r)| {
                serde_json::json!({
                    "file": f.display().to_string(),
                    "valid": r.is_ok(),
                    "problems": r.as_ref().err().map(|d| d.problems.clone()).unwrap_or_default(),
                })
            })
            .collect();
        console.json(&serde_json::json!({ "format_version": "1", "manifests": docs }))?;
    } else {
        for (f, r) in &results {
            match r {
                Ok(m) => console.line(&messages::valid(f, m))?,
                Err(d) => console.err(&d.to_string()),
            }
        }
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

pub fn backend(file: &Path, parts: &[reconcile::backend::Part]) -> anyhow::Result<Outcome> {
    let console = Console::detect();
    let m = match manifest::load(file) {
        Ok(m) => m,
        Err(d) => {
            console.err(&d.to_string());
            return Ok(Outcome::Failed);
        }
    };
    match reconcile::backend::render(&m, &file.display().to_string(), parts) {
        Ok(text) => {
            console.out(&text)?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            console.error(&format!("{}: {e}", file.display()));
            Ok(Outcome::Failed)
        }
    }
}

/// The manifests loaded, or `None` once their problems are reported (before any AWS
/// call).
pub fn load_or_report(
    console: &Console,
    loaded: Result<Vec<app::Loaded>, app::Error>,
) -> anyhow::Result<Option<Vec<app::Loaded>>> {
    match loaded {
        Ok(l) => Ok(Some(l)),
        Err(app::Error::Manifests(m)) => {
            console.err(&m.to_string());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
