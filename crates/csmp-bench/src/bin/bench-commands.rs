//! Commands per second through the gRPC command service, beside raw JetStream publishes.
//!
//! For 1, 8 and 64 concurrent clients, each working its own tickets, it measures two things on
//! the same NATS server in the same run:
//!
//! - ours: gRPC calls to an in-process command service on loopback. Each client opens a ticket
//!   and takes it through nine more commands (acknowledge, assign, change priority, escalate,
//!   ask, reply, resolve, feedback, close), then opens the next.
//! - raw: JetStream publishes with acknowledgement of the same ten encoded events, one subject
//!   per ticket, with the headers the event store sends (`Nats-Msg-Id`,
//!   `Nats-Expected-Last-Subject-Sequence`, event type and schema version).
//!
//! The clients speak gRPC over a bare HTTP/2 connection each ([`GrpcChannel`]), so that they
//! take no more of the machine than they must; the empty gRPC column shows what a call costs
//! without any work behind it.
//!
//! Two columns say what ours could reach at best on this machine. The ceiling: one empty gRPC
//! call and one raw publish per command, their costs added, with nothing else done. The bound:
//! one bare round trip over loopback TCP (a 128-byte echo, no protocol at all) and one raw
//! publish per command. A service that answers its clients over TCP only after JetStream
//! acknowledged the event cannot pass the bound, whatever protocol and code it runs.
//!
//! Both use streams of their own (file storage, the event store's configuration), deleted at the
//! end. Run it with `cargo run --release -p csmp-bench --bin bench-commands`; `NATS_URL` picks
//! the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream;
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use clap::Parser;
use csmp_command::{serve, CommandService, CommandServiceConfig};
use csmp_domain::command::OpenTicket;
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, CustomerId, CustomerTier, Priority,
    RecordedEvent, Role, SupportTier, SystemClock, TenantId, Ticket, TicketId,
};
use csmp_eventstore::{ensure_stream, EventStoreConfig, EVENT_TYPE_HEADER, SCHEMA_VERSION_HEADER};
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use uuid::Uuid;

/// Commands per ticket in the workload.
const STEPS: usize = 10;

#[derive(Debug, Parser)]
#[command(about = "Commands per second through gRPC beside raw JetStream publishes")]
struct Args {
    /// Seconds measured per run, after the warm-up.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Seconds run before measuring, per run.
    #[arg(long, default_value_t = 0.3)]
    warm_up: f64,
    /// Runs of each side per configuration, alternating, so that both meet the same load from
    /// the rest of the machine; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients, one configuration each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64])]
    clients: Vec<usize>,
    /// Worker threads of the command service's runtime; 1 runs it on a current-thread runtime.
    /// On a 2-core machine, where the clients and nats-server need the cores too, one thread
    /// gives the service more commands per second than two.
    #[arg(long, default_value_t = 1)]
    service_threads: usize,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
}

/// When a run measures: completions before `from` warm up, none start after `until`.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

impl Window {
    fn new(args: &Args) -> Self {
        let from = Instant::now() + Duration::from_secs_f64(args.warm_up);
        Window { from, until: from + Duration::from_secs_f64(args.seconds) }
    }

    fn counts(&self, at: Instant) -> bool {
        at >= self.from && at < self.until
    }

    fn per_second(&self, count: u64) -> f64 {
        count as f64 / (self.until - self.from).as_secs_f64()
    }
}

/// The most commands per second a service could reach if each command cost exactly one empty
/// gRPC call plus one raw publish and nothing else: their times add up, whether the limit is
/// the wait of one client (latencies add) or the machine's cores (CPU per operation adds).
fn ceiling(raw: f64, empty: f64) -> f64 {
    1.0 / (1.0 / raw + 1.0 / empty)
}

/// One round of one configuration, each side in operations per second.
#[derive(Debug, Clone, Copy)]
struct Round {
    ours: f64,
    raw: f64,
    empty: f64,
    echo: f64,
}

/// One configuration: the median of each side over its rounds, and the rounds.
struct Row {
    clients: usize,
    median: Round,
    rounds: Vec<Round>,
}

/// The client side runs on one thread, as a separate client process would; the command service
/// and the echo server run on runtimes of their own (see [`ServerThread`]).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let client = async_nats::connect(&args.nats_url)
        .await
        .with_context(|| format!("failed to connect to NATS at {}", args.nats_url))?;
    let payloads = Arc::new(sample_events());
    let sizes: Vec<usize> = payloads.iter().map(Bytes::len).collect();
    println!(
        "bench-commands: {} rounds of {} s (after {} s warm-up) per side and configuration; \
         command service on {} worker thread(s); event sizes {:?} bytes (mean {})",
        args.rounds,
        args.seconds,
        args.warm_up,
        args.service_threads,
        sizes,
        sizes.iter().sum::<usize>() / sizes.len()
    );

    let mut rows = Vec::new();
    for (n, &clients) in args.clients.iter().enumerate() {
        let label = format!("{}_{n}", std::process::id());
        rows.push(run_configuration(&args, &client, &label, clients, &payloads).await?);
    }

    println!();
    println!(
        "{:>7}  {:>10}  {:>9}  {:>9}  {:>8}  {:>8}  {:>12}  {:>11}  {:>10}  {:>9}",
        "clients",
        "ours cmd/s",
        "ours mean",
        "raw pub/s",
        "raw mean",
        "ours/raw",
        "empty gRPC/s",
        "ceiling/raw",
        "TCP echo/s",
        "bound/raw"
    );
    for row in &rows {
        let Round { ours, raw, empty, echo } = row.median;
        let mean = |per_second: f64| {
            format!("{:.0} µs", 1e6 * row.clients as f64 / per_second.max(f64::MIN_POSITIVE))
        };
        println!(
            "{:>7}  {:>10.0}  {:>9}  {:>9.0}  {:>8}  {:>7.0}%  {:>12.0}  {:>10.0}%  {:>10.0}  \
             {:>8.0}%",
            row.clients,
            ours,
            mean(ours),
            raw,
            mean(raw),
            100.0 * ours / raw,
            empty,
            100.0 * ceiling(raw, empty) / raw,
            echo,
            100.0 * ceiling(raw, echo) / raw,
        );
    }
    println!();
    for row in &rows {
        let rounds: Vec<String> = row
            .rounds
            .iter()
            .map(|r| format!("{:.0}/{:.0}/{:.0}/{:.0}", r.ours, r.raw, r.empty, r.echo))
            .collect();
        println!(
            "{:>3} clients, ours/raw/empty/echo per round: {}",
            row.clients,
            rounds.join("  ")
        );
    }
    Ok(())
}

async fn run_configuration(
    args: &Args,
    client: &async_nats::Client,
    label: &str,
    clients: usize,
    payloads: &Arc<Vec<Bytes>>,
) -> anyhow::Result<Row> {
    let ours_stream = BenchStream::create(client, &format!("ours_{label}")).await?;
    let raw_stream = BenchStream::create(client, &format!("raw_{label}")).await?;
    let config = CommandServiceConfig { store: ours_stream.config.clone(), ..Default::default() };
    let (nats_url, threads) = (args.nats_url.clone(), args.service_threads);
    let service = ServerThread::start("command-service", move |ready, stopped| {
        serve_on_own_runtime(nats_url, config, threads, ready, stopped)
    })
    .await?;
    let echo = ServerThread::start("tcp-echo", echo_on_own_runtime).await?;
    let mut channels = Vec::with_capacity(clients);
    let mut echo_streams = Vec::with_capacity(clients);
    for _ in 0..clients {
        channels.push(GrpcChannel::connect(&service.addr).await?);
        let stream = tokio::net::TcpStream::connect(echo.addr).await?;
        stream.set_nodelay(true)?;
        echo_streams.push(stream);
    }
    let js = jetstream::new(client.clone());

    let mut rounds = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let ours = run_ours(&channels, round, Window::new(args)).await?;
        let prefix = &raw_stream.config.subject_prefix;
        let raw = run_raw(&js, prefix, clients, payloads, Window::new(args)).await?;
        let empty = run_empty(&channels, Window::new(args)).await?;
        let (streams, echo) = run_echo(echo_streams, Window::new(args)).await?;
        echo_streams = streams;
        rounds.push(Round { ours, raw, empty, echo });
    }

    drop(channels);
    drop(echo_streams);
    service.stop().await?;
    echo.stop().await?;
    ours_stream.delete().await?;
    raw_stream.delete().await?;
    let median = |pick: fn(&Round) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let median = Round {
        ours: median(|r| r.ours),
        raw: median(|r| r.raw),
        empty: median(|r| r.empty),
        echo: median(|r| r.echo),
    };
    Ok(Row { clients, median, rounds })
}

/// A stream of the benchmark's own; [`BenchStream::delete`] removes it.
struct BenchStream {
    js: jetstream::Context,
    config: EventStoreConfig,
}

impl BenchStream {
    async fn create(client: &async_nats::Client, label: &str) -> anyhow::Result<Self> {
        let name = format!("bench_{label}");
        let config = EventStoreConfig {
            stream: name.to_uppercase(),
            subject_prefix: name,
            ..EventStoreConfig::default()
        };
        let js = jetstream::new(client.clone());
        ensure_stream(&js, &config).await?;
        Ok(BenchStream { js, config })
    }

    async fn delete(self) -> anyhow::Result<()> {
        self.js
            .delete_stream(&self.config.stream)
            .await
            .with_context(|| format!("failed to delete stream {}", self.config.stream))?;
        Ok(())
    }
}

/// Commands per second through the service, each client on its own connection and tickets.
async fn run_ours(
    channels: &[(GrpcChannel, http::Uri)],
    round: usize,
    window: Window,
) -> anyhow::Result<f64> {
    let tasks: Vec<_> = channels
        .iter()
        .enumerate()
        .map(|(id, (channel, origin))| {
            let client = TicketCommandsClient::with_origin(channel.clone(), origin.clone());
            tokio::spawn(our_client(client, format!("r{round}-c{id}"), id, window))
        })
        .collect();
    let mut count = 0;
    for task in tasks {
        count += task.await??;
    }
    Ok(window.per_second(count))
}

/// Empty gRPC calls per second (a health check) on the same connections: what gRPC alone costs
/// on this machine, the ceiling for any service behind it.
async fn run_empty(channels: &[(GrpcChannel, http::Uri)], window: Window) -> anyhow::Result<f64> {
    let tasks: Vec<_> = channels
        .iter()
        .map(|(channel, origin)| {
            let mut client = HealthClient::with_origin(channel.clone(), origin.clone());
            tokio::spawn(async move {
                let mut count = 0;
                while Instant::now() < window.until {
                    client.check(HealthCheckRequest { service: String::new() }).await?;
                    if window.counts(Instant::now()) {
                        count += 1;
                    }
                }
                anyhow::Ok(count)
            })
        })
        .collect();
    let mut count = 0;
    for task in tasks {
        count += task.await??;
    }
    Ok(window.per_second(count))
}

/// Where a server thread says it is listening, or why it could not start.
type Ready = oneshot::Sender<Result<std::net::SocketAddr, String>>;

/// A server on a thread and runtime of its own, as in a process of its own: the clients do not
/// run on its threads.
struct ServerThread {
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl ServerThread {
    /// Runs `body` on a thread named `name`. The body reports its address on `ready` and
    /// returns once `stopped` completes.
    async fn start<F>(name: &str, body: F) -> anyhow::Result<ServerThread>
    where
        F: FnOnce(Ready, oneshot::Receiver<()>) -> anyhow::Result<()> + Send + 'static,
    {
        let (ready, ready_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread =
            std::thread::Builder::new().name(name.into()).spawn(move || body(ready, stopped))?;
        let addr = ready_rx.await?.map_err(anyhow::Error::msg)?;
        Ok(ServerThread { addr, stop, thread })
    }

    /// Stops the server and waits for it. The wait must not block this runtime: the server
    /// waits in turn for the clients' connections, which this runtime drives.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join()).await?;
        joined.map_err(|_| anyhow::anyhow!("a server thread panicked"))?
    }
}

/// The body of the service thread: a runtime of `threads` workers (one: a current-thread
/// runtime) running the command service until `stopped`.
fn serve_on_own_runtime(
    nats_url: String,
    config: CommandServiceConfig,
    threads: usize,
    ready: Ready,
    stopped: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async move {
        let setup = async {
            let client = async_nats::connect(&nats_url).await?;
            let clock = Arc::new(SystemClock);
            let service = CommandService::connect(client, config, clock).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            anyhow::Ok((service, listener, addr))
        };
        let (service, listener, addr) = match setup.await {
            Ok(started) => started,
            Err(err) => {
                let _ = ready.send(Err(format!("{err:#}")));
                return Err(err);
            }
        };
        let _ = ready.send(Ok(addr));
        serve(listener, service, async move {
            let _ = stopped.await;
        })
        .await?;
        Ok(())
    })
}

/// Bytes each way of one echo round trip: about a command request's size.
const ECHO_BYTES: usize = 128;

/// The body of the echo thread: a current-thread runtime, as the service has by default, that
/// sends every [`ECHO_BYTES`] bytes it reads straight back, until `stopped`.
fn echo_on_own_runtime(ready: Ready, stopped: oneshot::Receiver<()>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(err) => {
                let _ = ready.send(Err(format!("failed to bind the echo server: {err}")));
                return Err(err.into());
            }
        };
        let _ = ready.send(Ok(listener.local_addr()?));
        let accept = async {
            loop {
                let (mut stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(async move {
                    let mut message = [0u8; ECHO_BYTES];
                    while stream.read_exact(&mut message).await.is_ok() {
                        if stream.write_all(&message).await.is_err() {
                            break;
                        }
                    }
                });
            }
        };
        tokio::select! {
            result = accept => result,
            _ = stopped => Ok(()),
        }
    })
}

/// Echo round trips per second, each client on its own connection; the streams come back for
/// the next round.
async fn run_echo(
    streams: Vec<tokio::net::TcpStream>,
    window: Window,
) -> anyhow::Result<(Vec<tokio::net::TcpStream>, f64)> {
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut message = [7u8; ECHO_BYTES];
                let mut count = 0;
                while Instant::now() < window.until {
                    stream.write_all(&message).await?;
                    stream.read_exact(&mut message).await?;
                    if window.counts(Instant::now()) {
                        count += 1;
                    }
                }
                anyhow::Ok((stream, count))
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(tasks.len());
    let mut count = 0;
    for task in tasks {
        let (stream, done) = task.await??;
        streams.push(stream);
        count += done;
    }
    Ok((streams, window.per_second(count)))
}

/// One client's loop: open a ticket, take it through its life, open the next.
async fn our_client(
    mut client: TicketCommandsClient<GrpcChannel>,
    name: String,
    id: usize,
    window: Window,
) -> anyhow::Result<u64> {
    let agent = format!("agent-{id}");
    let customer = format!("cust-{id}");
    let mut count = 0;
    for n in 0.. {
        let mut ticket_id = String::new();
        for step in 0..STEPS {
            if Instant::now() >= window.until {
                return Ok(count);
            }
            let request_id = format!("{name}-t{n}-s{step}");
            let staff = meta(&agent, pb::Role::Tier1Agent, &request_id);
            let by_customer = meta(&customer, pb::Role::Customer, &request_id);
            let ticket = ticket_id.clone();
            let result = match step {
                0 => client.open_ticket(open_request(staff, &customer)).await,
                1 => {
                    let request = pb::AcknowledgeTicketRequest { meta: staff, ticket_id: ticket };
                    client.acknowledge_ticket(request).await
                }
                2 => {
                    let agent_id = format!("owner-{id}");
                    let request =
                        pb::AssignTicketRequest { meta: staff, ticket_id: ticket, agent_id };
                    client.assign_ticket(request).await
                }
                3 => {
                    let request = pb::ChangePriorityRequest {
                        meta: staff,
                        ticket_id: ticket,
                        priority: pb::Priority::Critical as i32,
                        reason: "customer is blocked".into(),
                    };
                    client.change_priority(request).await
                }
                4 => {
                    let request = pb::EscalateTicketRequest {
                        meta: staff,
                        ticket_id: ticket,
                        to_tier: pb::SupportTier::SupportTier2 as i32,
                        reason: "needs billing access".into(),
                    };
                    client.escalate_ticket(request).await
                }
                5 => {
                    let request = pb::AskCustomerRequest {
                        meta: staff,
                        ticket_id: ticket,
                        question: "Which order is it?".into(),
                    };
                    client.ask_customer(request).await
                }
                6 => {
                    let request = pb::RecordCustomerReplyRequest {
                        meta: by_customer,
                        ticket_id: ticket,
                        message: "Order 1234".into(),
                    };
                    client.record_customer_reply(request).await
                }
                7 => {
                    let request = pb::ResolveTicketRequest {
                        meta: staff,
                        ticket_id: ticket,
                        resolution_summary: "Second charge refunded".into(),
                    };
                    client.resolve_ticket(request).await
                }
                8 => {
                    let request = pb::GiveFeedbackRequest {
                        meta: by_customer,
                        ticket_id: ticket,
                        csat: 4,
                        nps: Some(8),
                        comment: Some("fine".into()),
                        themes: Vec::new(),
                    };
                    client.give_feedback(request).await
                }
                _ => {
                    let request = pb::CloseTicketRequest { meta: staff, ticket_id: ticket };
                    client.close_ticket(request).await
                }
            };
            let result = result.with_context(|| format!("command {request_id} failed"))?;
            if step == 0 {
                ticket_id = result.into_inner().ticket_id;
            }
            if window.counts(Instant::now()) {
                count += 1;
            }
        }
    }
    Ok(count)
}

fn meta(actor: &str, role: pb::Role, request_id: &str) -> Option<pb::CommandMeta> {
    Some(pb::CommandMeta {
        tenant: "acme".into(),
        actor: Some(pb::Actor { id: actor.to_owned(), role: role as i32 }),
        request_id: request_id.to_owned(),
        ..Default::default()
    })
}

fn open_request(meta: Option<pb::CommandMeta>, customer: &str) -> pb::OpenTicketRequest {
    pb::OpenTicketRequest {
        meta,
        ticket_id: String::new(),
        customer_id: customer.to_owned(),
        customer_tier: pb::CustomerTier::Business as i32,
        channel: pb::Channel::Email as i32,
        category: "billing".into(),
        priority: pb::Priority::High as i32,
        subject: "Charged twice for one order".into(),
        description: "My card shows two charges for the same order.".into(),
        product: "shop".into(),
        is_complaint: false,
    }
}

/// The encoded events of one ticket's life as the workload above records it.
fn sample_events() -> Vec<Bytes> {
    let tenant = TenantId::parse("acme").unwrap_or_else(|e| unreachable!("{e}"));
    let now = Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap();
    let mut ticket = Ticket::new(tenant.clone(), TicketId::for_request(&tenant, "c0-t0-s0"));
    let agent = Actor { id: "agent-0".into(), role: Role::Tier1Agent };
    let customer = Actor { id: "cust-0".into(), role: Role::Customer };
    let open = OpenTicket {
        customer_id: CustomerId::parse("cust-0").unwrap_or_else(|e| unreachable!("{e}")),
        customer_tier: CustomerTier::Business,
        channel: Channel::Email,
        category: "billing".into(),
        priority: Priority::High,
        subject: "Charged twice for one order".into(),
        description: "My card shows two charges for the same order.".into(),
        product: "shop".into(),
        is_complaint: false,
    };
    let owner = AgentId::parse("owner-0").unwrap_or_else(|e| unreachable!("{e}"));
    let commands = [
        (Command::Open(open), &agent),
        (Command::Acknowledge, &agent),
        (Command::Assign { agent_id: owner }, &agent),
        (
            Command::ChangePriority {
                priority: Priority::Critical,
                reason: "customer is blocked".into(),
            },
            &agent,
        ),
        (
            Command::Escalate { to: SupportTier::Tier2, reason: "needs billing access".into() },
            &agent,
        ),
        (Command::AskCustomer { question: "Which order is it?".into() }, &agent),
        (Command::CustomerReply { message: "Order 1234".into() }, &customer),
        (Command::Resolve { resolution_summary: "Second charge refunded".into() }, &agent),
        (
            Command::GiveFeedback {
                csat: 4,
                nps: Some(8),
                comment: Some("fine".into()),
                themes: Vec::new(),
            },
            &customer,
        ),
        (Command::Close, &agent),
    ];
    let mut events = Vec::with_capacity(STEPS);
    for (step, (command, actor)) in commands.into_iter().enumerate() {
        let ctx = CommandContext::new(actor.clone(), now, &format!("c0-t0-s{step}"));
        let payload = ticket.decide(&command, &ctx).unwrap_or_else(|e| unreachable!("{e}"));
        let envelope = ticket.envelope(payload, &ctx, Uuid::now_v7());
        events.push(Bytes::from(csmp_eventstore::encode(&envelope)));
        let recorded = RecordedEvent { stream_seq: step as u64 + 1, envelope };
        ticket.apply(&recorded).unwrap_or_else(|e| unreachable!("{e}"));
    }
    events
}

/// Publishes per second, each client on its own subjects.
async fn run_raw(
    js: &jetstream::Context,
    prefix: &str,
    clients: usize,
    payloads: &Arc<Vec<Bytes>>,
    window: Window,
) -> anyhow::Result<f64> {
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            let payloads = Arc::clone(payloads);
            tokio::spawn(raw_client(js.clone(), prefix.to_owned(), payloads, id, window))
        })
        .collect();
    let mut count = 0;
    for task in tasks {
        count += task.await??;
    }
    Ok(window.per_second(count))
}

/// One raw client's loop: a fresh subject per ticket, ten conditional publishes on it.
async fn raw_client(
    js: jetstream::Context,
    prefix: String,
    payloads: Arc<Vec<Bytes>>,
    id: usize,
    window: Window,
) -> anyhow::Result<u64> {
    const EVENT_TYPES: [&str; STEPS] = [
        "ticket.opened",
        "ticket.acknowledged",
        "ticket.assigned",
        "ticket.priority_changed",
        "ticket.escalated",
        "ticket.customer_asked",
        "ticket.customer_replied",
        "ticket.resolved",
        "feedback.given",
        "ticket.closed",
    ];
    let mut count = 0;
    loop {
        let ticket = Uuid::new_v4();
        let subject = format!("{prefix}.acme.ticket.{ticket}");
        let mut last = 0;
        for (step, payload) in payloads.iter().enumerate() {
            if Instant::now() >= window.until {
                return Ok(count);
            }
            let mut headers = HeaderMap::new();
            let message_id = format!("acme:{ticket}:c{id}-s{step}");
            headers.insert(NATS_MESSAGE_ID, HeaderValue::from(message_id));
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, HeaderValue::from(last));
            headers.insert(EVENT_TYPE_HEADER, EVENT_TYPES[step]);
            headers.insert(SCHEMA_VERSION_HEADER, "1");
            let ack = js
                .publish_with_headers(subject.clone(), headers, payload.clone())
                .await?
                .await
                .context("raw publish failed")?;
            last = ack.sequence;
            if window.counts(Instant::now()) {
                count += 1;
            }
        }
    }
}

/// A client's HTTP/2 connection to the service, used directly as the gRPC transport: requests go
/// straight to hyper's connection, without the request buffer and reconnect layers of tonic's own
/// channel, so that the benchmark's clients take as little of the machine as a lean client
/// would. The connection task runs on the clients' runtime.
#[derive(Clone)]
struct GrpcChannel {
    send: hyper::client::conn::http2::SendRequest<tonic::body::Body>,
}

impl GrpcChannel {
    async fn connect(addr: &std::net::SocketAddr) -> anyhow::Result<(Self, http::Uri)> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (send, connection) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake(hyper_util::rt::TokioIo::new(stream))
                .await?;
        tokio::spawn(connection);
        let origin: http::Uri = format!("http://{addr}").parse()?;
        Ok((GrpcChannel { send }, origin))
    }
}

impl tower_service::Service<http::Request<tonic::body::Body>> for GrpcChannel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.send.send_request(request))
    }
}
