//! ACM: the ISSUED (and pending) certificates of the region and certificates by ARN, as
//! the project's own types (names lowercase, expiry in seconds since the epoch); and the
//! request of a DNS-validated certificate.

use crate::aws::Operation;
use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm};
use aws_sdk_acm::Client;

use super::{need, paginate, sdk_error, Answer, Meter, Result, Round};
use crate::manifest::net;
use crate::model::{expires_soon, pending_too_long, ObservedCert, ValidationRecord};

/// The largest page `ListCertificates` gives.
const PAGE_SIZE: i32 = 1000;

/// A certificate from the listing, which may name only some of what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCert {
    pub cert: ObservedCert,
    /// `cert.names` is every name the certificate covers. False when the listing gave no
    /// subject alternative names (moto 5.2 never does) or said there are more: then only
    /// `DescribeCertificate` has them all.
    pub names_complete: bool,
}

/// Reads of one account and region's ACM certificates.
#[derive(Debug, Clone)]
pub struct Acm {
    client: Client,
    meter: Meter,
}

impl Acm {
    pub fn new(client: &Client, meter: &Meter) -> Acm {
        Acm {
            client: client.clone(),
            meter: meter.clone(),
        }
    }

    /// Every ISSUED certificate with a key a load balancer can use (by default the listing
    /// shows RSA 2048 keys only); with `pending`, those awaiting validation too, and
    /// requests that failed or timed out.
    pub async fn issued(&self, pending: bool, after: Round) -> Result<Answer<Vec<ListedCert>>> {
        const OP: Operation = Operation::ListCertificates;
        let keys = Filters::builder()
            .set_key_types(Some(vec![
                KeyAlgorithm::Rsa2048,
                KeyAlgorithm::Rsa3072,
                KeyAlgorithm::Rsa4096,
                KeyAlgorithm::EcPrime256v1,
                KeyAlgorithm::EcSecp384r1,
                KeyAlgorithm::EcSecp521r1,
            ]))
            .build();
        let keys = &keys;
        let mut answer = paginate(&self.meter, OP, after, |token: Option<String>| async move {
            let out = self
                .client
                .list_certificates()
                .set_certificate_statuses(Some(if pending {
                    // Failed requests too: the plan reports them, and asks again.
                    vec![
                        CertificateStatus::Issued,
                        CertificateStatus::PendingValidation,
                        CertificateStatus::Failed,
                        CertificateStatus::ValidationTimedOut,
                    ]
                } else {
                    vec![CertificateStatus::Issued]
                }))
                .includes(keys.clone())
                .max_items(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            let mut certs = Vec::new();
            for s in out.certificate_summary_list() {
                let domain = need(s.domain_name(), OP, "DomainName")?;
                let sans = s.subject_alternative_name_summaries();
                certs.push(ListedCert {
                    cert: ObservedCert {
                        arn: need(s.certificate_arn(), OP, "CertificateArn")?.to_owned(),
                        domain: net::normalize_dns(domain),
                        names: names(domain, sans),
                        status: s.status().map_or("ISSUED", |s| s.as_str()).into(),
                        not_after: s.not_after().map(|t| t.secs()),
                        expiring: expires_soon(s.not_after().map(|t| t.secs())),
                        renewal: None,
                        validation: vec![],
                        store: net::CertStore::Acm,
                        created_at: s.created_at().map(|t| t.secs()),
                        overdue: pending_too_long(
                            &s.status().map_or("ISSUED", |s| s.as_str()).into(),
                            s.created_at().map(|t| t.secs()),
                        ),
                        in_use: s.in_use(),
                        tags: Default::default(),
                    },
                    names_complete: !sans.is_empty()
                        && s.has_additional_subject_alternative_names() != Some(true),
                });
            }
            Ok((certs, out.next_token().map(str::to_owned)))
        })
        .await?;
        answer.value.sort_by(|a, b| a.cert.arn.cmp(&b.cert.arn));
        Ok(answer)
    }

    /// One certificate with every name it covers, whatever its status; `None` when there
    /// is no such certificate (in this account and region).
    pub async fn certificate(
        &self,
        arn: &str,
        after: Round,
    ) -> Result<Answer<Option<ObservedCert>>> {
        const OP: Operation = Operation::DescribeCertificate;
        let Answer { value, round } = self
            .meter
            .read(
                OP,
                after,
                self.client
                    .describe_certificate()
                    .certificate_arn(arn)
                    .send(),
                |e| e.is_resource_not_found_exception() || e.is_invalid_arn_exception(),
            )
            .await?;
        let Some(out) = value else {
            return Ok(Answer { value: None, round });
        };
        let c = need(out.certificate(), OP, "Certificate")?;
        let domain = need(c.domain_name(), OP, "Certificate.DomainName")?;
        let value = ObservedCert {
            arn: c.certificate_arn().unwrap_or(arn).to_owned(),
            domain: net::normalize_dns(domain),
            names: names(domain, c.subject_alternative_names()),
            status: c.status().map_or("", |s| s.as_str()).into(),
            not_after: c.not_after().map(|t| t.secs()),
            expiring: expires_soon(c.not_after().map(|t| t.secs())),
            renewal: c
                .renewal_summary()
                .map(|r| r.renewal_status().as_str().to_owned()),
            validation: validation_records(c.domain_validation_options()),
            store: net::CertStore::Acm,
            created_at: c.created_at().or(c.imported_at()).map(|t| t.secs()),
            overdue: pending_too_long(
                &c.status().map_or("", |s| s.as_str()).into(),
                c.created_at().map(|t| t.secs()),
            ),
            in_use: Some(!c.in_use_by().is_empty()),
            tags: Default::default(),
        };
        Ok(Answer {
            value: Some(value),
            round,
        })
    }
}

/// The DNS validation records of a certificate, each once (names that share a parent
/// share a record), in normal form; none until ACM has made them.
pub(crate) fn validation_records(
    options: &[aws_sdk_acm::types::DomainValidation],
) -> Vec<ValidationRecord> {
    let mut records: Vec<ValidationRecord> = options
        .iter()
        .filter_map(|o| o.resource_record())
        .map(|r| ValidationRecord {
            name: net::normalize_dns(r.name()),
            value: r.value().trim_end_matches('.').to_owned(),
        })
        .collect();
    records.sort();
    records.dedup();
    records
}

impl Acm {
    /// Requests a DNS-validated certificate for `names` (the first is its domain); the
    /// same `token` within an hour returns the same certificate (ACM's idempotency), so a
    /// repeated request after a lost answer makes no second one. Returns its ARN.
    /// `tags` mark it as the stack's (ACM sets them with the request, so no certificate of
    /// the stack is ever untagged).
    pub async fn request(
        &self,
        names: &[String],
        token: &str,
        tags: &crate::model::Tags,
    ) -> Result<String> {
        const OP: Operation = Operation::RequestCertificate;
        let (domain, sans) = names
            .split_first()
            .ok_or_else(|| super::Error::Bug("a certificate request without a name".into()))?;
        self.meter.record(OP, Round::START);
        let out = self
            .client
            .request_certificate()
            .domain_name(domain)
            .set_subject_alternative_names((!sans.is_empty()).then(|| sans.to_vec()))
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .idempotency_token(token)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| aws_sdk_acm::types::Tag::builder().key(k).value(v).build())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| super::Error::Bug(format!("a certificate tag: {e}")))?,
            ))
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        Ok(need(out.certificate_arn(), OP, "CertificateArn")?.to_owned())
    }

    /// A certificate's status and validation records, `None` when it does not exist.
    pub async fn status(
        &self,
        arn: &str,
    ) -> Result<Option<(crate::model::CertStatus, Vec<ValidationRecord>)>> {
        Ok(self
            .certificate(arn, Round::START)
            .await?
            .value
            .map(|c| (c.status, c.validation)))
    }
}

/// The domain and the alternative names, lowercase, each once, the domain first.
fn names(domain: &str, sans: &[String]) -> Vec<String> {
    let mut names = vec![net::normalize_dns(domain)];
    for san in sans {
        let san = net::normalize_dns(san);
        if !names.contains(&san) {
            names.push(san);
        }
    }
    names
}

impl Acm {
    /// A certificate's tags; `None` when it no longer exists.
    pub async fn tags(
        &self,
        arn: &str,
        after: Round,
    ) -> Result<Answer<Option<crate::model::Tags>>> {
        const OP: Operation = Operation::ListTagsForCertificate;
        let answer = self
            .meter
            .read(
                OP,
                after,
                self.client
                    .list_tags_for_certificate()
                    .certificate_arn(arn)
                    .send(),
                |e| e.is_resource_not_found_exception() || e.is_invalid_arn_exception(),
            )
            .await?;
        Ok(answer.map(|found| {
            found.map(|out| {
                out.tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
                    .collect()
            })
        }))
    }

    /// Deletes a certificate; one already gone is no error (a run resumed after the
    /// delete). ACM refuses one still in use (`ResourceInUseException`), which the
    /// executor retries while a load balancer lets go of it.
    pub async fn delete(&self, arn: &str) -> Result<()> {
        const OP: Operation = Operation::DeleteCertificate;
        self.meter.record(OP, Round::START);
        match self
            .client
            .delete_certificate()
            .certificate_arn(arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(OP, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_the_domain_once() {
        let sans = ["WWW.example.com".to_owned(), "*.example.com".to_owned()];
        assert_eq!(
            names("www.example.com", &sans),
            vec!["www.example.com", "*.example.com"]
        );
        assert_eq!(names("Example.com", &[]), vec!["example.com"]);
    }
}
