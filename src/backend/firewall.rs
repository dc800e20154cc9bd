//! The host firewall output: ufw lines that open the backend ports to the VPC before the
//! migration and close the public web ports after it, in the article's order.

use std::fmt::Write as _;

use super::{comment, groups_phrase, Port, Role, Site};

pub(super) fn render(site: &Site) -> String {
    let mut o = String::new();
    comment(
        &mut o,
        "",
        &format!(
            "Host firewall (ufw) for stack {}: run as root on every backend instance.\n{}",
            site.stack,
            site.generated()
        ),
    );
    let groups = if site.backend_groups.is_empty() {
        "the backend security group".to_owned()
    } else {
        format!(
            "the backend security group ({})",
            site.backend_groups.join(", ")
        )
    };
    o.push_str("#\n");
    comment(
        &mut o,
        "",
        &format!(
            "ufw cannot see AWS security groups: {groups} is what admits the load balancer alone. These rules let that traffic through the host firewall, from the VPC's addresses only (the load balancer's nodes take addresses in its subnets)."
        ),
    );
    let region = site
        .region
        .as_deref()
        .map_or(String::new(), |r| format!(" --region {r}"));
    let _ = writeln!(
        o,
        "
# The VPC's address range: ask AWS (from a machine with the AWS CLI), or write it by hand.
VPC_CIDR=\"$(aws ec2 describe-vpcs{region} --vpc-ids {vpc} --query 'Vpcs[0].CidrBlock' --output text)\"
: \"${{VPC_CIDR:?unknown: set VPC_CIDR to the address range of the VPC}}\"

# 1. Now, before `reconcile apply` (the article: \"Ufw: opened port 8088\"): open the ports
# the load balancer sends traffic and health checks to.",
        vpc = site.vpc
    );
    for port in &site.ports {
        comment(&mut o, "", &format!("{}: {}.", port.port, purpose(port)));
        let _ = writeln!(
            o,
            "ufw allow proto tcp from \"$VPC_CIDR\" to any port {p} comment '{stack}: load balancer to {p}'",
            p = port.port,
            stack = site.stack
        );
    }
    let _ = writeln!(
        o,
        "
# 2. After `reconcile apply` has finished (DNS points at the load balancer, the answers
# given before the switch have expired, the backend group no longer admits the internet)
# and nginx's port-443 server is removed: close the public web ports. Run
# `ufw status numbered` first and delete the rules as they are written there (`443/tcp`,
# `443`, or a profile such as 'Nginx Full')."
    );
    for public in [443u16, 80] {
        let why = if site.ports.iter().any(|p| p.port == public) {
            format!("{public} stays open to the VPC (rule above); the public rule goes.")
        } else {
            format!("Nothing should reach {public} any more.")
        };
        comment(&mut o, "", &why);
        let _ = writeln!(o, "ufw delete allow {public}/tcp");
    }
    let _ = writeln!(o, "ufw status numbered");
    o
}

/// What the load balancer sends to a port, for the comment above its rule.
fn purpose(port: &Port) -> String {
    let mut what = Vec::new();
    if !port.groups.is_empty() {
        let role = match port.role {
            Role::Redirect => " (redirected to https)",
            Role::App { .. } => " (the site)",
            Role::HealthOnly => "",
        };
        what.push(format!("traffic of {}{role}", groups_phrase(&port.groups)));
    }
    let checked: Vec<String> = port
        .probes
        .iter()
        .flat_map(|p| p.groups.iter().cloned())
        .collect();
    if !checked.is_empty() {
        what.push(format!("health checks of {}", groups_phrase(&checked)));
    }
    what.join("; ")
}
