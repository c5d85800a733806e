//! SLA warnings and breaches recorded by the system actor: once per target, cycle and kind.

mod support;

use csmp_domain::event::{self, SlaSignal};
use csmp_domain::{Command, DomainError, EventPayload, SlaSignalKind, SlaTargetKind, TicketStatus};
use support::*;

fn record(target: SlaTargetKind, cycle: u32, kind: SlaSignalKind) -> Command {
    Command::RecordSlaSignal { target, cycle, kind, due_at: at(15), policy_version: 3 }
}

fn signal(target: SlaTargetKind, cycle: u32) -> SlaSignal {
    SlaSignal { target, cycle, due_at: at(15), policy_version: 3 }
}

#[test]
fn a_warning_and_then_a_breach_of_one_clock_are_both_recorded() {
    let ticket = given_opened()
        .when(
            record(SlaTargetKind::FirstResponse, 1, SlaSignalKind::Warning),
            ctx(system(), at(12)),
        )
        .then(EventPayload::SlaWarningReached(signal(SlaTargetKind::FirstResponse, 1)));

    let ticket = support::Scenario { ticket, recorded: Vec::new() }
        .when(record(SlaTargetKind::FirstResponse, 1, SlaSignalKind::Breach), ctx(system(), at(15)))
        .then(EventPayload::SlaBreached(signal(SlaTargetKind::FirstResponse, 1)));

    assert_eq!(ticket.version, 3);
    assert_eq!(ticket.status, TicketStatus::New, "a signal does not move the ticket");
    assert_eq!(ticket.sla_signals.len(), 2);
}

#[test]
fn the_same_signal_twice_is_refused() {
    let given = given([
        by(customer(), at(0), opened()),
        by(system(), at(15), EventPayload::SlaBreached(signal(SlaTargetKind::FirstResponse, 1))),
    ]);

    given
        .when(record(SlaTargetKind::FirstResponse, 1, SlaSignalKind::Breach), ctx(system(), at(16)))
        .then_error(DomainError::SlaSignalRecorded {
            target: "first_response".into(),
            cycle: 1,
            kind: "breach".into(),
        });
}

#[test]
fn another_cycle_of_next_response_is_a_new_signal() {
    let replied = || EventPayload::CustomerReplied(event::CustomerReplied { message: "hi".into() });
    let given = || {
        given([
            by(customer(), at(0), opened()),
            by(tier1(), at(2), acknowledged("agent-1")),
            by(customer(), at(3), replied()),
            by(system(), at(15), EventPayload::SlaBreached(signal(SlaTargetKind::NextResponse, 1))),
            by(customer(), at(20), replied()),
        ])
    };

    given()
        .when(record(SlaTargetKind::NextResponse, 2, SlaSignalKind::Breach), ctx(system(), at(40)))
        .then(EventPayload::SlaBreached(signal(SlaTargetKind::NextResponse, 2)));
    // Two replies start two cycles at most.
    given()
        .when(record(SlaTargetKind::NextResponse, 3, SlaSignalKind::Breach), ctx(system(), at(40)))
        .then_error(DomainError::InvalidField {
            field: "cycle",
            reason: "next_response cycle 3 cannot have started after 2 customer replies".into(),
        });
}

#[test]
fn only_the_system_records_signals() {
    given_opened()
        .when(record(SlaTargetKind::Resolution, 1, SlaSignalKind::Breach), ctx(lead(), at(20)))
        .then_error(DomainError::RoleNotAllowed {
            role: "lead".into(),
            action: "record an SLA signal on",
        });
}

#[test]
fn cycle_zero_is_invalid() {
    given_opened()
        .when(record(SlaTargetKind::Resolution, 0, SlaSignalKind::Warning), ctx(system(), at(20)))
        .then_error(DomainError::InvalidField {
            field: "cycle",
            reason: "cycles count from 1".into(),
        });
}

#[test]
fn target_names_parse_and_unknown_ones_name_the_field() {
    assert_eq!(
        SlaTargetKind::parse("complaint_acknowledgement"),
        Ok(SlaTargetKind::ComplaintAcknowledgement)
    );
    let err = SlaTargetKind::parse("lunch").unwrap_err();
    assert_eq!(err.field(), Some("target"));
}

#[test]
fn a_signal_no_clock_of_the_ticket_could_give_is_refused() {
    // The opened ticket of the support module is no complaint.
    given_opened()
        .when(
            record(SlaTargetKind::ComplaintAcknowledgement, 1, SlaSignalKind::Breach),
            ctx(system(), at(15)),
        )
        .then_error(DomainError::InvalidField {
            field: "target",
            reason: "complaint_acknowledgement is measured on complaints only".into(),
        });
    given_opened()
        .when(
            record(SlaTargetKind::FirstResponse, 2, SlaSignalKind::Warning),
            ctx(system(), at(15)),
        )
        .then_error(DomainError::InvalidField {
            field: "cycle",
            reason: "first_response runs once, so its only cycle is 1, not 2".into(),
        });

    let closed = || {
        given([
            by(customer(), at(0), opened()),
            by(tier1(), at(5), acknowledged("agent-1")),
            by(tier1(), at(10), resolved()),
            by(tier1(), at(11), closed()),
        ])
    };
    closed()
        .when(record(SlaTargetKind::Resolution, 1, SlaSignalKind::Breach), ctx(system(), at(15)))
        .then_error(DomainError::InvalidTransition {
            action: "record an SLA signal on",
            status: TicketStatus::Closed,
        });
}

#[test]
fn only_next_response_has_more_than_one_cycle() {
    given_opened()
        .when(record(SlaTargetKind::Resolution, 2, SlaSignalKind::Breach), ctx(system(), at(15)))
        .then_error(DomainError::InvalidField {
            field: "cycle",
            reason: "resolution runs once, so its only cycle is 1, not 2".into(),
        });
}

#[test]
fn a_ticket_imported_without_an_opening_time_takes_no_signal() {
    given([by(importer(), at(0), opened())])
        .when(record(SlaTargetKind::Resolution, 1, SlaSignalKind::Breach), ctx(system(), at(15)))
        .then_error(DomainError::InvalidField {
            field: "ticket_id",
            reason: "the ticket has no SLA clocks: it was opened at an unknown time".into(),
        });
}

#[test]
fn request_ids_of_the_sla_timers_form_are_kept_for_the_system() {
    let mut agent = ctx(tier1(), at(2));
    agent.request_id = "sla:first_response:1:warning".into();
    given_opened().when(Command::Assign { agent_id: agent_id("agent-1") }, agent).then_error(
        DomainError::InvalidField {
            field: "request_id",
            reason: "the prefix \"sla:\" is kept for the SLA timer's signals".into(),
        },
    );

    let mut timer = ctx(system(), at(12));
    timer.request_id = "sla:first_response:1:warning".into();
    given_opened()
        .when(record(SlaTargetKind::FirstResponse, 1, SlaSignalKind::Warning), timer)
        .then(EventPayload::SlaWarningReached(signal(SlaTargetKind::FirstResponse, 1)));
}
