//! What a request fixes of the event it records, so that a request id sent again can be told
//! apart from a request id reused for something else.
//!
//! A retry carries the same actor and the same command as the first try; the event recorded then
//! holds the same values. [`command_fingerprint`] digests those values from the command,
//! [`event_fingerprint`] from the recorded event, and the two agree exactly when the retry asks
//! for what was recorded. Values the ticket's state adds to the event (the tier escalated from,
//! the amount an approval names, the resolution cycle a rating belongs to, the actor's refund
//! limit) are left out: they are not the caller's to repeat. The command's kind is left out too:
//! a caller compares digests after checking that the recorded event type is one the command
//! records.
//!
//! The digests live in memory only, rebuilt from the history whenever a ticket is loaded, so
//! they need to be stable within one process and no longer.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::command::Command;
use crate::event::{EventEnvelope, EventPayload};
use crate::feedback::feedback_themes;
use crate::types::{Actor, SlaSignalKind};

/// The digest of what `command`, sent by `actor`, fixes of the event it records.
pub fn command_fingerprint(command: &Command, actor: &Actor) -> u64 {
    let mut h = DefaultHasher::new();
    actor.hash(&mut h);
    match command {
        // The ticket trims these three texts when it records them.
        Command::Open(o) => (
            (&o.customer_id, o.customer_tier, o.channel, o.priority, o.is_complaint),
            (o.category.trim(), o.subject.trim(), o.product.trim(), &o.description),
        )
            .hash(&mut h),
        Command::Acknowledge | Command::Close => {}
        Command::Assign { agent_id } => agent_id.hash(&mut h),
        Command::ChangePriority { priority, reason } => (priority, reason).hash(&mut h),
        Command::Escalate { to, reason } => (to, reason).hash(&mut h),
        Command::AskCustomer { question } => question.hash(&mut h),
        Command::CustomerReply { message } => message.hash(&mut h),
        Command::Resolve { resolution_summary } => resolution_summary.hash(&mut h),
        Command::Reopen { reason } => reason.hash(&mut h),
        Command::Refund { refund_id, amount, reason } => (refund_id, amount, reason).hash(&mut h),
        Command::ApproveRefund { refund_id } => refund_id.hash(&mut h),
        Command::RejectRefund { refund_id, reason } => (refund_id, reason).hash(&mut h),
        Command::GiveFeedback { csat, nps, comment, themes } => {
            (csat, nps, comment).hash(&mut h);
            feedback_themes(themes, comment.as_deref()).hash(&mut h);
        }
        Command::RecordSlaSignal { target, cycle, kind, due_at, policy_version } => {
            (target, cycle, kind, due_at, policy_version).hash(&mut h);
        }
    }
    h.finish()
}

/// The digest of what the request behind `event` fixed of it: equal to the
/// [`command_fingerprint`] of that request.
pub fn event_fingerprint(event: &EventEnvelope) -> u64 {
    let mut h = DefaultHasher::new();
    event.actor.hash(&mut h);
    match &event.payload {
        EventPayload::Opened(o) => (
            (&o.customer_id, o.customer_tier, o.channel, o.priority, o.is_complaint),
            (o.category.as_str(), o.subject.as_str(), o.product.as_str(), &o.description),
        )
            .hash(&mut h),
        EventPayload::Acknowledged(_) | EventPayload::Closed(_) => {}
        EventPayload::Assigned(e) => e.agent_id.hash(&mut h),
        EventPayload::PriorityChanged(e) => (&e.to, &e.reason).hash(&mut h),
        EventPayload::Escalated(e) => (&e.to, &e.reason).hash(&mut h),
        EventPayload::CustomerAsked(e) => e.question.hash(&mut h),
        EventPayload::CustomerReplied(e) => e.message.hash(&mut h),
        EventPayload::Resolved(e) => e.resolution_summary.hash(&mut h),
        EventPayload::Reopened(e) => e.reason.hash(&mut h),
        EventPayload::RefundIssued(e) => (&e.refund_id, &e.amount, &e.reason).hash(&mut h),
        EventPayload::RefundRequested(e) => (&e.refund_id, &e.amount, &e.reason).hash(&mut h),
        EventPayload::RefundApproved(e) => e.refund_id.hash(&mut h),
        EventPayload::RefundRejected(e) => (&e.refund_id, &e.reason).hash(&mut h),
        EventPayload::FeedbackGiven(e) => {
            (&e.csat, &e.nps, &e.comment).hash(&mut h);
            e.themes.hash(&mut h);
        }
        EventPayload::SlaWarningReached(s) | EventPayload::SlaBreached(s) => {
            let kind = match event.payload {
                EventPayload::SlaWarningReached(_) => SlaSignalKind::Warning,
                _ => SlaSignalKind::Breach,
            };
            (&s.target, &s.cycle, &kind, &s.due_at, &s.policy_version).hash(&mut h);
        }
    }
    h.finish()
}
