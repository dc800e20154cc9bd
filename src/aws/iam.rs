//! IAM's server certificates, which an Application Load Balancer's HTTPS listener takes as
//! well as ACM's (the article uploads its certificate there): one by ARN, or every one of
//! the account, as the project's [`ObservedCert`]. IAM keeps no list of the names a
//! certificate covers, so they are read from the certificate itself (its subject's common
//! name and DNS alternative names).

use crate::aws::Operation;
use aws_sdk_iam::types::ServerCertificateMetadata;
use aws_sdk_iam::Client;

use super::{need, paginate, sdk_error, Answer, Meter, Result, Round};
use crate::manifest::net::{self, CertStore};
use crate::model::{expires_soon, ObservedCert};

/// Reads of one account's IAM server certificates (IAM is global: the same in every
/// region).
#[derive(Debug, Clone)]
pub struct Iam {
    client: Client,
    meter: Meter,
}

impl Iam {
    pub fn new(client: &Client, meter: &Meter) -> Iam {
        Iam {
            client: client.clone(),
            meter: meter.clone(),
        }
    }

    /// The server certificate `arn` names, with the names it covers; `None` when there is
    /// none (no certificate of that name, or one of that name at another path).
    pub async fn certificate(
        &self,
        arn: &str,
        after: Round,
    ) -> Result<Answer<Option<ObservedCert>>> {
        let Some(name) = net::iam_server_cert_name(arn) else {
            return Ok(Answer {
                value: None,
                round: after,
            });
        };
        let answer = self.by_name(name, after).await?;
        Ok(Answer {
            value: answer.value.filter(|c| c.arn == arn),
            round: answer.round,
        })
    }

    async fn by_name(&self, name: &str, after: Round) -> Result<Answer<Option<ObservedCert>>> {
        const OP: Operation = Operation::GetServerCertificate;
        let Answer { value, round } = self
            .meter
            .read(
                OP,
                after,
                self.client
                    .get_server_certificate()
                    .server_certificate_name(name)
                    .send(),
                |e| e.is_no_such_entity_exception(),
            )
            .await?;
        let Some(out) = value else {
            return Ok(Answer { value: None, round });
        };
        let c = need(out.server_certificate(), OP, "ServerCertificate")?;
        let meta = need(
            c.server_certificate_metadata(),
            OP,
            "ServerCertificateMetadata",
        )?;
        Ok(Answer {
            value: Some(observed(meta, c.certificate_body())),
            round,
        })
    }

    /// Every server certificate of the account, each with the names it covers (one
    /// `GetServerCertificate` each: the listing has no names).
    pub async fn certificates(&self, after: Round) -> Result<Answer<Vec<ObservedCert>>> {
        const OP: Operation = Operation::ListServerCertificates;
        let listed = paginate(
            &self.meter,
            OP,
            after,
            |marker: Option<String>| async move {
                let out = self
                    .client
                    .list_server_certificates()
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| sdk_error(OP, e))?;
                let names: Vec<String> = out
                    .server_certificate_metadata_list()
                    .iter()
                    .map(|m| m.server_certificate_name().to_owned())
                    .collect();
                let next = if out.is_truncated() {
                    out.marker().map(str::to_owned)
                } else {
                    None
                };
                Ok((names, next))
            },
        )
        .await?;
        let round = listed.round;
        let described = futures::future::try_join_all(
            listed.value.iter().map(|name| self.by_name(name, round)),
        )
        .await?;
        let round = described.iter().map(|a| a.round).max().unwrap_or(round);
        let mut value: Vec<ObservedCert> = described.into_iter().filter_map(|a| a.value).collect();
        value.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(Answer { value, round })
    }
}

/// A server certificate as the project sees certificates: `ISSUED` until it expires. Its
/// expiry is the certificate's own (what a client checks; IAM's `Expiration` is copied
/// from it on AWS, and is a fixed 2012 date in moto), IAM's only when the body does not
/// parse.
fn observed(meta: &ServerCertificateMetadata, body: &str) -> ObservedCert {
    let Pem { names, not_after } = read_pem(body);
    let not_after = not_after.or_else(|| meta.expiration().map(|t| t.secs()));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let status = match not_after {
        Some(t) if t <= now => crate::model::CertStatus::Expired,
        _ => crate::model::CertStatus::Issued,
    };
    ObservedCert {
        arn: meta.arn().to_owned(),
        domain: names.first().cloned().unwrap_or_default(),
        names,
        status,
        not_after,
        expiring: expires_soon(not_after),
        renewal: None,
        validation: vec![],
        store: CertStore::Iam,
        created_at: meta.upload_date().map(|t| t.secs()),
        overdue: false,
        in_use: None,
        tags: Default::default(),
    }
}

/// What the tool needs of a PEM certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pem {
    /// The names it covers, lowercase, each once: its subject's common name first, then
    /// its DNS alternative names.
    pub names: Vec<String>,
    /// Its `notAfter`, seconds since the epoch.
    pub not_after: Option<i64>,
}

/// Reads a PEM certificate; nothing when the body is not one.
pub(crate) fn read_pem(body: &str) -> Pem {
    use x509_parser::extensions::GeneralName;
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(body.as_bytes()) else {
        return Pem::default();
    };
    let Ok(cert) = pem.parse_x509() else {
        return Pem::default();
    };
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        let n = net::normalize_dns(n);
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    };
    for cn in cert.subject().iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            add(cn);
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for g in &san.value.general_names {
            if let GeneralName::DNSName(d) = g {
                add(d);
            }
        }
    }
    Pem {
        names,
        not_after: Some(cert.validity().not_after.timestamp()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for www.example.com with the alternative names
    /// www.example.com and Example.com (made with openssl).
    const PEM: &str = include_str!("testdata/www-example.pem");

    #[test]
    fn names_come_from_the_common_name_and_the_dns_alternative_names() {
        let pem = read_pem(PEM);
        assert_eq!(pem.names, vec!["www.example.com", "example.com"]);
        // notAfter=Dec  1 04:07:13 2036 GMT.
        assert_eq!(pem.not_after, Some(2_111_717_233));
        assert_eq!(read_pem("not a certificate"), Pem::default());
        assert_eq!(read_pem(""), Pem::default());
    }
}
