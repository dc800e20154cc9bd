//! `reconcile init`: a manifest from the live site behind a host name.

use reconcile::manifest;
use reconcile::render::console::Console;
use reconcile::render::messages;

use super::args::AwsFlags;
use super::Outcome;

pub async fn init_cmd(
    name: &str,
    zone: Option<&str>,
    output: Option<&std::path::Path>,
    force: bool,
    (direct, redirect_at_lb): (bool, bool),
    aws: &AwsFlags,
) -> anyhow::Result<Outcome> {
    let console = Console::detect();
    if let Some(out) = output.filter(|o| o.exists() && !force) {
        console.error(&format!(
            "{} exists; nothing was written (pass --force to overwrite it)",
            out.display()
        ));
        return Ok(Outcome::Failed);
    }
    if !manifest::net::is_dns_name(name, false) {
        console.error(&format!(
            "\"{name}\" is not a host name (e.g. www.example.com)"
        ));
        return Ok(Outcome::Failed);
    }
    let opts = aws.options();
    let config = reconcile::aws::loader(&opts).load().await;
    let Some(region) = config.region().map(|r| r.to_string()) else {
        console.error("no AWS region: pass --region or set AWS_REGION");
        return Ok(Outcome::Failed);
    };
    let clients = reconcile::aws::Clients::for_run(&config, &opts);
    let meter = reconcile::aws::Meter::new();
    let found = if direct {
        reconcile::init::init_direct(&clients, &meter, name, zone, &region).await
    } else {
        reconcile::init::init(&clients, &meter, name, zone, &region, redirect_at_lb).await
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            console.error(&format!("{e}; nothing was written"));
            return Ok(Outcome::Failed);
        }
    };
    let text = serde_json::to_string_pretty(&found.manifest)? + "\n";
    console.err(&messages::init_report(&found));
    match output {
        Some(out) => {
            std::fs::write(out, &text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            console.note(&messages::init_wrote(out));
        }
        None => console.out(&text)?,
    }
    Ok(Outcome::Success)
}
