//! Verifying the stream: every ticket's versions without gaps and its hash chain unbroken.
//!
//! The [`Verifier`] takes stored messages in stream order and keeps, per ticket subject, the
//! highest version seen and that event's hash. The services store nothing but ticket events, on
//! `<prefix>.<tenant>.ticket.<ticket id>`, while the stream takes every subject under the
//! prefix; a message on any other subject is *stray*. For each event it checks:
//!
//! - the body is a JSON object with a version, and names the tenant and ticket of its subject;
//! - it decodes as an event this version understands;
//! - its stored `hash`, when it has one, is the hash of its stored body (else: *altered*);
//! - its `prev_hash`, when it has one, is the hash of the ticket's previous event, or `null` for
//!   version 1 (else: *chain broken*); an event without hash fields after the ticket's events
//!   had them is *unchained*, as stripping the fields would otherwise hide an alteration;
//! - its version is the next one. A version that skips ahead leaves the versions in between
//!   open; one of them arriving later is *reordered*, and those never seen are *removed*,
//!   reported at the event after the gap (whose `prev_hash` then names a hash no event has, which
//!   is not reported again as a broken chain). A version seen before is a *duplicate*.
//!
//! Events stored before the hash chain existed carry neither field; they are counted apart and
//! only their versions are checked, and the first chained event after them must name the hash
//! computed from the last of them. An event without the fields after chained ones is counted
//! only as unchained. A version has no successor past `u64::MAX`: any event of the ticket after
//! that one is reordered or a duplicate.
//!
//! What the chain cannot show: the newest event of a ticket rewritten together with a freshly
//! computed `hash` leaves no trace, as no later event names its hash. Only an anchor kept
//! outside the stream (a hash recorded elsewhere) would catch that.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use async_nats::jetstream::consumer::DeliverPolicy;
use csmp_domain::chain::{event_hash, HASH_FIELD, PREV_HASH_FIELD};
use csmp_domain::TenantId;
use serde::Serialize;
use serde_json::Value;
use tracing::info;

use crate::error::AuditError;
use crate::read::{Audit, Flow};

/// How many events go by between two progress lines of a long verification.
const PROGRESS_EVERY: u64 = 100_000;

/// Which tickets to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyScope {
    /// Every tenant's tickets.
    All,
    /// One tenant's tickets.
    Tenant(TenantId),
}

impl fmt::Display for VerifyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyScope::All => f.write_str("all tenants"),
            VerifyScope::Tenant(tenant) => write!(f, "tenant {tenant}"),
        }
    }
}

/// What is wrong with one stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProblemKind {
    /// The message is stored on a subject under the prefix that is not a ticket's: nothing the
    /// services write.
    Stray { subject: String },
    /// The body is not a JSON object with a version.
    Unreadable { detail: String },
    /// The body is not an event this version decodes.
    Undecodable { detail: String },
    /// The body names another tenant or ticket than the subject it is stored on.
    Misplaced { detail: String },
    /// The stored `hash` is not the hash of the stored body: the body changed after it was
    /// written.
    Altered { stored_hash: String, computed_hash: String },
    /// `prev_hash` is not the hash of the ticket's previous event (`expected`, `None` for the
    /// first event).
    ChainBroken { expected: Option<String>, found: Option<String> },
    /// No hash fields, although earlier events of the ticket have them.
    Unchained,
    /// Versions `first` to `last` are missing: version `next_version`, at this position,
    /// follows version `after_version`.
    Removed { first: u64, last: u64, after_version: u64, next_version: u64 },
    /// This version is stored after the later version `after_version`.
    Reordered { after_version: u64 },
    /// This version is stored a second time.
    Duplicate,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Stray { subject } => {
                write!(f, "stray: stored on {subject}, which is not a ticket's subject")
            }
            ProblemKind::Unreadable { detail } => write!(f, "unreadable: {detail}"),
            ProblemKind::Undecodable { detail } => write!(f, "undecodable: {detail}"),
            ProblemKind::Misplaced { detail } => write!(f, "misplaced: {detail}"),
            ProblemKind::Altered { stored_hash, computed_hash } => write!(
                f,
                "altered: the stored hash {} is not the hash of the stored body, {}",
                short(stored_hash),
                short(computed_hash)
            ),
            ProblemKind::ChainBroken { expected: None, found } => write!(
                f,
                "chain broken: the first event names a previous hash, {}",
                found.as_deref().map_or("none", short)
            ),
            ProblemKind::ChainBroken { expected: Some(expected), found } => write!(
                f,
                "chain broken: prev_hash {} is not the previous event's hash {}",
                found.as_deref().map_or("null", short),
                short(expected)
            ),
            ProblemKind::Unchained => {
                f.write_str("unchained: no hash fields, though earlier events of the ticket have")
            }
            ProblemKind::Removed { first, last, after_version, next_version } => {
                if first == last {
                    write!(f, "removed: version {first} is missing")?;
                } else {
                    write!(f, "removed: versions {first} to {last} are missing")?;
                }
                write!(f, " (version {next_version} follows version {after_version})")
            }
            ProblemKind::Reordered { after_version } => {
                write!(f, "reordered: stored after version {after_version}")
            }
            ProblemKind::Duplicate => f.write_str("duplicate: this version is stored twice"),
        }
    }
}

/// One finding, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The stream position of the event concerned; for removed versions, of the event after
    /// the gap.
    pub position: u64,
    /// The tenant and ticket id of the subject, `?` when the subject is not a ticket's.
    pub tenant: String,
    pub ticket: String,
    /// The event's version; for removed versions, the first missing one.
    pub version: Option<u64>,
    #[serde(flatten)]
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}: tenant {}, ticket {}", self.position, self.tenant, self.ticket)?;
        if let Some(version) = self.version {
            write!(f, ", version {version}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// What was verified: `all tenants` or `tenant <id>`.
    pub scope: String,
    /// Messages read, on any subject in scope.
    pub messages: u64,
    /// Ticket subjects seen.
    pub tickets: u64,
    /// Messages on ticket subjects, readable or not; the other messages are stray.
    pub events: u64,
    /// Events with hash fields.
    pub chained_events: u64,
    /// Readable events stored before the hash chain existed: without hash fields, and before
    /// any event of their ticket that has them.
    pub pre_chain_events: u64,
    /// The last position read; 0 when there was nothing to read.
    pub last_position: u64,
    /// Every finding, by position.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as text: a summary line, then every problem on a line of its own.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "verified {} up to position {}: {} messages, {} events of {} tickets ({} chained, {} \
             from before the hash chain)\n",
            self.scope,
            self.last_position,
            self.messages,
            self.events,
            self.tickets,
            self.chained_events,
            self.pre_chain_events
        );
        match self.problems.len() {
            0 => out.push_str("no problems found\n"),
            1 => out.push_str("1 problem:\n"),
            n => out.push_str(&format!("{n} problems:\n")),
        }
        for problem in &self.problems {
            out.push_str(&format!("  {problem}\n"));
        }
        out
    }
}

/// A run of versions not seen yet, opened by an event that skipped ahead.
#[derive(Debug, Clone)]
struct Gap {
    last: u64,
    position: u64,
    after_version: u64,
    next_version: u64,
}

#[derive(Debug, Default)]
struct TicketChain {
    tenant: String,
    ticket: String,
    max_version: u64,
    /// The hash of the event with `max_version`: stored, or computed for a pre-chain event.
    last_hash: String,
    /// Whether an event of the ticket had hash fields.
    chained: bool,
    /// Open gaps by their first version.
    gaps: BTreeMap<u64, Gap>,
}

impl TicketChain {
    /// Takes `version` out of the gap holding it; whether one did.
    fn fill(&mut self, version: u64) -> bool {
        let Some((&first, gap)) = self.gaps.range(..=version).next_back() else {
            return false;
        };
        if gap.last < version {
            return false;
        }
        let gap = gap.clone();
        self.gaps.remove(&first);
        if first < version {
            self.gaps.insert(first, Gap { last: version - 1, ..gap.clone() });
        }
        if version < gap.last {
            self.gaps.insert(version + 1, gap);
        }
        true
    }
}

/// Checks stored events handed to it in stream order; see the module doc. No I/O: feed it from
/// [`Audit::verify`], or from a file of exported events.
#[derive(Debug)]
pub struct Verifier {
    subject_prefix: String,
    tickets: HashMap<String, TicketChain>,
    report: VerifyReport,
}

impl Verifier {
    /// A verifier for the events on `<subject_prefix>.<tenant>.ticket.<ticket id>`; messages on
    /// other subjects are stray.
    pub fn new(subject_prefix: &str) -> Verifier {
        Verifier {
            subject_prefix: format!("{subject_prefix}."),
            tickets: HashMap::new(),
            report: VerifyReport::default(),
        }
    }

    /// Checks the message stored at `position` on `subject` with `body`.
    pub fn check(&mut self, position: u64, subject: &str, body: &[u8]) {
        self.report.messages += 1;
        self.report.last_position = self.report.last_position.max(position);
        let Some((tenant, ticket)) = self.ticket_of(subject) else {
            let subject = subject.to_owned();
            self.problem(position, "?", "?", None, ProblemKind::Stray { subject });
            return;
        };
        self.report.events += 1;

        // 1. A JSON object with a version.
        let value = match serde_json::from_slice::<Value>(body) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => {
                let detail = "the body is not a JSON object".to_owned();
                self.problem(position, &tenant, &ticket, None, ProblemKind::Unreadable { detail });
                return;
            }
            Err(err) => {
                let detail = format!("the body is not JSON: {err}");
                self.problem(position, &tenant, &ticket, None, ProblemKind::Unreadable { detail });
                return;
            }
        };
        let Some(version) = value.get("version").and_then(Value::as_u64).filter(|v| *v > 0) else {
            let detail = "the body has no version from 1 up".to_owned();
            self.problem(position, &tenant, &ticket, None, ProblemKind::Unreadable { detail });
            return;
        };
        let at = Some(version);

        // 2. Stored where it belongs, and an event this version understands.
        let named_tenant = value.get("tenant").and_then(Value::as_str);
        let named_ticket = value.get("ticket_id").and_then(Value::as_str);
        if named_tenant != Some(tenant.as_str()) || named_ticket != Some(ticket.as_str()) {
            let detail = format!(
                "the body names tenant {} and ticket {}",
                named_tenant.unwrap_or("?"),
                named_ticket.unwrap_or("?")
            );
            self.problem(position, &tenant, &ticket, at, ProblemKind::Misplaced { detail });
        }
        if let Err(err) = csmp_eventstore::decode(position, body) {
            let detail = std::error::Error::source(&err).map_or(err.to_string(), |s| s.to_string());
            self.problem(position, &tenant, &ticket, at, ProblemKind::Undecodable { detail });
        }

        // 3. The stored hash against the body.
        let computed = event_hash(&value);
        let has_hash = value.get(HASH_FIELD).is_some();
        let linked = has_hash || value.get(PREV_HASH_FIELD).is_some();
        let subject_key = subject.to_owned();
        let chain = self.tickets.entry(subject_key.clone()).or_insert_with(|| TicketChain {
            tenant: tenant.clone(),
            ticket: ticket.clone(),
            ..TicketChain::default()
        });
        if has_hash {
            self.report.chained_events += 1;
        } else if !linked && !chain.chained {
            self.report.pre_chain_events += 1;
        }
        let mut found = Vec::new();
        let own_hash = match value.get(HASH_FIELD) {
            Some(Value::String(stored)) => {
                if *stored != computed {
                    found.push(ProblemKind::Altered {
                        stored_hash: stored.clone(),
                        computed_hash: computed.clone(),
                    });
                }
                stored.clone()
            }
            Some(other) => {
                found.push(ProblemKind::Altered {
                    stored_hash: other.to_string(),
                    computed_hash: computed.clone(),
                });
                computed
            }
            None => {
                if chain.chained {
                    found.push(ProblemKind::Unchained);
                }
                computed
            }
        };

        // 4. The version and the link to the previous event. Past `u64::MAX` there is no next
        // version, so whatever follows it fills a gap or repeats a version.
        match chain.max_version.checked_add(1) {
            Some(next) if version == next => {
                if linked {
                    let prev = value.get(PREV_HASH_FIELD).unwrap_or(&Value::Null);
                    let expected = (version > 1).then(|| chain.last_hash.clone());
                    let found_hash = match prev {
                        Value::Null => None,
                        Value::String(hash) => Some(hash.clone()),
                        other => Some(other.to_string()),
                    };
                    if found_hash != expected || !(prev.is_null() || prev.is_string()) {
                        found.push(ProblemKind::ChainBroken { expected, found: found_hash });
                    }
                }
                chain.max_version = version;
                chain.last_hash = own_hash;
            }
            Some(next) if version > next => {
                let gap = Gap {
                    last: version - 1,
                    position,
                    after_version: chain.max_version,
                    next_version: version,
                };
                chain.gaps.insert(next, gap);
                chain.max_version = version;
                chain.last_hash = own_hash;
            }
            _ if chain.fill(version) => {
                found.push(ProblemKind::Reordered { after_version: chain.max_version });
            }
            _ => found.push(ProblemKind::Duplicate),
        }
        chain.chained |= has_hash;

        for kind in found {
            self.problem(position, &tenant, &ticket, at, kind);
        }
    }

    /// The report, with the versions still missing reported as removed.
    pub fn finish(mut self) -> VerifyReport {
        self.report.tickets = self.tickets.len() as u64;
        for chain in self.tickets.values() {
            for (&first, gap) in &chain.gaps {
                self.report.problems.push(Problem {
                    position: gap.position,
                    tenant: chain.tenant.clone(),
                    ticket: chain.ticket.clone(),
                    version: Some(first),
                    kind: ProblemKind::Removed {
                        first,
                        last: gap.last,
                        after_version: gap.after_version,
                        next_version: gap.next_version,
                    },
                });
            }
        }
        self.report.problems.sort_by_key(|problem| problem.position);
        self.report
    }

    /// The tenant and ticket id tokens of a ticket subject.
    fn ticket_of(&self, subject: &str) -> Option<(String, String)> {
        let rest = subject.strip_prefix(&self.subject_prefix)?;
        let mut tokens = rest.split('.');
        let (tenant, kind, ticket) = (tokens.next()?, tokens.next()?, tokens.next()?);
        if kind != "ticket" || tokens.next().is_some() || tenant.is_empty() || ticket.is_empty() {
            return None;
        }
        Some((tenant.to_owned(), ticket.to_owned()))
    }

    fn problem(
        &mut self,
        position: u64,
        tenant: &str,
        ticket: &str,
        version: Option<u64>,
        kind: ProblemKind,
    ) {
        self.report.problems.push(Problem {
            position,
            tenant: tenant.to_owned(),
            ticket: ticket.to_owned(),
            version,
            kind,
        });
    }
}

impl Audit {
    /// Reads every message in `scope` (`<prefix>.>`, or `<prefix>.<tenant>.>` for one tenant)
    /// from the start of the stream up to where it ends now and verifies it (see the module
    /// doc). Problems are findings in the report, not errors:
    /// an error means the stream could not be read.
    pub async fn verify(&self, scope: &VerifyScope) -> Result<VerifyReport, AuditError> {
        // Every subject the stream takes in scope, not only tickets': the projectors read them
        // all, so a stray message must show here too.
        let config = self.config();
        let filter = match scope {
            VerifyScope::All => config.all_subjects(),
            VerifyScope::Tenant(tenant) => config.tenant_subjects(tenant),
        };
        let mut verifier = Verifier::new(&config.subject_prefix);
        let mut next_progress = PROGRESS_EVERY;
        self.scan(filter, DeliverPolicy::All, |event| {
            verifier.check(event.position, &event.subject, &event.body);
            if verifier.report.messages == next_progress {
                info!(messages = verifier.report.messages, position = event.position, "verifying");
                next_progress += PROGRESS_EVERY;
            }
            Ok(Flow::Continue)
        })
        .await?;
        let mut report = verifier.finish();
        report.scope = scope.to_string();
        info!(
            scope = %report.scope,
            messages = report.messages,
            events = report.events,
            problems = report.problems.len(),
            "verification done"
        );
        Ok(report)
    }
}

/// The first 12 hex digits of a hash, enough to tell hashes apart in a message.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
