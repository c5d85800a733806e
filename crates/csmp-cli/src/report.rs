//! The shift report, read entirely from the query API.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use csmp_proto::v1::ticket_queries_client::TicketQueriesClient;
use csmp_proto::v1::{self as pb, list_sla_tickets_request::Kind};
use tonic::transport::Channel;
use tonic::Code;

/// Waits until every projector has applied `position`, so that the report sees all the work.
pub async fn wait_for_projections(
    client: &mut TicketQueriesClient<Channel>,
    position: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client
            .get_projector_status(pb::ProjectorStatusRequest {})
            .await
            .context("failed to read projector status")?
            .into_inner();
        let behind: Vec<_> = status.projectors.iter().filter(|p| p.checkpoint < position).collect();
        if behind.is_empty() && !status.projectors.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let names: Vec<_> =
                behind.iter().map(|p| format!("{} at {}", p.name, p.checkpoint)).collect();
            bail!("projectors did not reach position {position} in time: {}", names.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One tenant's section of the report.
pub async fn tenant_section(
    client: &mut TicketQueriesClient<Channel>,
    tenant: &str,
    title: &str,
) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "\n== {title} (tenant {tenant}) ==")?;

    // 1. Tickets by status and tier.
    let counts = client
        .count_tickets(pb::CountTicketsRequest { tenant: tenant.to_owned(), min_position: 0 })
        .await
        .map_err(status_error("count tickets"))?
        .into_inner();
    writeln!(out, "\nTickets by status and tier ({} in all)", counts.total)?;
    writeln!(out, "  {:<22}{:>8}{:>8}{:>8}{:>8}", "status", "tier 1", "tier 2", "tier 3", "all")?;
    for status in [
        pb::TicketStatus::New,
        pb::TicketStatus::Open,
        pb::TicketStatus::WaitingOnCustomer,
        pb::TicketStatus::Resolved,
        pb::TicketStatus::Closed,
    ] {
        let per_tier: Vec<u64> = [1, 2, 3]
            .iter()
            .map(|tier| {
                counts
                    .counts
                    .iter()
                    .filter(|c| c.status == status as i32 && c.tier == *tier)
                    .map(|c| c.count)
                    .sum()
            })
            .collect();
        let all: u64 = per_tier.iter().sum();
        writeln!(
            out,
            "  {:<22}{:>8}{:>8}{:>8}{:>8}",
            status_name(status as i32),
            per_tier[0],
            per_tier[1],
            per_tier[2],
            all
        )?;
    }

    // 2. The head of each tier's queue.
    for tier in [1, 2, 3] {
        let page = client
            .list_queue(pb::ListQueueRequest {
                tenant: tenant.to_owned(),
                tier,
                page_size: 3,
                ..Default::default()
            })
            .await
            .map_err(status_error("list queue"))?
            .into_inner();
        writeln!(out, "\nHead of the tier {tier} queue")?;
        let now = chrono::Utc::now();
        if page.tickets.is_empty() {
            writeln!(out, "  (empty)")?;
        }
        for t in page.tickets {
            writeln!(
                out,
                "  {}  {:<9}{:<11}{:<20}{:<22}{}",
                t.ticket_id,
                priority_name(t.priority),
                customer_tier_name(t.customer_tier),
                status_name(t.status),
                sla_state(&t, now),
                t.subject
            )?;
        }
    }

    // 3. SLA.
    let sla_total = |kind: Kind| {
        let mut client = client.clone();
        let tenant = tenant.to_owned();
        async move {
            client
                .list_sla_tickets(pb::ListSlaTicketsRequest {
                    tenant,
                    kind: kind as i32,
                    page_size: 1,
                    min_position: 0,
                })
                .await
                .map(|r| r.into_inner())
                .map_err(status_error("list SLA tickets"))
        }
    };
    let at_risk = sla_total(Kind::AtRisk).await?.total;
    let breached = sla_total(Kind::Breached).await?;
    writeln!(
        out,
        "\nSLA now: {} at risk, {} past a due time (measured at report time)",
        tickets(at_risk),
        breached.total
    )?;
    writeln!(
        out,
        "SLA signals the timer has recorded as events: {} warnings, {} breaches",
        breached.warnings_recorded, breached.breaches_recorded
    )?;

    // 4. Feedback and durations.
    let overall = feedback(client, tenant, pb::FeedbackGrouping::None).await?;
    if let Some(all) = overall.groups.first() {
        writeln!(
            out,
            "\nFeedback: {} rated of {} tickets, CSAT average {}, satisfied (4-5) {}, NPS {} \
             ({} answers)",
            all.rated,
            all.tickets,
            opt(all.csat_average, 2),
            percent(all.csat_satisfied_share),
            opt(all.nps, 1),
            all.nps_responses
        )?;
        writeln!(
            out,
            "First response: median {}, p90 {}; resolution: median {}, p90 {}",
            duration(all.first_response_median_seconds),
            duration(all.first_response_p90_seconds),
            duration(all.resolution_median_seconds),
            duration(all.resolution_p90_seconds)
        )?;
        if all.unknown_open_time > 0 {
            writeln!(
                out,
                "  ({} tickets left out of durations: their opening time is unknown)",
                all.unknown_open_time
            )?;
        }
        writeln!(
            out,
            "Sentiment: {} positive, {} neutral, {} negative",
            all.positive, all.neutral, all.negative
        )?;
    }
    let themes = client
        .get_feedback_themes(pb::FeedbackThemesRequest {
            tenant: tenant.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(status_error("feedback themes"))?
        .into_inner();
    if !themes.themes.is_empty() {
        writeln!(
            out,
            "\nFeedback themes ({} rated tickets; a rating names several themes or none)",
            themes.rated
        )?;
        writeln!(
            out,
            "  {:<22}{:>8}{:>10}{:>8}{:>10}",
            "theme", "tickets", "of rated", "CSAT", "negative"
        )?;
        for t in &themes.themes {
            writeln!(
                out,
                "  {:<22}{:>8}{:>10}{:>8.2}{:>10}",
                t.theme,
                t.tickets,
                percent(Some(t.share_of_rated)),
                t.csat_average,
                percent(Some(t.negative_share))
            )?;
        }
    }
    for (grouping, name) in
        [(pb::FeedbackGrouping::Channel, "channel"), (pb::FeedbackGrouping::Category, "category")]
    {
        let summary = feedback(client, tenant, grouping).await?;
        writeln!(out, "\nCSAT and NPS by {name}")?;
        writeln!(out, "  {:<22}{:>8}{:>8}{:>8}{:>8}", name, "tickets", "rated", "CSAT", "NPS")?;
        for g in summary.groups {
            writeln!(
                out,
                "  {:<22}{:>8}{:>8}{:>8}{:>8}",
                g.key,
                g.tickets,
                g.rated,
                opt(g.csat_average, 2),
                opt(g.nps, 1)
            )?;
        }
    }

    // 5. Agents: who acknowledged, resolved and escalated what; the SLA timer's escalations
    // appear under its own name.
    let agents = client
        .get_agent_performance(pb::AgentPerformanceRequest {
            tenant: tenant.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(status_error("agent performance"))?
        .into_inner();
    if !agents.agents.is_empty() {
        writeln!(out, "\nAgents")?;
        writeln!(
            out,
            "  {:<16}{:>8}{:>10}{:>11}{:>8}{:>8}{:>16}{:>14}",
            "agent",
            "acked",
            "resolved",
            "escalated",
            "rated",
            "CSAT",
            "first response",
            "resolution"
        )?;
        for a in &agents.agents {
            writeln!(
                out,
                "  {:<16}{:>8}{:>10}{:>11}{:>8}{:>8}{:>16}{:>14}",
                a.agent,
                a.acknowledged,
                a.resolved,
                a.escalated,
                a.rated,
                opt(a.csat_average, 2),
                duration(a.first_response_median_seconds),
                duration(a.resolution_median_seconds)
            )?;
        }
        writeln!(
            out,
            "  (a rating counts for the agent who acknowledged the ticket, else who resolved it; \
             first response and resolution: medians of the tickets they acknowledged, resolved)"
        )?;
    }

    // 6. Refunds.
    let refunds = client
        .get_refund_summary(pb::RefundSummaryRequest { tenant: tenant.to_owned(), min_position: 0 })
        .await
        .map_err(status_error("refund summary"))?
        .into_inner();
    writeln!(out, "\nRefunds")?;
    if refunds.currencies.is_empty() {
        writeln!(out, "  none")?;
    }
    for r in refunds.currencies {
        writeln!(
            out,
            "  {}: issued {} ({}), awaiting approval {} ({}), rejected {}",
            r.currency,
            r.issued_count,
            minor(r.issued_minor),
            r.awaiting_count,
            minor(r.awaiting_minor),
            r.rejected_count
        )?;
    }
    Ok(out)
}

/// The projectors' positions against the stream.
pub async fn projector_section(
    client: &mut TicketQueriesClient<Channel>,
) -> anyhow::Result<String> {
    let status = client
        .get_projector_status(pb::ProjectorStatusRequest {})
        .await
        .map_err(status_error("projector status"))?
        .into_inner();
    let mut out = String::from("\n== Projectors ==\n");
    for p in status.projectors {
        writeln!(
            out,
            "  {:<10} checkpoint {:>8} of {:>8}, lag {}, dead letters {}",
            p.name, p.checkpoint, p.stream_last_position, p.lag, p.dead_letters
        )?;
    }
    Ok(out)
}

async fn feedback(
    client: &mut TicketQueriesClient<Channel>,
    tenant: &str,
    group_by: pb::FeedbackGrouping,
) -> anyhow::Result<pb::FeedbackSummary> {
    Ok(client
        .get_feedback_summary(pb::FeedbackSummaryRequest {
            tenant: tenant.to_owned(),
            group_by: group_by as i32,
            ..Default::default()
        })
        .await
        .map_err(status_error("feedback summary"))?
        .into_inner())
}

fn status_error(what: &'static str) -> impl Fn(tonic::Status) -> anyhow::Error {
    move |status| {
        let code: Code = status.code();
        anyhow::anyhow!("query API refused {what}: {code:?}: {}", status.message())
    }
}

fn status_name(status: i32) -> &'static str {
    match pb::TicketStatus::try_from(status) {
        Ok(pb::TicketStatus::New) => "new",
        Ok(pb::TicketStatus::Open) => "open",
        Ok(pb::TicketStatus::WaitingOnCustomer) => "waiting on customer",
        Ok(pb::TicketStatus::Resolved) => "resolved",
        Ok(pb::TicketStatus::Closed) => "closed",
        _ => "unknown",
    }
}

fn priority_name(priority: i32) -> &'static str {
    match pb::Priority::try_from(priority) {
        Ok(pb::Priority::Critical) => "critical",
        Ok(pb::Priority::High) => "high",
        Ok(pb::Priority::Medium) => "medium",
        Ok(pb::Priority::Low) => "low",
        _ => "unknown",
    }
}

fn customer_tier_name(tier: i32) -> &'static str {
    match pb::CustomerTier::try_from(tier) {
        Ok(pb::CustomerTier::Enterprise) => "enterprise",
        Ok(pb::CustomerTier::Business) => "business",
        Ok(pb::CustomerTier::Standard) => "standard",
        _ => "unknown",
    }
}

/// A queue row's SLA at `now`: its earliest running due time, or why none runs.
fn sla_state(t: &pb::TicketSummary, now: chrono::DateTime<chrono::Utc>) -> String {
    match t.sla_due_at {
        Some(ts) if ts.seconds < now.timestamp() => format!("over{}", format_ts(&ts)),
        Some(ts) => format_ts(&ts),
        // Imported tickets were opened at an unknown time: nothing to measure from.
        None if t.opened_at.is_none() => "no SLA clock".to_owned(),
        // Waiting on the customer pauses the clocks.
        None if t.status == pb::TicketStatus::WaitingOnCustomer as i32 => "SLA paused".to_owned(),
        None => "no running SLA clock".to_owned(),
    }
}

fn format_ts(ts: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(ts.seconds, 0)
        .map_or_else(|| "invalid time".to_owned(), |t| format!("due {}", t.format("%H:%M:%S UTC")))
}

/// "1 ticket", "2 tickets".
fn tickets(count: u64) -> String {
    if count == 1 {
        "1 ticket".to_owned()
    } else {
        format!("{count} tickets")
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

fn minor(amount: i64) -> String {
    format!("{}.{:02}", amount / 100, (amount % 100).abs())
}

/// A duration in seconds, shown in the largest unit that keeps it readable.
fn duration(seconds: Option<f64>) -> String {
    let Some(s) = seconds else {
        return "-".to_owned();
    };
    if s < 120.0 {
        format!("{s:.0}s")
    } else if s < 7_200.0 {
        format!("{:.1}min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1}h", s / 3_600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration(None), "-");
        assert_eq!(duration(Some(59.4)), "59s");
        assert_eq!(duration(Some(150.0)), "2.5min");
        assert_eq!(duration(Some(5_400.0)), "90.0min");
        assert_eq!(duration(Some(36_000.0)), "10.0h");
        assert_eq!(duration(Some(259_200.0)), "3.0d");
    }

    #[test]
    fn ticket_counts_agree_in_number() {
        assert_eq!(tickets(0), "0 tickets");
        assert_eq!(tickets(1), "1 ticket");
        assert_eq!(tickets(2), "2 tickets");
    }

    #[test]
    fn queue_rows_say_why_no_sla_clock_runs() {
        let due = prost_types::Timestamp { seconds: 1_764_000_000, nanos: 0 };
        let opened = Some(prost_types::Timestamp { seconds: 1_763_990_000, nanos: 0 });
        let row = |status: pb::TicketStatus, opened_at, sla_due_at| pb::TicketSummary {
            status: status as i32,
            opened_at,
            sla_due_at,
            ..Default::default()
        };
        let now = chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let state = |t: pb::TicketSummary| sla_state(&t, now);
        assert_eq!(state(row(pb::TicketStatus::Open, opened, Some(due))), "due 16:00:00 UTC");
        let earlier = prost_types::Timestamp { seconds: 1_763_999_999, nanos: 0 };
        assert_eq!(
            state(row(pb::TicketStatus::Open, opened, Some(earlier))),
            "overdue 15:59:59 UTC"
        );
        assert_eq!(state(row(pb::TicketStatus::New, None, None)), "no SLA clock");
        assert_eq!(state(row(pb::TicketStatus::WaitingOnCustomer, opened, None)), "SLA paused");
        assert_eq!(state(row(pb::TicketStatus::WaitingOnCustomer, None, None)), "no SLA clock");
        assert_eq!(state(row(pb::TicketStatus::Open, opened, None)), "no running SLA clock");
    }

    #[test]
    fn minor_units_print_with_two_decimals() {
        assert_eq!(minor(12_345), "123.45");
        assert_eq!(minor(5), "0.05");
    }
}
