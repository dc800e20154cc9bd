//! The machine half of `apply --json`: one [`Event`] per line on standard output and
//! nothing else, each with the stream's `format_version`, its `time` (RFC 3339, UTC) and
//! its `stack`. Its JSON Schema is `reconcile schema --events`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the event stream's shape.
pub const FORMAT_VERSION: &str = "1";

/// One line of `apply --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// The stream's shape ([`FORMAT_VERSION`]).
    pub format_version: String,
    /// When it happened: RFC 3339, UTC, whole seconds (`2026-11-30T09:13:48Z`).
    pub time: String,
    /// The stack it is about.
    pub stack: String,
    #[serde(flatten)]
    pub what: What,
}

/// What happened (`event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum What {
    /// A change or gate began (`node`: the plan's node id, e.g. `lb.create`).
    Started { node: String },
    /// It ended, after `seconds`.
    Finished { node: String, seconds: f64 },
    /// A wait that would end after `--max-wait`: not waited; run again after `resume_at`.
    Paused { node: String, resume_at: String },
    /// It failed; the stack's run stops (the changes running finish, the waits running end,
    /// each with a `failed` of its own, a bake's excepted; nothing new starts).
    Failed { node: String, error: String },
    /// A wait in progress, every 10 s: what is awaited, seconds elapsed and left.
    Waiting {
        node: String,
        what: String,
        elapsed: u64,
        remaining: Option<u64>,
    },
    /// The stack's run ended, `done` or `paused`, with what it cost; when paused, when to
    /// run again and the waits not waited.
    Ran {
        finished: Finished,
        requests: usize,
        rounds: usize,
        rounds_without_gates: usize,
        by_operation: BTreeMap<String, usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_at: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waiting: Vec<String>,
    },
    /// The stack's run stopped on an error.
    Stopped { error: String },
    /// The steps a failed run never started (sent before `stopped`), each with the steps it
    /// waited on that did not finish (none: it was ready, but nothing new starts after a
    /// failure). `reconcile apply` again carries them out.
    NotStarted { steps: Vec<NotStartedDoc> },
    /// The stack's live state already matches its manifest: nothing to do.
    Unchanged {},
    /// The stack's plan is blocked: nothing of any stack was changed.
    Blocked { blockers: Vec<BlockerDoc> },
}

/// A step a failed run never started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NotStartedDoc {
    pub node: String,
    pub waits_on: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Finished {
    Done,
    Paused,
}

/// Why a plan cannot be carried out, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockerDoc {
    pub subject: String,
    pub message: String,
    pub hint: String,
}

impl From<&crate::plan::Blocker> for BlockerDoc {
    fn from(b: &crate::plan::Blocker) -> Self {
        BlockerDoc {
            subject: b.subject.clone(),
            message: b.message.clone(),
            hint: b.hint.clone(),
        }
    }
}

impl Event {
    /// An event of `stack`, now.
    pub fn now(stack: &str, what: What) -> Event {
        Event {
            format_version: FORMAT_VERSION.to_owned(),
            time: super::human::rfc3339(crate::apply::now()),
            stack: stack.to_owned(),
            what,
        }
    }

    /// Writes the event as one line on standard output; a closed output is not worth a
    /// panic (the run goes on).
    pub fn emit(&self) {
        use std::io::Write as _;
        let Ok(line) = serde_json::to_string(self) else {
            return;
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The event stream's JSON Schema (`reconcile schema --events`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Event)).unwrap_or_default()
}
