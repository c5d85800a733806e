//! Exactly-once effect against real NATS and PostgreSQL: crashes between and inside batches,
//! redeliveries and two instances at once all end with the tables of one clean run.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use csmp_projector::{FaultInjection, ProjectorError, ProjectorKind};
use csmp_testkit::{TestDatabase, TestStream};
use support::*;

/// One clean run over the stream's events, with large batches, in a database of its own.
async fn clean_run(kind: ProjectorKind, stream: &TestStream, last: u64) -> Vec<String> {
    let db = TestDatabase::new("clean").await;
    let pg = pg(&db).await;
    let projector = spawn(config(kind, stream, &db, 1000), nats(stream).await);
    wait_for(&pg, kind.name(), last).await;
    projector.stop().await.unwrap();
    dump(&pg, kind.name()).await
}

async fn crash_run_equals_clean_run(kind: ProjectorKind) {
    let stream = TestStream::new(kind.name());
    let client = nats(&stream).await;
    let events = workload(&["acme", "globex"], 40).in_time_order();
    let last = publish(&client, &store(&stream), &events).await;
    let db = TestDatabase::new("crash").await;
    let pg = pg(&db).await;

    // 1. A fault inside the third batch's transaction, after its rows are written.
    let failed = Arc::new(AtomicBool::new(false));
    let once = failed.clone();
    let fail = move |first: u64, _| first > 14 && !once.swap(true, Ordering::SeqCst);
    let faults = FaultInjection { fail_batch: Some(Arc::new(fail)) };
    let projector = spawn_with(config(kind, &stream, &db, 7), client.clone(), faults);
    let result = projector.task.await.unwrap();
    assert!(matches!(result, Err(ProjectorError::Injected { .. })), "{result:?}");
    let after_fault = checkpoint(&pg, kind.name()).await;
    assert!((14..=21).contains(&after_fault), "checkpoint {after_fault} after the fault");

    // 2. Killed between batches, twice, somewhere in the middle of the stream.
    for stop_at in [last / 3, last / 2] {
        let projector = spawn(config(kind, &stream, &db, 7), client.clone());
        wait_for(&pg, kind.name(), stop_at).await;
        projector.kill().await;
    }

    // 3. Killed at random moments with tiny batches, inside transactions or between them.
    for pause_ms in [3, 11, 29] {
        let projector = spawn(config(kind, &stream, &db, 3), client.clone());
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        projector.kill().await;
    }

    // 4. A final run to the end.
    let projector = spawn(config(kind, &stream, &db, 7), client.clone());
    wait_for(&pg, kind.name(), last).await;
    projector.stop().await.unwrap();

    let crashed = dump(&pg, kind.name()).await;
    let clean = clean_run(kind, &stream, last).await;
    // At least a row per ticket and the checkpoint.
    assert!(clean.len() > 80, "the clean run wrote {} rows", clean.len());
    assert_eq!(crashed, clean);
}

#[tokio::test]
async fn queues_survive_crashes_with_the_tables_of_a_clean_run() {
    crash_run_equals_clean_run(ProjectorKind::Queues).await;
}

#[tokio::test]
async fn sla_survives_crashes_with_the_tables_of_a_clean_run() {
    crash_run_equals_clean_run(ProjectorKind::Sla).await;
}

#[tokio::test]
async fn feedback_survives_crashes_with_the_tables_of_a_clean_run() {
    crash_run_equals_clean_run(ProjectorKind::Feedback).await;
}

#[tokio::test]
async fn redelivery_from_the_first_position_changes_nothing() {
    let stream = TestStream::new("redeliver");
    let client = nats(&stream).await;
    let events = workload(&["acme"], 30).in_time_order();
    let last = publish(&client, &store(&stream), &events).await;
    let db = TestDatabase::new("redeliver").await;
    let pg = pg(&db).await;
    for kind in ProjectorKind::ALL {
        let projector = spawn(config(kind, &stream, &db, 50), client.clone());
        wait_for(&pg, kind.name(), last).await;
        projector.stop().await.unwrap();
    }
    let mut before = Vec::new();
    for kind in ProjectorKind::ALL {
        before.extend(dump(&pg, kind.name()).await);
    }
    let updated_before: Vec<String> = checkpoint_times(&pg).await;

    // Every consumer re-created to deliver the whole stream again, then the projectors resume.
    let js = jetstream::new(client.clone());
    let events_stream = js.get_stream(&stream.stream).await.unwrap();
    for kind in ProjectorKind::ALL {
        let name = kind.default_consumer_name();
        events_stream.delete_consumer(&name).await.unwrap();
        events_stream
            .create_consumer(pull::Config {
                durable_name: Some(name),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: 1 },
                ack_policy: AckPolicy::All,
                filter_subject: store(&stream).all_subjects(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut running = Vec::new();
    for kind in ProjectorKind::ALL {
        running.push(spawn(config(kind, &stream, &db, 50), client.clone()));
    }
    for kind in ProjectorKind::ALL {
        wait_for_ack_floor(&js, &stream.stream, &kind.default_consumer_name(), last).await;
    }
    for projector in running {
        projector.stop().await.unwrap();
    }

    let mut after = Vec::new();
    for kind in ProjectorKind::ALL {
        after.extend(dump(&pg, kind.name()).await);
    }
    assert_eq!(after, before);
    assert_eq!(checkpoint_times(&pg).await, updated_before, "a checkpoint was written again");
}

#[tokio::test]
async fn two_instances_at_once_end_with_the_tables_of_one() {
    let stream = TestStream::new("two");
    let client = nats(&stream).await;
    let events = workload(&["acme", "globex"], 25).in_time_order();
    let half = events.len() / 2;
    let db = TestDatabase::new("two").await;
    let pg = pg(&db).await;

    // Both instances of every projector start at once, then the events arrive in two halves.
    let mut first = Vec::new();
    let mut second = Vec::new();
    for kind in ProjectorKind::ALL {
        first.push(spawn(config(kind, &stream, &db, 5), nats(&stream).await));
        second.push(spawn(config(kind, &stream, &db, 5), nats(&stream).await));
    }
    let middle = publish(&client, &store(&stream), &events[..half]).await;
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), middle).await;
    }

    // One instance of each stops; the other goes on, whichever of them held the lock.
    for projector in first {
        projector.stop().await.unwrap();
    }
    let last = publish(&client, &store(&stream), &events[half..]).await;
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), last).await;
    }
    for projector in second {
        projector.stop().await.unwrap();
    }

    for kind in ProjectorKind::ALL {
        let both = dump(&pg, kind.name()).await;
        assert_eq!(both, clean_run(kind, &stream, last).await, "{kind}");
    }
}

async fn checkpoint_times(pg: &tokio_postgres::Client) -> Vec<String> {
    let mut times = Vec::new();
    for kind in ProjectorKind::ALL {
        let row = pg
            .query_one(&format!("SELECT updated_at::text FROM {}.checkpoint", kind.name()), &[])
            .await
            .unwrap();
        times.push(row.get(0));
    }
    times
}

async fn wait_for_ack_floor(js: &jetstream::Context, stream: &str, consumer: &str, last: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut consumer: jetstream::consumer::PullConsumer =
            js.get_consumer_from_stream(consumer, stream).await.unwrap();
        let floor = consumer.info().await.unwrap().ack_floor.stream_sequence;
        if floor >= last {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{consumer:?} acknowledged up to {floor}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
