//! Events that decode but whose values PostgreSQL refuses to store (a NUL in text, a time
//! before 4713 BC) become dead letters with PostgreSQL's message; the projector goes on and its
//! tables equal those of a run that never saw the refused events. A time after chrono's last
//! year (262143) is a dead letter already when decoding; year 200000 is stored as it is.

mod support;

use csmp_domain::EventEnvelope;
use csmp_eventstore::EventStoreConfig;
use csmp_projector::ProjectorKind;
use csmp_testkit::{TestDatabase, TestStream};
use support::*;

/// Opened in year 200000: far, but within PostgreSQL's range (up to 294276).
const FAR_FUTURE: &str = "+200000-03-02T09:16:00Z";

/// Tickets 1, 2 and 5 are good; the openings of 3, 4 and 6 are made bad before publishing.
fn script() -> Vec<EventEnvelope> {
    let mut script = Script::new();
    script.open("acme", 1, Some(at(9, 0)), Opening::default());
    script.acknowledge(1, "agent-1", at(9, 10));
    script.open("acme", 3, Some(at(9, 12)), Opening::default());
    script.open("acme", 4, Some(at(9, 14)), Opening::default());
    script.open("acme", 5, Some(at(9, 16)), Opening::default());
    script.open("acme", 6, Some(at(9, 18)), Opening::default());
    script.open("acme", 2, Some(at(9, 20)), Opening::default());
    script.acknowledge(2, "agent-2", at(9, 30));
    script.assign(1, "agent-3", at(9, 40));
    script.in_time_order()
}

/// `envelope` as JSON with `change` made to it, as another writer might have published it.
fn altered(envelope: &EventEnvelope, change: impl FnOnce(&mut serde_json::Value)) -> &'static [u8] {
    let mut json: serde_json::Value =
        serde_json::from_slice(&csmp_eventstore::encode(envelope)).unwrap();
    change(&mut json);
    serde_json::to_vec(&json).unwrap().leak()
}

/// Publishes the script; the openings of tickets 3, 4 and 6 go as `bad` gives them, that of
/// ticket 5 in year 200000. Returns the positions of the bad ones and the stream's last
/// position.
async fn publish_script(
    client: &async_nats::Client,
    store: &EventStoreConfig,
    bad: impl Fn(&EventEnvelope) -> &'static [u8],
) -> (Vec<u64>, u64) {
    let mut refused = Vec::new();
    let mut last = 0;
    for envelope in script() {
        let subject = store.ticket_subject(&envelope.tenant, envelope.ticket_id);
        if [ticket(3), ticket(4), ticket(6)].contains(&envelope.ticket_id) {
            last = publish_raw(client, store, subject, "ticket.opened", bad(&envelope)).await;
            refused.push(last);
        } else if envelope.ticket_id == ticket(5) {
            let body = altered(&envelope, |json| json["occurred_at"] = FAR_FUTURE.into());
            last = publish_raw(client, store, subject, "ticket.opened", body).await;
        } else {
            last = publish(client, store, &[envelope]).await;
        }
    }
    (refused, last)
}

/// The read model of `kind` after it projected the stream up to `last`, without its dead
/// letters, and the dead letters as (position, event type, reason).
async fn project(
    kind: ProjectorKind,
    stream: &TestStream,
    batch_size: usize,
    last: u64,
) -> (Vec<String>, Vec<(i64, Option<String>, String)>) {
    let db = TestDatabase::new("refused").await;
    let pg = pg(&db).await;
    let projector = spawn(config(kind, stream, &db, batch_size), nats(stream).await);
    wait_for(&pg, kind.name(), last).await;
    assert!(!projector.task.is_finished(), "{kind} stopped");
    projector.stop().await.unwrap();

    let rows = dump(&pg, kind.name()).await;
    let tables = rows.into_iter().filter(|row| !row.starts_with("dead_letters: ")).collect();
    let letters = pg
        .query(
            &format!(
                "SELECT position, event_type, reason FROM {}.dead_letters ORDER BY position",
                kind.name()
            ),
            &[],
        )
        .await
        .unwrap();
    let letters = letters.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    (tables, letters)
}

#[tokio::test]
async fn events_postgres_refuses_become_dead_letters_and_projection_goes_on() {
    // 1. The stream with the bad openings: a subject with a NUL, an opening in 5001 BC (before
    //    PostgreSQL's first day, 4713 BC) and one in year 300000 (after chrono's last year).
    let stream = TestStream::new("refused");
    let client = nats(&stream).await;
    let store = store(&stream);
    let (bad, last) = publish_script(&client, &store, |envelope| {
        let id = envelope.ticket_id;
        altered(envelope, |json| match () {
            () if id == ticket(3) => json["payload"]["subject"] = "bad\u{0}subject".into(),
            () if id == ticket(4) => json["occurred_at"] = "-5000-03-02T09:14:00Z".into(),
            () => json["occurred_at"] = "+300000-03-02T09:18:00Z".into(),
        })
    })
    .await;
    let [nul, ancient, beyond] = bad[..] else { panic!("three bad openings: {bad:?}") };

    // 2. The same stream with messages that are not JSON in their place: the same positions,
    //    and no trace of the bad events in the read models.
    let clean_stream = TestStream::new("refusedclean");
    let clean_client = nats(&clean_stream).await;
    let (_, clean_last) =
        publish_script(&clean_client, &store_of(&clean_stream), |_| b"{not json").await;
    assert_eq!(clean_last, last);

    // 3. Each projector, in one batch and one event per batch, ends where the clean run ends,
    //    with a dead letter for each event it could not store.
    for kind in ProjectorKind::ALL {
        let (clean, _) = project(kind, &clean_stream, 100, last).await;
        if kind == ProjectorKind::Queues {
            let far =
                clean.iter().any(|row| row.contains("\"opened_at\": \"200000-03-02T09:16:00"));
            assert!(far, "ticket 5 is stored with its opening in year 200000: {clean:?}");
        }
        for batch_size in [100, 1] {
            let (mut tables, letters) = project(kind, &stream, batch_size, last).await;
            if kind != ProjectorKind::Queues {
                // The subject is not theirs to keep: ticket 3 is applied, and is all that
                // differs from the clean run.
                let third = ticket(3).0.to_string();
                let before = tables.len();
                tables.retain(|row| !row.contains(&third));
                assert!(tables.len() < before, "{kind} applied ticket 3");
            }
            assert_eq!(tables, clean, "{kind}, batches of {batch_size}");

            // Only queues keeps the subject; every read model keeps the opening time.
            let mut expected = Vec::new();
            if kind == ProjectorKind::Queues {
                expected.push((nul, "invalid byte sequence for encoding \"UTF8\": 0x00"));
            }
            expected.push((ancient, "timestamp out of range"));
            expected.push((beyond, "is not a valid event: input is out of range"));
            let found: Vec<i64> = letters.iter().map(|(position, _, _)| *position).collect();
            let positions: Vec<i64> = expected.iter().map(|(p, _)| *p as i64).collect();
            assert_eq!(found, positions, "{kind}: {letters:?}");
            for ((_, event_type, reason), (_, message)) in letters.iter().zip(&expected) {
                assert_eq!(event_type.as_deref(), Some("ticket.opened"));
                assert!(reason.contains(message), "{kind}: {reason}");
            }
        }
    }
}

fn store_of(stream: &TestStream) -> EventStoreConfig {
    store(stream)
}

#[tokio::test]
async fn a_nul_in_a_dead_letters_event_type_is_escaped_in_its_row() {
    let stream = TestStream::new("nultype");
    let client = nats(&stream).await;
    let store = store(&stream);
    let db = TestDatabase::new("nultype").await;
    let pg = pg(&db).await;
    let events = script();
    let subject = store.ticket_subject(&events[0].tenant, events[0].ticket_id);
    let body = altered(&events[0], |json| json["event_type"] = "ticket.\u{0}opened".into());
    let odd = publish_raw(&client, &store, subject, "ticket.opened", body).await;
    let last = publish(&client, &store, &events[..1]).await;

    let mut running = Vec::new();
    for kind in ProjectorKind::ALL {
        running.push(spawn(config(kind, &stream, &db, 100), client.clone()));
    }
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), last).await;
        let row = pg
            .query_one(
                &format!(
                    "SELECT event_type, reason, body FROM {}.dead_letters WHERE position = $1",
                    kind.name()
                ),
                &[&(odd as i64)],
            )
            .await
            .unwrap();
        // The text columns say \u0000 where the NUL was; the body keeps the message as it came.
        assert_eq!(row.get::<_, String>(0), "ticket.\\u0000opened");
        assert_eq!(row.get::<_, String>(1), "unknown event type \"ticket.\\0opened\"");
        assert_eq!(row.get::<_, Vec<u8>>(2), body);
    }
    for projector in running {
        projector.stop().await.unwrap();
    }
}
