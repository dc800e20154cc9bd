//! Every AWS operation reconcile can send, as a type: the one table the meter counts by,
//! the limiter picks buckets by, errors name, and `reconcile iam-policy` is drawn from. An
//! adapter that sends a new operation adds its variant here, and the policy follows.

use serde::Serialize;

use super::Service;

/// What an operation does to AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: `plan`, `init` and drift detection need it.
    Read,
    /// Changes something: `apply` (and its lock) need it.
    Write,
}

macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident: $service:ident, $access:ident;)*) => {
        /// One AWS API operation (its variant is its API name).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum Operation {
            $($(#[$doc])* $variant,)*
        }

        impl Operation {
            /// Every operation reconcile can send.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The service it is sent to.
            pub const fn service(self) -> Service {
                match self {
                    $(Operation::$variant => Service::$service,)*
                }
            }

            /// Whether it reads or writes.
            pub const fn access(self) -> Access {
                match self {
                    $(Operation::$variant => Access::$access,)*
                }
            }

            /// Its name in the API (`CreateListener`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Operation::$variant => stringify!($variant),)*
                }
            }
        }
    };
}

operations! {
    DescribeLoadBalancers: Elbv2, Read;
    DescribeListeners: Elbv2, Read;
    DescribeListenerAttributes: Elbv2, Read;
    DescribeLoadBalancerAttributes: Elbv2, Read;
    DescribeTargetGroups: Elbv2, Read;
    DescribeTargetHealth: Elbv2, Read;
    DescribeTags: Elbv2, Read;
    CreateLoadBalancer: Elbv2, Write;
    DeleteLoadBalancer: Elbv2, Write;
    SetSecurityGroups: Elbv2, Write;
    SetSubnets: Elbv2, Write;
    CreateListener: Elbv2, Write;
    ModifyListener: Elbv2, Write;
    ModifyListenerAttributes: Elbv2, Write;
    ModifyLoadBalancerAttributes: Elbv2, Write;
    DeleteListener: Elbv2, Write;
    CreateTargetGroup: Elbv2, Write;
    ModifyTargetGroup: Elbv2, Write;
    DeleteTargetGroup: Elbv2, Write;
    RegisterTargets: Elbv2, Write;
    DeregisterTargets: Elbv2, Write;
    /// Also what creating a load balancer or target group with tags needs.
    AddTags: Elbv2, Write;
    DescribeSecurityGroups: Ec2, Read;
    DescribeInstances: Ec2, Read;
    DescribeSubnets: Ec2, Read;
    /// What still holds a group AWS will not delete (named in the error).
    DescribeNetworkInterfaces: Ec2, Read;
    CreateSecurityGroup: Ec2, Write;
    DeleteSecurityGroup: Ec2, Write;
    AuthorizeSecurityGroupIngress: Ec2, Write;
    RevokeSecurityGroupIngress: Ec2, Write;
    UpdateSecurityGroupRuleDescriptionsIngress: Ec2, Write;
    /// Also what creating a group with tags needs.
    CreateTags: Ec2, Write;
    ListHostedZonesByName: Route53, Read;
    ListResourceRecordSets: Route53, Read;
    GetChange: Route53, Read;
    ChangeResourceRecordSets: Route53, Write;
    ListCertificates: Acm, Read;
    DescribeCertificate: Acm, Read;
    RequestCertificate: Acm, Write;
    /// A request made with tags needs the tagging action too (ACM's permissions reference);
    /// never sent on its own.
    AddTagsToCertificate: Acm, Write;
    /// Which certificates the stack requested.
    ListTagsForCertificate: Acm, Read;
    /// A certificate the stack requested and no longer uses.
    DeleteCertificate: Acm, Write;
    /// A listener's certificate uploaded to IAM (pinned by ARN, or found by `init`).
    GetServerCertificate: Iam, Read;
    ListServerCertificates: Iam, Read;
    /// A cutover's bake: the new path's 5xx, request and unhealthy-host counts.
    GetMetricStatistics: CloudWatch, Read;
}

impl Operation {
    /// The operation `service` calls `name` (the SDK's own label of a request), if
    /// reconcile knows it.
    pub fn of(service: Service, name: &str) -> Option<Operation> {
        Operation::ALL
            .iter()
            .copied()
            .find(|o| o.service() == service && o.name() == name)
    }

    /// Its IAM action: `elasticloadbalancing:CreateListener`.
    pub fn action(self) -> String {
        format!("{}:{}", self.service(), self.name())
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_found_by_its_service_and_name_and_only_so() {
        for &o in Operation::ALL {
            assert_eq!(Operation::of(o.service(), o.name()), Some(o));
            for other in [Service::Elbv2, Service::Ec2, Service::Route53, Service::Acm] {
                if other != o.service() {
                    assert_eq!(Operation::of(other, o.name()), None, "{o}");
                }
            }
        }
        assert_eq!(Operation::of(Service::Ec2, "RunInstances"), None);
    }

    #[test]
    fn reads_are_the_describes_lists_and_gets() {
        for &o in Operation::ALL {
            let looks_like_a_read = ["Describe", "List", "Get"]
                .iter()
                .any(|p| o.name().starts_with(p));
            assert_eq!(o.access() == Access::Read, looks_like_a_read, "{o}");
        }
    }
}
