//! The open tickets the timer watches: their SLA facts, their clocks under the tenant's
//! configuration, and which signals and escalations are on the stream already.
//!
//! Fed with every event of the stream in order; a closed ticket, or one whose opening time is
//! unknown, is forgotten, since it has no clock left to signal.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use csmp_domain::{EventPayload, RecordedEvent, TenantId, TicketId};
use csmp_projector::{SlaFacts, TenantSla};
use csmp_sla::{SlaClocks, SlaSignal};
use tracing::{debug, warn};
use uuid::Uuid;

type Key = (String, Uuid);

struct Watched {
    tenant: TenantId,
    ticket: TicketId,
    facts: SlaFacts,
    /// Signal keys and `<key>:escalate` keys that are on the stream or were answered for good.
    done: HashSet<String>,
    /// The clocks under the tenant's configuration as last loaded; rebuilt after a new fact.
    clocks: Option<SlaClocks>,
    /// The clocks cannot be built (no policy in force, unknown calendar): logged once.
    unmeasurable: bool,
}

pub(crate) struct Tickets {
    watched: HashMap<Key, Watched>,
    opened_from: Option<DateTime<Utc>>,
}

impl Tickets {
    /// Watches tickets opened at or after `opened_from`, or every ticket.
    pub fn new(opened_from: Option<DateTime<Utc>>) -> Tickets {
        Tickets { watched: HashMap::new(), opened_from }
    }

    pub fn len(&self) -> usize {
        self.watched.len()
    }

    /// Takes in one event of the stream.
    pub fn apply(&mut self, event: &RecordedEvent) {
        let envelope = &event.envelope;
        let key = (envelope.tenant.as_str().to_owned(), envelope.ticket_id.0);
        if let Some(facts) = SlaFacts::opened(envelope) {
            let watch = match (facts.opened_at, self.opened_from) {
                (None, _) => false,
                (Some(opened), Some(from)) => opened >= from,
                (Some(_), None) => true,
            };
            if watch {
                let watched = Watched {
                    tenant: envelope.tenant.clone(),
                    ticket: envelope.ticket_id,
                    facts,
                    done: HashSet::new(),
                    clocks: None,
                    unmeasurable: false,
                };
                self.watched.insert(key, watched);
            }
            return;
        }
        let Some(watched) = self.watched.get_mut(&key) else {
            return;
        };
        match &envelope.payload {
            EventPayload::SlaWarningReached(signal) | EventPayload::SlaBreached(signal) => {
                let kind = match envelope.payload {
                    EventPayload::SlaWarningReached(_) => "warning",
                    _ => "breach",
                };
                let signal_key =
                    csmp_sla::clocks::signal_key(signal.target.as_str(), signal.cycle, kind);
                debug!(key = %signal_key, seq = event.stream_seq, "SLA signal on the stream");
                watched.done.insert(signal_key);
            }
            EventPayload::Escalated(_) => {
                if let Some(key) = envelope.causation_id.as_deref().and_then(ticket_signal_key) {
                    watched.done.insert(format!("{key}:escalate"));
                }
            }
            _ => {}
        }
        if watched.facts.record(envelope) {
            watched.clocks = None;
            watched.unmeasurable = false;
        }
        if watched.facts.is_closed() {
            self.watched.remove(&key);
        }
    }

    /// The tenants with open tickets.
    pub fn tenants(&self) -> BTreeSet<String> {
        self.watched.keys().map(|(tenant, _)| tenant.clone()).collect()
    }

    /// Clocks are rebuilt with configurations loaded anew.
    pub fn forget_clocks(&mut self) {
        for watched in self.watched.values_mut() {
            watched.clocks = None;
            watched.unmeasurable = false;
        }
    }

    /// Every signal due at `now` on the watched tickets, sent or not, in ticket order.
    pub fn due(
        &mut self,
        configs: &HashMap<String, TenantSla>,
        now: DateTime<Utc>,
    ) -> Vec<SlaSignal> {
        let mut keys: Vec<&Key> = self.watched.keys().collect();
        keys.sort_unstable();
        let keys: Vec<Key> = keys.into_iter().cloned().collect();
        let mut due = Vec::new();
        for key in keys {
            let watched = self.watched.get_mut(&key).expect("listed keys are watched");
            let Some(sla) = configs.get(watched.tenant.as_str()) else {
                continue;
            };
            if watched.clocks.is_none() && !watched.unmeasurable {
                match watched.facts.clocks(watched.ticket, sla) {
                    Ok(clocks) => watched.clocks = clocks,
                    Err(err) => {
                        warn!(tenant = %watched.tenant, ticket_id = %watched.ticket,
                            cause = %err, "ticket has no SLA clocks");
                        watched.unmeasurable = true;
                    }
                }
            }
            let Some(clocks) = &watched.clocks else {
                continue;
            };
            match clocks.due_events(now) {
                Ok(signals) => due.extend(signals),
                Err(err) => {
                    warn!(tenant = %watched.tenant, ticket_id = %watched.ticket, cause = %err,
                        "SLA due times cannot be computed");
                }
            }
        }
        due
    }

    pub fn is_done(&self, signal: &SlaSignal, key: &str) -> bool {
        let watched = self.watched.get(&(signal.tenant.as_str().to_owned(), signal.ticket.0));
        watched.is_none_or(|w| w.done.contains(key))
    }

    pub fn mark_done(&mut self, signal: &SlaSignal, key: String) {
        if let Some(watched) =
            self.watched.get_mut(&(signal.tenant.as_str().to_owned(), signal.ticket.0))
        {
            watched.done.insert(key);
        }
    }
}

/// The signal key an escalation's causation id names, `None` for a cause that is no SLA signal.
/// Earlier releases named the tenant and the ticket too (`sla:<tenant>:<ticket>:<target>:
/// <cycle>:<kind>`); both forms end in the ticket's own key.
fn ticket_signal_key(cause: &str) -> Option<String> {
    let rest = cause.strip_prefix(csmp_domain::ticket::SLA_REQUEST_PREFIX)?;
    let mut fields = rest.rsplitn(4, ':');
    let (kind, cycle, target) = (fields.next()?, fields.next()?, fields.next()?);
    let cycle: u32 = cycle.parse().ok()?;
    Some(csmp_sla::clocks::signal_key(target, cycle, kind))
}

#[cfg(test)]
mod tests {
    use super::ticket_signal_key;

    #[test]
    fn causes_name_a_signal_key_in_either_form() {
        let ticket = "5b1f2c3d-0000-4000-8000-000000000001";
        let old = format!("sla:acme:{ticket}:first_response:1:breach");
        assert_eq!(ticket_signal_key(&old).as_deref(), Some("sla:first_response:1:breach"));
        let new = "sla:resolution:2:warning";
        assert_eq!(ticket_signal_key(new).as_deref(), Some(new));
        assert_eq!(ticket_signal_key("open-1"), None);
        assert_eq!(ticket_signal_key("sla:resolution:x:warning"), None);
        assert_eq!(ticket_signal_key("sla:warning"), None);
    }
}
