//! Planning the real ticket export (8,469 rows) and its structured copy in `data/`, checked
//! against counts taken by a second, independent reading of the same file: the csv crate
//! directly, columns by name, times compared as text (the format is fixed-width, so text order
//! is time order), ratings parsed as floats.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use csmp_domain::event::RecordedEvent;
use csmp_domain::{Command, CommandContext, Role, TenantId, Ticket, TicketStatus};
use csmp_import::{plan_file, Plan, PlanOptions, RejectReason, Step};

/// The export, kept beside the repository in `shared/`.
fn export_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/support-tickets/tickets.csv");
    assert!(
        path.is_file(),
        "the ticket export is missing at {}: these tests read the real export from \
         shared/data/support-tickets/tickets.csv beside the repository",
        path.display()
    );
    path
}

fn structured_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tickets-structured.csv");
    assert!(
        path.is_file(),
        "data/tickets-structured.csv is missing at {}; see data/README.md to regenerate it",
        path.display()
    );
    path
}

fn plan(path: &Path) -> Plan {
    plan_file(path, &PlanOptions::new(TenantId::parse("acme").unwrap())).unwrap()
}

/// What the independent reading finds.
#[derive(Debug, Default)]
struct Counts {
    rows: u64,
    by_status: BTreeMap<String, u64>,
    /// Ticket ids of rows whose Time to Resolution is earlier than their First Response Time.
    resolved_before_response: BTreeSet<String>,
    /// Ticket ids of rows breaking any other rule the importer has.
    other_problems: BTreeSet<String>,
    /// Closed rows that are not rejected, and the sum of their ratings.
    importable_closed: u64,
    importable_closed_rating_sum: f64,
}

fn count_independently(path: &Path) -> Counts {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, status, first, resolved, rating, priority, channel) = (
        at("Ticket ID"),
        at("Ticket Status"),
        at("First Response Time"),
        at("Time to Resolution"),
        at("Customer Satisfaction Rating"),
        at("Ticket Priority"),
        at("Ticket Channel"),
    );
    let mut counts = Counts::default();
    let mut seen = BTreeSet::new();
    for record in reader.records() {
        let record = record.unwrap();
        counts.rows += 1;
        let ticket = record[id].to_owned();
        *counts.by_status.entry(record[status].to_owned()).or_default() += 1;

        let before = !record[first].is_empty()
            && !record[resolved].is_empty()
            && record[resolved] < record[first];
        if before {
            counts.resolved_before_response.insert(ticket.clone());
        }
        let closed = &record[status] == "Closed";
        let other = match &record[status] {
            "Closed" => record[resolved].is_empty() || record[rating].is_empty(),
            "Pending Customer Response" => record[first].is_empty() || !record[resolved].is_empty(),
            "Open" => !record[resolved].is_empty(),
            _ => true,
        } || (!closed && !record[rating].is_empty())
            || !["Low", "Medium", "High", "Critical"].contains(&&record[priority])
            || !["Email", "Phone", "Chat", "Social media"].contains(&&record[channel])
            || ticket.is_empty()
            || !seen.insert(ticket.clone());
        if other {
            counts.other_problems.insert(ticket.clone());
        }
        if closed && !before && !other {
            counts.importable_closed += 1;
            counts.importable_closed_rating_sum += record[rating].parse::<f64>().unwrap();
        }
    }
    counts
}

/// Checks the planner against the independent reading, and both against the figures measured
/// on the export (shared/data/support-tickets/README.md).
fn check_plan_against_independent_counts(path: &Path) {
    let counts = count_independently(path);
    let plan = plan(path);

    // The independent reading, against the export's published figures.
    assert_eq!(counts.rows, 8_469);
    assert_eq!(counts.by_status["Closed"], 2_769);
    assert_eq!(counts.by_status["Pending Customer Response"], 2_881);
    assert_eq!(counts.by_status["Open"], 2_819);
    assert_eq!(counts.resolved_before_response.len(), 1_365);
    assert_eq!(counts.other_problems, BTreeSet::new(), "no row breaks another rule");
    assert_eq!(counts.importable_closed, 2_769 - 1_365);

    // The planner, against the independent reading.
    assert_eq!(plan.rows_read, counts.rows);
    assert_eq!(plan.tickets.len() as u64 + plan.rejects.len() as u64, counts.rows);
    let rejected: BTreeSet<String> = plan.rejects.iter().map(|r| r.ticket_id.clone()).collect();
    let expected = &counts.resolved_before_response;
    let extra: Vec<&String> = rejected.difference(expected).collect();
    let missing: Vec<&String> = expected.difference(&rejected).collect();
    assert!(extra.is_empty() && missing.is_empty(), "rejected too: {extra:?}, not: {missing:?}");
    for reject in &plan.rejects {
        assert!(
            matches!(reject.reasons[..], [RejectReason::ResolvedBeforeFirstResponse { .. }]),
            "row {} has other reasons: {}",
            reject.row,
            reject.reason()
        );
    }

    let shape = |steps: &[Step]| {
        plan.tickets
            .iter()
            .filter(|t| t.commands.iter().map(|c| c.step).eq(steps.iter().copied()))
            .count() as u64
    };
    let (open, ack, ask) = (Step::Open, Step::Acknowledge, Step::AskCustomer);
    let (resolve, feedback, close) = (Step::Resolve, Step::Feedback, Step::Close);
    assert_eq!(shape(&[open]), counts.by_status["Open"]);
    assert_eq!(shape(&[open, ack, ask]), counts.by_status["Pending Customer Response"]);
    assert_eq!(shape(&[open, ack, resolve, feedback, close]), counts.importable_closed);

    let ratings: Vec<u8> = plan
        .tickets
        .iter()
        .flat_map(|t| &t.commands)
        .filter_map(|c| match c.command {
            Command::GiveFeedback { csat, .. } => Some(csat),
            _ => None,
        })
        .collect();
    assert_eq!(ratings.len() as u64, counts.importable_closed);
    let planned_sum: u64 = ratings.iter().map(|r| u64::from(*r)).sum();
    assert_eq!(planned_sum as f64, counts.importable_closed_rating_sum);
    assert_eq!(planned_sum, 4_252, "CSAT average of importable closed rows is 4252 / 1404");
}

#[test]
fn planning_the_export_matches_an_independent_count() {
    check_plan_against_independent_counts(&export_path());
}

#[test]
fn planning_the_structured_copy_matches_an_independent_count() {
    check_plan_against_independent_counts(&structured_path());
}

#[test]
fn export_and_structured_copy_give_the_same_plan_but_for_descriptions_and_summaries() {
    let mut full = plan(&export_path());
    let structured = plan(&structured_path());

    // The structured copy has no free text: blank it out of the full plan, and line numbers
    // differ because descriptions span several lines.
    for ticket in &mut full.tickets {
        ticket.line = ticket.row + 1;
        for planned in &mut ticket.commands {
            match &mut planned.command {
                Command::Open(open) => open.description.clear(),
                Command::Resolve { resolution_summary } => {
                    *resolution_summary = "imported resolution".to_owned()
                }
                _ => {}
            }
        }
    }
    for reject in &mut full.rejects {
        reject.line = reject.row + 1;
    }
    assert_eq!(full, structured);
}

#[test]
fn structured_copy_is_the_export_without_free_text() {
    let export = std::fs::File::open(export_path()).unwrap();
    let mut regenerated = Vec::new();

    let rows = csmp_import::structured::write_structured(export, &mut regenerated).unwrap();

    assert_eq!(rows, 8_469);
    let committed = std::fs::read(structured_path()).unwrap();
    assert!(
        regenerated == committed,
        "data/tickets-structured.csv differs from the export's structured columns; \
         regenerate it as data/README.md says"
    );
}

/// Every planned ticket of the export, decided and applied by the ticket aggregate in order,
/// as the command service would: none is refused, and each ends in the export's status.
#[test]
fn every_planned_ticket_is_accepted_by_the_ticket_aggregate() {
    let plan = plan(&export_path());
    let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut seq = 0;
    let mut final_status: BTreeMap<TicketStatus, u64> = BTreeMap::new();

    for planned_ticket in &plan.tickets {
        let mut ticket = Ticket::new(plan.tenant.clone(), planned_ticket.ticket_id);
        for planned in &planned_ticket.commands {
            let mut ctx = CommandContext::new(plan.actor.clone(), now, &planned.request_id);
            ctx.occurred_at = planned.occurred_at;
            let payload = ticket.decide(&planned.command, &ctx).unwrap_or_else(|err| {
                panic!("row {}: {} refused: {err}", planned_ticket.row, planned.step)
            });
            seq += 1;
            let envelope = ticket.envelope(payload, &ctx, uuid::Uuid::from_u128(seq.into()));
            assert_eq!(envelope.occurred_at, planned.occurred_at);
            ticket.apply(&RecordedEvent { stream_seq: seq, envelope }).unwrap();
        }
        assert!(planned_ticket.commands.iter().all(|c| ticket.receipt(&c.request_id).is_some()));
        *final_status.entry(ticket.status).or_default() += 1;
    }

    assert_eq!(plan.actor.role, Role::Importer);
    assert_eq!(
        final_status,
        BTreeMap::from([
            (TicketStatus::New, 2_819),
            (TicketStatus::WaitingOnCustomer, 2_881),
            (TicketStatus::Closed, 1_404),
        ])
    );
}
