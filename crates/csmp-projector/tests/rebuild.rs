//! Rebuilding a read model during live traffic and switching to it, and verifying a live read
//! model against a rebuilt copy, against real NATS and PostgreSQL.

mod support;

use std::collections::BTreeMap;
use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csmp_domain::sla::SlaPolicy;
use csmp_domain::{EventEnvelope, EventPayload, TenantId};
use csmp_projector::checksum::RowDifference;
use csmp_projector::{
    compare_schemas, rebuild, unfinished_schemas, verify_read_model, ProjectorError, ProjectorKind,
    RebuildOptions, RebuildPhase, RebuildProgress, SchemaComparison,
};
use csmp_testkit::{TestDatabase, TestStream};
use support::*;
use tokio::sync::oneshot;

/// Row counts per table of the left side of a comparison.
fn rows(comparison: &SchemaComparison) -> BTreeMap<&str, i64> {
    comparison.tables.iter().map(|t| (t.table.as_str(), t.left.rows)).collect()
}

fn count(events: &[EventEnvelope], pick: fn(&EventPayload) -> bool) -> i64 {
    events.iter().filter(|e| pick(&e.payload)).count() as i64
}

/// The names of the schemas that start with `prefix`, in order.
async fn schemas(pg: &tokio_postgres::Client, prefix: &str) -> Vec<String> {
    let sql = "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1";
    pg.query(sql, &[&prefix]).await.unwrap().iter().map(|row| row.get(0)).collect()
}

/// A progress callback that sends the schema being built once `checkpoint` has reached `at`.
fn report_at(at: u64, tx: oneshot::Sender<String>) -> impl FnMut(&RebuildProgress) + Send {
    let mut tx = Some(tx);
    move |p| {
        if p.checkpoint >= at {
            if let Some(tx) = tx.take() {
                let _ = tx.send(p.schema.clone());
            }
        }
    }
}

/// What the query loop saw: statements run, errors, counts that went down, the last counts.
#[derive(Debug, Default)]
struct Reads {
    executions: u64,
    errors: Vec<String>,
    decreases: Vec<String>,
    last: [i64; 3],
}

/// Runs query-like statements on every read model, prepared once, until `stop`.
async fn read_in_a_loop(db_url: String, stop: Arc<AtomicBool>) -> Reads {
    let (pg, connection) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let queue = pg
        .prepare(
            "SELECT ticket_id, status FROM queues.tickets
             WHERE tenant = $1 AND status IN ('new', 'open', 'waiting_on_customer')
             ORDER BY priority_rank, customer_tier_rank, ticket_id LIMIT 20",
        )
        .await
        .unwrap();
    let counts = [
        pg.prepare("SELECT count(*) FROM queues.tickets").await.unwrap(),
        pg.prepare("SELECT count(*) FROM sla.clocks").await.unwrap(),
        pg.prepare("SELECT count(*) FROM feedback.tickets").await.unwrap(),
    ];
    let mut reads = Reads::default();
    let mut seen = [0_i64; 3];
    while !stop.load(Ordering::SeqCst) {
        if let Err(err) = pg.query(&queue, &[&"acme"]).await {
            reads.errors.push(err.to_string());
        }
        for (i, statement) in counts.iter().enumerate() {
            match pg.query_one(statement, &[]).await {
                Ok(row) => {
                    let n: i64 = row.get(0);
                    if n < seen[i] {
                        reads.decreases.push(format!("statement {i}: {} then {n}", seen[i]));
                    }
                    seen[i] = n;
                }
                Err(err) => reads.errors.push(err.to_string()),
            }
        }
        reads.executions += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    reads.last = seen;
    reads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_during_live_traffic_switches_without_a_failed_query_and_equals_a_fresh_one() {
    let stream = TestStream::new("rebuild");
    let client = nats(&stream).await;
    let store = store(&stream);
    let db = TestDatabase::new("rebuild").await;
    let pg = pg(&db).await;
    let events = workload(&["acme", "globex", "initech"], 400).in_time_order();
    let head = events.len() / 5;
    let acme = TenantId::parse("acme").unwrap();
    let policy = SlaPolicy { at_risk_percent: 50, ..SlaPolicy::default() };
    csmp_projector::set_sla_policy(&pg, &acme, &policy).await.unwrap();

    // 1. Live projectors on a first part of the stream, then traffic that goes on and queries.
    publish(&client, &store, &events[..head]).await;
    let mut live = Vec::new();
    for kind in ProjectorKind::ALL {
        live.push(spawn(config(kind, &stream, &db, 50), client.clone()));
    }
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), 1).await;
    }
    let stop_appends = Arc::new(AtomicBool::new(false));
    let appender = tokio::spawn({
        let (client, store, stop) = (client.clone(), store.clone(), stop_appends.clone());
        let rest = events[head..].to_vec();
        async move {
            let mut published = 0;
            for event in &rest {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                publish(&client, &store, std::slice::from_ref(event)).await;
                published += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            published
        }
    });
    let stop_reads = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_in_a_loop(db.url.clone(), stop_reads.clone()));

    // 2. Each read model rebuilt and switched while events arrive.
    let mut reports = Vec::new();
    for kind in ProjectorKind::ALL {
        let seen: Arc<Mutex<Vec<RebuildProgress>>> = Arc::default();
        let log = seen.clone();
        let report = rebuild(
            config(kind, &stream, &db, 500),
            client.clone(),
            RebuildOptions::default(),
            pending(),
            move |p| log.lock().unwrap().push(p.clone()),
        )
        .await
        .unwrap();
        assert!(!appender.is_finished(), "{kind}: the traffic ended before the switch");
        assert!(report.checkpoint >= report.live_checkpoint, "{report:?}");
        assert!(report.retired.starts_with(&format!("{kind}_retired_")), "{report:?}");
        assert!(report.rebuilt.starts_with(&format!("{kind}_rebuild_")), "{report:?}");
        assert!(!report.retired_dropped);
        assert_eq!(report.applied, report.checkpoint);
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.schema, report.rebuilt);
        assert_eq!(last.checkpoint, report.checkpoint);
        assert!(seen.iter().any(|p| p.phase == RebuildPhase::Locked));
        assert!(seen.iter().all(|p| p.checkpoint <= p.stream_last), "{seen:?}");
        reports.push(report);
    }

    // 3. Traffic stops; the live projectors go on in the rebuilt schemas up to the end.
    stop_appends.store(true, Ordering::SeqCst);
    let published = head + appender.await.unwrap();
    assert!(published < events.len(), "the appender ran out of events");
    let last = published as u64;
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), last).await;
    }

    // 4. No query failed or went back, and the statements prepared before the switches read
    //    the rebuilt tables now: the retired ones stopped growing at their switch.
    stop_reads.store(true, Ordering::SeqCst);
    let reads = reader.await.unwrap();
    assert_eq!(reads.errors, Vec::<String>::new());
    assert_eq!(reads.decreases, Vec::<String>::new());
    assert!(reads.executions > 10, "{reads:?}");
    let now: [i64; 3] = [
        pg.query_one("SELECT count(*) FROM queues.tickets", &[]).await.unwrap().get(0),
        pg.query_one("SELECT count(*) FROM sla.clocks", &[]).await.unwrap().get(0),
        pg.query_one("SELECT count(*) FROM feedback.tickets", &[]).await.unwrap().get(0),
    ];
    assert_eq!(reads.last, now);
    for projector in live {
        assert!(!projector.task.is_finished());
        projector.stop().await.unwrap();
    }

    // 5. A fresh projection of the whole stream into schemas of their own, for comparison.
    for kind in ProjectorKind::ALL {
        let mut fresh = config(kind, &stream, &db, 1000);
        fresh.schema = Some(format!("{kind}_fresh"));
        let projector = spawn(fresh, client.clone());
        wait_for(&pg, &format!("{kind}_fresh"), last).await;
        projector.stop().await.unwrap();
    }
    let appended = &events[..published];
    let tickets = count(appended, |p| matches!(p, EventPayload::Opened(_)));
    let refunds = count(appended, |p| {
        matches!(p, EventPayload::RefundIssued(_) | EventPayload::RefundRequested(_))
    });
    let escalations = count(appended, |p| matches!(p, EventPayload::Escalated(_)));
    let mut comparisons = Vec::new();
    for kind in ProjectorKind::ALL {
        let comparison =
            compare_schemas(&pg, kind, kind.name(), &format!("{kind}_fresh")).await.unwrap();
        assert!(comparison.is_equal(), "{comparison}");
        comparisons.push(comparison);
    }
    let expected_queues = [
        ("dead_letters", 0),
        ("refunds", refunds),
        ("tickets", tickets),
        ("timeline", last as i64),
    ];
    assert_eq!(rows(&comparisons[0]), BTreeMap::from(expected_queues));
    let sla = rows(&comparisons[1]);
    assert_eq!(
        sla.keys().copied().collect::<Vec<_>>(),
        ["clocks", "dead_letters", "signals", "tickets"]
    );
    assert_eq!((sla["dead_letters"], sla["signals"], sla["tickets"]), (0, 0, tickets));
    // At least the first-response and resolution clocks of every ticket opened at a known time.
    assert!(sla["clocks"] >= tickets, "{} clocks for {tickets} tickets", sla["clocks"]);
    let expected_feedback =
        [("dead_letters", 0), ("escalations", escalations), ("tickets", tickets)];
    assert_eq!(rows(&comparisons[2]), BTreeMap::from(expected_feedback));

    // 6. The retired schemas are kept; the SLA configuration came along with the switch.
    let retired: Vec<String> = pg
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE '%\\_retired\\_%'
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut expected: Vec<String> = reports.iter().map(|r| r.retired.clone()).collect();
    expected.sort();
    assert_eq!(retired, expected);
    let retired_tickets: i64 = pg
        .query_one(&format!("SELECT count(*) FROM {}.tickets", reports[0].retired), &[])
        .await
        .unwrap()
        .get(0);
    assert!(retired_tickets < tickets, "no ticket opened after the switch: {retired_tickets}");
    for schema in ["sla", reports[1].retired.as_str()] {
        let stored: i64 = pg
            .query_one(&format!("SELECT count(*) FROM {schema}.tenant_policies"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored, 1, "{schema}");
    }
    let at_risk: serde_json::Value = pg
        .query_one("SELECT policy -> 'at_risk_percent' FROM sla.tenant_policies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(at_risk, 50);
}

#[tokio::test]
async fn verify_reports_equal_then_names_the_table_and_keys_of_an_altered_and_a_deleted_row() {
    let stream = TestStream::new("verify");
    let client = nats(&stream).await;
    let db = TestDatabase::new("verify").await;
    let pg = pg(&db).await;
    let events = workload(&["acme", "globex"], 40).in_time_order();
    let last = publish(&client, &store(&stream), &events).await;
    let mut live = Vec::new();
    for kind in ProjectorKind::ALL {
        live.push(spawn(config(kind, &stream, &db, 50), client.clone()));
    }
    for kind in ProjectorKind::ALL {
        wait_for(&pg, kind.name(), last).await;
    }

    // 1. A healthy read model is equal to its rebuilt copy in every table.
    let tables = [
        vec!["dead_letters", "refunds", "tickets", "timeline"],
        vec!["clocks", "dead_letters", "signals", "tickets"],
        vec!["dead_letters", "escalations", "tickets"],
    ];
    for (kind, tables) in ProjectorKind::ALL.into_iter().zip(tables) {
        let report =
            verify_read_model(config(kind, &stream, &db, 200), client.clone(), pending(), |_| {})
                .await
                .unwrap();
        assert!(report.is_equal(), "{}", report.comparison);
        assert_eq!(report.position, last);
        let names: Vec<&str> = report.comparison.tables.iter().map(|t| t.table.as_str()).collect();
        assert_eq!(names, tables);
    }

    // 2. A ticket changed by hand: the table, the key and the column.
    let altered = ticket(10_001).0;
    let changed = pg
        .execute(
            "UPDATE queues.tickets SET status = 'closed' WHERE tenant = 'acme' AND ticket_id = $1",
            &[&altered],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let verify = || {
        let config = config(ProjectorKind::Queues, &stream, &db, 200);
        verify_read_model(config, client.clone(), pending(), |_| {})
    };
    let report = verify().await.unwrap();
    assert!(!report.is_equal());
    let different: Vec<_> = report.comparison.differences().collect();
    assert_eq!(different.len(), 1, "{}", report.comparison);
    assert_eq!(different[0].table, "tickets");
    assert_eq!(different[0].left.rows, different[0].right.rows);
    assert_ne!(different[0].left.checksum, different[0].right.checksum);
    let altered_key = format!("tenant=acme ticket_id={altered}");
    let status_differs = RowDifference {
        key: altered_key.clone(),
        only_in: None,
        columns: vec!["status".to_owned()],
    };
    assert_eq!(different[0].examples, vec![status_differs.clone()]);

    // 3. A ticket deleted by hand as well: only the rebuilt copy has it.
    let deleted = ticket(10_002).0;
    let removed = pg
        .execute("DELETE FROM queues.tickets WHERE tenant = 'acme' AND ticket_id = $1", &[&deleted])
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let report = verify().await.unwrap();
    let different: Vec<_> = report.comparison.differences().collect();
    assert_eq!(different.len(), 1, "{}", report.comparison);
    assert_eq!(different[0].left.rows + 1, different[0].right.rows);
    let scratch = different[0].examples[1].only_in.clone().unwrap();
    assert!(scratch.starts_with("queues_verify_"), "{scratch}");
    let only_rebuilt = RowDifference {
        key: format!("tenant=acme ticket_id={deleted}"),
        only_in: Some(scratch.clone()),
        columns: Vec::new(),
    };
    assert_eq!(different[0].examples, vec![status_differs, only_rebuilt]);
    let text = report.comparison.to_string();
    assert!(text.contains(&format!("    {altered_key}: differs in status\n")), "{text}");
    assert!(text.contains(&format!("ticket_id={deleted}: only in {scratch}\n")), "{text}");

    // 4. The other read models are untouched, and no scratch schema is left behind.
    let config = config(ProjectorKind::Sla, &stream, &db, 200);
    let sla = verify_read_model(config, client.clone(), pending(), |_| {}).await.unwrap();
    assert!(sla.is_equal(), "{}", sla.comparison);
    let left: i64 = pg
        .query_one("SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%\\_verify\\_%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    for projector in live {
        projector.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_or_verification_stopped_at_its_shutdown_signal_drops_only_its_own_schema() {
    let stream = TestStream::new("stopped");
    let client = nats(&stream).await;
    let db = TestDatabase::new("stopped").await;
    let pg = pg(&db).await;
    let events = workload(&["acme"], 60).in_time_order();
    let last = publish(&client, &store(&stream), &events).await;
    for kind in [ProjectorKind::Queues, ProjectorKind::Sla] {
        let live = spawn(config(kind, &stream, &db, 100), client.clone());
        wait_for(&pg, kind.name(), last).await;
        live.stop().await.unwrap();
    }
    pg.batch_execute("CREATE SCHEMA queues_retired_1").await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let events_stream = js.get_stream(&stream.stream).await.unwrap();

    for kind in [ProjectorKind::Queues, ProjectorKind::Sla] {
        // 1. Stopped once 30 positions are applied, in batches of 10: half-way through.
        let seen: Arc<Mutex<Vec<RebuildProgress>>> = Arc::default();
        let log = seen.clone();
        let (at_30, reached) = oneshot::channel();
        let mut signal = report_at(30, at_30);
        let progress = move |p: &RebuildProgress| {
            log.lock().unwrap().push(p.clone());
            signal(p);
        };
        let shutdown = async move {
            let _ = reached.await;
        };
        let config = config(kind, &stream, &db, 10);
        let err = match kind {
            ProjectorKind::Queues => {
                let options = RebuildOptions::default();
                rebuild(config, client.clone(), options, shutdown, progress).await.unwrap_err()
            }
            _ => verify_read_model(config, client.clone(), shutdown, progress).await.unwrap_err(),
        };

        // 2. The error names the schema it dropped.
        let seen = seen.lock().unwrap().clone();
        let schema = seen[0].schema.clone();
        let label = if kind == ProjectorKind::Queues { "rebuild" } else { "verify" };
        assert!(schema.starts_with(&format!("{kind}_{label}_")), "{schema}");
        let stopped_at = seen.last().unwrap().checkpoint;
        assert!((30..last).contains(&stopped_at), "stopped at {stopped_at} of {last}");
        assert!(
            matches!(&err, ProjectorError::Stopped { schema: s, dropped: true } if *s == schema),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("stopped before the end: the unfinished schema {schema} was dropped")
        );

        // 3. Gone with its consumer; the live and the retired schemas are untouched.
        let expected: &[&str] = match kind {
            ProjectorKind::Queues => &["queues", "queues_retired_1"],
            _ => &["sla"],
        };
        assert_eq!(schemas(&pg, kind.name()).await, expected);
        assert_eq!(checkpoint(&pg, kind.name()).await, last);
        let consumer = events_stream.consumer_info(format!("csmp-{schema}")).await;
        assert!(consumer.is_err(), "{consumer:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_rebuild_drops_its_unfinished_schema() {
    let stream = TestStream::new("dropped");
    let client = nats(&stream).await;
    let db = TestDatabase::new("dropped").await;
    let pg = pg(&db).await;
    let events = workload(&["acme"], 60).in_time_order();
    let last = publish(&client, &store(&stream), &events).await;

    // 1. A rebuild held inside its progress report once 30 positions are applied.
    let (at_30, reached) = oneshot::channel();
    let mut signal = report_at(30, at_30);
    let (release, held) = std::sync::mpsc::channel::<()>();
    let mut held = Some(held);
    let progress = move |p: &RebuildProgress| {
        signal(p);
        if p.checkpoint >= 30 {
            if let Some(held) = held.take() {
                let _ = held.recv_timeout(Duration::from_secs(10));
            }
        }
    };
    let config = config(ProjectorKind::Queues, &stream, &db, 10);
    let task = tokio::spawn(rebuild(
        config,
        client.clone(),
        RebuildOptions::default(),
        pending(),
        progress,
    ));
    let schema = reached.await.unwrap();
    assert_eq!(schemas(&pg, "queues").await, ["queues".to_owned(), schema.clone()]);

    // 2. Its future dropped where it stands, as a caller's timeout or select would.
    task.abort();
    release.send(()).unwrap();
    assert!(task.await.unwrap_err().is_cancelled());

    // 3. The schema goes, from a task of its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while schemas(&pg, "queues").await.len() > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(schemas(&pg, "queues").await, ["queues"]);
    assert_eq!(checkpoint(&pg, "queues").await, 0);
    let js = async_nats::jetstream::new(client.clone());
    let events_stream = js.get_stream(&stream.stream).await.unwrap();
    assert_eq!(events_stream.cached_info().state.last_sequence, last);
    let consumer = events_stream.consumer_info(format!("csmp-{schema}")).await;
    assert!(consumer.is_err(), "{consumer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rebuilds_of_one_read_model_at_once_both_switch_in_turn() {
    let stream = TestStream::new("twice");
    let client = nats(&stream).await;
    let db = TestDatabase::new("twice").await;
    let pg = pg(&db).await;
    let events = workload(&["acme"], 40).in_time_order();
    let last = publish(&client, &store(&stream), &events).await;
    let live = spawn(config(ProjectorKind::Queues, &stream, &db, 50), client.clone());
    wait_for(&pg, "queues", last).await;

    // 1. Both started together, in the same second but for a rare tick between them.
    let start = || {
        let config = config(ProjectorKind::Queues, &stream, &db, 20);
        rebuild(config, client.clone(), RebuildOptions::default(), pending(), |_| {})
    };
    let (first, second) = tokio::join!(start(), start());
    let (first, second) = (first.unwrap(), second.unwrap());

    // 2. Each had a schema of its own, and each retired the live one it found.
    assert_ne!(first.rebuilt, second.rebuilt);
    for report in [&first, &second] {
        assert!(report.rebuilt.starts_with("queues_rebuild_"), "{report:?}");
        assert!(report.retired.starts_with("queues_retired_"), "{report:?}");
        assert_eq!(report.checkpoint, last);
    }
    let mut expected = vec!["queues".to_owned(), first.retired.clone(), second.retired.clone()];
    expected.sort();
    assert_eq!(schemas(&pg, "queues").await, expected);
    assert_eq!(unfinished_schemas(&pg, ProjectorKind::Queues).await.unwrap(), []);

    // 3. The read model switched in last equals a rebuild, and the live projector goes on in it.
    let config = config(ProjectorKind::Queues, &stream, &db, 200);
    let report = verify_read_model(config, client.clone(), pending(), |_| {}).await.unwrap();
    assert!(report.is_equal(), "{}", report.comparison);
    assert_eq!(report.position, last);
    assert!(!live.task.is_finished());
    live.stop().await.unwrap();
}
