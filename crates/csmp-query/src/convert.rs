//! Domain names as stored in the read models, to protobuf enums and back; times to timestamps.

use chrono::{DateTime, Utc};
use csmp_domain::{Channel, CustomerTier, Priority, Role, SupportTier, TicketStatus};
use csmp_proto::v1 as pb;
use tonic::Status;

use crate::error::invalid;

/// A text column written by the projectors; anything else is our fault, not the client's.
fn column<T>(raw: &str, parse: impl FnOnce(&str) -> Result<T, csmp_domain::DomainError>) -> T
where
    T: Default,
{
    parse(raw).unwrap_or_else(|err| {
        tracing::error!(value = raw, error = %err, "unreadable read-model value");
        T::default()
    })
}

pub(crate) fn customer_tier(raw: &str) -> i32 {
    let tier = column(raw, |r| CustomerTier::parse(r).map(Some));
    (match tier {
        Some(CustomerTier::Enterprise) => pb::CustomerTier::Enterprise,
        Some(CustomerTier::Business) => pb::CustomerTier::Business,
        Some(CustomerTier::Standard) => pb::CustomerTier::Standard,
        None => pb::CustomerTier::Unspecified,
    }) as i32
}

pub(crate) fn channel(raw: &str) -> i32 {
    (match column(raw, |r| Channel::parse(r).map(Some)) {
        Some(Channel::Email) => pb::Channel::Email,
        Some(Channel::Phone) => pb::Channel::Phone,
        Some(Channel::Chat) => pb::Channel::Chat,
        Some(Channel::SocialMedia) => pb::Channel::SocialMedia,
        Some(Channel::Web) => pb::Channel::Web,
        None => pb::Channel::Unspecified,
    }) as i32
}

pub(crate) fn priority(raw: &str) -> i32 {
    (match column(raw, |r| Priority::parse(r).map(Some)) {
        Some(Priority::Low) => pb::Priority::Low,
        Some(Priority::Medium) => pb::Priority::Medium,
        Some(Priority::High) => pb::Priority::High,
        Some(Priority::Critical) => pb::Priority::Critical,
        None => pb::Priority::Unspecified,
    }) as i32
}

pub(crate) fn support_tier(raw: &str) -> i32 {
    (match column(raw, |r| SupportTier::parse(r).map(Some)) {
        Some(SupportTier::Tier1) => pb::SupportTier::SupportTier1,
        Some(SupportTier::Tier2) => pb::SupportTier::SupportTier2,
        Some(SupportTier::Tier3) => pb::SupportTier::SupportTier3,
        None => pb::SupportTier::Unspecified,
    }) as i32
}

pub(crate) fn status(raw: &str) -> i32 {
    (match column(raw, |r| TicketStatus::parse(r).map(Some)) {
        Some(TicketStatus::New) => pb::TicketStatus::New,
        Some(TicketStatus::Open) => pb::TicketStatus::Open,
        Some(TicketStatus::WaitingOnCustomer) => pb::TicketStatus::WaitingOnCustomer,
        Some(TicketStatus::Resolved) => pb::TicketStatus::Resolved,
        Some(TicketStatus::Closed) => pb::TicketStatus::Closed,
        None => pb::TicketStatus::Unspecified,
    }) as i32
}

pub(crate) fn role(raw: &str) -> i32 {
    (match column(raw, |r| Role::parse(r).map(Some)) {
        Some(Role::Tier1Agent) => pb::Role::Tier1Agent,
        Some(Role::Tier2Agent) => pb::Role::Tier2Agent,
        Some(Role::Tier3Agent) => pb::Role::Tier3Agent,
        Some(Role::Lead) => pb::Role::Lead,
        Some(Role::Customer) => pb::Role::Customer,
        Some(Role::System) => pb::Role::System,
        Some(Role::Importer) => pb::Role::Importer,
        None => pb::Role::Unspecified,
    }) as i32
}

/// A requested support tier: `None` for unspecified (all tiers).
pub(crate) fn tier_filter(value: i32) -> Result<Option<SupportTier>, Status> {
    match pb::SupportTier::try_from(value) {
        Ok(pb::SupportTier::Unspecified) => Ok(None),
        Ok(pb::SupportTier::SupportTier1) => Ok(Some(SupportTier::Tier1)),
        Ok(pb::SupportTier::SupportTier2) => Ok(Some(SupportTier::Tier2)),
        Ok(pb::SupportTier::SupportTier3) => Ok(Some(SupportTier::Tier3)),
        Err(_) => Err(invalid("tier", format!("{value} is not a support tier"))),
    }
}

/// A requested ticket status; unspecified is not one.
pub(crate) fn status_filter(value: i32) -> Result<TicketStatus, Status> {
    match pb::TicketStatus::try_from(value) {
        Ok(pb::TicketStatus::New) => Ok(TicketStatus::New),
        Ok(pb::TicketStatus::Open) => Ok(TicketStatus::Open),
        Ok(pb::TicketStatus::WaitingOnCustomer) => Ok(TicketStatus::WaitingOnCustomer),
        Ok(pb::TicketStatus::Resolved) => Ok(TicketStatus::Resolved),
        Ok(pb::TicketStatus::Closed) => Ok(TicketStatus::Closed),
        Ok(pb::TicketStatus::Unspecified) | Err(_) => {
            Err(invalid("statuses", format!("{value} is not a ticket status")))
        }
    }
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

pub(crate) fn opt_timestamp(at: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    at.map(timestamp)
}

/// A request's timestamp; `field` names it when it is out of range.
pub(crate) fn from_timestamp(
    field: &'static str,
    at: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, Status> {
    let Some(at) = at else { return Ok(None) };
    let nanos = u32::try_from(at.nanos).map_err(|_| invalid(field, "negative nanos"))?;
    let at = DateTime::from_timestamp(at.seconds, nanos)
        .ok_or_else(|| invalid(field, "out of range"))?;
    csmp_domain::ticket::check_time(field, at)
        .map_err(|err| Status::invalid_argument(err.to_string()))?;
    Ok(Some(at))
}

/// A time range whose ends may be open.
pub(crate) type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `from` and `to` of a time range, refused when `from` lies after `to`.
pub(crate) fn time_range(
    from: Option<&prost_types::Timestamp>,
    to: Option<&prost_types::Timestamp>,
) -> Result<TimeRange, Status> {
    let from = from_timestamp("from", from)?;
    let to = from_timestamp("to", to)?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(invalid("from", format!("{from} is after to, {to}")));
        }
    }
    Ok((from, to))
}

/// An agent or customer id filter: the same rules as the ids the command API accepts.
pub(crate) fn id_filter(field: &'static str, raw: &str) -> Result<(), Status> {
    csmp_domain::ids::check_opaque_id(field, raw)
        .map_err(|err| Status::invalid_argument(err.to_string()))
}
