//! The least-privilege IAM policy (`reconcile iam-policy [--read-only]`), drawn from the
//! table of operations ([`Operation`]): every operation an adapter can send is a variant
//! there, so the policy names each one (the integration tests check that every operation
//! the meter counted in their runs is in it).

use super::operation::{Access, Operation};

/// The least-privilege policy document for `plan` (`read_only`) or for `apply` too.
/// Resources are `*`: most of these reads accept nothing narrower, and the writes act on
/// resources whose ARNs exist only once the run has made them.
pub fn policy(read_only: bool) -> serde_json::Value {
    let actions = |access: Access| -> Vec<String> {
        let mut v: Vec<String> = Operation::ALL
            .iter()
            .filter(|o| o.access() == access)
            .map(|o| o.action())
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

    #[test]
    fn the_read_only_policy_writes_nothing() {
        let p = policy(true);
        let text = p.to_string();
        assert!(text.contains("ec2:DescribeSecurityGroups"), "{text}");
        for o in Operation::ALL
            .iter()
            .filter(|o| o.access() == Access::Write)
        {
            assert!(!text.contains(&format!("\"{}\"", o.action())), "{text}");
        }
        let full = policy(false).to_string();
        for o in Operation::ALL {
            assert!(full.contains(&format!("\"{}\"", o.action())), "{o}");
        }
    }
}
