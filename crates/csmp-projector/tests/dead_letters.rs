//! Messages a projector cannot apply become dead letters, and the projector goes on.

mod support;

use csmp_domain::{TenantId, TicketId};
use csmp_projector::ProjectorKind;
use csmp_testkit::{TestDatabase, TestStream};
use support::*;
use uuid::Uuid;

#[tokio::test]
async fn unknown_type_and_invalid_json_become_dead_letters_and_projection_goes_on() {
    let stream = TestStream::new("dead");
    let client = nats(&stream).await;
    let store = store(&stream);
    let db = TestDatabase::new("dead").await;
    let pg = pg(&db).await;
    let mut script = Script::new();
    script.open("acme", 1, Some(at(9, 0)), Opening::default());
    script.acknowledge(1, "agent-1", at(9, 10));
    let events = script.in_time_order();
    publish(&client, &store, &events[..1]).await;
    let acme = TenantId::parse("acme").unwrap();
    let subject = store.ticket_subject(&acme, ticket(1));
    let teleported = br#"{"event_id":"00000000-0000-0000-0000-000000000007","schema_version":1,
        "tenant":"acme","ticket_id":"00000000-0000-0000-0000-000000000001","version":2,
        "occurred_at":null,"recorded_at":"2026-03-02T09:05:00Z",
        "actor":{"id":"a","role":"lead"},"correlation_id":"c","causation_id":null,
        "request_id":"r","event_type":"ticket.teleported","payload":{}}"#;
    let unknown =
        publish_raw(&client, &store, subject.clone(), "ticket.teleported", teleported).await;
    let broken = publish_raw(&client, &store, subject, "ticket.opened", b"{not json").await;
    let last = publish(&client, &store, &events[1..]).await;

    let mut running = Vec::new();
    for kind in ProjectorKind::ALL {
        running.push(spawn(config(kind, &stream, &db, 100), client.clone()));
    }
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), last).await;
    }

    for kind in ProjectorKind::ALL {
        let letters = pg
            .query(
                &format!(
                    "SELECT position, subject, event_type, reason, length(body)
                     FROM {}.dead_letters ORDER BY position",
                    kind.name()
                ),
                &[],
            )
            .await
            .unwrap();
        let letters: Vec<(i64, Option<String>, String)> =
            letters.iter().map(|r| (r.get(0), r.get(2), r.get(3))).collect();
        assert_eq!(letters.len(), 2, "{kind}: {letters:?}");
        assert_eq!(letters[0].0, unknown as i64);
        assert_eq!(letters[0].1.as_deref(), Some("ticket.teleported"));
        assert_eq!(letters[0].2, "unknown event type \"ticket.teleported\"");
        assert_eq!(letters[1].0, broken as i64);
        assert_eq!(letters[1].1, None);
        assert!(letters[1].2.starts_with("body is not JSON: "), "{}", letters[1].2);
        let status = pg
            .query_one(&format!("SELECT checkpoint, dead_letters FROM {}.status", kind.name()), &[])
            .await
            .unwrap();
        assert_eq!(status.get::<_, i64>(0), last as i64);
        assert_eq!(status.get::<_, i64>(1), 2);
    }
    // The acknowledgement after the dead letters was applied.
    let status: String = pg
        .query_one("SELECT status FROM queues.tickets WHERE ticket_id = $1", &[&ticket(1).0])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "open");

    // An event for a ticket that was never opened, under its own subject: a third dead letter.
    let mut orphan = events[1].clone();
    orphan.ticket_id = TicketId(Uuid::from_u128(99));
    orphan.version = 2;
    let last = publish(&client, &store, &[orphan]).await;
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), last).await;
        let row = pg
            .query_one(
                &format!(
                    "SELECT reason, (SELECT dead_letters FROM {0}.status)
                     FROM {0}.dead_letters WHERE position = $1",
                    kind.name()
                ),
                &[&(last as i64)],
            )
            .await
            .unwrap();
        let reason: String = row.get(0);
        assert_eq!(reason, "ticket.acknowledged for a ticket that was never opened");
        assert_eq!(row.get::<_, i64>(1), 3);
    }
    for projector in running {
        projector.stop().await.unwrap();
    }
}
