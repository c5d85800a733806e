//! Checking a `SubscribeRequest` before anything is asked of NATS.

use std::collections::BTreeSet;

use csmp_domain::event::EVENT_TYPES;
use csmp_domain::TenantId;
use csmp_proto::v1 as pb;

use crate::error::FeedError;

/// A valid subscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub tenant: TenantId,
    /// Events at this position or before it are not delivered.
    pub after_position: u64,
    /// The event types to deliver; `None` for every type.
    pub event_types: Option<BTreeSet<&'static str>>,
}

impl Subscription {
    /// Checks the tenant like every other API does, and each event type against the known ones.
    pub fn parse(request: &pb::SubscribeRequest) -> Result<Subscription, FeedError> {
        let tenant = TenantId::parse(&request.tenant)
            .map_err(|err| FeedError::invalid("tenant", err.to_string()))?;

        let mut event_types = BTreeSet::new();
        for raw in &request.event_types {
            let Some(known) = EVENT_TYPES.iter().find(|known| **known == raw.as_str()) else {
                return Err(FeedError::invalid(
                    "event_types",
                    format!(
                        "invalid event_types: {} is not a known event type",
                        csmp_domain::error::quoted(raw)
                    ),
                ));
            };
            event_types.insert(*known);
        }
        let event_types = (!event_types.is_empty()).then_some(event_types);
        if request.after_position == u64::MAX {
            return Err(FeedError::invalid(
                "after_position",
                format!("invalid after_position: {} leaves no position after it", u64::MAX),
            ));
        }

        Ok(Subscription { tenant, after_position: request.after_position, event_types })
    }

    /// Whether an event of `event_type` is delivered.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.as_ref().is_none_or(|types| types.contains(event_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tenant: &str, event_types: &[&str]) -> pb::SubscribeRequest {
        pb::SubscribeRequest {
            tenant: tenant.to_owned(),
            after_position: 7,
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn parse_keeps_each_known_event_type_once() {
        let parsed = Subscription::parse(&request(
            "acme",
            &["ticket.opened", "feedback.given", "ticket.opened"],
        ))
        .unwrap();

        assert_eq!(parsed.tenant.as_str(), "acme");
        assert_eq!(parsed.after_position, 7);
        assert_eq!(parsed.event_types, Some(BTreeSet::from(["feedback.given", "ticket.opened"])));
        assert!(parsed.wants("ticket.opened"));
        assert!(!parsed.wants("ticket.closed"));
    }

    #[test]
    fn parse_without_event_types_wants_every_type() {
        let parsed = Subscription::parse(&request("acme", &[])).unwrap();

        assert_eq!(parsed.event_types, None);
        assert!(EVENT_TYPES.iter().all(|t| parsed.wants(t)));
    }

    #[test]
    fn parse_fails_naming_the_tenant_field() {
        let err = Subscription::parse(&request("Acme Corp", &[])).unwrap_err();

        assert!(matches!(err, FeedError::InvalidArgument { field: "tenant", .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid tenant: \"Acme Corp\" must be lowercase letters, digits, '-' or '_'"
        );
    }

    #[test]
    fn parse_fails_naming_the_event_types_field_and_the_value() {
        let err = Subscription::parse(&request("acme", &["ticket.opened", "ticket.deleted"]))
            .unwrap_err();

        assert!(matches!(err, FeedError::InvalidArgument { field: "event_types", .. }));
        assert_eq!(
            err.to_string(),
            "invalid event_types: \"ticket.deleted\" is not a known event type"
        );
    }

    #[test]
    fn parse_cuts_a_huge_event_type_in_the_message() {
        let huge = "x".repeat(50_000);
        let err = Subscription::parse(&request("acme", &[huge.as_str()])).unwrap_err();

        assert_eq!(
            err.to_string(),
            format!(
                "invalid event_types: \"{}\"... (50000 characters) is not a known event type",
                "x".repeat(64)
            )
        );
    }

    #[test]
    fn parse_refuses_the_last_position_there_is() {
        let last = pb::SubscribeRequest { after_position: u64::MAX, ..request("acme", &[]) };
        let err = Subscription::parse(&last).unwrap_err();

        assert!(matches!(err, FeedError::InvalidArgument { field: "after_position", .. }));
        assert_eq!(
            err.to_string(),
            "invalid after_position: 18446744073709551615 leaves no position after it"
        );
    }
}
