//! `reconcile init`: a manifest from the live site behind a host name.

use reconcile::manifest;

use super::args::AwsFlags;
use super::Outcome;

pub async fn init_cmd(
    name: &str,
    zone: Option<&str>,
    output: Option<&std::path::Path>,
    force: bool,
    aws: &AwsFlags,
) -> anyhow::Result<Outcome> {
    if let Some(out) = output.filter(|o| o.exists() && !force) {
        eprintln!(
            "error: {} exists; nothing was written (pass --force to overwrite it)",
            out.display()
        );
        return Ok(Outcome::Failed);
    }
    if !manifest::net::is_dns_name(name, false) {
        eprintln!("error: \"{name}\" is not a host name (e.g. www.example.com)");
        return Ok(Outcome::Failed);
    }
    let opts = aws.options();
    let config = reconcile::aws::loader(&opts).load().await;
    let Some(region) = config.region().map(|r| r.to_string()) else {
        eprintln!("error: no AWS region: pass --region or set AWS_REGION");
        return Ok(Outcome::Failed);
    };
    let clients = reconcile::aws::Clients::for_run(&config, &opts);
    let meter = reconcile::aws::Meter::new();
    let found = match reconcile::init::init(&clients, &meter, name, zone, &region).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}; nothing was written");
            return Ok(Outcome::Failed);
        }
    };
    let text = serde_json::to_string_pretty(&found.manifest)? + "\n";
    eprintln!("Assumptions made (check them):");
    for a in &found.assumptions {
        eprintln!("  - {a}");
    }
    if !found.review.is_empty() {
        eprintln!("To review before `reconcile apply`:");
        for r in &found.review {
            eprintln!("  - {r}");
        }
    }
    match output {
        Some(out) => {
            std::fs::write(out, &text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            eprintln!(
                "Wrote {}. Next: `reconcile plan -f {0}`, then `reconcile apply -f {0}`.",
                out.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(Outcome::Success)
}
