//! `reconcile validate`: the bad-manifest corpus and the good manifests, through the binary.

use serde::Deserialize;

use crate::support::{assert_no_panic, reconcile, repo_file, stderr, stdout};

/// Every file under tests/bad with the JSON path its report must name.
fn corpus() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file("tests/bad/EXPECTED.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (file, path) = l.split_once('\t').unwrap_or((l, ""));
            (file.to_owned(), path.to_owned())
        })
        .collect()
}

#[test]
fn corpus_covers_every_bad_file() {
    let listed: std::collections::BTreeSet<String> = corpus().into_iter().map(|c| c.0).collect();
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(repo_file("tests/bad"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(
        listed, on_disk,
        "tests/bad/EXPECTED.tsv and the files disagree"
    );
    assert!(
        listed.len() >= 25,
        "the corpus needs at least 25 bad manifests"
    );
}

#[test]
fn every_bad_manifest_exits_1_and_names_its_path() {
    for (file, path) in corpus() {
        let rel = format!("tests/bad/{file}");
        let out = reconcile(&["validate", "-f", &rel]);
        assert_no_panic(&out, &rel);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{rel}: exit code\n{err}");
        let shown = if path.is_empty() { "(document)" } else { &path };
        assert!(
            err.contains(&format!("error: {shown} (line "))
                || err.contains(&format!("error: {shown}:")),
            "{rel}: the report does not name {shown}\n{err}"
        );
        assert!(err.contains("nothing was sent to AWS"), "{rel}\n{err}");
    }
}

#[derive(Deserialize)]
struct Report {
    format_version: String,
    manifests: Vec<FileReport>,
}

#[derive(Deserialize)]
struct FileReport {
    file: String,
    valid: bool,
    problems: Vec<Problem>,
}

#[derive(Deserialize)]
struct Problem {
    path: String,
    line: Option<usize>,
    message: String,
    hint: Option<String>,
}

#[test]
fn json_report_lists_every_problem_with_path_line_and_hint() {
    let out = reconcile(&[
        "validate",
        "--json",
        "-f",
        "tests/bad/dangling-certificate.json",
        "-f",
        "manifests/site.example.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Report = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report.format_version, "1");
    let [bad, good] = &report.manifests[..] else {
        panic!("two reports")
    };
    assert!(bad.file.ends_with("dangling-certificate.json"));
    assert!(!bad.valid && good.valid && good.problems.is_empty());
    let p = &bad.problems[0];
    assert_eq!(p.path, "load_balancer.listeners[1].certificate");
    assert!(p.line.is_some() && p.message.contains("sitee"));
    assert!(p.hint.as_deref().unwrap_or("").contains("\"site\""));
}

#[test]
fn several_problems_are_reported_at_once() {
    let text = std::fs::read_to_string(repo_file("manifests/site.example.json")).unwrap();
    let bad = text
        .replace("\"port\": 80,", "\"port\": 0,")
        .replace("\"forward\": \"app\"", "\"forward\": \"ap\"")
        .replace("\"matcher\": \"200\"", "\"matcher\": \"2xx\"")
        .replace(
            "\"stack\": \"www-example\"",
            "\"stack\": \"www-example\", \"stak\": 1",
        )
        .replace("\"owner\": \"web-team\"", "\"owner\": 7");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.json");
    std::fs::write(&f, bad).unwrap();
    let out = reconcile(&["validate", "-f", f.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    for path in [
        "stak",
        "error: tags.owner (",
        "load_balancer.listeners[1].forward",
        "health_check.matcher",
        "port (line",
    ] {
        assert!(err.contains(path), "missing {path}\n{err}");
    }
}

#[test]
fn example_and_variants_are_accepted() {
    let shared = repo_file("../shared/spec/site.example.json");
    let mut files = vec![];
    if shared.exists() {
        files.push(shared.to_string_lossy().into_owned());
    }
    for e in std::fs::read_dir(repo_file("manifests")).unwrap() {
        files.push(e.unwrap().path().to_string_lossy().into_owned());
    }
    assert!(files.len() >= 4, "the example and its three variants");
    for f in files {
        let out = reconcile(&["validate", "-f", &f]);
        assert_eq!(out.status.code(), Some(0), "{f}\n{}", stderr(&out));
        assert!(stdout(&out).contains("valid"));
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = reconcile(&["validate", "-f", "no/such/manifest.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read the file"),
        "{}",
        stderr(&out)
    );
}

/// `validate` takes a folder as `plan` does: its manifests, not a JSON Schema beside them;
/// a link in it that leads nowhere is an error, not a stack silently left out.
#[test]
fn a_folder_is_validated_like_plan_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path();
    std::fs::copy(
        repo_file("manifests/site.example.json"),
        folder.join("site.json"),
    )
    .unwrap();
    std::fs::copy(
        repo_file("docs/manifest.schema.json"),
        folder.join("manifest.schema.json"),
    )
    .unwrap();
    let f = folder.to_str().unwrap();
    let out = reconcile(&["validate", "-f", f]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("site.json: valid"),
        "{}",
        stdout(&out)
    );
    std::os::unix::fs::symlink(folder.join("gone.json"), folder.join("other.json")).unwrap();
    let out = reconcile(&["validate", "-f", f]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("other.json: a link to nothing"),
        "{}",
        stderr(&out)
    );
}
