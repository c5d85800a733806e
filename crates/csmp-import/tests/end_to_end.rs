//! The importer against the real command service on a real JetStream stream: the events a small
//! export becomes, and a second import that appends nothing.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use csmp_command::{CommandService, CommandServiceConfig};
use csmp_domain::{ManualClock, TenantId, TicketId};
use csmp_eventstore::{EventStore, EventStoreConfig};
use csmp_import::{import, plan_reader, ImportOptions, PlanOptions};
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_testkit::TestStream;

const EXPORT: &str = "Ticket ID,Customer Email,Product Purchased,Date of Purchase,Ticket Type,\
Ticket Subject,Ticket Status,Ticket Priority,Ticket Channel,First Response Time,\
Time to Resolution,Customer Satisfaction Rating
1,c1@example.com,P,2021-01-01,Refund request,Lost parcel,Open,Low,Chat,,,
2,c2@example.com,P,2021-01-01,Technical issue,No power,Pending Customer Response,High,Email,\
2023-06-01 12:15:36,,
3,c3@example.com,P,2021-01-01,Billing inquiry,Charged twice,Closed,Critical,Phone,\
2023-06-01 11:14:38,2023-06-01 18:05:38,4.0
4,c4@example.com,P,2021-01-01,Billing inquiry,Charged twice,Closed,Low,Chat,\
2023-06-01 07:29:40,2023-06-01 01:57:40,3.0
";

#[tokio::test]
async fn an_export_becomes_ticket_histories_once() {
    let fixture = TestStream::new("import_e2e");
    let store_config = EventStoreConfig {
        stream: fixture.stream.clone(),
        subject_prefix: fixture.subject_prefix.clone(),
        ..EventStoreConfig::default()
    };
    let nats = async_nats::connect(&fixture.nats_url).await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
    let config = CommandServiceConfig { store: store_config.clone(), ..Default::default() };
    let service = CommandService::connect(nats.clone(), config, Arc::new(ManualClock::new(now)))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(csmp_command::serve(listener, service, std::future::pending()));
    let client = TicketCommandsClient::connect(format!("http://{addr}")).await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let plan = plan_reader(EXPORT.as_bytes(), &PlanOptions::new(tenant.clone())).unwrap();

    let first = import(client.clone(), &plan, &ImportOptions::default()).await;
    let second = import(client, &plan, &ImportOptions::default()).await;

    // Rows 1-3 import (1 + 3 + 5 events); row 4 resolves before its first response.
    assert_eq!((first.imported, first.rejected, first.failed, first.events_appended), (3, 1, 0, 9));
    assert_eq!((second.imported, second.already_present, second.events_appended), (0, 3, 0));
    let store = EventStore::connect(nats, store_config).await.unwrap();
    assert_eq!(store.last_position().await.unwrap(), 9, "the second import appended nothing");

    let closed = TicketId::for_request(&tenant, "import:3:open");
    let history = store.load(&tenant, closed).await.unwrap();
    let types: Vec<_> = history.iter().map(|e| e.envelope.event_type()).collect();
    assert_eq!(
        types,
        [
            "ticket.opened",
            "ticket.acknowledged",
            "ticket.resolved",
            "feedback.given",
            "ticket.closed"
        ]
    );
    let times: Vec<_> = history.iter().map(|e| e.envelope.occurred_at).collect();
    assert_eq!(
        times,
        [
            None,
            Some(Utc.with_ymd_and_hms(2023, 6, 1, 11, 14, 38).unwrap()),
            Some(Utc.with_ymd_and_hms(2023, 6, 1, 18, 5, 38).unwrap()),
            None,
            None
        ],
        "the opening time is unknown, nothing is invented"
    );
    assert!(history.iter().all(|e| e.envelope.recorded_at == now));
    assert!(history.iter().all(|e| e.envelope.actor.id == "importer"));
}
