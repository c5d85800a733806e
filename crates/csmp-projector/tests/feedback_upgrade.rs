//! Upgrading the feedback read model to sentiment and themes: the migration projects the
//! stream again from the first event, and ratings stored as `feedback.given` version 1 get the
//! sentiment and themes of their upcast form.

mod support;

use csmp_domain::TenantId;
use csmp_projector::ProjectorKind;
use csmp_testkit::{TestDatabase, TestStream};
use support::*;

#[tokio::test]
async fn the_upgrade_replays_the_stream_and_old_ratings_get_sentiment_and_themes() {
    let stream = TestStream::new("fb_upgrade");
    let client = nats(&stream).await;
    let store = store(&stream);
    let db = TestDatabase::new("fb_upgrade").await;
    let pg = pg(&db).await;

    // Ticket 1 rated by the first release (a raw version 1 body), ticket 2 by this one.
    let mut script = Script::new();
    script.open("acme", 1, Some(at(9, 0)), Opening::default());
    script.acknowledge(1, "agent-1", at(9, 10));
    script.resolve(1, "agent-1", at(9, 40));
    script.open("acme", 2, Some(at(10, 0)), Opening::default());
    script.acknowledge(2, "agent-1", at(10, 5));
    script.resolve(2, "agent-1", at(10, 30));
    script.feedback_with(2, (3, None), "It works now", &[], at(10, 45));
    let events = script.in_time_order();
    let (ticket_1, ticket_2): (Vec<_>, Vec<_>) =
        events.into_iter().partition(|e| e.ticket_id == ticket(1));
    publish(&client, &store, &ticket_1).await;
    let acme = TenantId::parse("acme").unwrap();
    let v1_rating = br#"{"event_id":"00000000-0000-7000-8000-000000000099","schema_version":1,
        "tenant":"acme","ticket_id":"00000000-0000-0000-0000-000000000001","version":4,
        "occurred_at":"2026-03-02T09:50:00Z","recorded_at":"2026-03-02T09:50:00Z",
        "actor":{"id":"cust-1","role":"customer"},"correlation_id":"r4","causation_id":null,
        "request_id":"r4","event_type":"feedback.given",
        "payload":{"csat":1,"nps":2,"comment":"Rude agent, and still broken","resolution_cycle":1}}"#;
    let subject = store.ticket_subject(&acme, ticket(1));
    publish_raw(&client, &store, subject, "feedback.given", v1_rating).await;
    let last = publish(&client, &store, &ticket_2).await;

    // The first release's read model: migration 1 only, already projected up to `last` with
    // ratings but no sentiment.
    csmp_projector::schema::migrate_schema_up_to(&pg, ProjectorKind::Feedback, "feedback", 1)
        .await
        .unwrap();
    pg.batch_execute(&format!(
        "INSERT INTO feedback.tickets (tenant, ticket_id, customer_id, customer_tier, channel,
             category, product, priority, tier, csat, escalations, version, last_position)
         VALUES ('acme', '00000000-0000-0000-0000-000000000001', 'cust-1', 'standard', 'email',
             'billing', 'router', 'medium', 'tier1', 1, 0, 4, 4);
         UPDATE feedback.checkpoint SET position = {last};"
    ))
    .await
    .unwrap();

    // The projector of this release migrates, starts again from the first event, and ends at
    // the same position with both ratings classified.
    let running = spawn(config(ProjectorKind::Feedback, &stream, &db, 100), client.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let applied: Vec<i32> = loop {
        assert!(std::time::Instant::now() < deadline, "the projector did not migrate in 30 s");
        let rows = pg
            .query("SELECT version FROM feedback.schema_migrations ORDER BY version", &[])
            .await
            .unwrap();
        let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        if versions.len() == 2 {
            break versions;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(applied, [1, 2]);
    wait_for(&pg, "feedback", last).await;
    let rows = pg
        .query(
            "SELECT ticket_id::text, csat, sentiment, themes, comment
             FROM feedback.tickets ORDER BY ticket_id",
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, i16, String, String, String)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
    assert_eq!(
        rows,
        [
            (
                ticket(1).to_string(),
                1,
                "negative".to_owned(),
                "agent_conduct,product_quality,resolution_quality".to_owned(),
                "Rude agent, and still broken".to_owned()
            ),
            (
                ticket(2).to_string(),
                3,
                "neutral".to_owned(),
                String::new(),
                "It works now".to_owned()
            ),
        ]
    );
    running.stop().await.unwrap();
}
