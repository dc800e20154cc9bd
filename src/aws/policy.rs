//! Every AWS operation reconcile can call, in one table, and the least-privilege IAM policy
//! drawn from it (`reconcile iam-policy [--read-only]`). The adapters name each operation
//! they send (`const OP: &str = ...`); a test checks that every one of those names is in
//! [`OPERATIONS`], and another that every operation the integration tests saw the meter
//! count is in the policy.

use super::Service;

/// What an operation does to AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: `plan`, `init` and drift detection need it.
    Read,
    /// Changes something: `apply` (and its lock) need it.
    Write,
}

/// One operation: the service, its API name, and whether it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub service: Service,
    pub name: &'static str,
    pub access: Access,
}

const fn op(service: Service, name: &'static str, access: Access) -> Operation {
    Operation {
        service,
        name,
        access,
    }
}

use Access::{Read, Write};
use Service::{Acm, CloudWatch, Ec2, Elbv2, Iam, Route53};

/// Every operation reconcile can send.
pub const OPERATIONS: &[Operation] = &[
    op(Elbv2, "DescribeLoadBalancers", Read),
    op(Elbv2, "DescribeListeners", Read),
    op(Elbv2, "DescribeListenerAttributes", Read),
    op(Elbv2, "DescribeLoadBalancerAttributes", Read),
    op(Elbv2, "DescribeTargetGroups", Read),
    op(Elbv2, "DescribeTargetHealth", Read),
    op(Elbv2, "DescribeTags", Read),
    op(Elbv2, "CreateLoadBalancer", Write),
    op(Elbv2, "DeleteLoadBalancer", Write),
    op(Elbv2, "SetSecurityGroups", Write),
    op(Elbv2, "SetSubnets", Write),
    op(Elbv2, "CreateListener", Write),
    op(Elbv2, "ModifyListener", Write),
    op(Elbv2, "ModifyListenerAttributes", Write),
    op(Elbv2, "ModifyLoadBalancerAttributes", Write),
    op(Elbv2, "DeleteListener", Write),
    op(Elbv2, "CreateTargetGroup", Write),
    op(Elbv2, "ModifyTargetGroup", Write),
    op(Elbv2, "DeleteTargetGroup", Write),
    op(Elbv2, "RegisterTargets", Write),
    op(Elbv2, "DeregisterTargets", Write),
    // Also what creating a load balancer or target group with tags needs.
    op(Elbv2, "AddTags", Write),
    op(Ec2, "DescribeSecurityGroups", Read),
    op(Ec2, "DescribeInstances", Read),
    op(Ec2, "DescribeSubnets", Read),
    op(Ec2, "CreateSecurityGroup", Write),
    op(Ec2, "DeleteSecurityGroup", Write),
    op(Ec2, "AuthorizeSecurityGroupIngress", Write),
    op(Ec2, "RevokeSecurityGroupIngress", Write),
    op(Ec2, "UpdateSecurityGroupRuleDescriptionsIngress", Write),
    // Also what creating a group with tags needs.
    op(Ec2, "CreateTags", Write),
    op(Route53, "ListHostedZonesByName", Read),
    op(Route53, "ListResourceRecordSets", Read),
    op(Route53, "GetChange", Read),
    op(Route53, "ChangeResourceRecordSets", Write),
    op(Acm, "ListCertificates", Read),
    op(Acm, "DescribeCertificate", Read),
    op(Acm, "RequestCertificate", Write),
    // A request made with tags needs the tagging action too (ACM's permissions reference).
    op(Acm, "AddTagsToCertificate", Write),
    // Which certificates the stack requested; deleting one it no longer uses.
    op(Acm, "ListTagsForCertificate", Read),
    op(Acm, "DeleteCertificate", Write),
    // A listener's certificate uploaded to IAM (pinned by ARN, or found by `init`).
    op(Iam, "GetServerCertificate", Read),
    op(Iam, "ListServerCertificates", Read),
    // A cutover's bake: the new path's 5xx, request and unhealthy-host counts.
    op(CloudWatch, "GetMetricStatistics", Read),
];

/// The IAM action of an operation: `elasticloadbalancing:CreateListener`.
pub fn action(o: &Operation) -> String {
    format!("{}:{}", o.service, o.name)
}

/// The least-privilege policy document for `plan` (`read_only`) or for `apply` too.
/// Resources are `*`: most of these reads accept nothing narrower, and the writes act on
/// resources whose ARNs exist only once the run has made them.
pub fn policy(read_only: bool) -> serde_json::Value {
    let actions = |access: Access| -> Vec<String> {
        let mut v: Vec<String> = OPERATIONS
            .iter()
            .filter(|o| o.access == access)
            .map(action)
            .collect();
        v.sort();
        v
    };
    let mut statements = vec![serde_json::json!({
        "Sid": "ReconcileRead",
        "Effect": "Allow",
        "Action": actions(Access::Read),
        "Resource": "*",
    })];
    if !read_only {
        statements.push(serde_json::json!({
            "Sid": "ReconcileWrite",
            "Effect": "Allow",
            "Action": actions(Access::Write),
            "Resource": "*",
        }));
    }
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": statements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation an adapter names (`const OP: &str = "..."`) is in the table.
    #[test]
    fn every_operation_the_adapters_send_is_in_the_table() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    walk(&p, found);
                } else if p.extension().is_some_and(|e| e == "rs") && !p.ends_with("policy.rs") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    for part in text.split("OP: &str = \"").skip(1) {
                        if let Some(name) = part.split('"').next() {
                            found.push(name.to_owned());
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws"),
            &mut found,
        );
        assert!(found.len() > 30, "{found:?}");
        for name in found {
            assert!(
                OPERATIONS.iter().any(|o| o.name == name),
                "{name} is sent but not in OPERATIONS (nor in the IAM policy)"
            );
        }
    }

    #[test]
    fn the_read_only_policy_writes_nothing() {
        let p = policy(true);
        let text = p.to_string();
        assert!(text.contains("ec2:DescribeSecurityGroups"), "{text}");
        for o in OPERATIONS.iter().filter(|o| o.access == Access::Write) {
            assert!(!text.contains(&format!("\"{}\"", action(o))), "{text}");
        }
        let full = policy(false).to_string();
        for o in OPERATIONS {
            assert!(full.contains(&format!("\"{}\"", action(o))), "{}", o.name);
        }
    }
}
