//! Projection throughput during a catch-up, beside a plain batched COPY of the same rows, and
//! the delay from an accepted command to its event being visible through the query API.
//!
//! 1. Catch-up: a stream of its own receives `--tickets` tickets of five events each (open,
//!    assign, acknowledge, resolve, feedback; 40,000 tickets make 200,000 events), decided by
//!    the domain. Tickets are published in windows of 2,000, all openings of a window first, then
//!    all assignments and so on, so that a batch touches many tickets, as a busy day does. Each
//!    projector then runs from position 0 into a fresh database until its checkpoint reaches
//!    the end; its events per second are events over that time.
//! 2. Plain insert: in the same database, tables of the same definition (columns, indexes,
//!    generated columns) receive as many rows as the projector inserted or updated in each table
//!    (PostgreSQL's `n_tup_ins + n_tup_upd`), with `COPY .. FROM STDIN` in transactions of
//!    `--batch-size` rows each. Its events per second are the same events over that time, and
//!    the ratio is ours over it: the price of projecting (reading the stream, loading, folding,
//!    upserting, the checkpoint) over writing the same rows as fast as PostgreSQL takes them.
//! 3. Command to visible: with the command service, the three projectors and the query service
//!    running in this process, clients send `--rate` commands per second in all (open,
//!    acknowledge, resolve), and after each accepted command ask the query API for the ticket
//!    with `min_position` set to the command's stream position. The delay is from the command's
//!    answer to the query's answer.
//!
//! Streams and databases are the run's own and removed at the end, also when it fails. The whole
//! run is bounded by `--time-limit`. Run it with
//! `cargo run --release -p csmp-bench --bin bench-projection`; `NATS_URL` and `DATABASE_URL`
//! pick the servers.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use clap::Parser;
use csmp_domain::command::OpenTicket;
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, CustomerId, CustomerTier, EventEnvelope,
    Priority, RecordedEvent, Role, SystemClock, TenantId, Ticket, TicketId,
};
use csmp_eventstore::{EventStoreConfig, EVENT_TYPE_HEADER};
use csmp_projector::{ProjectorConfig, ProjectorKind};
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_proto::v1::ticket_queries_client::TicketQueriesClient;
use csmp_query::{QueryService, QueryServiceConfig};
use csmp_testkit::{TestDatabase, TestStream};
use futures::SinkExt;
use tokio::sync::oneshot;
use tonic::transport::{Channel as GrpcChannel, Endpoint};
use uuid::Uuid;

/// Events per ticket in the catch-up stream.
const EVENTS_PER_TICKET: usize = 5;
/// Tickets published step by step together.
const WINDOW: usize = 2_000;
/// Acknowledgements not yet awaited while publishing.
const PUBLISH_IN_FLIGHT: usize = 4_096;

#[derive(Debug, Parser)]
#[command(about = "Projection throughput beside plain COPY, and command-to-visible delay")]
struct Args {
    /// Tickets in the catch-up stream, five events each.
    #[arg(long, default_value_t = 40_000)]
    tickets: usize,
    /// Events per projector transaction, and rows per COPY transaction.
    #[arg(long, default_value_t = 1_000)]
    batch_size: usize,
    /// Seconds the whole run may take; past it, it stops and cleans up.
    #[arg(long, default_value_t = 900)]
    time_limit: u64,
    /// Commands per second, in all, during the command-to-visible measurement (0 skips it).
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Seconds the command-to-visible measurement lasts.
    #[arg(long, default_value_t = 20)]
    latency_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let limit = Duration::from_secs(args.time_limit);
    match tokio::time::timeout(limit, run(&args)).await {
        Ok(result) => result,
        Err(_) => bail!("the benchmark ran out of its {} s time limit", args.time_limit),
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let nats = async_nats::connect(csmp_testkit::nats_url()).await.context("connect to NATS")?;

    // 1. The catch-up stream.
    let stream = TestStream::new("bench_projection");
    let store = store(&stream);
    let events = workload(args.tickets);
    let started = Instant::now();
    let last = publish(&nats, &store, &events).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    println!(
        "published {} events of {} tickets in {publish_secs:.1} s ({:.0} events/s, raw JetStream)",
        events.len(),
        args.tickets,
        events.len() as f64 / publish_secs
    );
    drop(events);

    // 2. Each read model from zero, then the plain COPY of its rows.
    let mut rows = Vec::new();
    for kind in ProjectorKind::ALL {
        rows.push(catch_up(kind, &nats, &store, last, args.batch_size).await?);
    }
    print_catch_up(last, args.batch_size, &rows);
    drop(stream);

    // 3. Command to visible.
    if args.rate > 0 {
        let delays = command_to_visible(&nats, args).await?;
        print_latency(args, &delays);
    }
    Ok(())
}

fn store(stream: &TestStream) -> EventStoreConfig {
    EventStoreConfig {
        stream: stream.stream.clone(),
        subject_prefix: stream.subject_prefix.clone(),
        duplicate_window: Duration::from_secs(120),
    }
}

/// The events of `tickets` tickets, in publishing order.
fn workload(tickets: usize) -> Vec<EventEnvelope> {
    let day = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let tenants: Vec<TenantId> = ["acme", "globex", "initech", "umbrella"]
        .iter()
        .map(|t| TenantId::parse(t).unwrap())
        .collect();
    let mut events = Vec::with_capacity(tickets * EVENTS_PER_TICKET);
    let mut next_id = 0u128;
    for window in (0..tickets).collect::<Vec<_>>().chunks(WINDOW) {
        let mut open: Vec<(usize, Ticket)> = window
            .iter()
            .map(|&i| {
                let tenant = tenants[i % tenants.len()].clone();
                (i, Ticket::new(tenant, TicketId(Uuid::from_u128(i as u128 + 1))))
            })
            .collect();
        for step in 0..EVENTS_PER_TICKET {
            for (i, ticket) in open.iter_mut() {
                let i = *i;
                let at = day
                    + chrono::Duration::seconds((i * 7 % 36_000) as i64)
                    + chrono::Duration::minutes(step as i64 * 20);
                let agent = format!("agent-{}", i % 50);
                let customer = format!("cust-{}", i % 5_000);
                let (actor, role, command) = step_command(step, i, &agent, &customer);
                next_id += 1;
                let envelope = decide(ticket, &actor, role, at, command, next_id);
                events.push(envelope);
            }
        }
    }
    events
}

fn step_command(step: usize, i: usize, agent: &str, customer: &str) -> (String, Role, Command) {
    match step {
        0 => (
            agent.to_owned(),
            Role::Tier1Agent,
            Command::Open(OpenTicket {
                customer_id: CustomerId::parse(customer).unwrap(),
                customer_tier: CustomerTier::ALL[i % 3],
                channel: Channel::ALL[i % 5],
                category: ["billing", "shipping", "login", "outage"][i % 4].to_owned(),
                priority: Priority::ALL[i % 4],
                subject: format!("ticket {i}"),
                description: "The router drops the connection every few minutes.".to_owned(),
                product: ["router", "modem", "app"][i % 3].to_owned(),
                is_complaint: i % 10 == 9,
            }),
        ),
        1 => (
            "lead-1".to_owned(),
            Role::Lead,
            Command::Assign { agent_id: AgentId::parse(agent).unwrap() },
        ),
        2 => (agent.to_owned(), Role::Tier1Agent, Command::Acknowledge),
        3 => (
            agent.to_owned(),
            Role::Tier1Agent,
            Command::Resolve { resolution_summary: "replaced the power supply".to_owned() },
        ),
        _ => (
            customer.to_owned(),
            Role::Customer,
            Command::GiveFeedback {
                csat: (i % 5 + 1) as u8,
                nps: Some((i % 11) as u8),
                comment: None,
                themes: Vec::new(),
            },
        ),
    }
}

fn decide(
    ticket: &mut Ticket,
    actor: &str,
    role: Role,
    at: DateTime<Utc>,
    command: Command,
    n: u128,
) -> EventEnvelope {
    let ctx = CommandContext::new(Actor::new(actor, role).unwrap(), at, &format!("r{n}"));
    let payload = ticket.decide(&command, &ctx).expect("the workload follows the rules");
    let envelope = ticket.envelope(payload, &ctx, Uuid::from_u128(n));
    let recorded = RecordedEvent { stream_seq: n as u64, envelope };
    ticket.apply(&recorded).expect("an event decided on the ticket applies");
    recorded.envelope
}

/// Publishes `events` in order, awaiting acknowledgements in chunks; returns the last position.
async fn publish(
    nats: &async_nats::Client,
    store: &EventStoreConfig,
    events: &[EventEnvelope],
) -> anyhow::Result<u64> {
    let js = jetstream::new(nats.clone());
    csmp_eventstore::ensure_stream(&js, store).await?;
    let mut pending = Vec::with_capacity(PUBLISH_IN_FLIGHT);
    let mut last = 0;
    for envelope in events {
        let mut headers = HeaderMap::new();
        headers.insert(EVENT_TYPE_HEADER, envelope.event_type());
        let subject = store.ticket_subject(&envelope.tenant, envelope.ticket_id);
        let body = Bytes::from(csmp_eventstore::encode(envelope));
        // Awaiting the send (not the acknowledgement) keeps the stream in publishing order.
        pending.push(js.publish_with_headers(subject, headers, body).await?);
        if pending.len() == PUBLISH_IN_FLIGHT {
            for ack in futures::future::try_join_all(pending.drain(..).map(IntoFuture::into_future))
                .await?
            {
                last = last.max(ack.sequence);
            }
        }
    }
    for ack in
        futures::future::try_join_all(pending.into_iter().map(IntoFuture::into_future)).await?
    {
        last = last.max(ack.sequence);
    }
    Ok(last)
}

/// One read model's catch-up and plain-COPY figures.
struct CatchUp {
    kind: ProjectorKind,
    projector_secs: f64,
    rows: u64,
    copy_secs: f64,
}

async fn catch_up(
    kind: ProjectorKind,
    nats: &async_nats::Client,
    store: &EventStoreConfig,
    last: u64,
    batch_size: usize,
) -> anyhow::Result<CatchUp> {
    let db = TestDatabase::new(&format!("bench_{}", kind.name())).await;
    let pg = db.client().await;
    csmp_projector::migrate(&pg, kind).await?;

    // The projector from position 0 until its checkpoint is the stream's last position.
    let config = ProjectorConfig {
        kind,
        store: store.clone(),
        database_url: db.url.clone(),
        batch_size,
        consumer_name: Some(format!("bench-{}", kind.name())),
        schema: None,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(csmp_projector::run(config, nats.clone(), async move {
        let _ = stopped.await;
    }));
    let checkpoint_sql = format!("SELECT position FROM {}.checkpoint", kind.name());
    loop {
        let position: i64 = pg.query_one(&checkpoint_sql, &[]).await?.get(0);
        if position as u64 >= last {
            break;
        }
        if task.is_finished() {
            bail!("the {kind} projector stopped at position {position}: {:?}", task.await?);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let projector_secs = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;
    let dead: i64 = pg
        .query_one(&format!("SELECT dead_letters FROM {}.status", kind.name()), &[])
        .await?
        .get(0);
    if dead != 0 {
        bail!("the {kind} projector wrote {dead} dead letters");
    }

    // The same rows into tables of the same definition, by plain COPY.
    let (rows, copy_secs) = copy_rows(&db, kind.name(), batch_size).await?;
    Ok(CatchUp { kind, projector_secs, rows, copy_secs })
}

/// Writes as many rows as the projector inserted or updated in each of `schema`'s tables
/// (`n_tup_ins + n_tup_upd`), with the same columns, into a `baseline` schema of tables of the
/// same definition, with COPY in transactions of `batch_size` rows; returns the rows and the
/// seconds the COPYs took. The rows are the read model's final rows, repeated under fresh ticket
/// ids (every key holds the ticket id) until the count is reached.
async fn copy_rows(
    db: &TestDatabase,
    schema: &str,
    batch_size: usize,
) -> anyhow::Result<(u64, f64)> {
    let mut pg = db.client().await;

    // The projector's connection has ended, so its table statistics have been reported.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let tables: Vec<(String, i64)> = pg
        .query(
            "SELECT relname::text, n_tup_ins + n_tup_upd FROM pg_stat_user_tables
             WHERE schemaname = $1
               AND relname NOT IN ('schema_migrations', 'checkpoint', 'dead_letters')
             ORDER BY 1",
            &[&schema],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    pg.batch_execute("CREATE SCHEMA baseline").await?;
    let mut exported = Vec::new();
    for (table, writes) in &tables {
        pg.batch_execute(&format!(
            "CREATE TABLE baseline.{table} (LIKE {schema}.{table} INCLUDING ALL)"
        ))
        .await?;
        let columns: Vec<String> = pg
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 AND is_generated = 'NEVER'
                 ORDER BY ordinal_position",
                &[&schema, table],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let rows: i64 =
            pg.query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[]).await?.get(0);
        if *writes == 0 || rows == 0 {
            continue;
        }
        let repeats = (writes + rows - 1) / rows;
        let select: Vec<String> = columns
            .iter()
            .map(|c| {
                if c == "ticket_id" {
                    "md5(ticket_id::text || ':' || n)::uuid".to_owned()
                } else {
                    c.clone()
                }
            })
            .collect();
        let out = pg
            .copy_out(&format!(
                "COPY (SELECT {} FROM {schema}.{table}, generate_series(1, {repeats}) n
                       LIMIT {writes}) TO STDOUT",
                select.join(", ")
            ))
            .await?;
        let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(out).await?;
        let text: Vec<u8> = chunks.concat();
        let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        let batches: Vec<Bytes> =
            lines.chunks(batch_size).map(|chunk| Bytes::from(chunk.concat())).collect();
        exported.push((table.clone(), columns.join(", "), lines.len() as u64, batches));
    }

    let started = Instant::now();
    let mut rows = 0;
    for (table, columns, count, batches) in exported {
        for batch in batches {
            let tx = pg.transaction().await?;
            let sink = tx.copy_in(&format!("COPY baseline.{table} ({columns}) FROM STDIN")).await?;
            futures::pin_mut!(sink);
            sink.send(batch).await?;
            sink.as_mut().finish().await?;
            tx.commit().await?;
        }
        rows += count;
    }
    Ok((rows, started.elapsed().as_secs_f64()))
}

fn print_catch_up(events: u64, batch_size: usize, figures: &[CatchUp]) {
    println!();
    println!(
        "catch-up of {events} events in batches of {batch_size}; plain COPY of as many rows as \
         the projector wrote, in transactions of {batch_size} rows"
    );
    println!(
        "{:<10} {:>12} {:>12} {:>16} {:>10} {:>14} {:>7}",
        "read model",
        "rows written",
        "projector s",
        "projector ev/s",
        "COPY s",
        "COPY ev/s",
        "ratio"
    );
    for f in figures {
        let ours = events as f64 / f.projector_secs;
        let plain = events as f64 / f.copy_secs;
        println!(
            "{:<10} {:>12} {:>12.2} {:>16.0} {:>10.2} {:>14.0} {:>7.2}",
            f.kind.name(),
            f.rows,
            f.projector_secs,
            ours,
            f.copy_secs,
            plain,
            ours / plain
        );
    }
}

/// Delays from accepted commands to their events being visible, in seconds, and the command
/// round trips.
struct Delays {
    visible: Vec<f64>,
    command: Vec<f64>,
}

async fn command_to_visible(nats: &async_nats::Client, args: &Args) -> anyhow::Result<Delays> {
    let stream = TestStream::new("bench_visible");
    let store = store(&stream);
    let db = TestDatabase::new("bench_visible").await;

    // 1. The command service, the three projectors and the query service, in this process.
    let config = csmp_command::CommandServiceConfig { store: store.clone(), ..Default::default() };
    let commands =
        csmp_command::CommandService::connect(nats.clone(), config, Arc::new(SystemClock)).await?;
    let (command_url, stop_commands) = serve_on_loopback(|listener, shutdown| {
        tokio::spawn(csmp_command::serve(listener, commands, shutdown));
    })
    .await?;
    let mut projectors = Vec::new();
    for kind in ProjectorKind::ALL {
        let config = ProjectorConfig {
            kind,
            store: store.clone(),
            database_url: db.url.clone(),
            batch_size: args.batch_size,
            consumer_name: None,
            schema: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(csmp_projector::run(config, nats.clone(), async move {
            let _ = stopped.await;
        }));
        projectors.push((stop, task));
    }
    let pg = db.client().await;
    for kind in ProjectorKind::ALL {
        wait_for_schema(&pg, kind.name()).await?;
    }
    let config = QueryServiceConfig {
        store: store.clone(),
        database_url: db.url.clone(),
        read_your_writes_timeout: Duration::from_secs(5),
    };
    let queries = QueryService::connect(nats.clone(), config, Arc::new(SystemClock)).await?;
    let (query_url, stop_queries) = serve_on_loopback(|listener, shutdown| {
        tokio::spawn(csmp_query::serve(listener, queries, shutdown));
    })
    .await?;

    // 2. Clients at a steady rate, each its own tickets.
    let clients = 8usize.min(args.rate as usize).max(1);
    let interval = Duration::from_secs_f64(clients as f64 / f64::from(args.rate));
    let until = Instant::now() + Duration::from_secs(args.latency_seconds);
    let mut tasks = Vec::new();
    for id in 0..clients {
        let commands = TicketCommandsClient::new(connect(&command_url).await?);
        let queries = TicketQueriesClient::new(connect(&query_url).await?);
        tasks.push(tokio::spawn(steady_client(id, commands, queries, interval, until)));
    }
    let mut delays = Delays { visible: Vec::new(), command: Vec::new() };
    for task in tasks {
        let (visible, command) = task.await??;
        delays.visible.extend(visible);
        delays.command.extend(command);
    }

    // 3. Everything down again.
    let _ = stop_queries.send(());
    let _ = stop_commands.send(());
    for (stop, task) in projectors {
        let _ = stop.send(());
        task.await??;
    }
    Ok(delays)
}

async fn serve_on_loopback(
    start: impl FnOnce(tokio::net::TcpListener, futures::future::BoxFuture<'static, ()>),
) -> anyhow::Result<(String, oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    start(
        listener,
        Box::pin(async move {
            let _ = stopped.await;
        }),
    );
    Ok((url, stop))
}

async fn connect(url: &str) -> anyhow::Result<GrpcChannel> {
    Ok(Endpoint::from_shared(url.to_owned())?.tcp_nodelay(true).connect().await?)
}

async fn wait_for_schema(pg: &tokio_postgres::Client, schema: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.query_one(&format!("SELECT 1 FROM {schema}.checkpoint"), &[]).await.is_err() {
        if Instant::now() > deadline {
            bail!("the {schema} projector did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One client: opens a ticket, acknowledges and resolves it, then the next, one command per
/// `interval`; after each accepted command it reads the ticket with `min_position`.
async fn steady_client(
    id: usize,
    mut commands: TicketCommandsClient<GrpcChannel>,
    mut queries: TicketQueriesClient<GrpcChannel>,
    interval: Duration,
    until: Instant,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut visible = Vec::new();
    let mut command_delays = Vec::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let agent = format!("agent-{id}");
    let mut ticket_id = String::new();
    for n in 0.. {
        ticks.tick().await;
        if Instant::now() >= until {
            break;
        }
        let request_id = format!("c{id}-{n}");
        let meta = Some(pb::CommandMeta {
            tenant: "acme".into(),
            actor: Some(pb::Actor { id: agent.clone(), role: pb::Role::Tier1Agent as i32 }),
            request_id,
            ..Default::default()
        });
        let sent = Instant::now();
        let result = match n % 3 {
            0 => commands
                .open_ticket(pb::OpenTicketRequest {
                    meta,
                    customer_id: format!("cust-{id}"),
                    customer_tier: pb::CustomerTier::Business as i32,
                    channel: pb::Channel::Email as i32,
                    category: "billing".into(),
                    priority: pb::Priority::High as i32,
                    subject: "Charged twice".into(),
                    description: "Two charges for one order.".into(),
                    product: "shop".into(),
                    ..Default::default()
                })
                .await?
                .into_inner(),
            1 => commands
                .acknowledge_ticket(pb::AcknowledgeTicketRequest {
                    meta,
                    ticket_id: ticket_id.clone(),
                })
                .await?
                .into_inner(),
            _ => commands
                .resolve_ticket(pb::ResolveTicketRequest {
                    meta,
                    ticket_id: ticket_id.clone(),
                    resolution_summary: "refunded the second charge".into(),
                })
                .await?
                .into_inner(),
        };
        let accepted = Instant::now();
        ticket_id = result.ticket_id.clone();
        let detail = queries
            .get_ticket(pb::GetTicketRequest {
                tenant: "acme".into(),
                ticket_id: result.ticket_id,
                min_position: result.stream_position,
                ..Default::default()
            })
            .await?
            .into_inner();
        let seen = detail.ticket.map_or(0, |t| t.version);
        if seen < result.version {
            bail!("read version {seen} after writing version {}", result.version);
        }
        visible.push(accepted.elapsed().as_secs_f64());
        command_delays.push((accepted - sent).as_secs_f64());
    }
    Ok((visible, command_delays))
}

fn percentile(sorted: &[f64], share: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn print_latency(args: &Args, delays: &Delays) {
    let mut visible = delays.visible.clone();
    let mut command = delays.command.clone();
    visible.sort_by(f64::total_cmp);
    command.sort_by(f64::total_cmp);
    let ms = |s: f64| s * 1_000.0;
    println!();
    println!(
        "command to visible through the query API: {} commands at {} per second for {} s",
        visible.len(),
        args.rate,
        args.latency_seconds
    );
    println!("{:<34} {:>10} {:>10}", "", "median ms", "p99 ms");
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "command accepted (gRPC round trip)",
        ms(percentile(&command, 0.5)),
        ms(percentile(&command, 0.99))
    );
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "accepted to visible (min_position)",
        ms(percentile(&visible, 0.5)),
        ms(percentile(&visible, 0.99))
    );
}
