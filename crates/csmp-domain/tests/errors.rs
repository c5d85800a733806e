//! Identifier rules, and what kind of failure each error is.

use csmp_domain::{DomainError, ErrorKind, TenantId, TicketId, TicketStatus};

fn invalid_tenant(raw: &str) -> DomainError {
    DomainError::InvalidField {
        field: "tenant",
        reason: format!("{raw:?} must be lowercase letters, digits, '-' or '_'"),
    }
}

#[test]
fn tenant_ids_that_are_accepted() {
    for raw in ["acme", "a", "acme-eu_2", "0day", &"t".repeat(64)] {
        assert_eq!(TenantId::parse(raw).map(|t| t.as_str().to_owned()), Ok(raw.to_owned()));
    }
}

#[test]
fn tenant_ids_that_are_rejected() {
    for raw in ["Acme", "acme.eu", "acme>", "acme*", "ac me", "-acme", "_acme", "acmé"] {
        assert_eq!(TenantId::parse(raw), Err(invalid_tenant(raw)), "{raw:?}");
    }
    assert_eq!(
        TenantId::parse(""),
        Err(DomainError::InvalidField { field: "tenant", reason: "must not be empty".into() })
    );
    assert_eq!(
        TenantId::parse(&"t".repeat(65)),
        Err(DomainError::TooLong { field: "tenant", len: 65, max: 64 })
    );
}

#[test]
fn tenant_of_multibyte_letters_is_rejected_for_its_letters_not_its_byte_count() {
    // 33 letters, 66 bytes: within the length limit, but not lowercase ASCII.
    let raw = "é".repeat(33);

    assert_eq!(TenantId::parse(&raw), Err(invalid_tenant(&raw)));
}

#[test]
fn tenant_is_validated_when_read_from_json() {
    let err = serde_json::from_str::<TenantId>("\"ACME\"").unwrap_err();

    assert!(err.to_string().contains("must be lowercase letters"), "{err}");
}

#[test]
fn ticket_id_derived_from_a_request_is_stable_and_tenant_scoped() {
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();

    assert_eq!(TicketId::for_request(&acme, "r-1"), TicketId::for_request(&acme, "r-1"));
    assert_ne!(TicketId::for_request(&acme, "r-1"), TicketId::for_request(&acme, "r-2"));
    assert_ne!(TicketId::for_request(&acme, "r-1"), TicketId::for_request(&globex, "r-1"));
    assert_eq!(TicketId::parse("not-a-uuid").unwrap_err().field(), Some("ticket_id"));
}

#[test]
fn kind_and_field_of_every_error() {
    let cases = [
        (
            DomainError::InvalidField { field: "csat", reason: "x".into() },
            ErrorKind::InvalidInput,
            Some("csat"),
        ),
        (
            DomainError::TooLong { field: "subject", len: 201, max: 200 },
            ErrorKind::InvalidInput,
            Some("subject"),
        ),
        (DomainError::RequestIdReused("open".into()), ErrorKind::InvalidInput, Some("request_id")),
        (
            DomainError::RequestIdReusedWithOtherValues("refund.issued".into()),
            ErrorKind::InvalidInput,
            Some("request_id"),
        ),
        (DomainError::TicketNotFound, ErrorKind::NotFound, None),
        (DomainError::TicketExists, ErrorKind::WrongState, None),
        (
            DomainError::InvalidTransition { action: "resolve", status: TicketStatus::Closed },
            ErrorKind::WrongState,
            None,
        ),
        (DomainError::AlreadyAcknowledged, ErrorKind::WrongState, None),
        (
            DomainError::NoChange { what: "priority", value: "high".into() },
            ErrorKind::WrongState,
            None,
        ),
        (
            DomainError::EscalationNotUpward { from: "tier2".into(), to: "tier1".into() },
            ErrorKind::WrongState,
            None,
        ),
        (DomainError::FeedbackAlreadyGiven, ErrorKind::WrongState, None),
        (DomainError::RefundExists("rf-1".into()), ErrorKind::WrongState, None),
        (DomainError::RefundNotPending("rf-1".into()), ErrorKind::WrongState, None),
        (DomainError::RefundAwaitingApproval("rf-1".into()), ErrorKind::WrongState, None),
        (
            DomainError::RoleNotAllowed { role: "customer".into(), action: "resolve" },
            ErrorKind::NotPermitted,
            None,
        ),
        (
            DomainError::ApprovalNeedsLead { role: "tier1_agent".into(), decision: "approve" },
            ErrorKind::NotPermitted,
            None,
        ),
    ];

    for (error, kind, field) in cases {
        assert_eq!((error.kind(), error.field()), (kind, field), "{error:?}");
    }
}

#[test]
fn messages_are_lowercase_and_name_the_context() {
    let cases = [
        (
            DomainError::TooLong { field: "subject", len: 201, max: 200 },
            "invalid subject: 201 characters long, the limit is 200",
        ),
        (
            DomainError::InvalidTransition {
                action: "give feedback on",
                status: TicketStatus::New,
            },
            "cannot give feedback on a ticket that is new",
        ),
        (
            DomainError::RoleNotAllowed { role: "customer".into(), action: "resolve" },
            "customer may not resolve a ticket",
        ),
        (
            DomainError::ApprovalNeedsLead { role: "tier1_agent".into(), decision: "reject" },
            "only a lead may reject a refund awaiting approval; tier1_agent may not",
        ),
        (
            DomainError::RefundAwaitingApproval("rf-2".into()),
            "refund rf-2 awaits a lead's approval; approve or reject it before closing",
        ),
    ];

    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}
