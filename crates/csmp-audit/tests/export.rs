//! Exporting a tenant's events of a time range from a real stream.
//!
//! The export positions its consumer by JetStream's storage time, so these events are recorded
//! at times close to now (seconds apart), as the command service would record them.

mod support;

use chrono::{DateTime, Duration, DurationRound, Utc};
use csmp_audit::{AuditError, ExportQuery, ExportSummary};
use csmp_domain::{Command, Ticket};
use csmp_testkit::TestStream;
use support::*;

/// acme's ticket 1 opened, acknowledged, assigned and refunded at `base` + 0, 10, 20 and 30
/// seconds (positions 1, 3, 5, 6); globex's ticket 2 opened and acknowledged at + 10 and + 20
/// (positions 2 and 4).
async fn two_tenants(stream: &TestStream, base: DateTime<Utc>) {
    let store = store(stream).await;
    let secs = |n: i64| base + Duration::seconds(n);
    let mut acme = Ticket::new(tenant("acme"), ticket_id(1));
    let mut globex = Ticket::new(tenant("globex"), ticket_id(2));
    append(&store, &mut acme, open(), Sent::new(agent(), secs(0), "a-1")).await;
    append(&store, &mut globex, open(), Sent::new(agent(), secs(10), "g-1")).await;
    append(&store, &mut acme, Command::Acknowledge, Sent::new(agent(), secs(10), "a-2")).await;
    append(&store, &mut globex, Command::Acknowledge, Sent::new(agent(), secs(20), "g-2")).await;
    append(&store, &mut acme, assign("agent-9"), Sent::new(agent(), secs(20), "a-3")).await;
    append(&store, &mut acme, refund("rf-1", 1250), Sent::new(agent(), secs(30), "a-4")).await;
}

fn base() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap() - Duration::seconds(40)
}

/// The export line of the stored message at `position`, written out by hand.
fn line(raw: &[RawMessage], position: u64) -> String {
    let message = &raw[position as usize - 1];
    format!(
        "{{\"position\":{position},\"subject\":\"{}\",\"event\":{}}}\n",
        message.subject,
        String::from_utf8(message.body.clone()).unwrap()
    )
}

#[tokio::test]
async fn export_writes_exactly_the_tenants_events_recorded_in_the_range_as_stored() {
    let stream = TestStream::new("audit_export");
    let base = base();
    two_tenants(&stream, base).await;
    let raw = raw_messages(&stream).await;
    let audit = audit(&stream).await;
    let range = |from: i64, to: i64| (base + Duration::seconds(from), base + Duration::seconds(to));

    let (from, to) = range(10, 30);
    let mut acme = Vec::new();
    let acme_summary =
        audit.export(&ExportQuery::new(tenant("acme"), from, to), &mut acme).await.unwrap();
    let (from, to) = range(0, 60);
    let mut globex = Vec::new();
    let globex_summary =
        audit.export(&ExportQuery::new(tenant("globex"), from, to), &mut globex).await.unwrap();

    // acme's acknowledgement (+10) and assignment (+20); its refund at +30 is past the range.
    assert_eq!(String::from_utf8(acme).unwrap(), line(&raw, 3) + &line(&raw, 5));
    assert_eq!(
        acme_summary,
        ExportSummary {
            exported: 2,
            read: 4,
            first_position: Some(3),
            last_position: Some(5),
            unreadable: vec![],
        }
    );
    assert_eq!(String::from_utf8(globex).unwrap(), line(&raw, 2) + &line(&raw, 4));
    assert_eq!(globex_summary.exported, 2);
}

#[tokio::test]
async fn an_empty_or_inverted_range_is_refused_and_a_range_without_events_exports_nothing() {
    let stream = TestStream::new("audit_export_range");
    let base = base();
    two_tenants(&stream, base).await;
    let audit = audit(&stream).await;

    let mut out = Vec::new();
    let inverted = ExportQuery::new(tenant("acme"), base, base);
    let err = audit.export(&inverted, &mut out).await.unwrap_err();
    let later = base + Duration::hours(1);
    let nothing = audit
        .export(&ExportQuery::new(tenant("acme"), later, later + Duration::hours(1)), &mut out)
        .await
        .unwrap();

    assert!(matches!(err, AuditError::InvalidRange { .. }), "{err:?}");
    assert_eq!(nothing, ExportSummary::default());
    assert!(out.is_empty());
}
