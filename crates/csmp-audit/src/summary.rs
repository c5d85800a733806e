//! The short human summary of an event ("what") and its stated reason ("why").
//!
//! Both read the payload as JSON rather than the typed structs, so that a field added by a newer
//! schema version shows up without a change here and a missing one leaves a `?` instead of
//! failing. Summaries are one line: free text in them is clipped and line breaks are escaped.

use csmp_domain::Money;
use serde_json::Value;

/// How many characters of a question or reply a summary quotes.
const QUOTE_CHARS: usize = 60;

/// A one-line description of what the event did, from its type and payload.
pub fn summary(event_type: &str, payload: &Value) -> String {
    let text = |field: &str| field_text(payload, field);
    match event_type {
        "ticket.opened" => {
            let complaint = if payload.get("is_complaint") == Some(&Value::Bool(true)) {
                ", complaint"
            } else {
                ""
            };
            format!(
                "opened {} {} ticket {} for customer {} ({}) via {}{complaint}",
                text("priority"),
                text("category"),
                quote(&text("subject")),
                text("customer_id"),
                text("customer_tier"),
                text("channel"),
            )
        }
        "ticket.acknowledged" => format!("first response by {}", text("agent_id")),
        "ticket.assigned" => match payload.get("previous").and_then(Value::as_str) {
            Some(previous) => format!("assigned to {} (was {previous})", text("agent_id")),
            None => format!("assigned to {}", text("agent_id")),
        },
        "ticket.priority_changed" => format!("priority {} -> {}", text("from"), text("to")),
        "ticket.escalated" => format!("escalated {} -> {}", text("from"), text("to")),
        "ticket.customer_asked" => format!("asked the customer {}", quote(&text("question"))),
        "ticket.customer_replied" => format!("customer replied {}", quote(&text("message"))),
        "ticket.resolved" => "resolved".to_owned(),
        "ticket.reopened" => "reopened".to_owned(),
        "ticket.closed" => "closed".to_owned(),
        "refund.issued" => format!("refund {} of {} issued", text("refund_id"), amount(payload)),
        "refund.requested" => {
            let limit = payload.get("actor_limit_minor").and_then(Value::as_i64);
            let limit = match (limit, money(payload)) {
                (Some(limit), Some(asked)) => {
                    Money { amount_minor: limit, currency: asked.currency }.to_string()
                }
                _ => "?".to_owned(),
            };
            format!(
                "refund {} of {} requested for a lead's approval (limit {limit})",
                text("refund_id"),
                amount(payload)
            )
        }
        "refund.approved" => {
            format!("refund {} of {} approved", text("refund_id"), amount(payload))
        }
        "refund.rejected" => {
            format!("refund {} of {} rejected", text("refund_id"), amount(payload))
        }
        "feedback.given" => feedback(payload),
        "sla.warning_reached" | "sla.breached" => {
            let what = if event_type == "sla.breached" { "breached" } else { "warning" };
            format!(
                "SLA {what}: {} cycle {} due {} (policy version {})",
                text("target"),
                text("cycle"),
                text("due_at"),
                text("policy_version")
            )
        }
        other => format!("{other} {}", one_line(&payload.to_string())),
    }
}

/// A rating as one line: `CSAT 4/5, NPS 9, positive, themes billing, response_time, for
/// resolution 1`. Parts the payload lacks are left out.
pub fn feedback(payload: &Value) -> String {
    let mut parts = vec![format!("CSAT {}/5", field_text(payload, "csat"))];
    if let Some(nps) = payload.get("nps").filter(|nps| !nps.is_null()) {
        parts.push(format!("NPS {nps}"));
    }
    if let Some(sentiment) = payload.get("sentiment").and_then(Value::as_str) {
        parts.push(sentiment.to_owned());
    }
    if let Some(themes) = payload.get("themes").and_then(Value::as_array) {
        let names: Vec<&str> = themes.iter().filter_map(Value::as_str).collect();
        if !names.is_empty() {
            parts.push(format!("themes {}", names.join(", ")));
        }
    }
    parts.push(format!("for resolution {}", field_text(payload, "resolution_cycle")));
    parts.join(", ")
}

/// The reason the event states for itself, on one line: the `reason` of priority changes,
/// escalations, reopenings and refunds, the `resolution_summary` of a resolution, the `comment`
/// of feedback. `None` when the event type has no such field or it is empty.
pub fn why(event_type: &str, payload: &Value) -> Option<String> {
    let field = match event_type {
        "ticket.resolved" => "resolution_summary",
        "feedback.given" => "comment",
        _ => "reason",
    };
    payload.get(field).and_then(Value::as_str).filter(|text| !text.trim().is_empty()).map(one_line)
}

/// Line breaks and other control characters escaped, so that free text stays on its line.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

fn field_text(payload: &Value, field: &str) -> String {
    match payload.get(field) {
        Some(Value::String(text)) => one_line(text),
        Some(Value::Null) | None => "?".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn money(payload: &Value) -> Option<Money> {
    payload.get("amount").and_then(|amount| serde_json::from_value(amount.clone()).ok())
}

fn amount(payload: &Value) -> String {
    money(payload).map_or_else(|| "?".to_owned(), |money| money.to_string())
}

/// `text` in double quotes, clipped to [`QUOTE_CHARS`] characters with an ellipsis.
fn quote(text: &str) -> String {
    if text.chars().count() <= QUOTE_CHARS {
        return format!("\"{text}\"");
    }
    let clipped: String = text.chars().take(QUOTE_CHARS).collect();
    format!("\"{clipped}...\"")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn refunds_show_their_amount_in_major_units() {
        let payload = json!({
            "refund_id": "r-1",
            "amount": {"amount_minor": 1250, "currency": "EUR"},
            "reason": "double charge",
        });
        assert_eq!(summary("refund.issued", &payload), "refund r-1 of 12.50 EUR issued");
        assert_eq!(why("refund.issued", &payload).as_deref(), Some("double charge"));
        let requested = json!({
            "refund_id": "r-2",
            "amount": {"amount_minor": 9000, "currency": "USD"},
            "reason": "outage",
            "actor_limit_minor": 5000,
        });
        assert_eq!(
            summary("refund.requested", &requested),
            "refund r-2 of 90.00 USD requested for a lead's approval (limit 50.00 USD)"
        );
    }

    #[test]
    fn feedback_names_what_the_payload_has() {
        let v1 = json!({"csat": 2, "nps": null, "comment": null, "resolution_cycle": 1});
        assert_eq!(summary("feedback.given", &v1), "CSAT 2/5, for resolution 1");
        assert_eq!(why("feedback.given", &v1), None);
        let v2 = json!({
            "csat": 5, "nps": 9, "comment": "quick\nfix", "resolution_cycle": 2,
            "sentiment": "positive", "themes": ["response_time"],
        });
        assert_eq!(
            summary("feedback.given", &v2),
            "CSAT 5/5, NPS 9, positive, themes response_time, for resolution 2"
        );
        assert_eq!(why("feedback.given", &v2).as_deref(), Some("quick\\nfix"));
        assert_eq!(one_line("café\tau\u{7}lait"), "café\\tau\\u{7}lait");
    }

    #[test]
    fn long_quotes_are_clipped_and_missing_fields_show_a_question_mark() {
        let question = "a".repeat(61);
        let payload = json!({ "question": question });
        assert_eq!(
            summary("ticket.customer_asked", &payload),
            format!("asked the customer \"{}...\"", "a".repeat(60))
        );
        assert_eq!(summary("ticket.escalated", &json!({"to": "tier2"})), "escalated ? -> tier2");
        assert_eq!(why("ticket.escalated", &json!({"reason": "  "})), None);
    }
}
