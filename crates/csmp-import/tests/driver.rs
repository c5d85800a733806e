//! The driver against a stand-in command service on a real listener (port 0): what it sends,
//! in which order, how it counts rows, and that a second import appends nothing.
//!
//! The stand-in answers like the command service does about idempotency (a request id seen
//! before on a ticket is a duplicate) and can be told to fail given requests; the ticket rules
//! themselves are the aggregate's, checked by the planning tests.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csmp_domain::TenantId;
use csmp_import::{
    import, plan_reader, ImportOptions, ImportSummary, Plan, PlanOptions, RejectReason, Step,
};
use csmp_proto::v1;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_proto::v1::ticket_commands_server::{TicketCommands, TicketCommandsServer};
use tonic::{Code, Request, Response, Status};

const HEADER: &str = "Ticket ID,Customer Email,Product Purchased,Date of Purchase,Ticket Type,\
    Ticket Subject,Ticket Status,Ticket Priority,Ticket Channel,First Response Time,\
    Time to Resolution,Customer Satisfaction Rating";

/// One open, one pending and one closed ticket, and a row resolved before its first response.
fn small_export() -> String {
    format!(
        "{HEADER}\n\
         1,c1@example.com,P,2021-01-01,T,S,Open,Low,Chat,,,\n\
         2,c2@example.com,P,2021-01-01,T,S,Pending Customer Response,High,Email,\
         2023-06-01 12:15:36,,\n\
         3,c3@example.com,P,2021-01-01,T,S,Closed,Critical,Phone,2023-06-01 11:14:38,\
         2023-06-01 18:05:38,5.0\n\
         4,c4@example.com,P,2021-01-01,T,S,Closed,Low,Chat,2023-06-01 07:29:40,\
         2023-06-01 01:57:40,3.0\n"
    )
}

fn plan(csv: &str) -> Plan {
    plan_reader(csv.as_bytes(), &PlanOptions::new(TenantId::parse("acme").unwrap())).unwrap()
}

/// A request as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    rpc: &'static str,
    tenant: String,
    ticket_id: String,
    request_id: String,
    role: i32,
    occurred_at: Option<i64>,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    handled: HashSet<(String, String)>,
    /// Request ids answered with a status, as many times as the count says (`u32::MAX`: always).
    failures: HashMap<String, (Code, u32)>,
    /// Answer opens with this ticket id instead of the one asked for.
    open_answers: Option<String>,
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone, Default)]
struct StandIn(Arc<Mutex<State>>);

impl StandIn {
    fn fail(&self, request_id: &str, code: Code, times: u32) {
        self.0.lock().unwrap().failures.insert(request_id.to_owned(), (code, times));
    }

    fn received(&self) -> Vec<Received> {
        self.0.lock().unwrap().received.clone()
    }

    async fn handle(
        &self,
        rpc: &'static str,
        meta: Option<v1::CommandMeta>,
        ticket_id: String,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let meta = meta.ok_or_else(|| Status::invalid_argument("meta is missing"))?;
        {
            let mut state = self.0.lock().unwrap();
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
        }

        // Long enough for other tickets' commands to overlap with this one.
        tokio::time::sleep(Duration::from_millis(2)).await;

        let mut state = self.0.lock().unwrap();
        state.in_flight -= 1;
        state.received.push(Received {
            rpc,
            tenant: meta.tenant.clone(),
            ticket_id: ticket_id.clone(),
            request_id: meta.request_id.clone(),
            role: meta.actor.as_ref().map_or(0, |actor| actor.role),
            occurred_at: meta.occurred_at.map(|at| at.seconds),
        });
        if let Some((code, times)) = state.failures.get_mut(&meta.request_id) {
            if *times > 0 {
                *times = times.saturating_sub(u32::from(*times != u32::MAX));
                return Err(Status::new(*code, "refused by the stand-in"));
            }
        }
        let answered_id = match (&state.open_answers, rpc) {
            (Some(other), "open") => other.clone(),
            _ => ticket_id.clone(),
        };
        let duplicate = !state.handled.insert((ticket_id, meta.request_id));
        Ok(Response::new(v1::CommandResult {
            ticket_id: answered_id,
            version: 1,
            stream_position: 1,
            event_ids: vec![],
            event_types: vec![],
            duplicate,
        }))
    }
}

#[tonic::async_trait]
impl TicketCommands for StandIn {
    async fn open_ticket(
        &self,
        request: Request<v1::OpenTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let request = request.into_inner();
        self.handle("open", request.meta, request.ticket_id).await
    }

    async fn acknowledge_ticket(
        &self,
        request: Request<v1::AcknowledgeTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let request = request.into_inner();
        self.handle("acknowledge", request.meta, request.ticket_id).await
    }

    async fn ask_customer(
        &self,
        request: Request<v1::AskCustomerRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let request = request.into_inner();
        self.handle("ask_customer", request.meta, request.ticket_id).await
    }

    async fn resolve_ticket(
        &self,
        request: Request<v1::ResolveTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let request = request.into_inner();
        self.handle("resolve", request.meta, request.ticket_id).await
    }

    async fn close_ticket(
        &self,
        request: Request<v1::CloseTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let request = request.into_inner();
        self.handle("close", request.meta, request.ticket_id).await
    }

    async fn give_feedback(
        &self,
        request: Request<v1::GiveFeedbackRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let request = request.into_inner();
        self.handle("feedback", request.meta, request.ticket_id).await
    }

    // The importer plans none of these.
    async fn assign_ticket(
        &self,
        _request: Request<v1::AssignTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn change_priority(
        &self,
        _request: Request<v1::ChangePriorityRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn escalate_ticket(
        &self,
        _request: Request<v1::EscalateTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn record_customer_reply(
        &self,
        _request: Request<v1::RecordCustomerReplyRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn reopen_ticket(
        &self,
        _request: Request<v1::ReopenTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn refund_ticket(
        &self,
        _request: Request<v1::RefundTicketRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn approve_refund(
        &self,
        _request: Request<v1::ApproveRefundRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn reject_refund(
        &self,
        _request: Request<v1::RejectRefundRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }

    async fn record_sla_signal(
        &self,
        _request: Request<v1::RecordSlaSignalRequest>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        Err(never_sent())
    }
}

fn never_sent() -> Status {
    Status::unimplemented("the importer never sends this")
}

/// Serves `stand_in` on a free port and returns a client of it.
async fn serve(stand_in: StandIn) -> TicketCommandsClient<tonic::transport::Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TicketCommandsServer::new(stand_in))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    TicketCommandsClient::connect(format!("http://{addr}")).await.unwrap()
}

fn counts(summary: &ImportSummary) -> [u64; 6] {
    [
        summary.rows_read,
        summary.imported,
        summary.resumed,
        summary.already_present,
        summary.rejected,
        summary.failed,
    ]
}

#[tokio::test]
async fn import_sends_each_ticket_in_order_and_again_appends_nothing() {
    let stand_in = StandIn::default();
    let client = serve(stand_in.clone()).await;
    let plan = plan(&small_export());

    let first = import(client.clone(), &plan, &ImportOptions::default()).await;

    assert_eq!(counts(&first), [4, 3, 0, 0, 1, 0]);
    assert_eq!(first.events_appended, 1 + 3 + 5);
    assert_eq!(first.rejects, plan.rejects);
    let received = stand_in.received();
    for ticket in &plan.tickets {
        let id = ticket.ticket_id.to_string();
        let sent: Vec<(&str, &str, Option<i64>)> = received
            .iter()
            .filter(|r| r.ticket_id == id)
            .map(|r| (r.rpc, r.request_id.as_str(), r.occurred_at))
            .collect();
        let planned: Vec<(&str, &str, Option<i64>)> = ticket
            .commands
            .iter()
            .map(|c| {
                (rpc_of(c.step), c.request_id.as_str(), c.occurred_at.map(|at| at.timestamp()))
            })
            .collect();
        assert_eq!(sent, planned, "ticket {}", ticket.source_id);
    }
    assert!(received.iter().all(|r| r.tenant == "acme" && r.role == v1::Role::Importer as i32));
    let timed: Vec<&str> =
        received.iter().filter(|r| r.occurred_at.is_some()).map(|r| r.rpc).collect();
    assert_eq!(timed.iter().filter(|rpc| **rpc == "acknowledge").count(), 2);
    assert_eq!(timed.iter().filter(|rpc| **rpc == "resolve").count(), 1);
    assert_eq!(timed.len(), 3, "only acknowledge and resolve carry a time");

    let second = import(client, &plan, &ImportOptions::default()).await;

    assert_eq!(counts(&second), [4, 0, 0, 3, 1, 0]);
    assert_eq!(second.events_appended, 0);
}

fn rpc_of(step: Step) -> &'static str {
    match step {
        Step::Open => "open",
        Step::Acknowledge => "acknowledge",
        Step::AskCustomer => "ask_customer",
        Step::Resolve => "resolve",
        Step::Feedback => "feedback",
        Step::Close => "close",
    }
}

#[tokio::test]
async fn failed_command_is_recorded_against_its_row_and_a_later_import_resumes_it() {
    let stand_in = StandIn::default();
    stand_in.fail("import:3:resolve", Code::FailedPrecondition, u32::MAX);
    let client = serve(stand_in.clone()).await;
    let plan = plan(&small_export());

    let summary = import(client.clone(), &plan, &ImportOptions::default()).await;

    assert_eq!(counts(&summary), [4, 2, 0, 0, 1, 1]);
    let rows: Vec<u64> = summary.rejects.iter().map(|r| r.row).collect();
    assert_eq!(rows, [3, 4], "failed and rejected rows, in file order");
    assert_eq!(
        summary.rejects[0].reasons,
        vec![RejectReason::CommandFailed {
            step: Step::Resolve,
            code: Code::FailedPrecondition,
            message: "refused by the stand-in".to_owned(),
        }]
    );
    let sent_after_failure = stand_in
        .received()
        .iter()
        .filter(|r| r.request_id == "import:3:feedback" || r.request_id == "import:3:close")
        .count();
    assert_eq!(sent_after_failure, 0, "a ticket stops at its first failed command");
    let path = std::env::temp_dir().join(format!("csmp-import-{}.rejects.csv", std::process::id()));
    summary.write_rejects(&path).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        written,
        "row,line,ticket_id,reason\n\
         3,4,3,command resolve failed with FailedPrecondition: refused by the stand-in\n\
         4,5,4,\"Time to Resolution \"\"2023-06-01 01:57:40\"\" is earlier than \
         First Response Time \"\"2023-06-01 07:29:40\"\"\"\n"
    );

    stand_in.fail("import:3:resolve", Code::FailedPrecondition, 0);
    let again = import(client, &plan, &ImportOptions::default()).await;

    assert_eq!(counts(&again), [4, 0, 1, 2, 1, 0]);
    assert_eq!(again.events_appended, 3, "resolve, feedback and close of the resumed row");
}

#[tokio::test]
async fn transient_failures_are_retried_with_the_same_request_id() {
    let stand_in = StandIn::default();
    stand_in.fail("import:2:ack", Code::Unavailable, 2);
    let client = serve(stand_in.clone()).await;
    let plan = plan(&small_export());

    let summary = import(client, &plan, &ImportOptions::default()).await;

    assert_eq!(counts(&summary), [4, 3, 0, 0, 1, 0]);
    let attempts = stand_in.received().iter().filter(|r| r.request_id == "import:2:ack").count();
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn transient_failures_fail_the_row_after_the_last_attempt() {
    let stand_in = StandIn::default();
    stand_in.fail("import:2:ack", Code::Unavailable, u32::MAX);
    let client = serve(stand_in.clone()).await;
    let plan = plan(&small_export());
    let options = ImportOptions { max_attempts: 2, ..ImportOptions::default() };

    let summary = import(client, &plan, &options).await;

    assert_eq!(counts(&summary), [4, 2, 0, 0, 1, 1]);
    assert!(matches!(
        summary.rejects[0].reasons[..],
        [RejectReason::CommandFailed { step: Step::Acknowledge, code: Code::Unavailable, .. }]
    ));
    let attempts = stand_in.received().iter().filter(|r| r.request_id == "import:2:ack").count();
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn an_open_answered_for_another_ticket_stops_the_row() {
    let stand_in = StandIn::default();
    stand_in.0.lock().unwrap().open_answers = Some("00000000-0000-0000-0000-000000000001".into());
    let client = serve(stand_in.clone()).await;
    let plan = plan(&small_export());

    let summary = import(client, &plan, &ImportOptions::default()).await;

    assert_eq!(summary.failed, 3);
    assert!(matches!(
        summary.rejects[0].reasons[..],
        [RejectReason::UnexpectedTicket { step: Step::Open, .. }]
    ));
    assert!(stand_in.received().iter().all(|r| r.rpc == "open"));
}

#[tokio::test]
async fn tickets_go_concurrently_up_to_the_limit() {
    let rows: Vec<String> = (1..=40)
        .map(|n| {
            format!(
                "{n},c@example.com,P,2021-01-01,T,S,Closed,Low,Chat,2023-06-01 07:29:40,\
                 2023-06-01 09:57:40,4.0"
            )
        })
        .collect();
    let plan = plan(&format!("{HEADER}\n{}\n", rows.join("\n")));
    let stand_in = StandIn::default();
    let client = serve(stand_in.clone()).await;
    let options = ImportOptions { concurrency: 8, ..ImportOptions::default() };

    let summary = import(client, &plan, &options).await;

    assert_eq!(summary.imported, 40);
    assert_eq!(summary.events_appended, 200);
    let max_in_flight = stand_in.0.lock().unwrap().max_in_flight;
    assert!((2..=8).contains(&max_in_flight), "{max_in_flight} commands were in flight at once");
}

#[tokio::test]
async fn an_unreachable_command_service_fails_every_row_it_does_not_reject() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
    let plan = plan(&small_export());
    let options = ImportOptions { max_attempts: 1, ..ImportOptions::default() };

    let summary = import(TicketCommandsClient::new(channel), &plan, &options).await;

    assert_eq!(counts(&summary), [4, 0, 0, 0, 1, 3]);
    assert!(summary.rejects.iter().filter(|r| r.row != 4).all(|r| matches!(
        r.reasons[..],
        [RejectReason::CommandFailed { step: Step::Open, code: Code::Unavailable, .. }]
    )));
}

#[tokio::test]
async fn summary_text_gives_every_count_and_the_time_caveat() {
    let stand_in = StandIn::default();
    let client = serve(stand_in).await;
    let plan = plan(&small_export());

    let summary = import(client, &plan, &ImportOptions::default()).await;

    let text = summary.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Import into tenant acme: 4 rows read in "), "{text}");
    assert_eq!(
        &lines[1..],
        [
            "  imported              3",
            "  resumed               0 (partly imported before, completed now)",
            "  already present       0 (imported before, nothing appended)",
            "  rejected              1 (not sent: the row contradicts itself or does not parse)",
            "  failed                0 (the command service refused or failed a command)",
            "  events appended       9",
            "the export's statuses became: Open -> new (open once it has a first response), \
             Pending Customer Response -> waiting on customer, Closed -> closed",
            "the export's times carry no zone and were read as UTC; it has no creation time, \
             so tickets were opened at an unknown time",
        ]
    );
}
