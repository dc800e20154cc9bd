//! Route53 reads: a hosted zone by name, and its record sets in normal form (names and DNS
//! values lowercase without trailing dot, alias names without `dualstack.`, TXT values
//! unquoted). The writes are in `route53/write.rs`.

mod write;

pub use write::{ChangeAction, RecordSet};

use crate::aws::Operation;
use std::net::IpAddr;

use aws_sdk_route53::types::{ResourceRecordSet, RrType};
use aws_sdk_route53::Client;

use super::{paginate, sdk_error, Answer, Error, Meter, Result, Round};
use crate::manifest::net;
use crate::model::{AliasTarget, ObservedRecord, ObservedZone, RecordKind, Weighted};

/// The largest page `ListResourceRecordSets` gives.
const PAGE_SIZE: i32 = 300;

/// The account's Route53 hosted zones.
#[derive(Debug, Clone)]
pub struct Route53 {
    client: Client,
    meter: Meter,
}

impl Route53 {
    pub fn new(client: &Client, meter: &Meter) -> Route53 {
        Route53 {
            client: client.clone(),
            meter: meter.clone(),
        }
    }

    /// The hosted zone named exactly `name`, without its records; `None` when there is
    /// none. A public zone wins over private ones; two candidates are an error, since
    /// changing the wrong one would change nothing that resolvers see.
    pub async fn zone_named(
        &self,
        name: &str,
        after: Round,
    ) -> Result<Answer<Option<ObservedZone>>> {
        const OP: Operation = Operation::ListHostedZonesByName;
        let round = self.meter.record(OP, after);
        let want = net::normalize_dns(name);
        // Zones come sorted by name from `name` on, so exact matches are on the first page.
        let out = self
            .client
            .list_hosted_zones_by_name()
            .dns_name(&want)
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        let exact: Vec<(String, bool)> = out
            .hosted_zones()
            .iter()
            .filter(|z| net::normalize_dns(&unescape(z.name())) == want)
            .map(|z| {
                let private = z.config().is_some_and(|c| c.private_zone());
                (zone_id(z.id()), private)
            })
            .collect();
        let public: Vec<&String> = exact.iter().filter(|z| !z.1).map(|z| &z.0).collect();
        let candidates: Vec<&String> = if public.is_empty() {
            exact.iter().map(|z| &z.0).collect()
        } else {
            public
        };
        let value = match candidates.as_slice() {
            [] => None,
            [id] => Some(ObservedZone {
                id: (*id).clone(),
                name: want,
                records: Vec::new(),
                neighbours: Vec::new(),
            }),
            more => {
                return Err(Error::AmbiguousZone {
                    name: want,
                    ids: more.iter().map(|id| (*id).clone()).collect(),
                })
            }
        };
        Ok(Answer { value, round })
    }

    /// The record sets of a zone (every page) whose normalised name `keep` accepts, or
    /// that `also` accepts, without the zone's own SOA and NS records.
    pub async fn records(
        &self,
        zone_id: &str,
        keep: impl Fn(&str) -> bool,
        also: impl Fn(&ObservedRecord) -> bool,
        after: Round,
    ) -> Result<Answer<Vec<ObservedRecord>>> {
        const OP: Operation = Operation::ListResourceRecordSets;
        type Start = (String, Option<RrType>, Option<String>);
        let (keep, also) = (&keep, &also);
        let mut answer = paginate(&self.meter, OP, after, |start: Option<Start>| async move {
            let (name, kind, identifier) = match start {
                Some((n, t, i)) => (Some(n), t, i),
                None => (None, None, None),
            };
            let out = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .max_items(PAGE_SIZE)
                .set_start_record_name(name)
                .set_start_record_type(kind)
                .set_start_record_identifier(identifier)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            let records = out
                .resource_record_sets()
                .iter()
                .filter_map(record)
                .filter(|r| keep(&r.name) || also(r))
                .collect();
            let next = match (out.is_truncated(), out.next_record_name()) {
                (true, Some(name)) => Some((
                    name.to_owned(),
                    out.next_record_type().cloned(),
                    out.next_record_identifier().map(str::to_owned),
                )),
                _ => None,
            };
            Ok((records, next))
        })
        .await?;
        answer
            .value
            .sort_by(|a, b| (&a.name, &a.kind).cmp(&(&b.name, &b.kind)));
        Ok(answer)
    }
}

/// A zone id without the `/hostedzone/` prefix AWS answers with.
fn zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_owned()
}

/// A record set in normal form; `None` for SOA and NS, which the zone owns (moto's SOA
/// value is not even a valid SOA: it is a Python dict printed as text).
fn record(set: &ResourceRecordSet) -> Option<ObservedRecord> {
    let kind = set.r#type();
    if matches!(kind, RrType::Soa | RrType::Ns) {
        return None;
    }
    let values = set
        .resource_records()
        .iter()
        .map(|r| value(kind, r.value()))
        .collect();
    let kind = RecordKind::from(kind.as_str());
    let alias = set.alias_target().map(|a| {
        let name = net::normalize_dns(a.dns_name());
        AliasTarget {
            dns_name: name
                .strip_prefix("dualstack.")
                .map_or(name.clone(), str::to_owned),
            zone_id: zone_id(a.hosted_zone_id()),
        }
    });
    Some(ObservedRecord {
        name: net::normalize_dns(&unescape(set.name())),
        kind,
        // Alias records have no TTL (moto leaves the field out, as AWS does).
        ttl: set.ttl().and_then(|t| u32::try_from(t).ok()),
        values,
        alias,
        weighted: set.set_identifier().map(|id| Weighted {
            id: id.to_owned(),
            weight: set.weight().and_then(|w| u8::try_from(w).ok()),
        }),
    })
}

/// A record value in normal form: DNS names lowercase without trailing dot, IP addresses
/// in their canonical spelling, TXT text unquoted, anything else as given.
fn value(kind: &RrType, v: &str) -> String {
    match kind {
        RrType::Cname | RrType::Ns | RrType::Ptr => net::normalize_dns(v),
        RrType::A | RrType::Aaaa => v
            .parse::<IpAddr>()
            .map_or_else(|_| v.to_owned(), |ip| ip.to_string()),
        RrType::Txt | RrType::Spf => unquote_txt(v),
        _ => v.to_owned(),
    }
}

/// The text of a TXT value: its character-strings (quoted, or bare words) unescaped (`\"`,
/// `\\`, `\ooo` octal) and joined without separator, as SPF and DKIM readers join them,
/// so that a long value split at 255 bytes reads as one text.
fn unquote_txt(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut quoted = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => quoted = !quoted,
            b'\\' => {
                let octal = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
                    .and_then(|d| std::str::from_utf8(d).ok())
                    .and_then(|d| u8::from_str_radix(d, 8).ok());
                match (octal, bytes.get(i + 1)) {
                    (Some(o), _) => {
                        out.push(o);
                        i += 3;
                    }
                    (None, Some(&next)) => {
                        out.push(next);
                        i += 1;
                    }
                    (None, None) => out.push(b),
                }
            }
            // Between character-strings, and between bare words.
            b' ' | b'\t' if !quoted => {}
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Route53 spells characters outside `a-z0-9-_.` in names as `\ooo` (octal), e.g. `\052`
/// for the `*` of a wildcard.
fn unescape(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::types::{AliasTarget as SdkAlias, ResourceRecord};

    fn set(name: &str, kind: RrType) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
        ResourceRecordSet::builder().name(name).r#type(kind)
    }

    fn rr(v: &str) -> ResourceRecord {
        ResourceRecord::builder()
            .value(v)
            .build()
            .unwrap_or_else(|_| unreachable!("value is set"))
    }

    #[test]
    fn records_come_in_normal_form() {
        let cname = set("WWW.Example.com.", RrType::Cname)
            .ttl(300)
            .resource_records(rr("WWW-EXAMPLE-1.us-east-1.ELB.amazonaws.com."))
            .build()
            .ok();
        let got = cname.as_ref().and_then(record);
        assert_eq!(
            got,
            Some(ObservedRecord {
                weighted: None,
                name: "www.example.com".into(),
                kind: RecordKind::Cname,
                ttl: Some(300),
                values: vec!["www-example-1.us-east-1.elb.amazonaws.com".into()],
                alias: None,
            })
        );
        let alias = set("\\052.example.com.", RrType::A)
            .alias_target(
                SdkAlias::builder()
                    .dns_name("dualstack.WWW-example-1.us-east-1.elb.amazonaws.com.")
                    .hosted_zone_id("Z35SXDOTRQ7X7K")
                    .evaluate_target_health(false)
                    .build()
                    .ok()
                    .unwrap_or_else(|| unreachable!("every field is set")),
            )
            .build()
            .ok();
        let got = alias.as_ref().and_then(record);
        assert_eq!(got.as_ref().map(|r| r.name.as_str()), Some("*.example.com"));
        assert_eq!(got.as_ref().and_then(|r| r.ttl), None);
        assert_eq!(
            got.and_then(|r| r.alias),
            Some(AliasTarget {
                dns_name: "www-example-1.us-east-1.elb.amazonaws.com".into(),
                zone_id: "Z35SXDOTRQ7X7K".into(),
            })
        );
    }

    #[test]
    fn soa_and_ns_are_skipped_even_when_malformed() {
        let soa = set("example.com.", RrType::Soa)
            .ttl(900)
            .resource_records(rr(
                "{'Value': 'ns-2048.awsdns-64.com. hostmaster.example.com. 1'}",
            ))
            .build()
            .ok();
        assert_eq!(soa.as_ref().and_then(record), None);
    }

    #[test]
    fn ipv6_values_are_canonical() {
        assert_eq!(value(&RrType::Aaaa, "2001:0DB8:0000::1"), "2001:db8::1");
        assert_eq!(value(&RrType::Txt, "\"Hello\""), "Hello");
    }

    #[test]
    fn txt_values_read_as_their_text() {
        assert_eq!(unquote_txt(r#""hello world""#), "hello world");
        assert_eq!(unquote_txt(r#""a\"b" "c""#), "a\"bc");
        assert_eq!(unquote_txt(r#""caf\303\251""#), "café");
        assert_eq!(unquote_txt(r#""back\\slash""#), "back\\slash");
        assert_eq!(unquote_txt("bare"), "bare");
        assert_eq!(unquote_txt(r#""""#), "");
        assert_eq!(unquote_txt(r#""unterminated"#), "unterminated");
    }
}
