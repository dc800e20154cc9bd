//! One interpreter of the plan: the checker's model and `apply` carry out each change
//! through the same code (`plan::carry`), so the calls the model sees for a change are the
//! calls AWS gets for it.

use std::collections::BTreeMap;

use aws_sdk_ec2::config::Credentials;
use reconcile::apply::exec;
use reconcile::aws::{AwsOptions, Meter, Operation};
use reconcile::plan::check::model;
use reconcile::plan::NodeKind;

use crate::emulator::Emulator;
use crate::support::desired;

/// The writes among `by_operation` (a meter's counts), by name.
fn writes(by_operation: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    by_operation
        .iter()
        .filter(|(name, _)| {
            Operation::ALL.iter().any(|o| {
                o.name() == name.as_str() && o.access() == reconcile::aws::operation::Access::Write
            })
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// The article's migration on moto, change by change in the plan's order: the writes the
/// executor sends for each change (counted by its meter) are the writes the model's trace
/// records for it, and they are not none.
#[test]
fn the_model_and_the_executor_send_the_same_calls_for_every_change() {
    let emu = Emulator::moto();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let d = desired(&s.manifest);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = rt.block_on(async {
        reconcile::aws::loader(&AwsOptions {
            region: Some("us-east-1".into()),
            endpoint_url: Some(emu.url.clone()),
            ..AwsOptions::default()
        })
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
    });
    let clients = reconcile::aws::Clients::new(&config);
    let observed = rt
        .block_on(reconcile::observe::observe_many(
            &clients,
            &Meter::new(),
            std::slice::from_ref(&d),
        ))
        .expect("the starting point reads")
        .remove(0);
    let plan = reconcile::plan::plan(&d, &observed).expect("a plan");
    let traced = model::trace(&d, &observed, &plan.nodes).unwrap_or_else(|v| panic!("{v}"));
    let meter = Meter::new();
    let ctx = exec::Context::new(
        clients.clone(),
        meter.clone(),
        &observed,
        reconcile::plan::dns::PROPAGATION_ALLOWANCE,
    );
    let mut compared = 0;
    let mut traced = traced.into_iter();
    for n in &plan.nodes {
        let NodeKind::Change(c) = &n.kind else {
            continue;
        };
        let (id, model) = traced.next().expect("a trace for every change");
        assert_eq!(id, n.id.to_string());
        let before = writes(&meter.stats().by_operation);
        rt.block_on(exec::run(&ctx, &c.op, &|_, _| {}))
            .unwrap_or_else(|e| panic!("{}: {e}", n.id));
        let after = writes(&meter.stats().by_operation);
        let mut sent: BTreeMap<String, usize> = BTreeMap::new();
        for (op, count) in &after {
            let new = count - before.get(op).copied().unwrap_or(0);
            if new > 0 {
                sent.insert(op.clone(), new);
            }
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for op in model
            .iter()
            .filter(|o| o.access() == reconcile::aws::operation::Access::Write)
        {
            *seen.entry(op.name().to_owned()).or_default() += 1;
        }
        assert_eq!(sent, seen, "{}: AWS got {sent:?}, the model {seen:?}", n.id);
        compared += usize::from(!sent.is_empty());
    }
    assert!(compared >= 10, "only {compared} changes sent anything");
}
