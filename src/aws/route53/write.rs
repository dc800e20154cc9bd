//! Route53 writes: one atomic change batch of UPSERTs and DELETEs, and the status of a
//! change. Only UPSERT and DELETE: moto's CREATE of a name and type that exist with another
//! value adds a duplicate set instead of failing, so it cannot serve as a check.

use aws_sdk_route53::types::{
    AliasTarget as SdkAlias, Change, ChangeAction as SdkAction, ChangeBatch, ResourceRecord,
    ResourceRecordSet, RrType,
};

use super::Route53;
use crate::aws::Operation;
use crate::aws::{need, unbuilt, Error, Result};
use crate::model::{AliasTarget, ObservedRecord, RecordKind};

/// A record set as written: plain values, or an alias (then no TTL and no values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// Name in normal form (sent as it is).
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`, ...
    pub kind: RecordKind,
    /// None for alias records.
    pub ttl: Option<u32>,
    /// Values as the read side gives them; TXT values unquoted (quoted by the adapter).
    pub values: Vec<String>,
    pub alias: Option<AliasTarget>,
    /// A weighted set's identifier and weight; none for a simple record.
    pub weighted: Option<(String, u8)>,
}

impl From<&ObservedRecord> for RecordSet {
    fn from(r: &ObservedRecord) -> RecordSet {
        RecordSet {
            name: r.name.clone(),
            kind: r.kind.clone(),
            ttl: r.ttl,
            values: r.values.clone(),
            alias: r.alias.clone(),
            weighted: r
                .weighted
                .as_ref()
                .map(|w| (w.id.clone(), w.weight.unwrap_or(0))),
        }
    }
}

/// A record as Route53 keeps it once `set` is written.
impl From<&RecordSet> for ObservedRecord {
    fn from(set: &RecordSet) -> ObservedRecord {
        ObservedRecord {
            name: set.name.clone(),
            kind: set.kind.clone(),
            ttl: set.ttl,
            values: set.values.clone(),
            alias: set.alias.clone(),
            weighted: set.weighted.as_ref().map(|(id, w)| crate::model::Weighted {
                id: id.clone(),
                weight: Some(*w),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// Creates the set, or replaces the set of that name and type.
    Upsert,
    /// Deletes the set. It must be given exactly as it is (TTL and values, or the alias
    /// target): pass the observed record. moto checks it against the sets ever written
    /// (with the name, values and TTL spelled as they were sent), and then removes *every*
    /// set with that name and type; AWS compares it with the current set.
    Delete,
}

impl Route53 {
    /// Sends `changes` as one atomic ChangeResourceRecordSets batch; returns the change id
    /// (without the `/change/` prefix) for [`Route53::change_status`]. Alias records are
    /// sent without TTL and with `EvaluateTargetHealth` false; TXT values are quoted.
    pub async fn change(
        &self,
        zone_id: &str,
        changes: &[(ChangeAction, RecordSet)],
        comment: &str,
    ) -> Result<String> {
        const OP: Operation = Operation::ChangeResourceRecordSets;
        if changes.is_empty() {
            return Err(Error::Bug(format!(
                "an empty change batch for zone {zone_id} ({comment})"
            )));
        }
        let changes = changes
            .iter()
            .map(|(action, set)| change(*action, set))
            .collect::<Result<Vec<_>>>()?;
        let batch = ChangeBatch::builder()
            .set_changes(Some(changes))
            .set_comment((!comment.is_empty()).then(|| comment.to_owned()))
            .build()
            .map_err(|e| unbuilt(OP, &e))?;
        let out = self
            .meter
            .send(
                OP,
                self.client
                    .change_resource_record_sets()
                    .hosted_zone_id(zone_id)
                    .change_batch(batch)
                    .send(),
            )
            .await?;
        let info = need(out.change_info(), OP, "ChangeInfo")?;
        Ok(change_id(info.id()))
    }

    /// The status of a change: `Pending` or `Insync`.
    pub async fn change_status(
        &self,
        change_id: &str,
    ) -> Result<aws_sdk_route53::types::ChangeStatus> {
        const OP: Operation = Operation::GetChange;
        let out = self
            .meter
            .send(
                OP,
                self.client
                    .get_change()
                    .id(self::change_id(change_id))
                    .send(),
            )
            .await?;
        let info = need(out.change_info(), OP, "ChangeInfo")?;
        Ok(info.status().clone())
    }
}

/// A change id without the `/change/` prefix AWS answers with.
fn change_id(id: &str) -> String {
    id.trim_start_matches("/change/").to_owned()
}

fn change(action: ChangeAction, set: &RecordSet) -> Result<Change> {
    const OP: Operation = Operation::ChangeResourceRecordSets;
    let kind = RrType::from(set.kind.as_str());
    let mut builder = ResourceRecordSet::builder()
        .name(&set.name)
        .r#type(kind.clone());
    if let Some((id, weight)) = &set.weighted {
        builder = builder.set_identifier(id).weight(i64::from(*weight));
    }
    builder = match &set.alias {
        Some(alias) => builder.alias_target(
            SdkAlias::builder()
                .dns_name(&alias.dns_name)
                .hosted_zone_id(&alias.zone_id)
                .evaluate_target_health(false)
                .build()
                .map_err(|e| unbuilt(OP, &e))?,
        ),
        None => {
            let records = set
                .values
                .iter()
                .map(|v| {
                    let value = if matches!(kind, RrType::Txt | RrType::Spf) {
                        quote_txt(v)
                    } else {
                        v.clone()
                    };
                    ResourceRecord::builder()
                        .value(value)
                        .build()
                        .map_err(|e| unbuilt(OP, &e))
                })
                .collect::<Result<Vec<_>>>()?;
            builder
                .set_ttl(set.ttl.map(i64::from))
                .set_resource_records(Some(records))
        }
    };
    let set = builder.build().map_err(|e| unbuilt(OP, &e))?;
    Change::builder()
        .action(match action {
            ChangeAction::Upsert => SdkAction::Upsert,
            ChangeAction::Delete => SdkAction::Delete,
        })
        .resource_record_set(set)
        .build()
        .map_err(|e| unbuilt(OP, &e))
}

/// The longest character-string DNS allows in a TXT record.
const TXT_CHUNK: usize = 255;

/// A TXT value on the wire: quoted character-strings of at most 255 bytes, `"` and `\`
/// escaped, bytes outside printable ASCII as `\ooo` (octal), as Route53 asks. The read side
/// ([`super::unquote_txt`]) turns it back into the same text.
fn quote_txt(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return "\"\"".to_owned();
    }
    let strings: Vec<String> = bytes
        .chunks(TXT_CHUNK)
        .map(|chunk| {
            let mut s = String::with_capacity(chunk.len() + 2);
            s.push('"');
            for &b in chunk {
                match b {
                    b'"' | b'\\' => {
                        s.push('\\');
                        s.push(char::from(b));
                    }
                    0x20..=0x7e => s.push(char::from(b)),
                    _ => s.push_str(&format!("\\{b:03o}")),
                }
            }
            s.push('"');
            s
        })
        .collect();
    strings.join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::unquote_txt;
    use super::*;

    #[test]
    fn txt_values_are_quoted_and_escaped() {
        assert_eq!(quote_txt("marker"), "\"marker\"");
        assert_eq!(quote_txt("a \"b\" \\c"), r#""a \"b\" \\c""#);
        assert_eq!(quote_txt("café"), r#""caf\303\251""#);
        assert_eq!(quote_txt(""), "\"\"");
        let long = "x".repeat(300);
        assert_eq!(
            quote_txt(&long),
            format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
        );
    }

    #[test]
    fn txt_values_round_trip() {
        for v in [
            "marker",
            "",
            "started=2024-05-01T10:00:00Z ttl=3600",
            "a \"quoted\" word and a \\ backslash",
            "naïve café ☕",
            &"v=DKIM1; k=rsa; p=".repeat(40),
            &"é".repeat(200),
        ] {
            assert_eq!(unquote_txt(&quote_txt(v)), v);
        }
    }

    #[test]
    fn alias_records_have_no_ttl_and_no_values() {
        let set = RecordSet {
            name: "www.example.com".into(),
            kind: RecordKind::A,
            ttl: Some(60),
            values: vec!["192.0.2.1".into()],
            alias: Some(AliasTarget {
                dns_name: "lb-1.us-east-1.elb.amazonaws.com".into(),
                zone_id: "Z35SXDOTRQ7X7K".into(),
            }),
            weighted: None,
        };
        let got = change(ChangeAction::Upsert, &set)
            .ok()
            .and_then(|c| c.resource_record_set);
        assert_eq!(got.as_ref().and_then(|s| s.ttl()), None);
        assert!(got
            .as_ref()
            .is_some_and(|s| s.resource_records().is_empty()));
        let alias = got.as_ref().and_then(|s| s.alias_target());
        assert_eq!(alias.map(|a| a.evaluate_target_health()), Some(false));
    }
}
