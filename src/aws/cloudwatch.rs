//! CloudWatch: the load balancer's and its target groups' metrics a cutover's bake
//! watches (the `AWS/ApplicationELB` namespace, which the load balancer publishes every
//! minute it has traffic).

use crate::aws::Operation;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_cloudwatch::Client;

use super::{Meter, Result};

/// The namespace of Application Load Balancer metrics.
pub const NAMESPACE: &str = "AWS/ApplicationELB";

/// The period of the statistics asked for: the load balancer publishes per minute.
const PERIOD: i32 = 60;

/// How a metric's data points are summed up over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// The total of counts (requests, 5xx answers).
    Sum,
    /// The highest value seen (unhealthy hosts).
    Maximum,
}

#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: Client,
    meter: Meter,
}

/// The `LoadBalancer` dimension of a load balancer's ARN: `app/<name>/<id>`, the part
/// after `loadbalancer/` (as AWS documents it); `TargetGroup` likewise for a target
/// group: `targetgroup/<name>/<id>`.
pub fn dimension_of(arn: &str, after: &str) -> Option<String> {
    let (_, rest) = arn.split_once(':')?;
    let resource = rest.splitn(5, ':').nth(4)?;
    match after {
        "loadbalancer/" => resource.strip_prefix(after).map(str::to_owned),
        _ => resource.starts_with(after).then(|| resource.to_owned()),
    }
}

impl CloudWatch {
    pub fn new(client: &Client, meter: &Meter) -> CloudWatch {
        CloudWatch {
            client: client.clone(),
            meter: meter.clone(),
        }
    }

    /// `metric` over `[from, to)` (seconds since the epoch) for the data points with
    /// exactly `dimensions`, by `stat`: the sum of the per-minute sums, or the highest
    /// maximum. No data point (no traffic yet) reads as 0.
    pub async fn statistic(
        &self,
        metric: &str,
        dimensions: &[(&str, String)],
        from: i64,
        to: i64,
        stat: Stat,
    ) -> Result<f64> {
        const OP: Operation = Operation::GetMetricStatistics;
        let dims = dimensions
            .iter()
            .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
            .collect::<Vec<_>>();
        let statistic = match stat {
            Stat::Sum => Statistic::Sum,
            Stat::Maximum => Statistic::Maximum,
        };
        let out = self
            .meter
            .send(
                OP,
                self.client
                    .get_metric_statistics()
                    .namespace(NAMESPACE)
                    .metric_name(metric)
                    .set_dimensions(Some(dims))
                    .start_time(DateTime::from_secs(from))
                    .end_time(DateTime::from_secs(to.max(from + 1)))
                    .period(PERIOD)
                    .statistics(statistic)
                    .send(),
            )
            .await?;
        let values = out.datapoints().iter().filter_map(|d| match stat {
            Stat::Sum => d.sum(),
            Stat::Maximum => d.maximum(),
        });
        Ok(match stat {
            Stat::Sum => values.sum(),
            Stat::Maximum => values.fold(0.0, f64::max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_come_from_the_arns_resource_part() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/www/50dc6c495c0c9188";
        assert_eq!(
            dimension_of(lb, "loadbalancer/").as_deref(),
            Some("app/www/50dc6c495c0c9188")
        );
        let tg =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app/73e2d6bc24d8a067";
        assert_eq!(
            dimension_of(tg, "targetgroup/").as_deref(),
            Some("targetgroup/app/73e2d6bc24d8a067")
        );
        assert_eq!(dimension_of("not an arn", "targetgroup/"), None);
        assert_eq!(dimension_of(lb, "targetgroup/"), None);
    }
}
