//! The commands that make no AWS call: `validate`, `schema`, `backend`; and loading
//! manifests with their problems reported before any call.

use std::io::Write as _;
use std::path::PathBuf;

use reconcile::app;
use reconcile::manifest;

use super::Outcome;

/// Writes to standard error; a closed stderr (`2>&1 | head`) is not worth a panic.
pub fn report(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

pub fn print_json(value: &serde_json::Value) -> anyhow::Result<Outcome> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(Outcome::Success)
}

pub fn validate(files: &[PathBuf], json: bool) -> anyhow::Result<Outcome> {
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
        print_json(&serde_json::json!({ "format_version": "1", "manifests": docs }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for (f, r) in &results {
            match r {
                Ok(m) => writeln!(out, "{}: valid ({})", f.display(), summary(m))?,
                Err(d) => report(&d.to_string()),
            }
        }
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

pub fn backend(
    file: &std::path::Path,
    parts: &[reconcile::backend::Part],
) -> anyhow::Result<Outcome> {
    let m = match manifest::load(file) {
        Ok(m) => m,
        Err(d) => {
            report(&d.to_string());
            return Ok(Outcome::Failed);
        }
    };
    match reconcile::backend::render(&m, &file.display().to_string(), parts) {
        Ok(text) => {
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            Ok(Outcome::Failed)
        }
    }
}

pub fn summary(m: &manifest::Manifest) -> String {
    let records = m.dns.as_ref().map_or(0, |d| d.records.len());
    format!(
        "stack {}: {} security groups, {} target groups, {} listeners, {} DNS records",
        m.stack,
        m.security_groups.len(),
        m.target_groups.len(),
        m.load_balancer.listeners.len(),
        records
    )
}

/// Loads and validates every manifest; prints their problems and gives `None` when any is
/// invalid (before any AWS call).
pub fn load_or_report(
    files: Result<Vec<PathBuf>, app::Error>,
) -> anyhow::Result<Option<Vec<app::Loaded>>> {
    match files.and_then(|f| app::load_all(&f)) {
        Ok(l) => Ok(Some(l)),
        Err(app::Error::Manifests(m)) => {
            report(&m.to_string());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
