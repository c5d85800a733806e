//! SLA policies: lookup, validation, JSON, and the version a ticket gets.

mod support;

use chrono::Duration;
use csmp_domain::{CustomerTier, Priority, SupportTier};
use csmp_sla::{
    Calendars, ClockError, ErrorKind, EscalationAction, Measure, Opening, PolicyError,
    PolicyHistory, PolicyVersion, SignalKind, SlaClocks, SlaPolicy, SlaTarget, Target,
};
use support::*;

fn office() -> Measure {
    Measure::Calendar("ny-office".to_owned())
}

#[test]
fn target_takes_the_most_specific_calendar() {
    let mut policy = policy();
    policy.resolution.measured_in = Some(Measure::Always);

    // (target, priority, tier, expected within, expected calendar)
    let cases = [
        // The cell names "always".
        (
            SlaTarget::FirstResponse,
            Priority::Critical,
            CustomerTier::Enterprise,
            1800,
            Measure::Always,
        ),
        // The cell names none, the table none: the policy's.
        (SlaTarget::FirstResponse, Priority::Critical, CustomerTier::Business, 1800, office()),
        (SlaTarget::NextResponse, Priority::Low, CustomerTier::Standard, 57_600, office()),
        // The table names "always".
        (SlaTarget::Resolution, Priority::High, CustomerTier::Business, 57_600, Measure::Always),
        // One target for every priority and tier.
        (
            SlaTarget::ComplaintAcknowledgement,
            Priority::Low,
            CustomerTier::Standard,
            7200,
            office(),
        ),
    ];

    for (target, priority, tier, within, measure) in cases {
        let (got_within, got_measure) = policy.target(target, priority, tier);

        assert_eq!(got_within, Duration::seconds(within), "{target} {priority} {tier}");
        assert_eq!(got_measure, &measure, "{target} {priority} {tier}");
    }
}

#[test]
fn warning_share_and_escalation_rules() {
    let policy = policy();

    // 75 % of 30 min is 22 min 30 s; of 7 s it is 5.25 s, rounded down to 5 s.
    assert_eq!(policy.warning_after(Duration::minutes(30)), Duration::seconds(1350));
    assert_eq!(policy.warning_after(Duration::seconds(7)), Duration::seconds(5));

    let first = policy.escalation(
        SlaTarget::FirstResponse,
        SignalKind::Breach,
        Priority::Critical,
        CustomerTier::Standard,
    );
    let not_on_warning = policy.escalation(
        SlaTarget::FirstResponse,
        SignalKind::Warning,
        Priority::Critical,
        CustomerTier::Standard,
    );
    let resolution = policy.escalation(
        SlaTarget::Resolution,
        SignalKind::Warning,
        Priority::Low,
        CustomerTier::Enterprise,
    );
    assert_eq!(first.map(|r| r.action), Some(EscalationAction::EscalateOneTier));
    assert_eq!(not_on_warning, None);
    assert_eq!(
        resolution.map(|r| r.action),
        Some(EscalationAction::EscalateTo(SupportTier::Tier3))
    );

    assert_eq!(
        EscalationAction::EscalateOneTier.next_tier(SupportTier::Tier1),
        Some(SupportTier::Tier2)
    );
    assert_eq!(EscalationAction::EscalateOneTier.next_tier(SupportTier::Tier3), None);
    let to_tier2 = EscalationAction::EscalateTo(SupportTier::Tier2);
    assert_eq!(to_tier2.next_tier(SupportTier::Tier2), None);
}

#[test]
fn policy_round_trips_through_json() {
    let policy = policy();

    let json = serde_json::to_value(&policy).unwrap();
    let back: SlaPolicy = serde_json::from_value(json.clone()).unwrap();

    assert_eq!(back, policy);
    assert_eq!(json["first_response"]["low"]["enterprise"], 14_400);
    assert_eq!(
        json["first_response"]["critical"]["enterprise"],
        serde_json::json!({"within": 1800, "measured_in": "always"})
    );
    assert_eq!(json["escalations"][0]["on"], "breach");
}

#[test]
fn warning_percent_defaults_to_75() {
    let mut json: serde_json::Value = serde_json::from_str(POLICY_JSON).unwrap();
    json.as_object_mut().unwrap().remove("warning_percent");

    let policy: SlaPolicy = serde_json::from_value(json).unwrap();

    assert_eq!(policy.warning_percent, 75);
}

#[test]
fn validation_names_the_field() {
    let calendars = calendars();

    let mut zero = policy();
    zero.next_response.high.business = Target::within(Duration::zero());
    let mut warning = policy();
    warning.warning_percent = 100;
    let mut unknown = policy();
    unknown.resolution.critical.standard =
        Target { within: Duration::hours(8), measured_in: Some(Measure::Calendar("paris".into())) };
    let mut unknown_default = policy();
    unknown_default.measured_in = Measure::Calendar("tokyo".into());

    // (case, policy, expected message)
    let cases = [
        (
            "zero target",
            zero,
            "invalid next_response.high.business: must be longer than zero, got 0 seconds",
        ),
        ("warning share", warning, "invalid warning_percent: 100 is not within 1 to 99"),
        (
            "unknown calendar in a cell",
            unknown,
            "resolution.critical.standard is measured under calendar \"paris\", which does not \
             exist",
        ),
        (
            "unknown default calendar",
            unknown_default,
            "measured_in is measured under calendar \"tokyo\", which does not exist",
        ),
    ];

    for (case, policy, expected) in cases {
        let err = policy.validate(&calendars).unwrap_err();

        assert_eq!(err.to_string(), expected, "{case}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case}");
    }
}

fn version(number: u32, from: &str, first_response_low_enterprise: i64) -> PolicyVersion {
    let mut policy = policy();
    policy.first_response.low.enterprise =
        Target::within(Duration::seconds(first_response_low_enterprise));
    PolicyVersion { version: number, effective_from: utc(from), policy }
}

#[test]
fn history_picks_the_version_in_force_at_opening() {
    // Version 2 halves first response for low enterprise tickets from Mon 15 June 13:00Z.
    let history = PolicyHistory::new(
        tenant(),
        vec![version(2, "2026-06-15T13:00:00Z", 7200), version(1, "2026-01-01T00:00:00Z", 14_400)],
    )
    .unwrap();
    let opening = Opening {
        priority: Priority::Low,
        customer_tier: CustomerTier::Enterprise,
        is_complaint: false,
    };

    // (case, opened at, expected version, expected first-response due)
    let cases = [
        // Mon 08:59:59 EDT: version 1, 4 h from 09:00 EDT = 13:00 EDT.
        ("a second before the change", "2026-06-15T12:59:59Z", 1, "2026-06-15T17:00:00Z"),
        // Mon 09:00 EDT: version 2, 2 h = 11:00 EDT.
        ("at the change", "2026-06-15T13:00:00Z", 2, "2026-06-15T15:00:00Z"),
        ("after the change", "2026-06-16T13:00:00Z", 2, "2026-06-16T15:00:00Z"),
    ];

    for (case, opened_at, expected_version, due) in cases {
        let opened_at = utc(opened_at);

        let clocks = SlaClocks::open(ticket(), opened_at, opening, &history, &calendars()).unwrap();

        assert_eq!(history.in_force_at(opened_at).unwrap().version, expected_version, "{case}");
        assert_eq!(clocks.policy_version(), expected_version, "{case}");
        let first = clocks.clock(SlaTarget::FirstResponse, opened_at).unwrap().unwrap();
        assert_eq!(first.due_at, Some(utc(due)), "{case}");
    }
}

#[test]
fn history_refuses_versions_out_of_order_and_gaps_before_the_first() {
    let mut history =
        PolicyHistory::new(tenant(), vec![version(1, "2026-06-01T00:00:00Z", 14_400)]).unwrap();

    let earlier = history.push(version(2, "2026-05-01T00:00:00Z", 7200)).unwrap_err();
    let same_number = history.push(version(1, "2026-07-01T00:00:00Z", 7200)).unwrap_err();
    let before_first = history.in_force_at(utc("2026-05-31T23:59:59Z")).unwrap_err();
    let opened = SlaClocks::open(
        ticket(),
        utc("2026-05-31T23:59:59Z"),
        Opening {
            priority: Priority::Low,
            customer_tier: CustomerTier::Standard,
            is_complaint: false,
        },
        &history,
        &calendars(),
    )
    .unwrap_err();

    assert_eq!(
        earlier.to_string(),
        "policy version 2 effective from 2026-05-01 00:00:00 UTC does not follow version 1 \
         effective from 2026-06-01 00:00:00 UTC"
    );
    assert!(matches!(same_number, PolicyError::OutOfOrder { version: 1, previous: 1, .. }));
    assert_eq!(before_first, PolicyError::NoneInForce { at: utc("2026-05-31T23:59:59Z") });
    assert_eq!(before_first.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(opened, ClockError::Policy(before_first));
    assert_eq!(history.versions().len(), 1);
}

#[test]
fn history_round_trips_through_json_and_is_validated() {
    let history = PolicyHistory::new(
        tenant(),
        vec![version(1, "2026-01-01T00:00:00Z", 14_400), version(2, "2026-06-15T13:00:00Z", 7200)],
    )
    .unwrap();

    let json = serde_json::to_value(&history).unwrap();
    let back: PolicyHistory = serde_json::from_value(json.clone()).unwrap();
    let mut swapped = json.clone();
    swapped["versions"][1]["effective_from"] = "2025-01-01T00:00:00Z".into();
    let err = serde_json::from_value::<PolicyHistory>(swapped).unwrap_err().to_string();

    assert_eq!(back, history);
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["versions"][1]["version"], 2);
    assert!(err.starts_with("policy version 2 effective from 2025-01-01"), "{err}");
}

#[test]
fn clocks_refuse_a_policy_naming_a_missing_calendar() {
    let opening = Opening {
        priority: Priority::Low,
        customer_tier: CustomerTier::Standard,
        is_complaint: false,
    };

    let err = SlaClocks::open(
        ticket(),
        utc("2026-06-15T13:00:00Z"),
        opening,
        &history(),
        &Calendars::new(),
    )
    .unwrap_err();

    assert_eq!(
        err.to_string(),
        "failed to pick the SLA policy: measured_in is measured under calendar \"ny-office\", \
         which does not exist"
    );
}
