//! Planning rules on small hand-written exports: the exact commands each kind of row becomes,
//! and the reject each contradiction or unparsable value becomes.

use chrono::{DateTime, TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::{
    Actor, Channel, Command, CustomerId, CustomerTier, Priority, Role, TenantId, TicketId,
};
use csmp_import::source::Column;
use csmp_import::{
    plan_reader, ImportError, Plan, PlanOptions, PlannedCommand, RejectReason, Step, TicketPlan,
};

const STRUCTURED_HEADER: &str = "Ticket ID,Customer Email,Product Purchased,Date of Purchase,\
    Ticket Type,Ticket Subject,Ticket Status,Ticket Priority,Ticket Channel,\
    First Response Time,Time to Resolution,Customer Satisfaction Rating";

const FULL_HEADER: &str = "Ticket ID,Customer Name,Customer Email,Product Purchased,\
    Date of Purchase,Ticket Type,Ticket Subject,Ticket Description,Ticket Status,Resolution,\
    Ticket Priority,Ticket Channel,First Response Time,Time to Resolution,\
    Customer Satisfaction Rating";

/// A structured row with the given id, status, times and rating, and fixed other values.
fn row(id: &str, status: &str, first_response: &str, resolution: &str, rating: &str) -> String {
    format!(
        "{id},customer00001@example.com,GoPro Hero,2021-03-22,Technical issue,Product setup,\
         {status},Critical,Social media,{first_response},{resolution},{rating}"
    )
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn plan(csv: &str) -> Plan {
    plan_reader(csv.as_bytes(), &PlanOptions::new(tenant())).unwrap()
}

fn structured(rows: &[String]) -> String {
    format!("{STRUCTURED_HEADER}\n{}\n", rows.join("\n"))
}

fn utc(raw: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S").unwrap();
    Utc.from_utc_datetime(&naive)
}

fn open_command(description: &str) -> Command {
    Command::Open(OpenTicket {
        customer_id: CustomerId::parse("customer00001@example.com").unwrap(),
        customer_tier: CustomerTier::Standard,
        channel: Channel::SocialMedia,
        category: "Technical issue".to_owned(),
        priority: Priority::Critical,
        subject: "Product setup".to_owned(),
        description: description.to_owned(),
        product: "GoPro Hero".to_owned(),
        is_complaint: false,
    })
}

fn step(
    source_id: &str,
    step: Step,
    occurred_at: Option<DateTime<Utc>>,
    command: Command,
) -> PlannedCommand {
    PlannedCommand {
        step,
        request_id: format!("import:{source_id}:{}", step.as_str()),
        occurred_at,
        command,
    }
}

/// The reasons of the only reject of a one-row export.
fn only_reject(csv: &str) -> Vec<RejectReason> {
    let plan = plan(csv);
    assert_eq!(plan.tickets, vec![], "expected the row to be rejected");
    assert_eq!(plan.rejects.len(), 1);
    plan.rejects.into_iter().next().unwrap().reasons
}

fn reject_text(csv: &str) -> String {
    let plan = plan(csv);
    assert_eq!(plan.rejects.len(), 1, "expected one reject, got {:?}", plan.tickets);
    plan.rejects[0].reason()
}

#[test]
fn closed_row_becomes_open_ack_resolve_feedback_close() {
    let csv =
        structured(&[row("3", "Closed", "2023-06-01 11:14:38", "2023-06-01 18:05:38", "3.0")]);

    let plan = plan(&csv);

    assert_eq!(plan.rows_read, 1);
    assert_eq!(plan.rejects, vec![]);
    assert_eq!(
        plan.tickets,
        vec![TicketPlan {
            row: 1,
            line: 2,
            source_id: "3".to_owned(),
            ticket_id: TicketId::for_request(&tenant(), "import:3:open"),
            commands: vec![
                step("3", Step::Open, None, open_command("")),
                step(
                    "3",
                    Step::Acknowledge,
                    Some(utc("2023-06-01 11:14:38")),
                    Command::Acknowledge
                ),
                step(
                    "3",
                    Step::Resolve,
                    Some(utc("2023-06-01 18:05:38")),
                    Command::Resolve { resolution_summary: "imported resolution".to_owned() },
                ),
                step(
                    "3",
                    Step::Feedback,
                    None,
                    Command::GiveFeedback { csat: 3, nps: None, comment: None, themes: vec![] },
                ),
                step("3", Step::Close, None, Command::Close),
            ],
        }]
    );
}

#[test]
fn pending_row_becomes_open_ack_ask() {
    let csv = structured(&[row("1", "Pending Customer Response", "2023-06-01 12:15:36", "", "")]);

    let plan = plan(&csv);

    assert_eq!(
        plan.tickets[0].commands,
        vec![
            step("1", Step::Open, None, open_command("")),
            step("1", Step::Acknowledge, Some(utc("2023-06-01 12:15:36")), Command::Acknowledge),
            step(
                "1",
                Step::AskCustomer,
                None,
                Command::AskCustomer { question: "imported: waiting on customer".to_owned() },
            ),
        ]
    );
}

#[test]
fn open_row_becomes_open_only() {
    let csv = structured(&[row("9", "Open", "", "", "")]);

    let plan = plan(&csv);

    assert_eq!(plan.tickets[0].commands, vec![step("9", Step::Open, None, open_command(""))]);
}

#[test]
fn open_row_with_first_response_is_acknowledged() {
    let csv = structured(&[row("9", "Open", "2023-06-01 12:15:36", "", "")]);

    let plan = plan(&csv);

    assert_eq!(
        plan.tickets[0].commands,
        vec![
            step("9", Step::Open, None, open_command("")),
            step("9", Step::Acknowledge, Some(utc("2023-06-01 12:15:36")), Command::Acknowledge),
        ]
    );
}

#[test]
fn closed_row_without_first_response_is_resolved_unacknowledged() {
    let csv = structured(&[row("5", "Closed", "", "2023-06-01 18:05:38", "5.0")]);

    let plan = plan(&csv);

    let steps: Vec<Step> = plan.tickets[0].commands.iter().map(|c| c.step).collect();
    assert_eq!(steps, vec![Step::Open, Step::Resolve, Step::Feedback, Step::Close]);
}

#[test]
fn resolution_at_the_first_response_time_is_accepted() {
    let at = "2023-06-01 11:14:38";
    let csv = structured(&[row("3", "Closed", at, at, "1.0")]);

    let plan = plan(&csv);

    assert_eq!(plan.rejects, vec![]);
    assert_eq!(plan.tickets[0].commands[2].occurred_at, Some(utc(at)));
}

#[test]
fn full_export_gives_description_and_resolution_text() {
    let csv = format!(
        "{FULL_HEADER}\n\
         3,Customer 00003,customer00001@example.com,GoPro Hero,2020-07-14,Technical issue,\
         Product setup,\"It does not turn on.\n\nPlease help, soon.\",Closed,\
         \"Case maybe show recently.\",Critical,Social media,2023-06-01 11:14:38,\
         2023-06-01 18:05:38,2.0\n"
    );

    let plan = plan(&csv);

    let commands = &plan.tickets[0].commands;
    assert_eq!(commands[0].command, open_command("It does not turn on.\n\nPlease help, soon."));
    assert_eq!(
        commands[2].command,
        Command::Resolve { resolution_summary: "Case maybe show recently.".to_owned() }
    );
    assert_eq!(
        commands[3].command,
        Command::GiveFeedback { csat: 2, nps: None, comment: None, themes: vec![] }
    );
}

#[test]
fn full_export_closed_row_with_empty_resolution_gets_the_fixed_summary() {
    let csv = format!(
        "{FULL_HEADER}\n\
         3,Customer 00003,customer00001@example.com,GoPro Hero,2020-07-14,Technical issue,\
         Product setup,text,Closed,,Critical,Social media,2023-06-01 11:14:38,\
         2023-06-01 18:05:38,2.0\n"
    );

    let plan = plan(&csv);

    assert_eq!(
        plan.tickets[0].commands[2].command,
        Command::Resolve { resolution_summary: "imported resolution".to_owned() }
    );
}

#[test]
fn every_channel_and_priority_of_the_export_maps_to_the_domain() {
    let cases = [
        ("Email", "Low", Channel::Email, Priority::Low),
        ("Phone", "Medium", Channel::Phone, Priority::Medium),
        ("Chat", "High", Channel::Chat, Priority::High),
        ("Social media", "Critical", Channel::SocialMedia, Priority::Critical),
    ];
    for (channel_raw, priority_raw, channel, priority) in cases {
        let csv = format!(
            "{STRUCTURED_HEADER}\n1,c@example.com,P,2021-01-01,T,S,Open,{priority_raw},\
             {channel_raw},,,\n"
        );

        let plan = plan(&csv);

        let Command::Open(open) = &plan.tickets[0].commands[0].command else {
            panic!("first command is not open");
        };
        assert_eq!((open.channel, open.priority), (channel, priority), "{channel_raw}");
    }
}

#[test]
fn options_give_tier_and_actor() {
    let options = PlanOptions {
        tenant: tenant(),
        customer_tier: CustomerTier::Enterprise,
        actor: Actor { id: "history-loader".to_owned(), role: Role::Importer },
    };
    let csv = structured(&[row("9", "Open", "", "", "")]);

    let plan = plan_reader(csv.as_bytes(), &options).unwrap();

    assert_eq!(plan.actor, options.actor);
    let Command::Open(open) = &plan.tickets[0].commands[0].command else {
        panic!("first command is not open");
    };
    assert_eq!(open.customer_tier, CustomerTier::Enterprise);
}

#[test]
fn ids_are_derived_from_tenant_and_source_id_so_planning_again_gives_the_same_plan() {
    let csv = structured(&[
        row("1", "Pending Customer Response", "2023-06-01 12:15:36", "", ""),
        row("2", "Closed", "2023-06-01 11:14:38", "2023-06-01 18:05:38", "4.0"),
    ]);

    let first = plan(&csv);
    let second = plan(&csv);
    let other_tenant =
        plan_reader(csv.as_bytes(), &PlanOptions::new(TenantId::parse("globex").unwrap())).unwrap();

    assert_eq!(first, second);
    let ticket = &first.tickets[1];
    assert_eq!(ticket.ticket_id, TicketId::for_request(&tenant(), "import:2:open"));
    let request_ids: Vec<&str> = ticket.commands.iter().map(|c| c.request_id.as_str()).collect();
    assert_eq!(
        request_ids,
        [
            "import:2:open",
            "import:2:ack",
            "import:2:resolve",
            "import:2:feedback",
            "import:2:close"
        ]
    );
    assert_ne!(first.tickets[0].ticket_id, first.tickets[1].ticket_id);
    assert_ne!(other_tenant.tickets[1].ticket_id, ticket.ticket_id);
}

#[test]
fn row_and_line_numbers_count_records_and_physical_lines() {
    let csv = format!(
        "{FULL_HEADER}\n\
         1,N,customer00001@example.com,GoPro Hero,2021-03-22,Technical issue,Product setup,\
         \"one\ntwo\n\nthree\",Open,,Critical,Social media,,,\n\
         2,N,customer00001@example.com,GoPro Hero,2021-03-22,Technical issue,Product setup,\
         text,Open,,Urgent,Social media,,,\n"
    );

    let plan = plan(&csv);

    assert_eq!((plan.tickets[0].row, plan.tickets[0].line), (1, 2));
    assert_eq!((plan.rejects[0].row, plan.rejects[0].line), (2, 6));
    assert_eq!(plan.rejects[0].ticket_id, "2");
}

#[test]
fn it_rejects_resolution_before_first_response() {
    let csv =
        structured(&[row("4", "Closed", "2023-06-01 07:29:40", "2023-06-01 01:57:40", "3.0")]);

    assert_eq!(
        only_reject(&csv),
        vec![RejectReason::ResolvedBeforeFirstResponse {
            first_response: "2023-06-01 07:29:40".to_owned(),
            resolution: "2023-06-01 01:57:40".to_owned(),
        }]
    );
    assert_eq!(
        reject_text(&csv),
        "Time to Resolution \"2023-06-01 01:57:40\" is earlier than \
         First Response Time \"2023-06-01 07:29:40\""
    );
}

#[test]
fn it_rejects_closed_without_resolution_time_or_rating() {
    let csv = structured(&[row("4", "Closed", "2023-06-01 07:29:40", "", "")]);

    assert_eq!(
        only_reject(&csv),
        vec![
            RejectReason::MissingForStatus {
                status: "Closed".to_owned(),
                column: Column::TimeToResolution
            },
            RejectReason::MissingForStatus {
                status: "Closed".to_owned(),
                column: Column::CustomerSatisfactionRating
            },
        ]
    );
    assert_eq!(
        reject_text(&csv),
        "Ticket Status \"Closed\" needs a Time to Resolution; \
         Ticket Status \"Closed\" needs a Customer Satisfaction Rating"
    );
}

#[test]
fn it_rejects_pending_without_first_response() {
    let csv = structured(&[row("4", "Pending Customer Response", "", "", "")]);

    assert_eq!(
        reject_text(&csv),
        "Ticket Status \"Pending Customer Response\" needs a First Response Time"
    );
}

#[test]
fn it_rejects_open_with_resolution_time() {
    let csv = structured(&[row("4", "Open", "", "2023-06-01 01:57:40", "")]);

    assert_eq!(
        only_reject(&csv),
        vec![RejectReason::UnexpectedForStatus {
            status: "Open".to_owned(),
            column: Column::TimeToResolution,
            value: "2023-06-01 01:57:40".to_owned(),
        }]
    );
}

#[test]
fn it_rejects_pending_with_resolution_time() {
    let csv = structured(&[row(
        "4",
        "Pending Customer Response",
        "2023-06-01 01:57:40",
        "2023-06-01 03:57:40",
        "",
    )]);

    assert_eq!(
        reject_text(&csv),
        "Ticket Status \"Pending Customer Response\" contradicts \
         Time to Resolution \"2023-06-01 03:57:40\""
    );
}

#[test]
fn it_rejects_a_rating_on_a_ticket_that_is_not_closed() {
    let csv = structured(&[
        row("4", "Open", "", "", "4.0"),
        row("5", "Pending Customer Response", "2023-06-01 01:57:40", "", "2.0"),
    ]);

    let plan = plan(&csv);

    let reasons: Vec<String> = plan.rejects.iter().map(|r| r.reason()).collect();
    assert_eq!(
        reasons,
        [
            "Ticket Status \"Open\" contradicts Customer Satisfaction Rating \"4.0\"",
            "Ticket Status \"Pending Customer Response\" contradicts \
             Customer Satisfaction Rating \"2.0\"",
        ]
    );
}

#[test]
fn it_rejects_unknown_status_priority_and_channel() {
    let csv =
        format!("{STRUCTURED_HEADER}\n1,c@example.com,P,2021-01-01,T,S,Resolved,Urgent,Fax,,,\n");

    assert_eq!(
        reject_text(&csv),
        "Ticket Status \"Resolved\" is not one of Open, Pending Customer Response, Closed; \
         Ticket Priority \"Urgent\" is not one of Low, Medium, High, Critical; \
         Ticket Channel \"Fax\" is not one of Email, Phone, Chat, Social media"
    );
}

#[test]
fn it_rejects_values_in_another_case_rather_than_guessing() {
    let csv =
        structured(&[row("1", "closed", "2023-06-01 11:14:38", "2023-06-01 18:05:38", "3.0")]);

    assert_eq!(
        only_reject(&csv),
        vec![RejectReason::Invalid {
            column: Column::TicketStatus,
            value: "closed".to_owned(),
            problem: "is not one of Open, Pending Customer Response, Closed".to_owned(),
        }]
    );
}

#[test]
fn it_rejects_bad_timestamps() {
    for bad in ["2023-06-01T11:14:38", "2023-02-30 11:14:38", "2023-6-1 11:14:38", "yesterday"] {
        let csv = structured(&[row("1", "Pending Customer Response", bad, "", "")]);

        assert_eq!(
            reject_text(&csv),
            format!("First Response Time {bad:?} is not a time written YYYY-MM-DD HH:MM:SS"),
        );
    }
}

#[test]
fn it_rejects_a_rating_outside_one_to_five_or_not_written_n_point_zero() {
    for bad in ["0.0", "6.0", "3", "3.5", "3.00", " 3.0", "-1.0"] {
        let csv =
            structured(&[row("1", "Closed", "2023-06-01 11:14:38", "2023-06-01 18:05:38", bad)]);

        assert_eq!(
            reject_text(&csv),
            format!("Customer Satisfaction Rating {bad:?} is not one of 1.0, 2.0, 3.0, 4.0, 5.0"),
        );
    }
}

#[test]
fn it_rejects_an_empty_ticket_id() {
    let csv = structured(&[row("", "Open", "", "", ""), row(" ", "Open", "", "", "")]);

    let plan = plan(&csv);

    assert_eq!(plan.tickets, vec![]);
    for reject in &plan.rejects {
        assert_eq!(reject.reasons, vec![RejectReason::Empty { column: Column::TicketId }]);
    }
    assert_eq!(plan.rejects.len(), 2);
}

#[test]
fn it_rejects_every_row_of_a_duplicate_ticket_id() {
    let csv = structured(&[
        row("7", "Open", "", "", ""),
        row("8", "Open", "", "", ""),
        row("7", "Pending Customer Response", "2023-06-01 12:15:36", "", ""),
        row("7", "Open", "", "", "9.0"),
    ]);

    let plan = plan(&csv);

    assert_eq!(plan.tickets.len(), 1);
    assert_eq!(plan.tickets[0].source_id, "8");
    let rejects: Vec<(u64, String)> = plan.rejects.iter().map(|r| (r.row, r.reason())).collect();
    assert_eq!(
        rejects,
        [
            (1, "Ticket ID is on more than one row (rows 1, 3, 4)".to_owned()),
            (3, "Ticket ID is on more than one row (rows 1, 3, 4)".to_owned()),
            (
                4,
                "Customer Satisfaction Rating \"9.0\" is not one of 1.0, 2.0, 3.0, 4.0, 5.0; \
                 Ticket Status \"Open\" contradicts Customer Satisfaction Rating \"9.0\"; \
                 Ticket ID is on more than one row (rows 1, 3, 4)"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn it_rejects_a_record_with_another_number_of_fields() {
    let csv = format!("{STRUCTURED_HEADER}\n1,c@example.com,P,2021-01-01,T,S,Open,Low,Chat,,\n");

    assert_eq!(only_reject(&csv), vec![RejectReason::FieldCount { found: 11, expected: 12 }]);
}

#[test]
fn it_rejects_what_the_command_service_would_refuse() {
    let long_subject = "s".repeat(201);
    let long_id = "9".repeat(113);
    let csv = format!(
        "{STRUCTURED_HEADER}\n\
         1,,P,2021-01-01,T,S,Open,Low,Chat,,,\n\
         2,c@example.com,P,2021-01-01,,S,Open,Low,Chat,,,\n\
         3,c@example.com,P,2021-01-01,T,{long_subject},Open,Low,Chat,,,\n\
         {long_id},c@example.com,P,2021-01-01,T,S,Open,Low,Chat,,,\n\
         {},c@example.com,P,2021-01-01,T,S,Open,Low,Chat,,,\n",
        "9".repeat(112)
    );

    let plan = plan(&csv);

    let reasons: Vec<String> = plan.rejects.iter().map(|r| r.reason()).collect();
    assert_eq!(
        reasons,
        [
            "Customer Email \"\" is not a customer id: invalid customer_id: must not be empty",
            "Ticket Type is empty",
            "Ticket Subject is 201 characters long, the limit is 200",
            "Ticket ID is 113 characters long, the limit is 112",
        ]
    );
    assert_eq!(plan.tickets.len(), 1, "a 112-character id still fits the request id limit");
    assert!(plan.tickets[0].commands.iter().all(|c| c.request_id.len() <= 128));
}

#[test]
fn it_fails_with_missing_column() {
    let csv = "Ticket ID,Customer Email\n1,c@example.com\n";

    let err = plan_reader(csv.as_bytes(), &PlanOptions::new(tenant())).unwrap_err();

    assert!(matches!(err, ImportError::MissingColumn { column: "Product Purchased" }));
}

#[test]
fn rows_read_counts_tickets_and_rejects() {
    let csv = structured(&[
        row("1", "Open", "", "", ""),
        row("2", "Open", "", "2023-06-01 01:57:40", ""),
        row("3", "Closed", "2023-06-01 11:14:38", "2023-06-01 18:05:38", "3.0"),
    ]);

    let plan = plan(&csv);

    assert_eq!(plan.rows_read, 3);
    assert_eq!((plan.tickets.len(), plan.rejects.len()), (2, 1));
}
