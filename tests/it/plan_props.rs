//! Properties of the planner over many starting states and manifests, checked through the
//! model of apply (`plan::check::model`) in random orders the executor may choose:
//! - every order keeps the site reachable and touches only what the stack owns;
//! - applying a plan converges: planning again shows no change.

use proptest::prelude::*;
use reconcile::model::{Desired, Observed, ObservedCert, ObservedSg, ObservedTg, Tags};
use reconcile::names::STACK_TAG;
use reconcile::plan::check::{self, model};
use reconcile::plan::Plan;

use crate::fixtures::*;

const PINNED: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/0b6a2d8e-1c2f-4b7e-9a35-6f1d2c3b4a59";

fn manifests() -> Vec<(&'static str, Desired)> {
    vec![
        ("example", desired()),
        ("alias", desired_from("manifests/site.alias.json")),
        (
            "shared-backend",
            desired_from("manifests/site.shared-backend.json"),
        ),
        (
            "pinned-cert",
            desired_from("manifests/site.pinned-cert.json"),
        ),
        (
            "app-port-8089",
            desired_edited(|v| {
                v["target_groups"]["app"]["port"] = 8089.into();
                v["security_groups"]["backend"]["ingress"][0]["ports"] =
                    serde_json::json!([80, 8088, 8089]);
            }),
        ),
        (
            "health-path",
            desired_edited(|v| v["target_groups"]["http"]["health_check"]["path"] = "/ping".into()),
        ),
        (
            "one-target",
            desired_edited(|v| {
                v["target_groups"]["app"]["targets"] = serde_json::json!(["i-0aaaaaaaaaaaaaaa1"]);
            }),
        ),
        (
            // An internal load balancer serves no public record: valid only without one.
            "internal-without-dns",
            desired_edited(|v| {
                v["load_balancer"]["scheme"] = "internal".into();
                v.as_object_mut().unwrap().remove("dns");
            }),
        ),
        (
            "short-ttl",
            desired_edited(|v| {
                v["dns"]["records"][0]["ttl"] = 120.into();
                v["dns"]["records"][0]["transition_ttl"] = 60.into();
            }),
        ),
    ]
}

fn with_pinned_cert(mut o: Observed) -> Observed {
    o.certificates.push(ObservedCert {
        arn: PINNED.into(),
        domain: "www.example.com".into(),
        names: vec!["www.example.com".into(), "example.com".into()],
        status: "ISSUED".into(),
        not_after: Some(1_900_000_000),
        expiring: false,
        renewal: None,
        validation: vec![],
        store: Default::default(),
        ..Default::default()
    });
    o
}

/// Starting states: the account before, during and after the migration, drifted, with
/// resources the stack does not own and leftovers it does.
fn states() -> Vec<(&'static str, Observed)> {
    let conv = converged();
    let mut drifted = conv.clone();
    drifted.security_groups.iter_mut().for_each(|g| {
        if g.id == BACKEND {
            g.rules.push(world(443));
        }
    });
    drifted.load_balancers[0].listeners.retain(|l| l.port != 80);
    if let Some(z) = drifted.zone.as_mut() {
        z.records.iter_mut().for_each(|r| r.ttl = Some(86400));
    }
    // Tags edited by hand on everything the stack owns: the manifest's own changed or
    // removed, another tool's added.
    let retag = |tags: &mut Tags| {
        tags.retain(|k, _| k == STACK_TAG);
        tags.insert("cost-center".into(), "42".into());
    };
    drifted
        .load_balancers
        .iter_mut()
        .for_each(|l| retag(&mut l.tags));
    drifted
        .target_groups
        .iter_mut()
        .for_each(|t| retag(&mut t.tags));
    drifted
        .security_groups
        .iter_mut()
        .filter(|g| g.id != BACKEND)
        .for_each(|g| retag(&mut g.tags));
    let mut noisy = starting_point();
    let foreign: Tags = [("owner".to_owned(), "someone-else".to_owned())].into();
    let ours: Tags = [(STACK_TAG.to_owned(), "www-example".to_owned())].into();
    let tg = |name: &str, tags: &Tags| ObservedTg {
        arn: format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0123"),
        name: name.into(),
        port: 80,
        protocol: "HTTP".into(),
        vpc: VPC.into(),
        health: conv.target_groups[0].health.clone(),
        tags: tags.clone(),
        load_balancers: vec![],
        targets: vec![],
    };
    noisy.target_groups.push(tg("www-example-legacy", &foreign));
    noisy.target_groups.push(tg("www-example-old", &ours));
    noisy.security_groups.push(ObservedSg {
        id: "sg-0fffffffffffffff1".into(),
        name: "www-example-admin".into(),
        vpc: VPC.into(),
        description: "not ours".into(),
        tags: foreign.clone(),
        rules: vec![world(22)],
    });
    noisy.security_groups.push(ObservedSg {
        id: "sg-0fffffffffffffff2".into(),
        name: "www-example-old".into(),
        vpc: VPC.into(),
        description: "ours, left over".into(),
        tags: ours,
        rules: vec![world(8443)],
    });
    vec![
        ("empty", empty_account()),
        ("start", starting_point()),
        ("converged", conv),
        ("drifted", drifted),
        ("noisy-start", noisy),
    ]
    .into_iter()
    .map(|(n, o)| (n, with_pinned_cert(o)))
    .collect()
}

/// A random order consistent with the plan's edges (Kahn's algorithm, random choices).
fn random_order(p: &Plan, choices: &[usize]) -> Vec<usize> {
    let n = p.nodes.len();
    let index = |id: &reconcile::plan::NodeId| p.nodes.iter().position(|x| &x.id == id);
    let mut indegree = vec![0usize; n];
    let mut next: Vec<Vec<usize>> = vec![vec![]; n];
    for (from, to) in &p.edges {
        if let (Some(f), Some(t)) = (index(from), index(to)) {
            indegree[t] += 1;
            next[f].push(t);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|i| indegree[*i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    let mut c = choices.iter().cycle();
    while !ready.is_empty() {
        let pick = c.next().copied().unwrap_or(0) % ready.len();
        let i = ready.swap_remove(pick);
        order.push(i);
        for t in &next[i] {
            indegree[*t] -= 1;
            if indegree[*t] == 0 {
                ready.push(*t);
            }
        }
    }
    assert_eq!(order.len(), n, "the plan is not a DAG");
    order
}

/// Cases per property: 400, or `PROPTEST_CASES` (`scripts/test --long` runs 5000).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn every_order_keeps_the_site_up_touches_only_owned_and_converges(
        m in 0..9usize,
        s in 0..5usize,
        choices in prop::collection::vec(0..1000usize, 1..64),
    ) {
        let (mname, d) = manifests().swap_remove(m);
        let (sname, o) = states().swap_remove(s);
        let p = plan_of(&d, &o);
        // The checker's verdict is part of every plan: a blocker from it is a failure here,
        // never a case to skip.
        prop_assert!(p.checked.is_some(), "{mname} from {sname}: {:?}", p.blockers);
        prop_assume!(p.blockers.is_empty());
        let order = random_order(&p, &choices);
        let after = model::check_order(&d, &o, &p.nodes, &order)
            .map_err(|v| TestCaseError::fail(format!("{mname} from {sname}: {v}")))?;
        let again = plan_of(&d, &after);
        prop_assert!(!again.has_changes(), "{mname} from {sname} does not converge: {:?}",
            again.nodes.iter().map(|n| &n.id).collect::<Vec<_>>());
        // What the stack does not own is still there, untouched.
        for (a, b) in o.target_groups.iter().zip(&o.target_groups) {
            if !a.tags.contains_key(STACK_TAG) {
                prop_assert!(after.target_groups.contains(b));
            }
        }
        for g in o.security_groups.iter().filter(|g| !g.tags.contains_key(STACK_TAG) && g.id != BACKEND) {
            prop_assert!(after.security_groups.contains(g), "{} was touched", g.name);
        }
    }
}

#[test]
fn every_scenario_plans_without_blockers() {
    for (mname, d) in manifests() {
        for (sname, o) in states() {
            let p = plan_of(&d, &o);
            assert!(
                p.blockers.is_empty(),
                "{mname} from {sname}: {:?}",
                p.blockers
            );
        }
    }
}

/// Every plan of every scenario passes the checker: every set of finished nodes an
/// execution can pass through keeps the site served and touches only what the stack owns.
#[test]
fn every_scenario_passes_the_checker() {
    let t0 = std::time::Instant::now();
    let mut most = 0;
    for (mname, d) in manifests() {
        for (sname, o) in states() {
            let p = plan_of(&d, &o);
            let checked = reconcile::plan::check::check(&d, &o, &p)
                .unwrap_or_else(|c| panic!("{mname} from {sname}: {c}"));
            assert!(checked.complete, "{mname} from {sname}: {checked:?}");
            most = most.max(checked.states);
        }
    }
    eprintln!(
        "checked every scenario in {:?}, at most {most} states",
        t0.elapsed()
    );
}

/// The checker can fail: with one edge a guarantee needs taken out of the migration's plan,
/// it finds the state that breaks it and names the node.
#[test]
fn the_checker_finds_each_guarantee_broken_by_a_removed_edge() {
    let d = reconcile_desired();
    let o = with_pinned_cert(starting_point());
    let p = plan_of(&d, &o);
    reconcile::plan::check::check(&d, &o, &p).expect("the plan as made passes");
    // Each: the node, which of its incoming edges go, and what must then break.
    let all = |_: &str| true;
    let verification = |from: &str| from.starts_with("gate.lb.") || from.starts_with("gate.tg.");
    let cases: [(&str, Goes, &str); 2] = [
        // The backend's public rules closed before DNS moved and old answers ran out.
        ("sg.backend.rules.remove", &all, "does not serve"),
        // DNS switched before the load balancer is active and its targets healthy.
        (
            "dns.www.example.com.CNAME.switch",
            &verification,
            "does not serve",
        ),
    ];
    each_breaks_without_its_edges(&d, &o, &p, &cases);
}

/// Edges that decide whether an edge goes: given its tail's text.
type Goes<'a> = &'a dyn Fn(&str) -> bool;

/// For each case (a node, which of its incoming edges go, what must then break), the plan
/// without those edges fails the checker with that message.
fn each_breaks_without_its_edges(
    d: &Desired,
    o: &Observed,
    p: &Plan,
    cases: &[(&str, Goes, &str)],
) {
    for (node, goes, broken) in cases {
        let mut q = p.clone();
        let before = q.edges.len();
        q.edges
            .retain(|(from, to)| to.to_string() != *node || !goes(&from.to_string()));
        assert!(q.edges.len() < before, "{node} has such incoming edges");
        let c = reconcile::plan::check::check(d, o, &q)
            .expect_err(&format!("without those edges into {node}"));
        assert!(
            c.counterexample()
                .is_some_and(|c| c.message.contains(broken)),
            "{node}: {c}"
        );
    }
}

fn reconcile_desired() -> Desired {
    manifests().swap_remove(0).1
}

/// A manifest drawn at random around the example: the app's port (the backend admitting the
/// load balancer on it), health paths and ports, which instances each group holds, the
/// record's type and TTLs, an exclusive or additive backend group, the office rule.
#[derive(Debug, Clone)]
struct Drawn {
    app_port: u16,
    health_path: &'static str,
    http_health_on_app: bool,
    http_targets: u8,
    app_targets: u8,
    alias: bool,
    ttls: (u32, u32),
    exclusive: bool,
    office: bool,
    /// The way back: no load balancer, the record an A record to the elastic IP again,
    /// the backend open to the world on 80 and 443.
    direct: bool,
    /// A staged cutover in these steps (on an alias record to the load balancer).
    staged: Option<Vec<u8>>,
    /// The article's test before the switch (and after each bake).
    probe: bool,
}

prop_compose! {
    fn drawn()(
        app_port in prop::sample::select(vec![8088u16, 8089, 9000]),
        health_path in prop::sample::select(vec!["/health/", "/ping", "/"]),
        http_health_on_app in any::<bool>(),
        http_targets in 1..=3u8,
        app_targets in 1..=3u8,
        alias in any::<bool>(),
        ttls in prop::sample::select(vec![(3600u32, 300u32), (120, 60), (60, 60), (86400, 30)]),
        exclusive in any::<bool>(),
        office in any::<bool>(),
        direct in prop::bool::weighted(0.3),
        staged in prop::option::of(prop::sample::select(vec![vec![100u8], vec![10, 50, 100], vec![1, 99, 100]])),
        probe in any::<bool>(),
    ) -> Drawn {
        Drawn { app_port, health_path, http_health_on_app, http_targets, app_targets, alias, ttls, exclusive, office, direct, staged, probe }
    }
}

impl Drawn {
    fn desired(&self) -> Desired {
        let instances = |mask: u8| -> serde_json::Value {
            ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"]
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, id)| serde_json::Value::from(*id))
                .collect()
        };
        desired_edited(|v| {
            let tgs = &mut v["target_groups"];
            tgs["app"]["port"] = self.app_port.into();
            tgs["app"]["health_check"]["path"] = self.health_path.into();
            tgs["app"]["targets"] = instances(self.app_targets);
            tgs["http"]["health_check"]["path"] = self.health_path.into();
            tgs["http"]["health_check"]["port"] = if self.http_health_on_app {
                self.app_port
            } else {
                80
            }
            .into();
            tgs["http"]["targets"] = instances(self.http_targets);
            let backend = &mut v["security_groups"]["backend"];
            backend["exclusive"] = self.exclusive.into();
            let mut ingress = vec![serde_json::json!({"ports": [80, self.app_port], "from": "lb"})];
            if self.office {
                ingress.push(serde_json::json!({"ports": [22], "cidrs": ["198.51.100.0/24"], "description": "office ssh"}));
            }
            backend["ingress"] = ingress.into();
            if self.direct {
                let o = v.as_object_mut().unwrap();
                for k in ["load_balancer", "target_groups", "certificates"] {
                    o.remove(k);
                }
                v["security_groups"].as_object_mut().unwrap().remove("lb");
                let mut ingress =
                    vec![serde_json::json!({"ports": [80, 443], "cidrs": ["0.0.0.0/0", "::/0"]})];
                if self.office {
                    ingress.push(serde_json::json!({"ports": [22], "cidrs": ["198.51.100.0/24"], "description": "office ssh"}));
                }
                v["security_groups"]["backend"]["ingress"] = ingress.into();
                v["dns"]["records"][0] = serde_json::json!({
                    "name": "www.example.com", "type": "A", "values": [EIP],
                    "ttl": self.ttls.0, "transition_ttl": self.ttls.1,
                });
                return;
            }
            let record = &mut v["dns"]["records"][0];
            record["type"] = if self.alias { "A" } else { "CNAME" }.into();
            if self.alias {
                record.as_object_mut().unwrap().remove("ttl");
                record.as_object_mut().unwrap().remove("transition_ttl");
                if let Some(steps) = &self.staged {
                    record["cutover"] =
                        serde_json::json!({"steps": steps, "bake": "5m", "max_5xx_percent": 1});
                }
            } else {
                record["ttl"] = self.ttls.0.into();
                record["transition_ttl"] = self.ttls.1.into();
            }
            if self.probe {
                record["probe"] = serde_json::json!({"path": "/", "expect": [200, 301]});
            }
        })
    }
}

proptest! {
    // 400 in every run, 5000 with `scripts/test --long` (a plan from a stack's starting
    // point now checks in about a hundred states).
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Every plan the planner emits for a random manifest, from any starting state, passes
    /// the checker (no blocker of its own), and one random order of it keeps the site up
    /// and converges.
    #[test]
    fn every_plan_for_a_random_manifest_passes_the_checker(
        m in drawn(),
        s in 0..5usize,
        choices in prop::collection::vec(0..1000usize, 1..64),
    ) {
        let d = m.desired();
        let (sname, o) = states().swap_remove(s);
        let p = plan_of(&d, &o);
        prop_assert!(p.checked.is_some(), "{m:?} from {sname}: {:?}", p.blockers);
        prop_assert!(p.checked.as_ref().is_some_and(|c| c.complete), "{m:?} from {sname}: {:?}", p.checked);
        prop_assert!(p.blockers.is_empty(), "{m:?} from {sname}: {:?}", p.blockers);
        let order = random_order(&p, &choices);
        let after = model::check_order(&d, &o, &p.nodes, &order)
            .map_err(|v| TestCaseError::fail(format!("{m:?} from {sname}: {v}")))?;
        let again = plan_of(&d, &after);
        prop_assert!(!again.has_changes(), "{m:?} from {sname} does not converge: {:?}",
            again.nodes.iter().map(|n| n.id.to_string()).collect::<Vec<_>>());
    }
}

/// Drift made by hand on top of a state: what people do to a stack between two applies.
#[derive(Debug, Clone)]
struct Drift {
    /// Tags of everything the stack owns edited: its own removed, another tool's added.
    retag: bool,
    /// The backend opened to the world on 443 again.
    reopen: bool,
    /// The record's TTL set by hand (CNAME and A records; an alias has none).
    ttl: Option<u32>,
    /// One target deregistered from each target group.
    deregister: bool,
    /// Resources of the same names that are not the stack's (and a leftover that is).
    neighbours: bool,
}

prop_compose! {
    fn drift()(
        retag in any::<bool>(),
        reopen in any::<bool>(),
        ttl in prop::option::of(prop::sample::select(vec![30u32, 60, 300, 3600, 86400])),
        deregister in any::<bool>(),
        neighbours in any::<bool>(),
    ) -> Drift {
        Drift { retag, reopen, ttl, deregister, neighbours }
    }
}

impl Drift {
    fn apply(&self, mut o: Observed) -> Observed {
        let ours = |tags: &Tags| tags.contains_key(STACK_TAG);
        if self.retag {
            let retag = |tags: &mut Tags| {
                if tags.contains_key(STACK_TAG) {
                    tags.retain(|k, _| k == STACK_TAG);
                    tags.insert("cost-center".into(), "42".into());
                }
            };
            o.load_balancers.iter_mut().for_each(|l| retag(&mut l.tags));
            o.target_groups.iter_mut().for_each(|t| retag(&mut t.tags));
            o.security_groups
                .iter_mut()
                .for_each(|g| retag(&mut g.tags));
        }
        if self.reopen {
            for g in o.security_groups.iter_mut().filter(|g| g.id == BACKEND) {
                if !g.rules.contains(&world(443)) {
                    g.rules.push(world(443));
                }
            }
        }
        if let (Some(ttl), Some(z)) = (self.ttl, o.zone.as_mut()) {
            z.records
                .iter_mut()
                .filter(|r| r.alias.is_none())
                .for_each(|r| r.ttl = Some(ttl));
        }
        if self.deregister {
            o.target_groups
                .iter_mut()
                .filter(|t| ours(&t.tags))
                .for_each(|t| {
                    t.targets.pop();
                });
        }
        if self.neighbours {
            let foreign: Tags = [("owner".to_owned(), "someone-else".to_owned())].into();
            if let Some(mut tg) = o.target_groups.first().cloned() {
                tg.name = "www-example-legacy".into();
                tg.arn = format!("{}-legacy", tg.arn);
                tg.tags = foreign.clone();
                tg.load_balancers.clear();
                o.target_groups.push(tg);
            }
            o.security_groups.push(ObservedSg {
                id: "sg-0fffffffffffffff1".into(),
                name: "www-example-admin".into(),
                vpc: VPC.into(),
                description: "not ours".into(),
                tags: foreign,
                rules: vec![world(22)],
            });
        }
        o
    }
}

/// A starting state drawn at random: one of the hand-made states, then a random manifest's
/// plan run from it in a random order and stopped after a random number of nodes (an apply
/// that crashed or paused anywhere: half-built stacks, a TTL lowered, a record switched,
/// rules not yet closed), then drift made by hand on top.
#[derive(Debug, Clone)]
struct Start {
    base: usize,
    before: Drawn,
    stopped_after: usize,
    choices: Vec<usize>,
    drift: Drift,
}

prop_compose! {
    fn start()(
        base in 0..5usize,
        before in drawn(),
        stopped_after in 0..64usize,
        choices in prop::collection::vec(0..1000usize, 1..64),
        drift in drift(),
    ) -> Start {
        Start { base, before, stopped_after, choices, drift }
    }
}

impl Start {
    fn observed(&self) -> Result<Observed, TestCaseError> {
        let (name, o) = states().swap_remove(self.base);
        let d = self.before.desired();
        let p = plan_of(&d, &o);
        let mut order = random_order(&p, &self.choices);
        order.truncate(self.stopped_after % (order.len() + 1));
        let partway = model::check_order(&d, &o, &p.nodes, &order).map_err(|v| {
            TestCaseError::fail(format!("{:?} from {name}, partway: {v}", self.before))
        })?;
        Ok(self.drift.apply(partway))
    }
}

proptest! {
    // 400 in every run, 5000 with `scripts/test --long`.
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// From a random starting state (an apply of another random manifest stopped anywhere,
    /// drifted by hand), every plan for a random manifest passes the checker, and when it
    /// has no blocker of the diff's own, one random order of it keeps the site up and
    /// converges.
    #[test]
    fn every_plan_from_a_random_starting_state_passes_the_checker(
        s in start(),
        m in drawn(),
        choices in prop::collection::vec(0..1000usize, 1..64),
    ) {
        let o = s.observed()?;
        let d = m.desired();
        let p = plan_of(&d, &o);
        // The diff may refuse a state (say, a replacement stopped half-way that another
        // must not overtake): then nothing runs. Otherwise the checker proves the plan.
        prop_assert!(
            p.blockers.iter().all(|b| b.subject != "plan"),
            "{m:?} from {s:?}: {:?}", p.blockers
        );
        if p.blockers.is_empty() {
            prop_assert!(
                p.checked.as_ref().is_some_and(|c| c.complete),
                "{m:?} from {s:?}: {:?}", p.checked
            );
            let order = random_order(&p, &choices);
            let after = model::check_order(&d, &o, &p.nodes, &order)
                .map_err(|v| TestCaseError::fail(format!("{m:?} from {s:?}: {v}")))?;
            let again = plan_of(&d, &after);
            prop_assert!(!again.has_changes(), "{m:?} from {s:?} does not converge: {:?}",
                again.nodes.iter().map(|n| n.id.to_string()).collect::<Vec<_>>());
        }
    }
}

/// Found by the random starting states: a port change stopped after the new group was
/// created (but before it was attached), then the port changed again. Both names of the
/// group are taken; the one that serves nothing is deleted first and its name reused, and
/// a group an earlier run attached on standby takes traffic only once verified healthy.
#[test]
fn a_replacement_overtaken_by_another_frees_the_unused_name_first() {
    let before = Drawn {
        app_port: 8089,
        health_path: "/health/",
        http_health_on_app: false,
        http_targets: 1,
        app_targets: 1,
        alias: true,
        ttls: (3600, 300),
        exclusive: false,
        office: false,
        direct: false,
        staged: None,
        probe: false,
    };
    let quiet = Drift {
        retag: false,
        reopen: false,
        ttl: None,
        deregister: false,
        neighbours: false,
    };
    let s = Start {
        base: 3,
        before: before.clone(),
        stopped_after: 5,
        choices: vec![63],
        drift: quiet,
    };
    let o = s.observed().unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = o.target_groups.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"www-example-app-r"), "{names:?}");
    let d = Drawn {
        app_port: 9000,
        ..before
    }
    .desired();
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert!(p.checked.is_some());
    let free = reconcile::plan::NodeId::TargetGroupDelete {
        name: "www-example-app-r".into(),
    };
    let create: reconcile::plan::NodeId = "tg.app.create".parse().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        p.edges.contains(&(free, create)),
        "the leftover goes before the new group takes its name"
    );
}

/// The way back from the converged stack: the checker proves its plan, and finds each of its
/// guarantees broken when the edges that carry it are taken out.
#[test]
fn the_way_back_is_proven_and_each_of_its_edges_is_needed() {
    use reconcile::plan::{NodeKind, Op};
    let d = Drawn {
        app_port: 8088,
        health_path: "/health/",
        http_health_on_app: true,
        http_targets: 3,
        app_targets: 3,
        alias: false,
        ttls: (3600, 300),
        exclusive: true,
        office: true,
        direct: true,
        staged: None,
        probe: false,
    }
    .desired();
    let o = with_pinned_cert(converged());
    let p = plan_of(&d, &o);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    reconcile::plan::check::check(&d, &o, &p).expect("the way back as planned passes");
    let after = run_in_order(&d, &o, &p);
    assert!(after.load_balancers.is_empty(), "the load balancer is gone");
    assert!(after.target_groups.is_empty(), "its target groups are gone");
    assert!(!plan_of(&d, &after).has_changes(), "converges");
    let id_of = |f: &dyn Fn(&Op) -> bool| {
        p.nodes
            .iter()
            .find(|n| matches!(&n.kind, NodeKind::Change(c) if f(&c.op)))
            .map(|n| n.id.to_string())
            .expect("the node")
    };
    let lb_delete = id_of(&|op| matches!(op, Op::DeleteLoadBalancer { .. }));
    let switch = id_of(&|op| {
        matches!(
            op,
            Op::SetRecord {
                step: reconcile::plan::DnsStep::Switch,
                ..
            }
        )
    });
    let revoke = id_of(&|op| matches!(op, Op::RevokeIngress { .. }));
    let cases: [(&str, Goes, &str); 3] = [
        // The load balancer deleted while answers that lead to it may still be held.
        (
            &lb_delete,
            &|f| f.starts_with("gate.dns."),
            "does not serve",
        ),
        // The backend's rules admitting the load balancer removed as early.
        (&revoke, &|f| f.starts_with("gate.dns."), "does not serve"),
        // The record moved back before the direct path is open and read back.
        (
            &switch,
            &|f| f.starts_with("sg.") || f.starts_with("gate.sg."),
            "does not serve",
        ),
    ];
    each_breaks_without_its_edges(&d, &o, &p, &cases);
}

/// Edges taken out of a plan at random (by position, up to three): a plan that may break a
/// guarantee, for the checkers to agree on.
fn without_edges(p: &Plan, drop: &[usize]) -> Plan {
    let mut q = p.clone();
    for &i in drop {
        if !q.edges.is_empty() {
            let at = i % q.edges.len();
            q.edges.remove(at);
        }
    }
    q
}

/// The oracle's bound: plans whose every state fits are compared, others skipped.
const ORACLE_BOUND: usize = 20_000;

proptest! {
    // A fraction of the other properties' cases: the exhaustive explorer costs thousands of
    // states a case (25 in every run, 312 with `scripts/test --long`).
    #![proptest_config(ProptestConfig::with_cases(cases() / 16))]

    /// The reduced search and the exhaustive explorer agree on every verdict: on random
    /// manifests from random starting states, as planned and with edges taken out (so that
    /// some plans break a guarantee and both must find it).
    #[test]
    fn the_reduced_check_agrees_with_the_exhaustive_one(
        s in start(),
        m in drawn(),
        drop in prop::collection::vec(0..1000usize, 0..4),
    ) {
        let o = s.observed()?;
        let d = m.desired();
        let p = plan_of(&d, &o);
        prop_assume!(p.blockers.is_empty());
        let q = without_edges(&p, &drop);
        let exhaustive = check::check_exhaustive(&d, &o, &q, ORACLE_BOUND);
        prop_assume!(!matches!(exhaustive, Err(check::Unproven::Bound { .. })));
        let reduced = check::check(&d, &o, &q);
        prop_assert!(
            !matches!(reduced, Err(check::Unproven::Bound { .. })),
            "{m:?} from {s:?}: {reduced:?}"
        );
        prop_assert_eq!(
            exhaustive.is_ok(),
            reduced.is_ok(),
            "{:?} from {:?} without edges {:?}: exhaustive {:?}, reduced {:?}",
            m, s, drop, exhaustive, reduced
        );
        if let Ok(c) = &reduced {
            prop_assert!(c.complete);
        }
    }

    /// The footprints the reduction relies on hold in every state of random plans: two
    /// nodes it calls independent commute, a node it calls invisible leaves the invariant.
    #[test]
    fn the_footprints_hold_on_random_plans(
        s in start(),
        m in drawn(),
    ) {
        let o = s.observed()?;
        let d = m.desired();
        let p = plan_of(&d, &o);
        prop_assume!(p.blockers.is_empty());
        check::audit(&d, &o, &p, 3_000)
            .map_err(|e| TestCaseError::fail(format!("{m:?} from {s:?}: {e}")))?;
    }
}
