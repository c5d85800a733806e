//! SLA clocks in business hours, end to end: calendar and policy versions stored in the `sla`
//! schema, the projector measuring with the `csmp-sla` engine, the query computing states at
//! its injected clock.
//!
//! Tenant `acme` works Mon-Fri 09:00-17:00 Europe/Berlin (CET, UTC+1, in January 2026).
//! Version 1 (from 2026-01-01) gives medium/business tickets a 4 h first response; version 2
//! (from Fri 16 Jan 15:30Z) gives them 2 h. Both are measured in office hours.
//!
//! | # | opened | version | first response due |
//! |---|---|---|---|
//! | 1 | Fri 16 Jan 15:00Z (16:00 CET) | 1 | Mon 19 Jan 12:00 CET (11:00Z): 1 h Fri + 3 h Mon |
//! | 2 | Fri 16 Jan 16:00Z (17:00 CET, closed) | 2 | Mon 19 Jan 11:00 CET (10:00Z): 2 h Mon |
//!
//! The calendar is versioned too. In the second test tenant `acme` keeps version 1 (4 h), and
//! a calendar version effective from Fri 16 Jan 15:30Z (16:30 CET) makes Mon 19 Jan a holiday:
//!
//! | # | opened | calendar from | first response due |
//! |---|---|---|---|
//! | A | Fri 16 Jan 16:00 CET | 1 Dec 2025 | Mon 19 Jan 12:00 CET (11:00Z): 1 h Fri + 3 h Mon |
//! | B | Fri 16 Jan 16:45 CET | 16 Jan 16:30 | Tue 20 Jan 12:45 CET (11:45Z): 0:15 Fri + 3:45 Tue |

mod harness;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use csmp_domain::sla::SlaPolicy as WallClockPolicy;
use csmp_domain::{CustomerTier, Priority, TenantId};
use csmp_projector::sla_config::policy_from_wall_clock;
use csmp_proto::v1 as pb;
use csmp_sla::{Calendar, Measure, PolicyVersion, Target};
use harness::support::*;
use harness::*;

fn utc(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, hour, minute, 0).unwrap()
}

/// Mon-Fri 09:00-17:00 Europe/Berlin, with `holidays`.
fn berlin_office(holidays: &[&str]) -> Calendar {
    serde_json::from_value(serde_json::json!({
        "time_zone": "Europe/Berlin",
        "opening_hours": {
            "mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
            "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]
        },
        "holidays": holidays
    }))
    .unwrap()
}

fn office_version(version: u32, from: DateTime<Utc>, first_response_hours: i64) -> PolicyVersion {
    let mut policy = policy_from_wall_clock(&WallClockPolicy::default());
    policy.measured_in = Measure::Calendar("berlin-office".into());
    policy.first_response.medium.business =
        Target::within(chrono::Duration::hours(first_response_hours));
    PolicyVersion { version, effective_from: from, policy }
}

/// A clock's state, due time, business time left and overdue, at-risk flag and running flag.
fn clock(c: &pb::SlaClock) -> (i32, Option<i64>, i64, i64, bool, bool) {
    (
        c.state,
        c.due_at.as_ref().map(|d| d.seconds),
        c.business_seconds_left,
        c.business_seconds_overdue,
        c.at_risk,
        c.running,
    )
}

#[tokio::test]
async fn business_hours_due_times_and_policy_versions_are_exact() {
    let mut h = Harness::new("sla_hours", utc(18, 12, 0), Duration::from_secs(5)).await;
    let acme = TenantId::parse("acme").unwrap();

    // 1. The calendar, its holidays from iCalendar, and two policy versions.
    let calendar = berlin_office(&[]);
    let december = Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap();
    csmp_projector::set_calendar(&h.pg, &acme, "berlin-office", &calendar, december).await.unwrap();
    let ical = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260406\r\n\
                SUMMARY:Easter Monday\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let stored = csmp_projector::import_holidays(&h.pg, &acme, "berlin-office", ical, utc(1, 0, 0))
        .await
        .unwrap();
    let holidays: Vec<String> = stored.holidays().iter().map(|d| d.to_string()).collect();
    assert_eq!(holidays, vec!["2026-04-06"]);
    let v1 = office_version(1, utc(1, 0, 0), 4);
    csmp_projector::set_sla_policy_version(&h.pg, &acme, v1).await.unwrap();
    let v2 = office_version(2, utc(16, 15, 30), 2);
    csmp_projector::set_sla_policy_version(&h.pg, &acme, v2).await.unwrap();

    // A version that does not come after the last one is refused, naming both.
    let stale = office_version(2, utc(20, 0, 0), 1);
    let err = csmp_projector::set_sla_policy_version(&h.pg, &acme, stale).await.unwrap_err();
    assert!(err.to_string().starts_with("invalid SLA policy: "), "{err}");

    // 2. Two tickets on Friday afternoon, projected.
    let mut s = Script::new();
    let o = Opening {
        customer_tier: CustomerTier::Business,
        priority: Priority::Medium,
        ..Opening::default()
    };
    s.open("acme", 1, Some(utc(16, 15, 0)), o.clone());
    s.open("acme", 2, Some(utc(16, 16, 0)), o);
    let last = h.publish(&s).await;
    h.start_all();
    h.caught_up(last).await;
    let mut client = h.client.clone();
    let status = |n: u128| pb::GetSlaStatusRequest {
        tenant: "acme".into(),
        ticket_id: id(n),
        min_position: 0,
    };
    use pb::SlaState::*;
    let (running, breached) = (Running as i32, Breached as i32);

    // 3. Sunday noon: no business time has passed since Friday 17:00 CET.
    let s1 = client.get_sla_status(status(1)).await.unwrap().into_inner();
    assert_eq!(s1.policy_version, Some(1));
    let fr = &s1.clocks[0];
    assert_eq!(fr.target, pb::SlaTarget::FirstResponse as i32);
    assert_eq!(fr.measured_in, "berlin-office");
    assert_eq!(clock(fr), (running, Some(utc(19, 11, 0).timestamp()), 10_800, 0, false, true));
    assert_eq!(fr.warning_due_at, Some(ts(utc(19, 10, 0))));
    // Resolution, 48 h: Fri 1 h, Mon to Fri 8 h each, Mon 26 Jan 7 h: 16:00 CET.
    let res = &s1.clocks[1];
    assert_eq!(res.target, pb::SlaTarget::Resolution as i32);
    assert_eq!(res.due_at, Some(ts(utc(26, 15, 0))));
    let s2 = client.get_sla_status(status(2)).await.unwrap().into_inner();
    assert_eq!(s2.policy_version, Some(2));
    assert_eq!(
        clock(&s2.clocks[0]),
        (running, Some(utc(19, 10, 0).timestamp()), 7_200, 0, false, true)
    );

    // 4. Monday 11:30 CET: #1 at risk with 30 min left, #2 breached 30 min ago.
    h.clock.set(utc(19, 10, 30));
    let s1 = client.get_sla_status(status(1)).await.unwrap().into_inner();
    assert_eq!(
        clock(&s1.clocks[0]),
        (running, Some(utc(19, 11, 0).timestamp()), 1_800, 0, true, true)
    );
    let s2 = client.get_sla_status(status(2)).await.unwrap().into_inner();
    assert_eq!(
        clock(&s2.clocks[0]),
        (breached, Some(utc(19, 10, 0).timestamp()), 0, 1_800, false, true)
    );
    assert_eq!(s2.clocks[0].seconds_left, -1_800);

    let list = |kind: pb::list_sla_tickets_request::Kind| pb::ListSlaTicketsRequest {
        tenant: "acme".into(),
        kind: kind as i32,
        page_size: 0,
        min_position: 0,
    };
    use pb::list_sla_tickets_request::Kind;
    let at_risk = client.list_sla_tickets(list(Kind::AtRisk)).await.unwrap().into_inner();
    let ids: Vec<String> = at_risk.tickets.iter().map(|t| t.ticket_id.clone()).collect();
    assert_eq!(ids, vec![id(1)]);
    let late = client.list_sla_tickets(list(Kind::Breached)).await.unwrap().into_inner();
    let ids: Vec<String> = late.tickets.iter().map(|t| t.ticket_id.clone()).collect();
    assert_eq!(ids, vec![id(2)]);

    // 5. The stored row records the version and the due times to the second.
    let rows =
        h.pg.query(
            "SELECT t.ticket_id, t.policy_version, c.due_at FROM sla.tickets t
             JOIN sla.clocks c USING (tenant, ticket_id)
             WHERE c.target = 'first_response' ORDER BY t.ticket_id",
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<(i32, DateTime<Utc>)> = rows.iter().map(|r| (r.get(1), r.get(2))).collect();
    assert_eq!(stored, vec![(1, utc(19, 11, 0)), (2, utc(19, 10, 0))]);
    h.shutdown().await;
}

#[tokio::test]
async fn a_calendar_version_applies_to_tickets_opened_from_its_effective_time_on() {
    let mut h = Harness::new("sla_calendar_versions", utc(18, 12, 0), Duration::from_secs(5)).await;
    let acme = TenantId::parse("acme").unwrap();
    let december = Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap();
    let change = utc(16, 15, 30);

    // 1. The first calendar version and a 4 h first response measured in it.
    csmp_projector::set_calendar(&h.pg, &acme, "berlin-office", &berlin_office(&[]), december)
        .await
        .unwrap();
    let v1 = office_version(1, utc(1, 0, 0), 4);
    csmp_projector::set_sla_policy_version(&h.pg, &acme, v1).await.unwrap();

    // 2. Ticket A opens on Friday under it.
    let o = Opening {
        customer_tier: CustomerTier::Business,
        priority: Priority::Medium,
        ..Opening::default()
    };
    let mut s = Script::new();
    s.open("acme", 1, Some(utc(16, 15, 0)), o.clone());
    let last = h.publish(&s).await;
    h.start_all();
    h.caught_up(last).await;

    // 3. A new calendar version makes Monday 19 Jan a holiday from Friday 15:30Z on; one that
    //    does not come after it is refused, and ticket B opens under the new one.
    let holiday = berlin_office(&["2026-01-19"]);
    csmp_projector::set_calendar(&h.pg, &acme, "berlin-office", &holiday, change).await.unwrap();
    let err = csmp_projector::set_calendar(&h.pg, &acme, "berlin-office", &holiday, change)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid SLA calendar: "), "{err}");
    let mut s = Script::new();
    s.open("acme", 2, Some(utc(16, 15, 45)), o);
    let last = h.publish(&s).await;
    h.caught_up(last).await;

    // 4. A keeps Monday 12:00 CET; B skips the holiday: 15 min Friday, 3 h 45 min Tuesday.
    let mut client = h.client.clone();
    let status = |n: u128| pb::GetSlaStatusRequest {
        tenant: "acme".into(),
        ticket_id: id(n),
        min_position: 0,
    };
    let running = pb::SlaState::Running as i32;
    let a = client.get_sla_status(status(1)).await.unwrap().into_inner();
    assert_eq!(a.policy_version, Some(1));
    assert_eq!(
        clock(&a.clocks[0]),
        (running, Some(utc(19, 11, 0).timestamp()), 10_800, 0, false, true)
    );
    let b = client.get_sla_status(status(2)).await.unwrap().into_inner();
    assert_eq!(b.policy_version, Some(1));
    assert_eq!(
        clock(&b.clocks[0]),
        (running, Some(utc(20, 11, 45).timestamp()), 13_500, 0, false, true)
    );

    // 5. The stored clocks record the due times and which calendar version each was measured in.
    let rows =
        h.pg.query(
            "SELECT c.due_at, c.calendar_from FROM sla.clocks c
             WHERE c.target = 'first_response' ORDER BY c.ticket_id",
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, vec![(utc(19, 11, 0), Some(december)), (utc(20, 11, 45), Some(change))]);
    h.shutdown().await;
}
