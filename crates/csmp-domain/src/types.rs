//! The vocabulary of a ticket: who acts, through which channel, at which tier and priority.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::check_opaque_id;

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in events, the API and read models.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the name used in events and the API.
            pub fn parse(raw: &str) -> Result<Self, $crate::error::DomainError> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::error::DomainError::invalid(
                        $field,
                        format!(
                            "{} is not one of {}",
                            $crate::error::quoted(raw),
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// The customer's contract level; with priority it orders queues and picks SLA targets.
    CustomerTier, "customer_tier" {
        Enterprise = "enterprise",
        Business = "business",
        Standard = "standard",
    }
);

named_enum!(
    /// Where the ticket came in.
    Channel, "channel" {
        Email = "email",
        Phone = "phone",
        Chat = "chat",
        SocialMedia = "social_media",
        Web = "web",
    }
);

named_enum!(
    /// Urgency of a ticket, from `low` to `critical`; ordered so that `Critical` is greatest.
    Priority, "priority" {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
);

named_enum!(
    /// The support tier that currently owns a ticket. Tickets open at tier 1.
    SupportTier, "tier" {
        Tier1 = "tier1",
        Tier2 = "tier2",
        Tier3 = "tier3",
    }
);

named_enum!(
    /// What an actor is allowed to do.
    Role, "actor.role" {
        /// A first-line agent.
        Tier1Agent = "tier1_agent",
        /// A second-line agent.
        Tier2Agent = "tier2_agent",
        /// A third-line (engineering) agent.
        Tier3Agent = "tier3_agent",
        /// A support lead: approves refunds above an agent's limit.
        Lead = "lead",
        /// The customer who raised the ticket.
        Customer = "customer",
        /// An automated rule of the platform, such as SLA auto-escalation.
        System = "system",
        /// A bulk importer of historical tickets; may give historical event times.
        Importer = "importer",
    }
);

named_enum!(
    /// Where a ticket is in its life.
    TicketStatus, "status" {
        /// Opened, no agent has responded yet.
        New = "new",
        /// An agent has responded; work goes on.
        Open = "open",
        /// An agent asked the customer and waits for the reply.
        WaitingOnCustomer = "waiting_on_customer",
        /// Resolved; the customer may give feedback or the ticket may be reopened.
        Resolved = "resolved",
        /// Closed for good.
        Closed = "closed",
    }
);

named_enum!(
    /// An SLA promise a clock measures.
    SlaTargetKind, "target" {
        /// From opening until the first agent response.
        FirstResponse = "first_response",
        /// From a customer reply until the next agent response.
        NextResponse = "next_response",
        /// From opening until resolved, paused while waiting on the customer.
        Resolution = "resolution",
        /// For complaints: from opening until acknowledged.
        ComplaintAcknowledgement = "complaint_acknowledgement",
    }
);

named_enum!(
    /// What an SLA timer noticed about a clock.
    SlaSignalKind, "kind" {
        /// The clock passed the policy's warning share of its target.
        Warning = "warning",
        /// The clock passed its due time without being stopped.
        Breach = "breach",
    }
);

impl Role {
    /// Agents, leads and the platform's own automation act on a ticket's handling.
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            Role::Tier1Agent
                | Role::Tier2Agent
                | Role::Tier3Agent
                | Role::Lead
                | Role::System
                | Role::Importer
        )
    }

    /// Who may speak for the customer: the customer, and the importer replaying history.
    pub fn speaks_for_customer(self) -> bool {
        matches!(self, Role::Customer | Role::Importer)
    }
}

impl SupportTier {
    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            SupportTier::Tier1 => 1,
            SupportTier::Tier2 => 2,
            SupportTier::Tier3 => 3,
        }
    }
}

/// Who did something, and in which role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

impl Actor {
    pub fn new(id: &str, role: Role) -> Result<Self, DomainError> {
        check_opaque_id("actor.id", id)?;
        Ok(Actor { id: id.to_owned(), role })
    }
}
