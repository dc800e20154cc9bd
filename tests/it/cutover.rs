//! The staged cutover through the real binary on the emulator: the record moves to the
//! load balancer in weighted steps, each held and watched (CloudWatch's counts, put by the
//! test to make the new path fail at a given step), with the availability invariant
//! checked after every mutating call for every weighted answer; a breach takes it back; a
//! pause and a crash mid-cutover are resumed by a fresh run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reconcile::model::{Desired, RecordKind};

use crate::emulator::{command, Emulator};
use crate::proxy::{Invariant, Options, Proxy};
use crate::support::{desired, edited, text};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The seeded manifest with its record made an alias A record (the old one is an A
/// record: a weighted pair shares its type) and staged in 10, 50 and 100 %.
fn staged(manifest: &Path, bake: &str) -> PathBuf {
    staged_in(manifest, bake, &[10, 50, 100])
}

/// [`staged`] in these steps.
pub(crate) fn staged_in(manifest: &Path, bake: &str, steps: &[u8]) -> PathBuf {
    edited(manifest, "staged.json", |v| {
        let r = &mut v["dns"]["records"][0];
        r["type"] = "A".into();
        if let Some(o) = r.as_object_mut() {
            o.remove("ttl");
        }
        r["cutover"] = serde_json::json!({"steps": steps, "bake": bake, "max_5xx_percent": 1});
    })
}

/// The record sets at www.example.com (A), as (set identifier, weight, value).
type Sets = Vec<(Option<String>, Option<u8>, String)>;

fn sets_of(o: &reconcile::model::Observed) -> Sets {
    let mut sets: Sets = o
        .zone
        .iter()
        .flat_map(|z| &z.records)
        .filter(|r| r.name == "www.example.com" && r.kind == RecordKind::A)
        .map(|r| {
            (
                r.weighted.as_ref().map(|w| w.id.clone()),
                r.weighted.as_ref().and_then(|w| w.weight),
                r.alias
                    .as_ref()
                    .map_or_else(|| r.values.join(","), |a| format!("alias {}", a.dns_name)),
            )
        })
        .collect();
    sets.sort();
    sets
}

/// A proxy that checks the invariant after every mutating call and records the shares
/// of answers for the load balancer it saw (each distinct state once, in order).
pub(crate) fn watched(emu: &Emulator, d: Desired) -> (Proxy, Arc<Mutex<Vec<u8>>>) {
    let (proxy, shares, _) = watched_at(emu, d);
    (proxy, shares)
}

/// [`watched`], with the time each share was first seen.
type Seen = Arc<Mutex<Vec<(u8, Instant)>>>;

fn watched_at(emu: &Emulator, d: Desired) -> (Proxy, Arc<Mutex<Vec<u8>>>, Seen) {
    let times: Seen = Arc::new(Mutex::new(Vec::new()));
    let at = Arc::clone(&times);
    let inv = Arc::new(Mutex::new(Invariant::new(d.clone(), &emu.url)));
    let shares = Arc::new(Mutex::new(Vec::new()));
    let (check, seen) = (Arc::clone(&inv), Arc::clone(&shares));
    let proxy = Proxy::with(
        &emu.url,
        Options {
            check: Some(Box::new(move |_| {
                let mut inv = check.lock().unwrap();
                let observed = match inv.read(std::slice::from_ref(&d)) {
                    Ok(mut o) => o.remove(0),
                    Err(e) => return Some(format!("the checker could not read: {e}")),
                };
                let sets = sets_of(&observed);
                let share = match sets.as_slice() {
                    [(None, _, v)] if v.starts_with("alias ") => Some(100),
                    [(None, _, _)] => Some(0),
                    pair => pair
                        .iter()
                        .find(|(_, _, v)| v.starts_with("alias "))
                        .and_then(|(_, w, _)| *w),
                };
                let mut seen = seen.lock().unwrap();
                if let Some(s) = share.filter(|s| seen.last() != Some(s)) {
                    seen.push(s);
                    at.lock().unwrap().push((s, Instant::now()));
                }
                drop(seen);
                inv.check_observed(&observed)
            })),
            ..Options::default()
        },
    );
    (proxy, shares, times)
}

/// A clean staged cutover: the plan shows each step and bake; apply writes 10 %, 50 %,
/// then one simple alias record, the site served after every call for every weighted
/// answer; the plan is clean afterwards.
#[test]
fn a_staged_cutover_moves_in_steps_with_every_answer_served() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = staged(&s.manifest, "2s");
    let plan = emu.reconcile(&["plan", "-f", path(&m)]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{shown}");
    for part in [
        "(cutover: 10%)",
        "(cutover: 50%)",
        "(switch: 100%)",
        "hold 10% of www.example.com's answers on the load balancer for 2s",
        "hold 50% of www.example.com's answers",
    ] {
        assert!(shown.contains(part), "{part} not in:\n{shown}");
    }
    let (proxy, shares) = watched(&emu, desired(&m));
    let out = command(&proxy.url, &["apply", "-f", path(&m), "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("the staged cutover");
    assert_eq!(*shares.lock().unwrap(), vec![0, 10, 50, 100]);
    let out = emu.reconcile(&["plan", "-f", path(&m), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// The load balancer's id for CloudWatch's `LoadBalancer` dimension.
fn lb_dimension(emu: &Emulator) -> String {
    emu.boto_output(
        "lb = elb.describe_load_balancers()['LoadBalancers'][0]['LoadBalancerArn']\nprint(lb.split(':loadbalancer/')[1])",
    )
    .trim()
    .to_owned()
}

/// A breach at the 50 % step: the test puts 5xx answers for the load balancer once it
/// sees 50 %; apply takes the record back to its old value in one change, waits out the
/// load balancer's answers, exits 1 naming the metric and the threshold, the site served
/// after every call; the next plan starts the cutover again.
#[test]
fn a_breach_at_half_takes_the_record_back_with_no_outage() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let old = emu.boto_output(
        "z = r53.list_hosted_zones()['HostedZones'][0]['Id']\n\
         print([r['ResourceRecords'][0]['Value'] for r in r53.list_resource_record_sets(HostedZoneId=z)['ResourceRecordSets'] if r['Name'] == 'www.example.com.' and r['Type'] == 'A'][0])",
    );
    let old = old.trim().to_owned();
    let m = staged(&s.manifest, "8s");
    let (proxy, shares) = watched(&emu, desired(&m));
    let child = crate::reliability::spawn(&proxy.url, &["apply", "-f", path(&m), "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while shares.lock().unwrap().last() != Some(&50) {
        assert!(
            Instant::now() < deadline,
            "never at 50%: {:?}",
            shares.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dim = lb_dimension(&emu);
    emu.boto(&format!(
        "import datetime\ncw = boto3.client('cloudwatch', **kw)\nnow = datetime.datetime.now(datetime.timezone.utc)\n\
         d = [{{'Name': 'LoadBalancer', 'Value': '{dim}'}}]\n\
         cw.put_metric_data(Namespace='AWS/ApplicationELB', MetricData=[\n\
           {{'MetricName': 'RequestCount', 'Dimensions': d, 'Timestamp': now, 'Value': 200, 'Unit': 'Count'}},\n\
           {{'MetricName': 'HTTPCode_Target_5XX_Count', 'Dimensions': d, 'Timestamp': now, 'Value': 30, 'Unit': 'Count'}}])"
    ));
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for part in [
        "HTTPCode_Target_5XX_Count",
        "RequestCount 200",
        "15.00% 5xx",
        "max_5xx_percent 1",
        "back on its old value",
    ] {
        assert!(said.contains(part), "{part} not in:\n{said}");
    }
    proxy.assert_clean("the breach and its revert");
    assert_eq!(*shares.lock().unwrap(), vec![0, 10, 50, 0]);
    let observed = Invariant::new(desired(&m), &emu.url)
        .read(&[desired(&m)])
        .unwrap()
        .remove(0);
    assert_eq!(
        sets_of(&observed),
        vec![(None, None, old)],
        "fully back on the old value"
    );
    let plan = emu.reconcile(&["plan", "-f", path(&m)]);
    assert!(text(&plan).contains("(cutover: 10%)"), "{}", text(&plan));
}

/// A `--max-wait` shorter than a bake pauses apply mid-bake (exit 3 with
/// `--detailed-exitcode`), the record held at 10 %; a fresh run continues the bake from
/// its recorded start and finishes the cutover.
#[test]
fn a_cutover_paused_mid_bake_is_finished_by_a_fresh_run() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = staged(&s.manifest, "20s");
    let (proxy, shares, times) = watched_at(&emu, desired(&m));
    let out = command(
        &proxy.url,
        &[
            "apply",
            "-f",
            path(&m),
            "--yes",
            "--max-wait",
            "8s",
            "--detailed-exitcode",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "paused: {}", text(&out));
    assert_eq!(
        *shares.lock().unwrap(),
        vec![0, 10],
        "held at 10%: {}",
        text(&out)
    );
    let plan = emu.reconcile(&["plan", "-f", path(&m)]);
    let shown = text(&plan);
    assert!(
        shown.contains("hold 10% of www.example.com's answers"),
        "{shown}"
    );
    assert!(
        shown.contains("counting from"),
        "the bake goes on from its start: {shown}"
    );
    let out = command(&proxy.url, &["apply", "-f", path(&m), "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(*shares.lock().unwrap(), vec![0, 10, 50, 100]);
    // The first bake went on from its recorded start: 50 % came about one bake (20 s) after
    // 10 %, not one bake after the second run began, which was at least the 8 s of
    // --max-wait into the bake (28 s or more).
    let times = times.lock().unwrap().clone();
    let at = |p: u8| {
        times
            .iter()
            .find(|(s, _)| *s == p)
            .map(|(_, t)| *t)
            .unwrap()
    };
    let gap = at(50).duration_since(at(10));
    assert!(gap < Duration::from_secs(26), "50% came {gap:?} after 10%");
    proxy.assert_clean("the paused cutover, resumed");
    let out = emu.reconcile(&["plan", "-f", path(&m), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A run killed between steps (right after the 10 % change reached Route53) leaves the
/// weighted pair; a fresh run takes the lock over, continues from 10 % and finishes, the
/// site served after every call of both runs.
#[test]
fn a_cutover_killed_between_steps_is_finished_by_a_fresh_run() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let m = staged(&s.manifest, "3s");
    let (proxy, shares) = watched(&emu, desired(&m));
    let child = crate::reliability::spawn(&proxy.url, &["apply", "-f", path(&m), "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while shares.lock().unwrap().last() != Some(&10) {
        assert!(
            Instant::now() < deadline,
            "never at 10%: {:?}",
            shares.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), None, "killed: {}", text(&first));
    let out = command(&proxy.url, &["apply", "-f", path(&m), "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(*shares.lock().unwrap(), vec![0, 10, 50, 100]);
    // The rerun took over the killed run's lock (a refused create of the lock group is
    // how it finds it); nothing else was refused, and the site was served throughout.
    let log = proxy.log.lock().unwrap();
    assert!(log.violations.is_empty(), "{:#?}", log.violations);
    drop(log);
    let failed: Vec<_> = proxy
        .failed_mutations()
        .into_iter()
        .filter(|c| !c.lock)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let out = emu.reconcile(&["plan", "-f", path(&m), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
