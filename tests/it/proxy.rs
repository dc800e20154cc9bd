//! A recording proxy between the binary and the emulator. It forwards one request at a
//! time, names each by its AWS operation, counts them, and after every mutating call (and
//! before the binary sees the answer) runs a check against the emulator: the availability
//! invariant, with the history of DNS answers kept on the wall clock. It can also inject
//! faults, seeded and reproducible (throttling, 500, 503, connections dropped before or
//! after the request reached the emulator, latency), and kill the binary right after its
//! k-th mutating call.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::Credentials;
use reconcile::aws::{AwsOptions, Meter};
use reconcile::model::Desired;
use reconcile::plan::check::model;

/// One call seen by the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: String,
    pub mutating: bool,
    pub status: u16,
    /// A call on the apply lock (its group), not on the stack.
    pub lock: bool,
    /// The fault injected instead of (or after) forwarding, if any.
    pub fault: Option<Fault>,
    pub at: Instant,
    /// AWS's error code, when the call was refused.
    pub code: Option<String>,
    /// The request's body (a query's form, Route53's XML); empty where the layer's hook saw
    /// the call.
    pub body: String,
}

/// A fault the proxy can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 `Throttling`, in the service's own error format.
    Throttle,
    Status500,
    Status503,
    /// The connection closes before the request reaches the emulator.
    DropBefore,
    /// The request reaches the emulator; the connection closes before the answer.
    DropAfter,
}

/// Seeded faults: `percent` of requests get one, of a kind drawn from `kinds`.
#[derive(Debug, Clone)]
pub struct Faults {
    pub seed: u64,
    pub percent: u64,
    pub kinds: Vec<Fault>,
    /// Added to every request.
    pub latency: Duration,
    /// Fault only the calls that change the stack (not reads, not the lock's calls).
    pub only_mutating: bool,
}

/// What a proxy does besides forwarding.
#[derive(Default)]
pub struct Options {
    pub check: Option<Check>,
    pub faults: Option<Faults>,
    /// Kill this process (SIGKILL) right after the k-th mutating call, before it sees the
    /// answer: (k, pid once known).
    pub kill_after: Option<(usize, Arc<Mutex<Option<u32>>>)>,
    /// Kill this process (SIGKILL) right after the first mutating call whose request body
    /// contains this text, once the call is logged and before the process sees the answer:
    /// (text, pid once known).
    pub kill_on: Option<(String, Arc<Mutex<Option<u32>>>)>,
}

/// xorshift64*: enough randomness for reproducible fault choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A canned error answer in the format of the service the request went to.
fn error_response(request: &str, status: u16, code: &str) -> Vec<u8> {
    let (content_type, body) = if request.contains("Version=2016-11-15") {
        (
            "text/xml",
            format!("<Response><Errors><Error><Code>{code}</Code><Message>injected</Message></Error></Errors><RequestID>fault</RequestID></Response>"),
        )
    } else if request.contains("X-Amz-Target") || request.contains("x-amz-target") {
        (
            "application/x-amz-json-1.1",
            format!("{{\"__type\":\"{code}\",\"message\":\"injected\"}}"),
        )
    } else {
        (
            "text/xml",
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error><RequestId>fault</RequestId></ErrorResponse>"),
        )
    };
    let reason = match status {
        400 => "Bad Request",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[derive(Default)]
pub struct Log {
    pub calls: Vec<Call>,
    pub violations: Vec<String>,
    pub checks: usize,
}

pub struct Proxy {
    pub url: String,
    pub log: Arc<Mutex<Log>>,
}

pub type Check = Box<dyn FnMut(&Call) -> Option<String> + Send>;

impl Proxy {
    /// Starts a proxy to `upstream` that runs `check` after every mutating call.
    pub fn start(upstream: &str, check: Check) -> Proxy {
        Proxy::with(
            upstream,
            Options {
                check: Some(check),
                ..Options::default()
            },
        )
    }

    /// Starts a proxy to `upstream` with `opts`.
    pub fn with(upstream: &str, mut opts: Options) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        std::thread::spawn(move || {
            let mut lock_ids: Vec<String> = Vec::new();
            let mut rng = Rng(opts.faults.as_ref().map_or(1, |f| f.seed.max(1)));
            let mut mutations = 0usize;
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let Some((request, operation, mutating)) = read_request(&mut client) else {
                    continue;
                };
                let body = String::from_utf8_lossy(&request).into_owned();
                let creates_lock = body.contains("GroupName=reconcile-lock-");
                let lock = creates_lock || lock_ids.iter().any(|id| body.contains(id.as_str()));
                let fault = opts.faults.as_ref().and_then(|f| {
                    std::thread::sleep(f.latency);
                    let eligible = !f.only_mutating || (mutating && !lock);
                    let hit = eligible && rng.next() % 100 < f.percent && !f.kinds.is_empty();
                    let kind = rng.next() as usize % f.kinds.len().max(1);
                    hit.then(|| f.kinds[kind])
                });
                let record = |fault: Option<Fault>, status: u16| Call {
                    operation: operation.clone(),
                    mutating,
                    status,
                    lock,
                    fault,
                    at: Instant::now(),
                    code: None,
                    body: body.split("\r\n\r\n").nth(1).unwrap_or("").to_owned(),
                };
                match fault {
                    Some(Fault::DropBefore) => {
                        shared.lock().unwrap().calls.push(record(fault, 0));
                        continue;
                    }
                    Some(f @ (Fault::Throttle | Fault::Status500 | Fault::Status503)) => {
                        let (status, code) = match f {
                            Fault::Throttle => (400, "Throttling"),
                            Fault::Status500 => (500, "InternalFailure"),
                            _ => (503, "ServiceUnavailable"),
                        };
                        shared.lock().unwrap().calls.push(record(fault, status));
                        let _ = client.write_all(&error_response(&body, status, code));
                        continue;
                    }
                    _ => {}
                }
                let Ok(mut up) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = up.write_all(&request);
                let mut response = Vec::new();
                let _ = up.read_to_end(&mut response);
                if mutating {
                    mutations += 1;
                }
                let matched = opts
                    .kill_on
                    .as_ref()
                    .filter(|(text, _)| mutating && body.contains(text.as_str()))
                    .map(|(_, pid)| pid.clone());
                if matched.is_some() {
                    opts.kill_on = None;
                }
                if let Some((k, pid)) = &opts.kill_after {
                    if mutating && mutations == *k {
                        if let Some(pid) = *pid.lock().unwrap() {
                            let _ = std::process::Command::new("kill")
                                .args(["-9", &pid.to_string()])
                                .status();
                        }
                    }
                }
                let status = std::str::from_utf8(&response[..response.len().min(12)])
                    .ok()
                    .and_then(|s| s.get(9..12))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if creates_lock {
                    let text = String::from_utf8_lossy(&response);
                    if let Some(id) = text
                        .split("<groupId>")
                        .nth(1)
                        .and_then(|r| r.split('<').next())
                    {
                        lock_ids.push(id.to_owned());
                    }
                }
                let mut call = record(fault, status);
                if status >= 300 {
                    call.code = error_code(&response);
                }
                let violation = match (&mut opts.check, mutating && status < 300) {
                    (Some(check), true) => check(&call),
                    _ => None,
                };
                {
                    let mut log = shared.lock().unwrap();
                    if mutating {
                        log.checks += 1;
                    }
                    if let Some(v) = violation {
                        log.violations
                            .push(format!("after {}: {v}", call.operation));
                    }
                    log.calls.push(call);
                }
                // Killed once the call is in the log (and checked), so that the test sees
                // it as soon as the process is gone.
                if let Some(pid) = matched.and_then(|pid| *pid.lock().unwrap()) {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status();
                }
                if fault != Some(Fault::DropAfter) {
                    let _ = client.write_all(&response);
                }
            }
        });
        Proxy { url, log }
    }

    /// A proxy to `emulator` that checks the availability invariant of `desired` after
    /// every mutating call; the checker is returned too, to look again afterwards.
    pub fn checked(emulator: &str, desired: Desired) -> (Proxy, Arc<Mutex<Invariant>>) {
        let inv = Arc::new(Mutex::new(Invariant::new(desired, emulator)));
        let checker = Arc::clone(&inv);
        let proxy = Proxy::start(emulator, Box::new(move |_| checker.lock().unwrap().check()));
        (proxy, inv)
    }

    /// Fails the test, naming `what`, if the invariant broke or AWS refused a mutating call.
    pub fn assert_clean(&self, what: &str) {
        let violations = self.log.lock().unwrap().violations.clone();
        assert!(
            violations.is_empty(),
            "{what}: the site stopped serving: {violations:#?}"
        );
        let failed = self.failed_mutations();
        assert!(failed.is_empty(), "{what}: failed calls: {failed:?}");
    }

    /// Mutating calls that AWS refused, but for AWS's passing refusals: a resource it does
    /// not know yet (created a moment ago), or one still held by what is letting go of it.
    /// The tool waits those out by design (moto never gives them).
    pub fn failed_mutations(&self) -> Vec<Call> {
        const PASSING: &[&str] = &[
            "InvalidGroup.NotFound",
            "LoadBalancerNotFound",
            "TargetGroupNotFound",
            "ListenerNotFound",
            "CertificateNotFound",
            "DependencyViolation",
            "ResourceInUse",
        ];
        self.log
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.mutating && c.status >= 300)
            .filter(|c| {
                !c.code
                    .as_deref()
                    .is_some_and(|code| PASSING.contains(&code))
            })
            .cloned()
            .collect()
    }

    /// Mutating calls on the stack (the apply lock's own calls left out).
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.log
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.mutating && !c.lock)
            .cloned()
            .collect()
    }
}

/// The error code in an AWS error answer (XML `<Code>`, or JSON `__type`).
fn error_code(response: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(response);
    if let Some(rest) = text.split("<Code>").nth(1) {
        return rest.split('<').next().map(str::to_owned);
    }
    let rest = text.split("\"__type\"").nth(1)?;
    let value = rest.split('"').nth(1)?;
    Some(value.rsplit('#').next().unwrap_or(value).to_owned())
}

/// Reads one HTTP/1.1 request (head and Content-Length body), rewritten to close the
/// connection; returns it with its AWS operation and whether it changes anything.
fn read_request(client: &mut TcpStream) -> Option<(Vec<u8>, String, bool)> {
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let first = head.lines().next().unwrap_or("");
    let target = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("x-amz-target: ")
                .or_else(|| l.strip_prefix("X-Amz-Target: "))
        })
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned());
    let operation = if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action="))
    {
        action.to_owned()
    } else if let Some(t) = target {
        t
    } else if first.starts_with("POST") && first.contains("/rrset") {
        "ChangeResourceRecordSets".to_owned()
    } else {
        first.split(' ').take(2).collect::<Vec<_>>().join(" ")
    };
    let mutating = !["Describe", "List", "Get", "GET "]
        .iter()
        .any(|p| operation.starts_with(p));
    // Ask for the connection to close after the answer, whatever the client said.
    let head = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut request = format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(&buf[head_end..]);
    Some((request, operation, mutating))
}

/// The availability invariant of the spec, checked on the emulator's live state: every DNS
/// answer a client may still hold (the current ones, and earlier ones whose TTL has not
/// run out since they were replaced) leads to a serving path.
pub struct Invariant {
    desired: Desired,
    emulator: String,
    rt: tokio::runtime::Runtime,
    /// Periods an answer was served for a name, with its TTL: (name, answer, ttl, end),
    /// `end` None while it is served.
    history: Vec<(String, model::Answer, u64, Option<Instant>)>,
    /// Every load balancer DNS name seen: an answer naming one that is gone serves nothing.
    seen_lbs: std::collections::BTreeSet<String>,
}

impl Invariant {
    pub fn new(desired: Desired, emulator: &str) -> Invariant {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut inv = Invariant {
            desired,
            emulator: crate::emulator::reading_url(emulator),
            rt,
            history: Vec::new(),
            seen_lbs: Default::default(),
        };
        // The starting answers have been served for long.
        let _ = inv.check();
        inv
    }

    /// Reads the emulator, updates the DNS history, and checks every live answer.
    pub fn check(&mut self) -> Option<String> {
        let observed = self.read(std::slice::from_ref(&self.desired));
        match observed {
            Ok(mut o) => self.check_observed(&o.remove(0)),
            Err(e) => Some(format!("the checker could not read the emulator: {e}")),
        }
    }

    /// One read of the live state of several stacks (on this checker's emulator).
    pub fn read(&self, desired: &[Desired]) -> Result<Vec<reconcile::model::Observed>, String> {
        self.rt.block_on(async {
            let config = reconcile::aws::loader(&AwsOptions {
                region: Some("us-east-1".into()),
                endpoint_url: Some(self.emulator.clone()),
                ..AwsOptions::default()
            })
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await;
            let clients = reconcile::aws::Clients::new(&config);
            reconcile::observe::observe_many(&clients, &Meter::new(), desired)
                .await
                .map_err(|e| e.to_string())
        })
    }

    /// Updates the DNS history from `observed` (this checker's stack, read just now) and
    /// checks every live answer.
    pub fn check_observed(&mut self, observed: &reconcile::model::Observed) -> Option<String> {
        let observed = observed.clone();
        self.seen_lbs.extend(model::load_balancer_names(&observed));
        let now = Instant::now();
        let records = observed
            .zone
            .as_ref()
            .map(|z| z.records.clone())
            .unwrap_or_default();
        let names: Vec<String> = self
            .desired
            .dns
            .iter()
            .flat_map(|d| d.records.iter().map(|r| r.name.clone()))
            .collect();
        for name in &names {
            let current = model::answer_of(&records, name);
            for (n, answer, ttl, end) in self.history.iter_mut() {
                let still = current.iter().any(|(a, t)| a == answer && t == ttl);
                if n == name && end.is_none() && !still {
                    *end = Some(now);
                }
            }
            for (answer, ttl) in current {
                let open = self
                    .history
                    .iter()
                    .any(|(n, a, t, end)| n == name && *a == answer && *t == ttl && end.is_none());
                if !open {
                    self.history.push((name.clone(), answer, ttl, None));
                }
            }
        }
        for (name, answer, ttl, end) in &self.history {
            let live = end.is_none_or(|t| now.duration_since(t) < Duration::from_secs(*ttl));
            if !live {
                continue;
            }
            if let Err(why) = model::serving(&self.desired, &observed, answer, &self.seen_lbs) {
                return Some(format!(
                    "{name} may still answer {answer}, which does not serve: {why}"
                ));
            }
        }
        None
    }
}

/// The availability checker as the AWS-like layer's check hook: the layer calls it after
/// every mutating call that succeeded, while it holds further mutations back, so the check
/// sees the state each call left, whatever order the calls finished in. The checker reads
/// through the layer's oracle port: what AWS would show (a provisioning load balancer, an
/// initial target), none of which serves.
pub struct Hook {
    pub log: Arc<Mutex<Log>>,
    /// Kill this process (SIGKILL) right after the k-th checked call, before its answer
    /// leaves the layer: (k, pid once known).
    pub kill_after: KillSwitch,
}

/// When to kill the binary under test: (the k-th checked call, its pid once spawned).
pub type KillSwitch = Arc<Mutex<Option<(usize, Option<u32>)>>>;

impl Hook {
    /// Starts the hook for `desired` on `emu` and points the layer at it.
    pub fn watch(emu: &crate::emulator::Emulator, desired: Desired) -> Hook {
        Hook::watch_all(emu, vec![desired])
    }

    /// The hook for several stacks: one read of all of them after each call, each stack's
    /// invariant checked on its share.
    pub fn watch_all(emu: &crate::emulator::Emulator, desired: Vec<Desired>) -> Hook {
        let oracle = emu.oracle.clone().expect("the AWS-like layer");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Log::default()));
        let kill_after: KillSwitch = Arc::new(Mutex::new(None));
        let (shared, kill) = (log.clone(), kill_after.clone());
        std::thread::spawn(move || {
            let mut invs: Vec<Invariant> = desired
                .iter()
                .map(|d| Invariant::new(d.clone(), &oracle))
                .collect();
            let mut seen = 0usize;
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let Some((request, _, _)) = read_request(&mut client) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&request);
                let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
                let called: serde_json::Value =
                    serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
                let operation = called["operation"].as_str().unwrap_or("?").to_owned();
                let violation = match invs[0].read(&desired) {
                    Ok(observed) => invs.iter_mut().zip(&observed).find_map(|(inv, o)| {
                        let v = inv.check_observed(o)?;
                        Some(format!("{}: {v}", inv.desired.stack))
                    }),
                    Err(e) => Some(format!("the checker could not read the emulator: {e}")),
                };
                seen += 1;
                if let Some((k, Some(pid))) = *kill.lock().unwrap() {
                    if seen == k {
                        let _ = std::process::Command::new("kill")
                            .args(["-9", &pid.to_string()])
                            .status();
                    }
                }
                {
                    let mut log = shared.lock().unwrap();
                    log.checks += 1;
                    if let Some(v) = violation {
                        log.violations.push(format!("after {operation}: {v}"));
                    }
                    log.calls.push(Call {
                        operation,
                        mutating: true,
                        status: 200,
                        lock: false,
                        fault: None,
                        at: Instant::now(),
                        code: None,
                        body: String::new(),
                    });
                }
                let _ = client.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        emu.layer_config(&serde_json::json!({ "check_url": url }));
        Hook { log, kill_after }
    }

    /// Fails the test, naming `what`, if the site stopped serving after any call, or if
    /// nothing was checked at all.
    pub fn assert_served(&self, what: &str) {
        let log = self.log.lock().unwrap();
        assert!(
            log.violations.is_empty(),
            "{what}: the site stopped serving: {:#?}",
            log.violations
        );
    }

    /// The operations checked, in the order they took effect.
    pub fn operations(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|c| c.operation.clone())
            .collect()
    }
}
