//! Progress of an apply, as the executor reports it through its hooks: on a terminal a line
//! per step and one live line per wait (what is awaited, elapsed, remaining); otherwise
//! plain timestamped lines; with `--json`, one JSON event per line.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::apply::{Error, Finished, Hooks, NodeEnd, NotStarted, Walked};
use crate::aws::ReadStats;
use crate::plan::{Node, NodeKind};

use super::events::{self, Event, What};
use super::human::{duration, rfc3339, utc, Style};
use super::messages;

fn label(node: &Node) -> String {
    match &node.kind {
        NodeKind::Change(c) => format!(
            "{} {} {}",
            c.action.symbol(),
            c.resource.kind,
            c.resource.name
        ),
        NodeKind::Gate(_) => node.id.to_string(),
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Human progress. When several stacks are applied at once, each has its own, made by
/// [`HumanProgress::for_stack`], and every line starts with the stack's name.
///
/// On a terminal, each wait in progress is a live line of its own (indicatif, cut to the
/// terminal's width), and other lines are printed above them; otherwise plain timestamped
/// lines, a wait every 30 s.
pub struct HumanProgress {
    terminal: bool,
    style: Style,
    stack: Option<String>,
    /// Last time a wait was reported, per stack and node (plain output reports every 30 s).
    last: Arc<Mutex<Vec<(String, Instant)>>>,
    /// The live lines, shared by the stacks of a run (terminal only).
    bars: indicatif::MultiProgress,
    /// The live line of each wait in progress, by stack and node.
    live: Arc<Mutex<BTreeMap<String, indicatif::ProgressBar>>>,
}

impl HumanProgress {
    pub fn new(terminal: bool) -> HumanProgress {
        let target = if terminal {
            indicatif::ProgressDrawTarget::stdout()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        };
        HumanProgress {
            terminal,
            style: Style::detect(terminal),
            stack: None,
            last: Arc::default(),
            bars: indicatif::MultiProgress::with_draw_target(target),
            live: Arc::default(),
        }
    }

    /// The progress of one of several stacks: the same output, its lines labelled.
    pub fn for_stack(&self, stack: &str) -> HumanProgress {
        HumanProgress {
            terminal: self.terminal,
            style: self.style,
            stack: Some(stack.to_owned()),
            last: Arc::clone(&self.last),
            bars: self.bars.clone(),
            live: Arc::clone(&self.live),
        }
    }

    /// `text` (indented by two spaces) with the stack's label after the indent.
    fn labelled(&self, text: &str) -> String {
        match &self.stack {
            Some(stack) => format!("  [{stack}] {}", text.trim_start()),
            None => text.to_owned(),
        }
    }

    fn key(&self, node: &Node) -> String {
        format!("{}/{}", self.stack.as_deref().unwrap_or(""), node.id)
    }

    fn line(&self, text: &str) {
        let text = self.labelled(text);
        if self.terminal {
            // Above the live lines; a closed output is not worth a panic.
            let _ = self.bars.println(&text);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "[{}] {text}", utc(crate::apply::now()));
            let _ = out.flush();
        }
    }

    /// The wait of `node` ended: its live line goes.
    fn end_wait(&self, node: &Node) {
        let bar = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key(node));
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }
}

impl Hooks for HumanProgress {
    fn started(&self, node: &Node) {
        if let NodeKind::Change(_) = node.kind {
            self.line(&format!("  {} ...", label(node)));
        }
    }

    fn finished(&self, node: &Node, end: &NodeEnd, took: Duration) {
        self.end_wait(node);
        let text = match (&node.kind, end) {
            (NodeKind::Change(_), _) => format!("  {} done ({}s)", label(node), took.as_secs()),
            (NodeKind::Gate(g), NodeEnd::Done) => {
                format!(
                    "  ⧗ {} ({})",
                    super::human::gate_line(g),
                    duration(secs(took))
                )
            }
            (NodeKind::Gate(g), NodeEnd::Paused { resume_at }) => format!(
                "  ⏸ {}: ends {}, beyond --max-wait",
                super::human::gate_line(g),
                utc(*resume_at)
            ),
        };
        self.line(&text);
    }

    fn failed(&self, node: &Node, error: &Error) {
        let text = format!("  ✗ {}: {error}", label(node));
        self.line(&self.style_error(&text));
    }

    fn waiting(&self, node: &Node, what: &str, waited: Duration, remaining: Option<Duration>) {
        let left = remaining.map_or_else(String::new, |r| format!(", {} left", duration(secs(r))));
        let text = format!(
            "  ⧗ waiting until {what}: {} elapsed{left}",
            duration(secs(waited))
        );
        if self.terminal {
            let text = self.labelled(&text);
            let mut live = self
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let bar = live.entry(self.key(node)).or_insert_with(|| {
                let bar = self.bars.add(indicatif::ProgressBar::new_spinner());
                if let Ok(style) = indicatif::ProgressStyle::with_template("{wide_msg}") {
                    bar.set_style(style);
                }
                bar
            });
            bar.set_message(text);
            return;
        }
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = format!("{}/{}", self.stack.as_deref().unwrap_or(""), node.id);
        let due = match last.iter_mut().find(|(id, _)| id == &key) {
            Some((_, t)) if t.elapsed() < Duration::from_secs(30) => false,
            Some((_, t)) => {
                *t = Instant::now();
                true
            }
            None => {
                last.push((key, Instant::now()));
                true
            }
        };
        drop(last);
        if due {
            self.line(&text);
        }
    }

    fn ran(&self, stack: &str, walked: &Walked, stats: &ReadStats) {
        // A paused run is told about once every stack has ended (see `messages::paused`).
        if walked.finished == Finished::Done {
            self.plain(&messages::apply_complete(stack, walked, stats), false);
        }
    }

    fn stopped(&self, stack: &str, error: &Error) {
        self.plain(&messages::stack_stopped(stack, error), true);
    }

    fn not_started(&self, steps: &[NotStarted]) {
        for line in messages::not_started(steps) {
            self.line(&format!("  {line}"));
        }
    }
}

impl HumanProgress {
    /// Writes `text` and a line end, as it is, to standard output (or error), above the
    /// live lines.
    fn plain(&self, text: &str, to_stderr: bool) {
        let write = || {
            if to_stderr {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            } else {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        };
        if self.terminal {
            self.bars.suspend(write);
        } else {
            write();
        }
    }

    fn style_error(&self, text: &str) -> String {
        if self.style.color {
            format!("\x1b[31m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// `--json`: one [`Event`] per line (see [`super::events`]). Every event names its
/// `stack`.
pub struct JsonProgress {
    stack: String,
}

impl JsonProgress {
    pub fn new(stack: &str) -> JsonProgress {
        JsonProgress {
            stack: stack.to_owned(),
        }
    }

    fn event(&self, what: What) {
        Event::now(&self.stack, what).emit();
    }
}

impl Hooks for JsonProgress {
    fn started(&self, node: &Node) {
        self.event(What::Started {
            node: node.id.to_string(),
        });
    }

    fn finished(&self, node: &Node, end: &NodeEnd, took: Duration) {
        let node = node.id.to_string();
        self.event(match end {
            NodeEnd::Done => What::Finished {
                node,
                seconds: took.as_secs_f64(),
            },
            NodeEnd::Paused { resume_at } => What::Paused {
                node,
                resume_at: rfc3339(*resume_at),
            },
        });
    }

    fn failed(&self, node: &Node, error: &Error) {
        self.event(What::Failed {
            node: node.id.to_string(),
            error: error.to_string(),
        });
    }

    fn waiting(&self, node: &Node, what: &str, waited: Duration, remaining: Option<Duration>) {
        // Once every 10 seconds of waiting is enough for a machine.
        if waited.as_secs().is_multiple_of(10) {
            self.event(What::Waiting {
                node: node.id.to_string(),
                what: what.to_owned(),
                elapsed: waited.as_secs(),
                remaining: remaining.map(|r| r.as_secs()),
            });
        }
    }

    fn ran(&self, _stack: &str, walked: &Walked, stats: &ReadStats) {
        let (finished, resume_at, waiting) = match &walked.finished {
            Finished::Done => (events::Finished::Done, None, vec![]),
            Finished::Paused { resume_at, waiting } => (
                events::Finished::Paused,
                Some(rfc3339(*resume_at)),
                waiting.iter().map(ToString::to_string).collect(),
            ),
        };
        self.event(What::Ran {
            finished,
            requests: stats.requests,
            rounds: walked.rounds,
            rounds_without_gates: walked.rounds_without_gates,
            by_operation: stats.by_operation.clone(),
            resume_at,
            waiting,
        });
    }

    fn not_started(&self, steps: &[NotStarted]) {
        self.event(What::NotStarted {
            steps: steps
                .iter()
                .map(|s| events::NotStartedDoc {
                    node: s.node.to_string(),
                    waits_on: s.waits_on.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        });
    }

    fn stopped(&self, stack: &str, error: &Error) {
        self.event(What::Stopped {
            error: error.to_string(),
        });
        // For the person reading the job's log too.
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", messages::stack_stopped(stack, error));
    }
}
