//! Input that must never reach the stream: text PostgreSQL cannot store, times outside what the
//! read models hold, refunds whose sums could overflow, and a lead approving their own request.

mod support;

use chrono::{TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::{Command, DomainError, Role, SlaSignalKind, SlaTargetKind};
use support::*;

#[test]
fn a_nul_character_in_any_text_is_refused_naming_the_field() {
    given([])
        .when(
            Command::Open(OpenTicket { subject: "bad\0subject".into(), ..open_command() }),
            ctx(customer(), at(0)),
        )
        .then_error(DomainError::InvalidField {
            field: "subject",
            reason: "must not contain control character U+0000".into(),
        });
    given_acknowledged()
        .when(Command::AskCustomer { question: "which\u{7}one".into() }, ctx(tier1(), at(6)))
        .then_error(DomainError::InvalidField {
            field: "question",
            reason: "must not contain control character U+0007".into(),
        });
}

#[test]
fn tabs_and_line_breaks_are_ordinary_text() {
    let open = OpenTicket { description: "line one\r\nline\ttwo".into(), ..open_command() };

    let decided = given([]).when(Command::Open(open), ctx(customer(), at(0)));

    decided.then(csmp_domain::EventPayload::Opened(csmp_domain::event::Opened {
        description: "line one\r\nline\ttwo".into(),
        ..match opened() {
            csmp_domain::EventPayload::Opened(opened) => opened,
            _ => unreachable!("opened() is an opening"),
        }
    }));
}

#[test]
fn an_importer_time_before_1970_is_refused() {
    let mut context = ctx(importer(), at(0));
    context.occurred_at = Some(Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap());

    given([]).when(Command::Open(open_command()), context).then_error(DomainError::InvalidField {
        field: "occurred_at",
        reason: "1969-12-31 23:59:59 UTC is not between 1970-01-01 00:00:00 and \
         9999-12-31 23:59:59 UTC"
            .into(),
    });
}

#[test]
fn an_sla_due_time_beyond_9999_is_refused() {
    let due_at = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
    let command = Command::RecordSlaSignal {
        target: SlaTargetKind::Resolution,
        cycle: 1,
        kind: SlaSignalKind::Breach,
        due_at,
        policy_version: 1,
    };

    given_opened().when(command, ctx(system(), at(1))).then_error(DomainError::InvalidField {
        field: "due_at",
        reason: "+10000-01-01 00:00:00 UTC is not between 1970-01-01 00:00:00 and \
         9999-12-31 23:59:59 UTC"
            .into(),
    });
}

#[test]
fn a_refund_above_the_largest_single_refund_is_refused() {
    let command = Command::Refund {
        refund_id: refund_id("rf-1"),
        amount: eur(1_000_000_000_001),
        reason: "goodwill".into(),
    };

    given_opened().when(command, ctx(lead(), at(1))).then_error(DomainError::InvalidField {
        field: "amount.amount_minor",
        reason: "1000000000001 is above the largest refund, 1000000000000".into(),
    });
}

#[test]
fn a_lead_may_not_approve_a_refund_they_requested() {
    let mut limits = csmp_domain::RefundLimits::default();
    limits.default_by_role.insert(Role::Lead, 100);
    let mut request = ctx(lead(), at(1));
    request.refund_limits = limits.clone();
    let refund = Command::Refund {
        refund_id: refund_id("rf-1"),
        amount: eur(500),
        reason: "duplicate charge".into(),
    };
    let ticket = given_opened().when(refund, request).then(refund_requested("rf-1", eur(500), 100));
    let mut approve = ctx(lead(), at(2));
    approve.refund_limits = limits;

    Scenario { ticket, recorded: Vec::new() }
        .when(Command::ApproveRefund { refund_id: refund_id("rf-1") }, approve)
        .then_error(DomainError::SelfApproval("rf-1".into()));
}
