//! Planning: each row of the export becomes the commands that replay its ticket's history, or a
//! reject. Nothing here talks to the network; the only I/O is reading the CSV.
//!
//! A row's history, by its Ticket Status:
//!
//! | status | commands |
//! |---|---|
//! | Open | open; acknowledge at First Response Time if the row has one |
//! | Pending Customer Response | open, acknowledge at First Response Time, ask the customer |
//! | Closed | open, acknowledge (if present), resolve at Time to Resolution, feedback, close |
//!
//! Only acknowledge and resolve carry a time: the export has no creation time, no time for the
//! question to the customer, the feedback or the closing, and none is invented. Timestamps
//! without a zone are read as UTC.
//!
//! A row is rejected, not repaired, when it contradicts itself (resolved before its first
//! response; closed without a resolution time or rating; pending without a first response;
//! open or pending with a resolution time; a rating on a ticket that is not closed), when a
//! value does not parse, when a text is longer than its command allows, or when its Ticket ID
//! is empty or on another row too.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use csmp_domain::command::{limits, OpenTicket};
use csmp_domain::{
    Actor, Channel, Command, CustomerId, CustomerTier, Priority, Role, TenantId, TicketId,
};
use csv::ByteRecord;

use crate::error::ImportError;
use crate::rejects::{Reject, RejectReason};
use crate::source::{Column, Header};

/// The question recorded for a ticket the export shows waiting on the customer.
pub const WAITING_ON_CUSTOMER_NOTE: &str = "imported: waiting on customer";
/// The resolution summary of a closed ticket whose row has no Resolution text.
pub const IMPORTED_RESOLUTION: &str = "imported resolution";
/// The id of the actor the importer's commands are recorded under.
pub const IMPORTER_ACTOR_ID: &str = "importer";

/// Longest source Ticket ID: the longest request id derived from it must stay within
/// [`limits::REQUEST_ID`].
pub const MAX_SOURCE_ID_LEN: usize =
    limits::REQUEST_ID - REQUEST_ID_PREFIX.len() - 1 - Step::LONGEST_NAME;

const REQUEST_ID_PREFIX: &str = "import:";
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
const TIMESTAMP_LEN: usize = "2023-06-01 12:15:36".len();

/// What planning needs besides the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// The tenant every ticket is imported into; part of every derived ticket id.
    pub tenant: TenantId,
    /// The export has no customer tier, so every ticket gets this one.
    pub customer_tier: CustomerTier,
    /// Who the commands are recorded as; its role must be [`Role::Importer`] for the command
    /// service to accept historical times.
    pub actor: Actor,
}

impl PlanOptions {
    /// Options for `tenant`: standard tier, actor `importer` in the importer role.
    pub fn new(tenant: TenantId) -> Self {
        PlanOptions {
            tenant,
            customer_tier: CustomerTier::Standard,
            actor: Actor { id: IMPORTER_ACTOR_ID.to_owned(), role: Role::Importer },
        }
    }
}

/// One step of a ticket's imported history; names the request id's last part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Open,
    Acknowledge,
    AskCustomer,
    Resolve,
    Feedback,
    Close,
}

impl Step {
    const LONGEST_NAME: usize = "feedback".len();

    /// The step's name in request ids: `open`, `ack`, `ask`, `resolve`, `feedback`, `close`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Open => "open",
            Step::Acknowledge => "ack",
            Step::AskCustomer => "ask",
            Step::Resolve => "resolve",
            Step::Feedback => "feedback",
            Step::Close => "close",
        }
    }

    /// The idempotency key of this step for the source ticket `source_id`:
    /// `import:<source id>:<step>`.
    pub fn request_id(self, source_id: &str) -> String {
        format!("{REQUEST_ID_PREFIX}{source_id}:{}", self.as_str())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One command of a ticket's history, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCommand {
    pub step: Step,
    /// The idempotency key, from [`Step::request_id`].
    pub request_id: String,
    /// When it happened; `None` when the export does not say.
    pub occurred_at: Option<DateTime<Utc>>,
    pub command: Command,
}

/// The commands that rebuild one row's ticket, in the order they must be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPlan {
    /// 1-based data row number, the header not counted.
    pub row: u64,
    /// 1-based physical line the record starts on.
    pub line: u64,
    /// The Ticket ID of the export.
    pub source_id: String,
    /// The ticket the open command creates: derived from the tenant and the open request id.
    pub ticket_id: TicketId,
    pub commands: Vec<PlannedCommand>,
}

/// Every row of one file, planned: a ticket plan or a reject each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub tenant: TenantId,
    pub actor: Actor,
    /// Data rows read, the header not counted; `tickets` and `rejects` add up to it.
    pub rows_read: u64,
    /// In file order.
    pub tickets: Vec<TicketPlan>,
    /// In file order.
    pub rejects: Vec<Reject>,
}

/// Plans the export at `path`.
pub fn plan_file(path: impl AsRef<Path>, options: &PlanOptions) -> Result<Plan, ImportError> {
    let path = path.as_ref();
    let file = File::open(path)
        .map_err(|source| ImportError::OpenExport { path: path.to_owned(), source })?;
    plan_reader(io::BufReader::new(file), options)
}

/// Plans an export read from `input`: RFC 4180 CSV with a header row, columns found by name.
///
/// Fails only when the file as a whole cannot be read or lacks a needed column; a bad row
/// becomes a [`Reject`].
pub fn plan_reader(input: impl io::Read, options: &PlanOptions) -> Result<Plan, ImportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = Header::new(reader.byte_headers().map_err(ImportError::ReadExport)?)?;
    header.require(&Column::REQUIRED)?;

    // First pass: every row on its own.
    let mut planned: Vec<(Source, RowPlan)> = Vec::new();
    let mut record = ByteRecord::new();
    let mut row = 0;
    while reader.read_byte_record(&mut record).map_err(ImportError::ReadExport)? {
        row += 1;
        let line = record.position().map_or(0, |position| position.line());
        let source_id = header.get(&record, Column::TicketId).ok().flatten().unwrap_or_default();
        let source = Source { row, line, id: source_id.to_owned() };
        let commands = plan_row(&header, &record, options);
        planned.push((source, commands));
    }

    // Second pass: a Ticket ID on several rows names no single ticket, so all of them go.
    let mut rows_by_id: HashMap<&str, Vec<u64>> = HashMap::new();
    for (source, _) in &planned {
        if !source.id.trim().is_empty() {
            rows_by_id.entry(source.id.as_str()).or_default().push(source.row);
        }
    }
    let duplicates: HashMap<String, Vec<u64>> = rows_by_id
        .into_iter()
        .filter(|(_, rows)| rows.len() > 1)
        .map(|(id, rows)| (id.to_owned(), rows))
        .collect();

    let mut plan = Plan {
        tenant: options.tenant.clone(),
        actor: options.actor.clone(),
        rows_read: row,
        tickets: Vec::new(),
        rejects: Vec::new(),
    };
    for (source, commands) in planned {
        let duplicate = duplicates
            .get(&source.id)
            .map(|rows| RejectReason::DuplicateTicketId { rows: rows.clone() });
        match (commands, duplicate) {
            (Ok(commands), None) => plan.tickets.push(TicketPlan {
                ticket_id: TicketId::for_request(&options.tenant, &commands[0].request_id),
                row: source.row,
                line: source.line,
                source_id: source.id,
                commands,
            }),
            (Ok(_), Some(duplicate)) => plan.rejects.push(source.reject(vec![duplicate])),
            (Err(mut reasons), duplicate) => {
                reasons.extend(duplicate);
                plan.rejects.push(source.reject(reasons));
            }
        }
    }
    Ok(plan)
}

/// A row's commands, or every problem found on it.
type RowPlan = Result<Vec<PlannedCommand>, Vec<RejectReason>>;

/// Where a row came from.
struct Source {
    row: u64,
    line: u64,
    id: String,
}

impl Source {
    fn reject(self, reasons: Vec<RejectReason>) -> Reject {
        Reject { row: self.row, line: self.line, ticket_id: self.id, reasons }
    }
}

/// A Ticket Status of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceStatus {
    Open,
    Pending,
    Closed,
}

impl SourceStatus {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "Open" => Some(SourceStatus::Open),
            "Pending Customer Response" => Some(SourceStatus::Pending),
            "Closed" => Some(SourceStatus::Closed),
            _ => None,
        }
    }
}

/// Collects every problem of a row instead of stopping at the first, so that one look at the
/// rejects file shows all that is wrong with it.
#[derive(Default)]
struct Problems(Vec<RejectReason>);

impl Problems {
    /// The parsed value, or `None` after recording why there is none.
    fn check<T>(&mut self, result: Result<T, RejectReason>) -> Option<T> {
        result.map_err(|reason| self.0.push(reason)).ok()
    }

    fn push(&mut self, reason: RejectReason) {
        self.0.push(reason);
    }
}

fn plan_row(header: &Header, record: &ByteRecord, options: &PlanOptions) -> RowPlan {
    if record.len() != header.len() {
        return Err(vec![RejectReason::FieldCount { found: record.len(), expected: header.len() }]);
    }
    let mut problems = Problems::default();
    let mut text =
        |column| problems.check(header.get(record, column)).map(Option::unwrap_or_default);
    let source_id = text(Column::TicketId);
    let email = text(Column::CustomerEmail);
    let product = text(Column::ProductPurchased);
    let category = text(Column::TicketType);
    let subject = text(Column::TicketSubject);
    let description = text(Column::TicketDescription);
    let status_raw = text(Column::TicketStatus);
    let resolution = text(Column::Resolution);
    let priority = text(Column::TicketPriority);
    let channel = text(Column::TicketChannel);
    let first_response_raw = text(Column::FirstResponseTime);
    let resolution_time_raw = text(Column::TimeToResolution);
    let rating_raw = text(Column::CustomerSatisfactionRating);

    // Values, each checked on its own.
    let source_id = source_id.and_then(|raw| problems.check(check_source_id(raw)));
    let customer_id = email.and_then(|raw| {
        problems.check(CustomerId::parse(raw).map_err(|err| RejectReason::Invalid {
            column: Column::CustomerEmail,
            value: raw.to_owned(),
            problem: format!("is not a customer id: {err}"),
        }))
    });
    let product = product.and_then(|raw| {
        problems.check(check_text(Column::ProductPurchased, raw, limits::PRODUCT, false))
    });
    let category = category.and_then(|raw| {
        problems.check(check_text(Column::TicketType, raw, limits::CATEGORY, true))
    });
    let subject = subject.and_then(|raw| {
        problems.check(check_text(Column::TicketSubject, raw, limits::SUBJECT, true))
    });
    let description = description.and_then(|raw| {
        problems.check(check_text(Column::TicketDescription, raw, limits::DESCRIPTION, false))
    });
    let status = status_raw.and_then(|raw| {
        problems.check(parse_enum(Column::TicketStatus, raw, SourceStatus::parse, STATUSES))
    });
    let priority = priority.and_then(|raw| {
        problems.check(parse_enum(Column::TicketPriority, raw, parse_priority, PRIORITIES))
    });
    let channel = channel.and_then(|raw| {
        problems.check(parse_enum(Column::TicketChannel, raw, parse_channel, CHANNELS))
    });
    let first_response = first_response_raw
        .and_then(|raw| problems.check(parse_optional_time(Column::FirstResponseTime, raw)));
    let resolution_time = resolution_time_raw
        .and_then(|raw| problems.check(parse_optional_time(Column::TimeToResolution, raw)));
    let rating = rating_raw.and_then(|raw| problems.check(parse_optional_rating(raw)));

    // The row against itself.
    if let (Some(status), Some(status_raw)) = (status, status_raw) {
        let missing =
            |column| RejectReason::MissingForStatus { status: status_raw.to_owned(), column };
        let unexpected = |column, value: &str| RejectReason::UnexpectedForStatus {
            status: status_raw.to_owned(),
            column,
            value: value.to_owned(),
        };
        let first_response_raw = first_response_raw.unwrap_or_default();
        let resolution_time_raw = resolution_time_raw.unwrap_or_default();
        let rating_raw = rating_raw.unwrap_or_default();
        if status == SourceStatus::Pending && first_response_raw.is_empty() {
            problems.push(missing(Column::FirstResponseTime));
        }
        if status != SourceStatus::Closed && !resolution_time_raw.is_empty() {
            problems.push(unexpected(Column::TimeToResolution, resolution_time_raw));
        }
        if status != SourceStatus::Closed && !rating_raw.is_empty() {
            problems.push(unexpected(Column::CustomerSatisfactionRating, rating_raw));
        }
        if status == SourceStatus::Closed && resolution_time_raw.is_empty() {
            problems.push(missing(Column::TimeToResolution));
        }
        if status == SourceStatus::Closed && rating_raw.is_empty() {
            problems.push(missing(Column::CustomerSatisfactionRating));
        }
    }
    if let (Some(Some(first)), Some(Some(resolved))) = (first_response, resolution_time) {
        if resolved < first {
            problems.push(RejectReason::ResolvedBeforeFirstResponse {
                first_response: first_response_raw.unwrap_or_default().to_owned(),
                resolution: resolution_time_raw.unwrap_or_default().to_owned(),
            });
        }
    }
    let summary = match resolution.filter(|text| !text.trim().is_empty()) {
        Some(text) if status == Some(SourceStatus::Closed) => {
            problems.check(check_text(Column::Resolution, text, limits::NOTE, true))
        }
        _ => Some(IMPORTED_RESOLUTION),
    };
    if !problems.0.is_empty() {
        return Err(problems.0);
    }

    // Every value is present and consistent here; a `None` would have recorded a problem.
    let (
        Some(source_id),
        Some(customer_id),
        Some(product),
        Some(category),
        Some(subject),
        Some(description),
        Some(status),
        Some(priority),
        Some(channel),
        Some(first_response),
        Some(resolution_time),
        Some(rating),
        Some(summary),
    ) = (
        source_id,
        customer_id,
        product,
        category,
        subject,
        description,
        status,
        priority,
        channel,
        first_response,
        resolution_time,
        rating,
        summary,
    )
    else {
        unreachable!("a value that failed to parse recorded a problem");
    };

    let step = |step: Step, occurred_at, command| PlannedCommand {
        step,
        request_id: step.request_id(source_id),
        occurred_at,
        command,
    };
    let mut commands = vec![step(
        Step::Open,
        None,
        Command::Open(OpenTicket {
            customer_id,
            customer_tier: options.customer_tier,
            channel,
            category: category.to_owned(),
            priority,
            subject: subject.to_owned(),
            description: description.to_owned(),
            product: product.to_owned(),
            is_complaint: false,
        }),
    )];
    if let Some(at) = first_response {
        commands.push(step(Step::Acknowledge, Some(at), Command::Acknowledge));
    }
    match status {
        SourceStatus::Open => {}
        SourceStatus::Pending => commands.push(step(
            Step::AskCustomer,
            None,
            Command::AskCustomer { question: WAITING_ON_CUSTOMER_NOTE.to_owned() },
        )),
        SourceStatus::Closed => {
            commands.push(step(
                Step::Resolve,
                resolution_time,
                Command::Resolve { resolution_summary: summary.to_owned() },
            ));
            if let Some(csat) = rating {
                commands.push(step(
                    Step::Feedback,
                    None,
                    Command::GiveFeedback { csat, nps: None, comment: None, themes: vec![] },
                ));
            }
            commands.push(step(Step::Close, None, Command::Close));
        }
    }
    Ok(commands)
}

const STATUSES: &str = "Open, Pending Customer Response, Closed";
const PRIORITIES: &str = "Low, Medium, High, Critical";
const CHANNELS: &str = "Email, Phone, Chat, Social media";

fn parse_priority(raw: &str) -> Option<Priority> {
    match raw {
        "Low" => Some(Priority::Low),
        "Medium" => Some(Priority::Medium),
        "High" => Some(Priority::High),
        "Critical" => Some(Priority::Critical),
        _ => None,
    }
}

fn parse_channel(raw: &str) -> Option<Channel> {
    match raw {
        "Email" => Some(Channel::Email),
        "Phone" => Some(Channel::Phone),
        "Chat" => Some(Channel::Chat),
        "Social media" => Some(Channel::SocialMedia),
        _ => None,
    }
}

fn parse_enum<T>(
    column: Column,
    raw: &str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Result<T, RejectReason> {
    parse(raw).ok_or_else(|| RejectReason::Invalid {
        column,
        value: raw.to_owned(),
        problem: format!("is not one of {expected}"),
    })
}

fn check_source_id(raw: &str) -> Result<&str, RejectReason> {
    let invalid = |problem: &str| RejectReason::Invalid {
        column: Column::TicketId,
        value: raw.to_owned(),
        problem: problem.to_owned(),
    };
    if raw.trim().is_empty() {
        return Err(RejectReason::Empty { column: Column::TicketId });
    }
    if raw.chars().any(char::is_control) {
        return Err(invalid("contains control characters"));
    }
    let len = raw.chars().count();
    if len > MAX_SOURCE_ID_LEN {
        return Err(RejectReason::TooLong {
            column: Column::TicketId,
            len,
            max: MAX_SOURCE_ID_LEN,
        });
    }
    Ok(raw)
}

/// A text within the limit of the command field it goes into, and non-empty when `required`.
fn check_text(column: Column, raw: &str, max: usize, required: bool) -> Result<&str, RejectReason> {
    if required && raw.trim().is_empty() {
        return Err(RejectReason::Empty { column });
    }
    let len = raw.chars().count();
    if len > max {
        return Err(RejectReason::TooLong { column, len, max });
    }
    Ok(raw)
}

/// An empty value is `None`; anything else must be `YYYY-MM-DD HH:MM:SS`, read as UTC.
fn parse_optional_time(column: Column, raw: &str) -> Result<Option<DateTime<Utc>>, RejectReason> {
    if raw.is_empty() {
        return Ok(None);
    }
    let parsed = (raw.len() == TIMESTAMP_LEN)
        .then(|| NaiveDateTime::parse_from_str(raw, TIMESTAMP_FORMAT).ok())
        .flatten();
    match parsed {
        Some(naive) => Ok(Some(naive.and_utc())),
        None => Err(RejectReason::Invalid {
            column,
            value: raw.to_owned(),
            problem: "is not a time written YYYY-MM-DD HH:MM:SS".to_owned(),
        }),
    }
}

/// An empty value is `None`; anything else must be one of `1.0` to `5.0`.
fn parse_optional_rating(raw: &str) -> Result<Option<u8>, RejectReason> {
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.as_bytes() {
        [digit @ b'1'..=b'5', b'.', b'0'] => Ok(Some(digit - b'0')),
        _ => Err(RejectReason::Invalid {
            column: Column::CustomerSatisfactionRating,
            value: raw.to_owned(),
            problem: "is not one of 1.0, 2.0, 3.0, 4.0, 5.0".to_owned(),
        }),
    }
}
