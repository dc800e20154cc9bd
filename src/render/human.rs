//! The plan for people: Terraform-like symbols (`+ ~ - -/+`), grouped by the step in which
//! they run, each change with its reason and attributes, each gate with its expected wait.

use std::fmt::Write as _;

use crate::plan::{Action, Change, DnsStep, Gate, NodeKind, Plan};

/// Colours, used only on a terminal and when `NO_COLOR` is unset.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

/// `--color`: when to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Sets `--color` for the process (once, before anything is written).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

impl Style {
    /// Colour as `--color` says: by default when `is_terminal` and the user has not asked
    /// for none (`NO_COLOR`).
    pub fn detect(is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match COLOR.get().copied().unwrap_or_default() {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        Style { color }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn action(&self, a: Action) -> String {
        let code = match a {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
            Action::Adopt => "36",
        };
        self.paint(code, &format!("{:>3}", a.symbol()))
    }
}

/// Seconds since the epoch as `2026-11-24 09:13:48 UTC`.
pub fn utc(epoch: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| format!("{epoch} seconds after 1970"))
}

/// Seconds since the epoch as RFC 3339 (`2026-11-24T09:13:48Z`), for machines.
pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| epoch.to_string())
}

/// `1h 5m`, `5m`, `30s` (whole seconds).
pub fn duration(seconds: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

fn value(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub fn gate_line(g: &Gate) -> String {
    match g {
        Gate::LbActive { .. } => "wait until the load balancer is active".to_owned(),
        Gate::TargetsHealthy { key, pace, .. } => {
            format!(
                "wait until every target of target group \"{key}\" is healthy (checked every {}s, healthy after {}: up to {})",
                pace.interval_seconds,
                pace.healthy_threshold,
                duration(u64::from(pace.seconds()))
            )
        }
        Gate::RulesInPlace { key, rules, .. } => {
            let rules: Vec<String> = rules.iter().map(ToString::to_string).collect();
            format!(
                "wait until security group \"{key}\" reads back with {}",
                rules.join(", ")
            )
        }
        Gate::CertIssued { key, .. } => {
            format!("wait until ACM has issued certificate \"{key}\" (DNS validation)")
        }
        Gate::Probe(probe) => format!("ask {}", probe_text(probe)),
        Gate::DnsInSync { record, after, .. } => {
            let what = match after {
                DnsStep::LowerTtl => "the lowered TTL".to_owned(),
                DnsStep::Switch => "the switch".to_owned(),
                DnsStep::RestoreTtl | DnsStep::SetTtl => "the TTL".to_owned(),
                DnsStep::Weigh(p) => format!("the {p}% step"),
            };
            format!("wait until Route53 has {what} of {record} in sync")
        }
        Gate::Bake {
            record,
            percent,
            seconds,
            since,
            watch,
            ..
        } => {
            let from = since.map_or_else(String::new, |t| format!(" (counting from {})", utc(t)));
            let then = watch
                .probe
                .as_ref()
                .map_or_else(String::new, |p| format!(", then ask {}", probe_text(p)));
            format!(
                "hold {percent}% of {record}'s answers on the load balancer for {}{from}, watching 5xx (at most {}%) and unhealthy targets (at most {}){then}; on a breach, back to the old value",
                duration(u64::from(*seconds)),
                f64::from(watch.max_5xx_basis_points) / 100.0,
                watch.max_unhealthy
            )
        }
        Gate::WaitTtl {
            record,
            seconds,
            why,
            since,
            after: _,
        } => {
            let from = since.map_or_else(String::new, |t| format!(" (counting from {})", utc(t)));
            format!(
                "wait {} for {record}: {why}{from}",
                duration(u64::from(*seconds))
            )
        }
    }
}

/// What a probe asks and expects: `https://NAME/PATH through the load balancer: expect
/// 200 or 301, and http://NAME/PATH to redirect to https`.
fn probe_text(probe: &crate::plan::Probe) -> String {
    let crate::plan::Probe {
        record,
        path,
        expect,
        https,
        http,
        ..
    } = probe;
    let codes: Vec<String> = expect.iter().map(ToString::to_string).collect();
    let scheme = if https.is_some() { "https" } else { "http" };
    let redirect = if https.is_some() && http.is_some() {
        format!(", and http://{record}{path} to redirect to https")
    } else {
        String::new()
    };
    format!(
        "{scheme}://{record}{path} through the load balancer: expect {}{redirect}",
        codes.join(" or ")
    )
}

/// One unhealthy target with AWS's reason and what to do about it.
pub fn unhealthy_target(t: &crate::model::TargetHealth) -> String {
    use crate::model::TargetReason as R;
    let reason = t.reason.as_ref().map_or("no reason given", R::as_str);
    let hint = match &t.reason {
        Some(R::ResponseCodeMismatch) => "the health URL must bypass basic auth and answer 200 (not a 301 redirect or a 401); `reconcile backend --nginx` prints an nginx server that does (and `--django` a health view)",
        Some(R::InvalidState) => "the instance is stopped or terminated: start it, or remove it from `targets`",
        Some(R::Timeout) => "the health check got no answer in time: the backend group must admit the load balancer's group on the health-check port, and the service must listen there",
        Some(R::FailedHealthChecks) => "the health check fails: check the health path and port on the backend",
        Some(R::RegistrationInProgress | R::InitialHealthChecking) => "still being registered: run apply again in a minute",
        Some(R::NotInUse | R::NotRegistered) => "no listener sends the group traffic yet",
        _ => "see the target group's health in the AWS console",
    };
    let description = t
        .description
        .as_deref()
        .map_or(String::new(), |d| format!(": {d}"));
    format!(
        "  {} is {} ({reason}){description}
    hint: {hint}",
        t.id, t.state
    )
}

/// Which step of the DNS choreography a record change is, as a note after its name
/// (`(lower TTL)`); empty for any other change.
pub fn step_note(c: &Change) -> String {
    use crate::plan::{HealthStep, Op};
    if let Op::ModifyHealthCheck { step, .. } = &c.op {
        return match step {
            HealthStep::InPlace => String::new(),
            HealthStep::Transition => "(health check: transition)".to_owned(),
            HealthStep::Rest => "(health check: resting)".to_owned(),
        };
    }
    let Op::SetRecord { step, cutover, .. } = &c.op else {
        return String::new();
    };
    match (step, cutover) {
        (DnsStep::Switch, Some(_)) => "(switch: 100%)".to_owned(),
        (DnsStep::LowerTtl, _) => "(lower TTL)".to_owned(),
        (DnsStep::Switch, None) => "(switch)".to_owned(),
        (DnsStep::RestoreTtl, _) => "(restore TTL)".to_owned(),
        (DnsStep::SetTtl, _) => String::new(),
        (DnsStep::Weigh(p), _) => format!("(cutover: {p}%)"),
    }
}

fn change_lines(out: &mut String, c: &Change, style: &Style) {
    let step = match step_note(c) {
        note if note.is_empty() => note,
        note => format!(" {note}"),
    };
    let _ = writeln!(
        out,
        "  {} {} {}{step}",
        style.action(c.action),
        c.resource.kind,
        c.resource.name
    );
    let _ = writeln!(out, "        # {}", c.reason);
    for a in &c.attrs {
        let line = match (&a.before, &a.after) {
            (None, after) => format!("+ {}: {}", a.name, value(after)),
            (before, None) => format!("- {}: {}", a.name, value(before)),
            (before, after) => format!("~ {}: {} → {}", a.name, value(before), value(after)),
        };
        let _ = writeln!(out, "        {line}");
    }
}

/// The plan's warnings, each after a blank line.
fn warnings(out: &mut String, p: &Plan, style: &Style) {
    for w in &p.warnings {
        out.push('\n');
        notice(
            out,
            &style.paint("33;1", "warning"),
            &w.subject,
            &w.message,
            &w.hint,
        );
    }
}

/// A blocker or warning: `  <kind> <subject>: <message>` and its hint beneath.
fn notice(out: &mut String, kind: &str, subject: &str, message: &str, hint: &str) {
    let _ = writeln!(out, "  {kind} {subject}: {message}\n        hint: {hint}");
}

/// Renders one stack's plan. `label` names the stack and its manifest.
pub fn plan(p: &Plan, label: &str, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.paint("1", label));
    for b in &p.blockers {
        notice(
            &mut out,
            &style.paint("31;1", "blocked"),
            &b.subject,
            &b.message,
            &b.hint,
        );
    }
    if !p.has_changes() {
        // A blocked plan may have no changes only because the diff stopped at the blocker.
        if p.blockers.is_empty() && p.drifted() {
            let _ = writeln!(
                out,
                "  No changes to make, but drift that no change repairs (see the warnings)."
            );
        } else if p.blockers.is_empty() {
            let _ = writeln!(out, "  No changes: the live state matches the manifest.");
        }
        warnings(&mut out, p, style);
        return out;
    }
    let mut current = 0;
    for n in &p.nodes {
        if n.step != current {
            current = n.step;
            let _ = writeln!(out, "\n Step {current}");
        }
        match &n.kind {
            NodeKind::Change(c) => change_lines(&mut out, c, style),
            NodeKind::Gate(g) => {
                let _ = writeln!(out, "  {} {}", style.paint("36", "  ⧗"), gate_line(g));
            }
        }
    }
    warnings(&mut out, p, style);
    let _ = writeln!(out, "\nPlan: {}.", totals(p));
    if let Some(c) = &p.checked {
        let _ = writeln!(out, "{}", checked_line(c));
    }
    out
}

/// The checker's verdict in a line. A verdict is always complete (a search that reached
/// its bound blocks the plan instead); the states are those the reduced search visited,
/// each standing for the orders that lead to the same outcome.
pub fn checked_line(c: &crate::plan::check::Checked) -> String {
    format!(
        "Checked: every state the run can pass through, in any order, keeps the site served and touches only what the stack owns ({} {} explored).",
        c.states,
        if c.states == 1 { "state" } else { "states" }
    )
}

/// The plan's totals: `10 to add, 3 to change, 0 to replace, 2 to remove; 7 gates (DNS
/// waits of at least 1h 5m)`.
pub fn totals(p: &Plan) -> String {
    let counts = p.summary();
    let n = |a: Action| counts.get(&a).copied().unwrap_or(0);
    let gates = p
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Gate(_)))
        .count();
    // Waits of one record (its TTL waits and a cutover's bakes) run one after the other;
    // records run side by side.
    let mut per_record: std::collections::BTreeMap<&str, u32> = Default::default();
    for n in &p.nodes {
        if let NodeKind::Gate(
            Gate::WaitTtl {
                record, seconds, ..
            }
            | Gate::Bake {
                record, seconds, ..
            },
        ) = &n.kind
        {
            *per_record.entry(record).or_default() += seconds;
        }
    }
    let longest = per_record.values().copied().max().unwrap_or(0);
    // A health gate waits for targets to pass on the timing in force at it.
    let health = p
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Gate(Gate::TargetsHealthy { pace, .. }) => Some(pace.seconds()),
            _ => None,
        })
        .max();
    let mut waits = Vec::new();
    if longest > 0 {
        waits.push(format!(
            "DNS waits of at least {}",
            duration(u64::from(longest))
        ));
    }
    if let Some(h) = health {
        waits.push(format!(
            "health checks of up to {} each",
            duration(u64::from(h))
        ));
    }
    let adopt = match n(Action::Adopt) {
        0 => String::new(),
        k => format!("{k} to adopt, "),
    };
    format!(
        "{adopt}{} to add, {} to change, {} to replace, {} to remove; {gates} gates{}",
        n(Action::Create),
        n(Action::Update),
        n(Action::Replace),
        n(Action::Delete),
        if waits.is_empty() {
            String::new()
        } else {
            format!(" ({})", waits.join("; "))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_like_the_command_line() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(300), "5m");
        assert_eq!(duration(3600), "1h");
        assert_eq!(duration(3900), "1h 5m");
        assert_eq!(duration(61), "1m 1s");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_795_511_628), "2026-11-24 09:13:48 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
