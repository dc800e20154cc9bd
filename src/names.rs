//! The AWS names and tags the stack derives from the manifest. One place, so that the
//! validator, the observer and the executor can never disagree on what a resource is called.

/// Tag key on the security group that is a stack's apply lock; its value is the stack id.
/// The reader leaves such groups out of what the stack owns.
pub const LOCK_TAG: &str = "reconcile:lock";

/// The SHA-256 of `bytes` in lowercase hex: plan digests, lock tokens and machine ids.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Tag key that marks a resource as owned by a stack; its value is the stack id.
pub const STACK_TAG: &str = "reconcile:stack";

/// Tag key on a certificate a stack requested: the key of `certificates` it was requested
/// for. With [`STACK_TAG`] it marks the certificate as the stack's own, deleted once no
/// listener of the stack uses it and the manifest asks for another.
pub const CERTIFICATE_TAG: &str = "reconcile:certificate";

/// Tag key on a stack's load balancer listing the ports of the listeners whose response
/// headers the stack manages (`"443"`, `"80 443"`; empty once none): those listeners'
/// attributes are read, so that a header the manifest no longer sets, even with its whole
/// `headers` gone, is removed.
pub const HEADERS_TAG: &str = "reconcile:headers";

/// The ports a [`HEADERS_TAG`] value lists (what does not parse is ignored).
pub fn header_ports(value: &str) -> std::collections::BTreeSet<u16> {
    value
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The [`HEADERS_TAG`] value for these ports.
pub fn header_ports_value(ports: impl IntoIterator<Item = u16>) -> String {
    ports
        .into_iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Longest load balancer or target group name AWS accepts.
pub const MAX_ELB_NAME: usize = 32;

/// Suffix of the name a replacement takes while the resource it replaces still exists
/// (AWS names are unique, and the old one must keep serving until the new one is verified).
pub const REPLACEMENT_SUFFIX: &str = "-r";

/// Name of the stack's load balancer.
pub fn load_balancer(stack: &str) -> String {
    stack.to_owned()
}

/// Name of the target group with manifest key `key`.
pub fn target_group(stack: &str, key: &str) -> String {
    format!("{stack}-{key}")
}

/// Name of the security group the stack creates for manifest key `key`.
pub fn security_group(stack: &str, key: &str) -> String {
    format!("{stack}-{key}")
}

/// The manifest key a resource of `stack` was named after: `<stack>-<key>` (a target group
/// or security group), or a replacement's `<stack>-<key>-r`. The inverse of
/// [`target_group`] and [`security_group`], for writing a stack's manifest back from what
/// it owns (ownership itself is the tag's to say).
pub fn key_of(stack: &str, name: &str) -> Option<String> {
    let rest = name.strip_prefix(stack)?.strip_prefix('-')?;
    let key = rest.strip_suffix(REPLACEMENT_SUFFIX).unwrap_or(rest);
    (!key.is_empty()).then(|| key.to_owned())
}

/// Name of the TXT record next to a managed record where the start of its DNS waits is
/// recorded (in AWS, not on local disk: CI runners are ephemeral).
pub fn marker_record(record: &str) -> String {
    format!("_reconcile.{record}")
}

/// The `SetIdentifier`s of a staged cutover's two weighted records: the old value's and
/// the new one's. They name the record too, because a set identifier is what a DELETE
/// names (moto deletes every set of the zone that carries it); at most 128 characters.
pub fn cutover_set_ids(record: &str, kind: &str) -> (String, String) {
    let id = |side: &str| {
        format!("reconcile {side} {kind} {record}")
            .chars()
            .take(128)
            .collect::<String>()
    };
    (id("old"), id("new"))
}

/// The other name of a resource that can be replaced: base name and replacement alternate.
pub fn alternate(name: &str) -> String {
    match name.strip_suffix(REPLACEMENT_SUFFIX) {
        Some(base) => base.to_owned(),
        None => format!("{name}{REPLACEMENT_SUFFIX}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternate_flips_between_two_names() {
        assert_eq!(alternate("www-example-http"), "www-example-http-r");
        assert_eq!(alternate("www-example-http-r"), "www-example-http");
    }

    #[test]
    fn key_of_inverts_the_derived_names() {
        for key in ["http", "app", "lb", "a-b"] {
            assert_eq!(
                key_of("www-example", &target_group("www-example", key)).as_deref(),
                Some(key)
            );
            assert_eq!(
                key_of(
                    "www-example",
                    &alternate(&security_group("www-example", key))
                )
                .as_deref(),
                Some(key)
            );
        }
        assert_eq!(key_of("www-example", "www-example"), None);
        assert_eq!(key_of("www-example", "handmade-app"), None);
        assert_eq!(
            key_of("www", "www-example-app").as_deref(),
            Some("example-app")
        );
    }
}
