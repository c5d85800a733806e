//! Audits leave no consumers behind: each read deletes the consumer it created, however it ends.

mod support;

use async_nats::jetstream;
use chrono::{Duration, Utc};
use csmp_audit::{AuditErrorKind, ExportQuery, TimeBasis, VerifyScope};
use csmp_domain::{Command, Ticket};
use csmp_testkit::TestStream;
use support::*;

/// The number of consumers on the test's stream, as the server counts them.
async fn consumer_count(stream: &TestStream) -> usize {
    let client = async_nats::connect(&stream.nats_url).await.unwrap();
    let mut source = jetstream::new(client).get_stream(&stream.stream).await.unwrap();
    source.info().await.unwrap().state.consumer_count
}

#[tokio::test]
async fn history_state_export_and_verify_delete_their_consumers() {
    let stream = TestStream::new("audit_consumers");
    let store = store(&stream).await;
    let mut ticket = Ticket::new(tenant("acme"), ticket_id(1));
    let now = Utc::now();
    append(&store, &mut ticket, open(), Sent::new(agent(), now, "c-1")).await;
    append(&store, &mut ticket, Command::Acknowledge, Sent::new(agent(), now, "c-2")).await;
    let audit = audit(&stream).await;
    let before = consumer_count(&stream).await;

    for _ in 0..3 {
        audit.history(&tenant("acme"), ticket_id(1)).await.unwrap();
    }
    let missing = audit.history(&tenant("acme"), ticket_id(2)).await.unwrap_err();
    audit.state_as_of(&tenant("acme"), ticket_id(1), now, TimeBasis::Recorded).await.unwrap();
    let query =
        ExportQuery::new(tenant("acme"), now - Duration::hours(1), now + Duration::hours(1));
    let mut lines = Vec::new();
    let exported = audit.export(&query, &mut lines).await.unwrap();
    let closed = audit.export(&query, &mut Closed).await.unwrap_err();
    audit.verify(&VerifyScope::All).await.unwrap();
    let after = consumer_count(&stream).await;

    assert_eq!(before, 0);
    assert_eq!(after, before);
    assert_eq!(missing.kind(), AuditErrorKind::NotFound);
    assert_eq!(exported.exported, 2);
    assert!(closed.is_broken_pipe(), "{closed:?}");
}

/// An output whose reader went away.
struct Closed;

impl std::io::Write for Closed {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
