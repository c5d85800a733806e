//! Queries over the `feedback` read model: CSAT, NPS, durations, agents and recurring issues.
//!
//! Medians and 90th percentiles are PostgreSQL's `percentile_cont` over durations in seconds.
//! The projector stores a duration only when both of its ends are known, so tickets whose
//! opening time is unknown drop out of these figures by themselves; `unknown_open_time` says how
//! many did. NPS is the share of promoters (9 and 10) minus the share of detractors (0 to 6), in
//! percent; the CSAT satisfied share is the share of ratings of 4 or 5.

use chrono::{DateTime, Duration, Utc};
use csmp_proto::v1 as pb;
use deadpool_postgres::Client;
use tonic::Status;
use uuid::Uuid;

use crate::error::db_status;

/// The SQL key of a feedback grouping.
fn group_key(grouping: pb::FeedbackGrouping) -> &'static str {
    match grouping {
        pb::FeedbackGrouping::Unspecified | pb::FeedbackGrouping::None => "'all'",
        pb::FeedbackGrouping::Day => "coalesce(to_char(resolved_day, 'YYYY-MM-DD'), 'unresolved')",
        pb::FeedbackGrouping::Channel => "channel",
        pb::FeedbackGrouping::Category => "category",
        pb::FeedbackGrouping::Product => "product",
        pb::FeedbackGrouping::Agent => "coalesce(agent, 'unassigned')",
        pb::FeedbackGrouping::Tier => "tier",
    }
}

/// Feedback figures per group. Without bounds every ticket counts; with a bound, the tickets
/// first resolved in `[from, to)`.
pub(crate) async fn summary(
    pg: &Client,
    tenant: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    grouping: pb::FeedbackGrouping,
) -> Result<pb::FeedbackSummary, Status> {
    let key = group_key(grouping);
    let sql = format!(
        "SELECT {key} AS key,
                count(*) AS tickets,
                count(csat) AS rated,
                avg(csat)::float8 AS csat_average,
                (count(*) FILTER (WHERE csat >= 4))::float8 / nullif(count(csat), 0)
                    AS satisfied,
                count(nps) AS nps_responses,
                100.0 * ((count(*) FILTER (WHERE nps >= 9)) - (count(*) FILTER (WHERE nps <= 6)))
                    ::float8 / nullif(count(nps), 0) AS nps,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_seconds) AS fr_median,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_seconds) AS fr_p90,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_seconds) AS res_median,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_seconds) AS res_p90,
                count(*) FILTER (WHERE opened_at IS NULL) AS unknown_open_time,
                count(*) FILTER (WHERE sentiment = 'positive') AS positive,
                count(*) FILTER (WHERE sentiment = 'neutral') AS neutral,
                count(*) FILTER (WHERE sentiment = 'negative') AS negative
         FROM feedback.tickets
         WHERE tenant = $1
           AND (($2::timestamptz IS NULL AND $3::timestamptz IS NULL)
                OR (resolved_at >= coalesce($2::timestamptz, '-infinity')
                    AND resolved_at < coalesce($3::timestamptz, 'infinity')))
         GROUP BY 1 ORDER BY 1"
    );
    let rows = pg.query(&sql, &[&tenant, &from, &to]).await.map_err(db_status)?;
    let groups = rows
        .iter()
        .map(|r| pb::FeedbackGroup {
            key: r.get("key"),
            tickets: r.get::<_, i64>("tickets") as u64,
            rated: r.get::<_, i64>("rated") as u64,
            csat_average: r.get("csat_average"),
            csat_satisfied_share: r.get("satisfied"),
            nps_responses: r.get::<_, i64>("nps_responses") as u64,
            nps: r.get("nps"),
            first_response_median_seconds: r.get("fr_median"),
            first_response_p90_seconds: r.get("fr_p90"),
            resolution_median_seconds: r.get("res_median"),
            resolution_p90_seconds: r.get("res_p90"),
            unknown_open_time: r.get::<_, i64>("unknown_open_time") as u64,
            positive: r.get::<_, i64>("positive") as u64,
            neutral: r.get::<_, i64>("neutral") as u64,
            negative: r.get::<_, i64>("negative") as u64,
        })
        .collect();
    Ok(pb::FeedbackSummary { groups })
}

/// The lowest rated tickets: lowest CSAT first, then lowest NPS, then the latest rated.
pub(crate) async fn lowest_rated(
    pg: &Client,
    tenant: &str,
    limit: i64,
) -> Result<pb::LowestRated, Status> {
    let rows = pg
        .query(
            "SELECT ticket_id, csat, nps, channel, category, product, agent, comment, sentiment,
                    themes
             FROM feedback.tickets WHERE tenant = $1 AND csat IS NOT NULL
             ORDER BY csat, nps NULLS LAST, rated_at DESC NULLS LAST, ticket_id LIMIT $2",
            &[&tenant, &limit],
        )
        .await
        .map_err(db_status)?;
    let tickets = rows
        .iter()
        .map(|r| pb::RatedTicket {
            ticket_id: r.get::<_, Uuid>("ticket_id").to_string(),
            csat: r.get::<_, i16>("csat") as u32,
            nps: r.get::<_, Option<i16>>("nps").map(|v| v as u32),
            channel: r.get("channel"),
            category: r.get("category"),
            product: r.get("product"),
            agent: r.get::<_, Option<String>>("agent").unwrap_or_default(),
            comment: r.get::<_, Option<String>>("comment").unwrap_or_default(),
            sentiment: r.get::<_, Option<String>>("sentiment").unwrap_or_default(),
            themes: theme_list(r.get("themes")),
        })
        .collect();
    Ok(pb::LowestRated { tickets })
}

/// The theme names of a `themes` column: sorted names joined by commas, empty for none.
fn theme_list(joined: &str) -> Vec<String> {
    joined.split(',').filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

/// The ratings a themes query counts: without bounds every rated ticket, with a bound those
/// whose rating time is known and in `[from, to)`.
const RATED_IN_RANGE: &str = "
    tenant = $1 AND csat IS NOT NULL
    AND (($2::timestamptz IS NULL AND $3::timestamptz IS NULL)
         OR (rated_at >= coalesce($2::timestamptz, '-infinity')
             AND rated_at < coalesce($3::timestamptz, 'infinity')))";

/// How often each theme is named among the rated tickets of [`RATED_IN_RANGE`], with the CSAT
/// average and negative share of those tickets, and how many ratings a bound left out because
/// their time is unknown.
pub(crate) async fn themes(
    pg: &Client,
    tenant: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<pb::FeedbackThemes, Status> {
    let counts = pg
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE {RATED_IN_RANGE}) AS rated,
                        count(*) FILTER (WHERE rated_at IS NULL
                            AND NOT ($2::timestamptz IS NULL AND $3::timestamptz IS NULL))
                            AS unknown
                 FROM feedback.tickets WHERE tenant = $1 AND csat IS NOT NULL"
            ),
            &[&tenant, &from, &to],
        )
        .await
        .map_err(db_status)?;
    let rated = counts.get::<_, i64>("rated");
    let rows = pg
        .query(
            &format!(
                "SELECT theme,
                        count(*) AS tickets,
                        avg(csat)::float8 AS csat_average,
                        (count(*) FILTER (WHERE sentiment = 'negative'))::float8 / count(*)
                            AS negative_share
                 FROM feedback.tickets,
                      unnest(string_to_array(nullif(themes, ''), ',')) AS theme
                 WHERE {RATED_IN_RANGE}
                 GROUP BY theme ORDER BY tickets DESC, theme"
            ),
            &[&tenant, &from, &to],
        )
        .await
        .map_err(db_status)?;
    let themes = rows
        .iter()
        .map(|r| {
            let tickets = r.get::<_, i64>("tickets");
            pb::ThemeFigures {
                theme: r.get("theme"),
                tickets: tickets as u64,
                share_of_rated: tickets as f64 / rated as f64,
                csat_average: r.get("csat_average"),
                negative_share: r.get("negative_share"),
            }
        })
        .collect();
    Ok(pb::FeedbackThemes {
        themes,
        rated: rated as u64,
        unknown_rating_time: counts.get::<_, i64>("unknown") as u64,
    })
}

/// Fewest tickets in the recent window for "rising volume".
const RISING_MIN_TICKETS: u64 = 3;
/// Drop of the average CSAT between the windows for "falling csat".
const FALLING_CSAT_DROP: f64 = 0.5;

/// Categories and products whose volume rose by half or more (and to at least three tickets),
/// or whose average CSAT fell by half a point or more, in the `window` before `now` compared
/// with the window before it. A ticket counts at its opening time, or its first response or
/// resolution when the opening time is unknown.
pub(crate) async fn recurring(
    pg: &Client,
    tenant: &str,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<pb::RecurringIssues, Status> {
    let recent_start = now - window;
    let previous_start = recent_start - window;
    let rows = pg
        .query(
            "WITH seen AS (
                 SELECT category, product, csat,
                        coalesce(opened_at, first_response_at, resolved_at) AS at
                 FROM feedback.tickets WHERE tenant = $1
             ), keyed AS (
                 SELECT 'category' AS dimension, category AS key, at, csat FROM seen
                 UNION ALL
                 SELECT 'product', product, at, csat FROM seen
             )
             SELECT dimension, key,
                    count(*) FILTER (WHERE at >= $2) AS recent,
                    count(*) FILTER (WHERE at < $2) AS previous,
                    (avg(csat) FILTER (WHERE at >= $2))::float8 AS recent_csat,
                    (avg(csat) FILTER (WHERE at < $2))::float8 AS previous_csat
             FROM keyed WHERE at >= $3 AND at < $4
             GROUP BY dimension, key",
            &[&tenant, &recent_start, &previous_start, &now],
        )
        .await
        .map_err(db_status)?;
    let mut issues: Vec<pb::RecurringIssue> = rows
        .iter()
        .filter_map(|r| {
            let recent = r.get::<_, i64>("recent") as u64;
            let previous = r.get::<_, i64>("previous") as u64;
            let recent_csat: Option<f64> = r.get("recent_csat");
            let previous_csat: Option<f64> = r.get("previous_csat");
            let mut signals = Vec::new();
            if recent >= RISING_MIN_TICKETS && recent * 2 >= previous * 3 && recent > previous {
                signals.push("rising volume");
            }
            if let (Some(now), Some(before)) = (recent_csat, previous_csat) {
                if now <= before - FALLING_CSAT_DROP {
                    signals.push("falling csat");
                }
            }
            (!signals.is_empty()).then(|| pb::RecurringIssue {
                dimension: r.get("dimension"),
                key: r.get("key"),
                recent_tickets: recent,
                previous_tickets: previous,
                recent_csat,
                previous_csat,
                signal: signals.join(", "),
            })
        })
        .collect();
    issues.sort_by(|a, b| {
        b.recent_tickets
            .cmp(&a.recent_tickets)
            .then_with(|| a.dimension.cmp(&b.dimension))
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(pb::RecurringIssues { issues })
}

/// Per agent: first responses, first resolutions and escalations in `[from, to)`, and the
/// ratings of tickets resolved then.
pub(crate) async fn agents(
    pg: &Client,
    tenant: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<pb::AgentPerformance, Status> {
    let within = |column: &str| {
        format!(
            "{column} >= coalesce($2::timestamptz, '-infinity') \
             AND {column} < coalesce($3::timestamptz, 'infinity')"
        )
    };
    let sql = format!(
        "WITH acknowledged AS (
             SELECT acknowledged_by AS agent, count(*) AS n,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_seconds) AS median
             FROM feedback.tickets
             WHERE tenant = $1 AND acknowledged_by IS NOT NULL AND {ack}
             GROUP BY 1
         ), resolved AS (
             SELECT resolved_by AS agent, count(*) AS n,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_seconds) AS median
             FROM feedback.tickets
             WHERE tenant = $1 AND resolved_by IS NOT NULL AND {res}
             GROUP BY 1
         ), rated AS (
             SELECT agent, count(*) AS n, avg(csat)::float8 AS csat
             FROM feedback.tickets
             WHERE tenant = $1 AND agent IS NOT NULL AND csat IS NOT NULL AND {res}
             GROUP BY 1
         ), escalated AS (
             SELECT agent, count(*) AS n FROM feedback.escalations
             WHERE tenant = $1 AND {esc}
             GROUP BY 1
         ), agents AS (
             SELECT agent FROM acknowledged UNION SELECT agent FROM resolved
             UNION SELECT agent FROM rated UNION SELECT agent FROM escalated
         )
         SELECT a.agent, coalesce(ack.n, 0) AS acknowledged, coalesce(res.n, 0) AS resolved,
                coalesce(esc.n, 0) AS escalated, coalesce(rated.n, 0) AS rated,
                rated.csat, ack.median AS fr_median, res.median AS res_median
         FROM agents a
         LEFT JOIN acknowledged ack USING (agent)
         LEFT JOIN resolved res USING (agent)
         LEFT JOIN rated USING (agent)
         LEFT JOIN escalated esc USING (agent)
         ORDER BY a.agent",
        ack = within("first_response_at"),
        res = within("resolved_at"),
        esc = within("occurred_at"),
    );
    let rows = pg.query(&sql, &[&tenant, &from, &to]).await.map_err(db_status)?;
    let agents = rows
        .iter()
        .map(|r| pb::AgentFigures {
            agent: r.get("agent"),
            acknowledged: r.get::<_, i64>("acknowledged") as u64,
            resolved: r.get::<_, i64>("resolved") as u64,
            escalated: r.get::<_, i64>("escalated") as u64,
            rated: r.get::<_, i64>("rated") as u64,
            csat_average: r.get("csat"),
            first_response_median_seconds: r.get("fr_median"),
            resolution_median_seconds: r.get("res_median"),
        })
        .collect();
    Ok(pb::AgentPerformance { agents })
}
