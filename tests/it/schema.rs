//! `reconcile schema`: the committed docs/manifest.schema.json is the generated one.

use crate::support::{reconcile, repo_file, stdout};

#[test]
fn committed_schema_is_current() {
    let out = reconcile(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let generated: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let committed =
        std::fs::read_to_string(repo_file("docs/manifest.schema.json")).unwrap_or_default();
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/manifest.schema.json is stale: run `cargo run -q -- schema > docs/manifest.schema.json`"
    );
}

#[test]
fn schema_names_every_top_level_field() {
    let out = reconcile(&["schema"]);
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for field in [
        "version",
        "stack",
        "vpc",
        "certificates",
        "security_groups",
        "target_groups",
        "load_balancer",
        "dns",
    ] {
        assert!(props.contains_key(field), "{field}");
    }
}
