//! The checker at scale: the reduced search proves wide stacks (many listeners, target
//! groups and records) completely and fast, and its footprints hold in every state of the
//! exhaustive search (any two nodes it calls independent commute, any node it calls
//! invisible leaves the invariant as it was).

use std::time::{Duration, Instant};

use reconcile::model::{Desired, Observed};
use reconcile::plan::check;

use crate::fixtures::*;

/// The example manifest with `listeners` more HTTP listeners (8001, 8002, ...), each
/// forwarding to a target group of its own (ports 9001, ...; health-checked on the traffic
/// port), the load balancer's group admitting each listener port from the internet and the
/// backend admitting the load balancer on each target port; and `records - 1` more
/// records (`www1.example.com`, ...), alias A records, the first with a probe, the second
/// with a staged cutover when `staged`.
pub fn widen(v: &mut serde_json::Value, listeners: usize, records: usize, staged: bool) {
    let ports: Vec<u16> = (0..listeners as u16).map(|i| 8001 + i).collect();
    let targets: Vec<u16> = (0..listeners as u16).map(|i| 9001 + i).collect();
    let instances = v["target_groups"]["app"]["targets"].clone();
    for (i, (port, target)) in ports.iter().zip(&targets).enumerate() {
        v["target_groups"][format!("extra{i}")] = serde_json::json!({
            "port": target, "protocol": "HTTP",
            "health_check": { "path": "/health/", "matcher": "200", "interval_seconds": 30, "healthy_threshold": 2 },
            "targets": instances,
        });
        v["load_balancer"]["listeners"]
            .as_array_mut()
            .expect("listeners")
            .push(serde_json::json!({ "port": port, "protocol": "HTTP", "forward": format!("extra{i}") }));
    }
    if listeners > 0 {
        v["security_groups"]["lb"]["ingress"]
            .as_array_mut()
            .expect("lb ingress")
            .push(serde_json::json!({ "ports": ports, "cidrs": ["0.0.0.0/0", "::/0"] }));
        v["security_groups"]["backend"]["ingress"]
            .as_array_mut()
            .expect("backend ingress")
            .push(serde_json::json!({ "ports": targets, "from": "lb" }));
    }
    if records > 1 {
        v["certificates"]["site"]["domain"] = "*.example.com".into();
    }
    for i in 1..records {
        let mut r = serde_json::json!({ "name": format!("www{i}.example.com"), "type": "A", "to": "load_balancer" });
        if i == 1 {
            r["probe"] = serde_json::json!({ "path": "/", "expect": [200, 301] });
        }
        if i == 2 && staged {
            r["cutover"] =
                serde_json::json!({ "steps": [10, 50, 100], "bake": "5m", "max_5xx_percent": 1 });
        }
        v["dns"]["records"].as_array_mut().expect("records").push(r);
    }
}

/// The certificate of the fixtures, covering the extra records too.
fn covering(mut o: Observed) -> Observed {
    for c in &mut o.certificates {
        c.names.push("*.example.com".into());
    }
    o
}

fn wide(listeners: usize, records: usize, staged: bool) -> Desired {
    desired_edited(|v| widen(v, listeners, records, staged))
}

/// The most states one of these checks may visit: the largest (8 listeners, 4 records
/// from the starting point) visits about 2,400. A count, not a time, so that the bound
/// does not depend on how busy the machine is (four tests share two cores in CI).
const STATE_BUDGET: usize = 5_000;

/// A time no machine this runs on should need for [`STATE_BUDGET`] states, even a debug
/// build with the suite running beside it (release checks them in well under a second;
/// docs/performance.md): it only catches a search gone exponential again, which took 27 s.
const TIME_LIMIT: Duration = Duration::from_secs(15);

/// Fails unless the check `what` stayed within [`STATE_BUDGET`] and [`TIME_LIMIT`].
fn fast(what: &str, c: &check::Checked, took: Duration) {
    assert!(
        c.states <= STATE_BUDGET,
        "{what}: {} states, more than {STATE_BUDGET}",
        c.states
    );
    assert!(took < TIME_LIMIT, "{what}: {took:?}");
}

/// Plans `d` from `o` and checks it, with the time the check took.
fn checked(d: &Desired, o: &Observed) -> (check::Checked, Duration) {
    let p = plan_of(d, o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let t0 = Instant::now();
    let c = check::check(d, o, &p).unwrap_or_else(|e| panic!("{e}"));
    (c, t0.elapsed())
}

/// The figure: 8 more listeners and target groups and 4 records (a probe, a staged
/// cutover) check completely from the starting point, half-applied states and the
/// converged stack, and so do the way back, destroy and adoption (the same front door
/// made by hand) from there, each within [`STATE_BUDGET`].
#[test]
fn wide_stacks_are_proven_completely_and_fast() {
    for (listeners, records, staged) in [(2, 1, false), (4, 1, false), (8, 1, false), (8, 4, true)]
    {
        let d = wide(listeners, records, staged);
        let start = covering(starting_point());
        let (c, took) = checked(&d, &start);
        eprintln!(
            "{listeners} listeners, {records} records: {} states in {took:?}",
            c.states
        );
        assert!(c.complete);
        fast(&format!("{listeners}/{records}"), &c, took);
        // Half-applied: the plan run through the model in its order, stopped at a third
        // and at two thirds, then planned again from there; and the converged stack.
        let p = plan_of(&d, &start);
        for cut in [p.nodes.len() / 3, 2 * p.nodes.len() / 3] {
            let order: Vec<usize> = (0..cut).collect();
            let partway = reconcile::plan::check::model::check_order(&d, &start, &p.nodes, &order)
                .unwrap_or_else(|v| panic!("{v}"));
            let (c, took) = checked(&d, &partway);
            eprintln!("  after {cut} nodes: {} states in {took:?}", c.states);
            assert!(c.complete);
            fast(&format!("after {cut} nodes"), &c, took);
        }
        let done = run_in_order(&d, &start, &p);
        assert!(!plan_of(&d, &done).has_changes());
        // The way back from there: no load balancer, the record on the instances again.
        let direct = desired_edited(|v| {
            widen(v, listeners, records, staged);
            direct_way_back(v);
        });
        let (c, took) = checked(&direct, &done);
        eprintln!("  the way back: {} states in {took:?}", c.states);
        fast("the way back", &c, took);
        // Destroy, once the records lead elsewhere (destroy refuses while one leads to the
        // load balancer): every listener, group and the load balancer go.
        let mut away = done.clone();
        if let Some(z) = away.zone.as_mut() {
            z.records.clear();
        }
        let gone = reconcile::plan::destroy_desired(&d, &away);
        let (c, took) = checked(&gone, &away);
        eprintln!("  destroy: {} states in {took:?}", c.states);
        fast("destroy", &c, took);
        // Adoption: the same front door made by hand (no stack tags), adopted by id. The
        // model's ids are given AWS's shapes first (the manifest takes only those).
        let mut hand_made = with_aws_ids(&done);
        hand_made
            .load_balancers
            .iter_mut()
            .for_each(|l| l.tags.clear());
        hand_made
            .target_groups
            .iter_mut()
            .for_each(|t| t.tags.clear());
        let lb_group = hand_made
            .security_groups
            .iter_mut()
            .find(|g| g.name == "www-example-lb")
            .expect("the load balancer's group");
        lb_group.tags.clear();
        let lb_group = lb_group.id.clone();
        let adopting = desired_edited(|v| {
            widen(v, listeners, records, staged);
            v["load_balancer"]["adopt"] = hand_made.load_balancers[0].arn.clone().into();
            for (key, tg) in v["target_groups"].as_object_mut().unwrap() {
                let arn = hand_made
                    .target_groups
                    .iter()
                    .find(|t| t.name == format!("www-example-{key}"))
                    .map(|t| t.arn.clone())
                    .unwrap_or_else(|| panic!("no group for {key}"));
                tg["adopt"] = arn.into();
            }
            let g = v["security_groups"]["lb"].as_object_mut().unwrap();
            g.remove("description");
            g.insert("adopt".into(), lb_group.clone().into());
        });
        let p = plan_of(&adopting, &hand_made);
        assert!(
            p.changes()
                .any(|c| c.action == reconcile::plan::Action::Adopt),
            "nothing adopted"
        );
        let (c, took) = checked(&adopting, &hand_made);
        eprintln!("  adoption: {} states in {took:?}", c.states);
        assert!(c.complete);
        fast("adoption", &c, took);
        if listeners == 2 {
            // Small enough to enumerate: the footprints (adoption's tag changes, invisible
            // to the serving invariant) hold in every state of the exhaustive search.
            let audited = check::audit(&adopting, &hand_made, &p, 30_000)
                .unwrap_or_else(|e| panic!("adoption: {e}"));
            assert!(audited > 0);
        }
    }
}

/// `o` with the model's load balancer, target group and security group ids replaced,
/// everywhere they appear, by ids of AWS's shapes.
fn with_aws_ids(o: &Observed) -> Observed {
    let mut text = serde_json::to_string(o).unwrap();
    let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012";
    for (i, l) in o.load_balancers.iter().enumerate() {
        let new = format!("{arn}:loadbalancer/app/{}/{:016x}", l.name, i + 1);
        text = text.replace(&format!("\"{}\"", l.arn), &format!("\"{new}\""));
    }
    for (i, t) in o.target_groups.iter().enumerate() {
        let new = format!("{arn}:targetgroup/{}/{:016x}", t.name, i + 1);
        text = text.replace(&format!("\"{}\"", t.arn), &format!("\"{new}\""));
    }
    for (i, g) in o.security_groups.iter().enumerate() {
        if !g.id.starts_with("sg-sim") {
            continue;
        }
        let new = format!("sg-{:017x}", i + 1);
        text = text.replace(&format!("\"{}\"", g.id), &format!("\"{new}\""));
    }
    serde_json::from_str(&text).unwrap()
}

/// The manifest of the way back: no load balancer, target groups or certificates, the
/// backend open on 80 and 443, the records A records to the elastic IP.
fn direct_way_back(v: &mut serde_json::Value) {
    let o = v.as_object_mut().expect("object");
    for k in ["load_balancer", "target_groups", "certificates"] {
        o.remove(k);
    }
    v["security_groups"]
        .as_object_mut()
        .expect("groups")
        .remove("lb");
    v["security_groups"]["backend"]["ingress"] = serde_json::json!([
        {"ports": [80, 443], "cidrs": ["0.0.0.0/0", "::/0"]},
        {"ports": [22], "cidrs": ["198.51.100.0/24"], "description": "office ssh"}
    ]);
    for r in v["dns"]["records"].as_array_mut().expect("records") {
        let name = r["name"].clone();
        *r = serde_json::json!({ "name": name, "type": "A", "values": [EIP], "ttl": 3600, "transition_ttl": 300 });
    }
}

/// The exhaustive explorer gives up on the same plan the reduced search proves: the
/// reduction is what makes the check complete, not a smaller plan.
#[test]
fn the_exhaustive_explorer_cannot_finish_what_the_reduced_search_proves() {
    let d = wide(4, 1, false);
    let o = covering(starting_point());
    let p = plan_of(&d, &o);
    assert!(matches!(
        check::check_exhaustive(&d, &o, &p, 20_000),
        Err(check::Unproven::Bound { bound: 20_000 })
    ));
    let c = check::check(&d, &o, &p).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.states < 2_000, "{}", c.states);
}

/// A search that reaches its bound blocks the plan: never a partial proof.
#[test]
fn a_check_that_reaches_its_bound_is_no_proof() {
    let d = desired();
    let o = covering(starting_point());
    let p = plan_of(&d, &o);
    let e = check::check_exhaustive(&d, &o, &p, 10).expect_err("10 states are too few");
    assert!(e.counterexample().is_none());
    assert!(e.to_string().contains("bound of 10 states"), "{e}");
}

/// The footprints hold in every state of the exhaustive search of the example's plans and
/// of a stack with a probe and a cutover, and in the first states of a stack with two more
/// listeners (4,000 of them by default, which takes some 10 s; 30,000 in the long run).
#[test]
fn the_footprints_hold_in_every_state() {
    let long = std::env::var("RECONCILE_LONG").is_ok_and(|v| v == "1");
    let cases = [
        (
            "example from the start",
            desired(),
            covering(starting_point()),
            30_000,
        ),
        (
            "example from empty",
            desired(),
            covering(empty_account()),
            30_000,
        ),
        (
            "two more listeners",
            wide(2, 1, false),
            covering(starting_point()),
            if long { 30_000 } else { 4_000 },
        ),
        (
            "a probe and a cutover",
            wide(0, 3, true),
            covering(starting_point()),
            30_000,
        ),
    ];
    for (what, d, o, bound) in cases {
        let t = std::time::Instant::now();
        let p = plan_of(&d, &o);
        let states = check::audit(&d, &o, &p, bound).unwrap_or_else(|e| panic!("{what}: {e}"));
        eprintln!("{what}: audited {states} states in {:?}", t.elapsed());
    }
}

/// Through the real binary on the emulator, from the article's starting point: with 2, 4
/// and 8 more listeners, `plan --json` proves the migration completely, each well within
/// 2 s (the whole command: the read, the plan, the check); without the backend's rule
/// admitting the load balancer on one of the new target ports the plan is refused before
/// any AWS call, naming the target group and the port; and the 8-listener migration applies with the site served after every
/// call, then plans clean.
#[test]
fn wide_stacks_plan_proven_and_apply_through_the_binary() {
    use crate::emulator::Emulator;
    use crate::proxy::Proxy;
    use crate::support::{desired, edited, text};
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    for listeners in [2, 4, 8] {
        let m = edited(&s.manifest, &format!("wide-{listeners}.json"), |v| {
            widen(v, listeners, 1, false)
        });
        let t0 = Instant::now();
        let out = emu.reconcile(&["plan", "-f", m.to_str().unwrap(), "--json"]);
        let took = t0.elapsed();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let checked = &doc["stacks"][0]["checked"];
        assert_eq!(checked["complete"], true, "{listeners}: {checked}");
        eprintln!("{listeners} more listeners: {checked} in {took:?}");
        let states = checked["states"].as_u64().expect("a count of states") as usize;
        assert!(states <= STATE_BUDGET, "{listeners}: {states} states");
        assert!(took < TIME_LIMIT, "{listeners}: plan took {took:?}");
    }
    // The backend no longer admits the load balancer on 9003 (the third new group's port).
    let unadmitted = edited(&s.manifest, "wide-unadmitted.json", |v| {
        widen(v, 8, 1, false);
        let rules = v["security_groups"]["backend"]["ingress"]
            .as_array_mut()
            .expect("rules");
        let last = rules.last_mut().expect("the new rule");
        last["ports"] = serde_json::json!([9001, 9002, 9004, 9005, 9006, 9007, 9008]);
    });
    let out = emu.reconcile(&["plan", "-f", unadmitted.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("target_groups.extra2.port") && all.contains("9003"),
        "{all}"
    );
    let out = emu.reconcile(&["apply", "-f", unadmitted.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The 8-listener migration, every mutating call checked.
    let m = s.manifest.with_file_name("wide-8.json");
    let (proxy, _) = Proxy::checked(&emu.url, desired(&m));
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", m.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    proxy.assert_clean("the 8-listener migration");
    let out = emu.reconcile(&["plan", "-f", m.to_str().unwrap(), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "not converged:\n{}", text(&out));
}

/// The benchmark of the checker (`scripts/bench --checker`): states explored and time
/// against the stack's width (0 to 8 more listeners, each with its own target group; with
/// and without a second record on a staged cutover), the reduced search beside the
/// exhaustive explorer (stopped at `CHECKER_BENCH_BOUND` states, 2000 in the suite and
/// 20000 under `scripts/bench --checker`: past it the exhaustive figure is a floor). Prints a table and writes
/// `target/bench-checker.json`; in the suite it also holds the reduced figures to the
/// issue's bound of 2 s.
#[test]
fn the_checker_bench() {
    let bound: usize = std::env::var("CHECKER_BENCH_BOUND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let o = covering(starting_point());
    let mut rows = vec![];
    eprintln!("listeners cutover | reduced states   ms | exhaustive states     ms");
    for staged in [false, true] {
        for listeners in [0, 1, 2, 4, 6, 8] {
            let d = wide(listeners, if staged { 3 } else { 1 }, staged);
            let p = plan_of(&d, &o);
            let t0 = Instant::now();
            let reduced = check::check(&d, &o, &p).unwrap_or_else(|e| panic!("{e}"));
            let reduced_ms = t0.elapsed().as_secs_f64() * 1e3;
            let t0 = Instant::now();
            let exhaustive = check::check_exhaustive(&d, &o, &p, bound);
            let exhaustive_ms = t0.elapsed().as_secs_f64() * 1e3;
            let (states, done) = match &exhaustive {
                Ok(c) => (c.states, true),
                Err(check::Unproven::Bound { bound }) => (*bound, false),
                Err(e) => panic!("{e}"),
            };
            eprintln!(
                "{listeners:>9} {staged:>7} | {:>14} {reduced_ms:>4.0} | {}{states:>16} {exhaustive_ms:>6.0}",
                reduced.states,
                if done { " " } else { ">" },
            );
            assert!(
                reduced_ms < 2_000.0,
                "{listeners} listeners: {reduced_ms} ms"
            );
            rows.push(serde_json::json!({
                "listeners": listeners, "target_groups": listeners + 2, "cutover": staged,
                "reduced": {"states": reduced.states, "ms": reduced_ms},
                "exhaustive": {"states": states, "complete": done, "ms": exhaustive_ms},
            }));
        }
    }
    let out = crate::support::repo_file("target").join("bench-checker.json");
    let _ = std::fs::write(
        &out,
        serde_json::to_string_pretty(&rows).unwrap_or_default(),
    );
}
