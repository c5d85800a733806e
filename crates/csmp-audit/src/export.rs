//! A tenant's events of a time range, as stored, for auditors.
//!
//! One JSON line per event, in stream order:
//!
//! ```text
//! {"position":17,"subject":"csmp.acme.ticket.<id>","event":<the stored body>}
//! ```
//!
//! `event` is the stored body byte for byte, neither decoded nor upcast, so an auditor can
//! recompute every `hash` and follow every `prev_hash` from the export alone. (A body that spans
//! several lines, which this system never writes, is compacted to keep one event per line; its
//! hash does not change, as hashes are taken over canonical JSON.) A body that is not JSON at
//! all cannot be placed in time; it is left out and its position reported in the summary.
//!
//! The range is on `recorded_at`, from `from` inclusive to `to` exclusive. JetStream can only
//! start a consumer by its own storage time, which is close to `recorded_at` but not the same
//! clock: the command service stamps `recorded_at` just before the append, and its clock may be
//! a little off the server's. So the export starts reading [`ExportQuery::clock_margin`] before
//! `from` by storage time, stops at the first event stored more than the margin after `to` (or
//! at the end of the stream), and keeps exactly the events whose `recorded_at` is in range. An
//! event whose `recorded_at` and storage time lie further apart than the margin can be missed;
//! the default margin is the clock skew the domain tolerates, five minutes.

use std::io::Write;

use async_nats::jetstream::consumer::DeliverPolicy;
use chrono::{DateTime, Duration, Utc};
use csmp_domain::TenantId;
use serde_json::Value;
use tracing::{info, warn};

use crate::error::AuditError;
use crate::read::{to_start_time, Audit, Flow};

/// How far `recorded_at` and JetStream's storage time may lie apart by default.
pub const DEFAULT_CLOCK_MARGIN: Duration = Duration::minutes(5);

/// Which events to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportQuery {
    pub tenant: TenantId,
    /// The first `recorded_at` exported.
    pub from: DateTime<Utc>,
    /// The first `recorded_at` past the range.
    pub to: DateTime<Utc>,
    /// How far `recorded_at` and storage time may lie apart; see the module doc.
    pub clock_margin: Duration,
}

impl ExportQuery {
    /// The events of `tenant` recorded in `[from, to)`, with the default clock margin.
    pub fn new(tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        ExportQuery { tenant, from, to, clock_margin: DEFAULT_CLOCK_MARGIN }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Lines written.
    pub exported: u64,
    /// Messages read, inside the range and around it.
    pub read: u64,
    /// Positions of the first and last event exported.
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// Positions of bodies left out because they are not JSON or name no valid `recorded_at`.
    pub unreadable: Vec<u64>,
}

impl Audit {
    /// Writes the tenant's events recorded in the query's range to `out` as JSON lines (see the
    /// module doc) and returns what was written. A range whose start is not before its end is
    /// [`AuditError::InvalidRange`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(audit: csmp_audit::Audit) -> Result<(), Box<dyn std::error::Error>> {
    /// use csmp_audit::ExportQuery;
    /// use csmp_domain::TenantId;
    ///
    /// let from = "2026-03-01T00:00:00Z".parse()?;
    /// let to = "2026-04-01T00:00:00Z".parse()?;
    /// let query = ExportQuery::new(TenantId::parse("acme")?, from, to);
    /// let mut file = std::io::BufWriter::new(std::fs::File::create("acme-2026-03.jsonl")?);
    /// let summary = audit.export(&query, &mut file).await?;
    /// eprintln!("{} events", summary.exported);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn export<W: Write>(
        &self,
        query: &ExportQuery,
        out: &mut W,
    ) -> Result<ExportSummary, AuditError> {
        if query.from >= query.to {
            return Err(AuditError::InvalidRange { from: query.from, to: query.to });
        }
        let start = query.from.checked_sub_signed(query.clock_margin).unwrap_or(query.from);
        let stop = query.to.checked_add_signed(query.clock_margin).unwrap_or(query.to);
        let filter = format!("{}.{}.ticket.>", self.config().subject_prefix, query.tenant);

        let mut summary = ExportSummary::default();
        let read = self
            .scan(
                filter,
                DeliverPolicy::ByStartTime { start_time: to_start_time(start) },
                |event| {
                    if event.stored_at >= stop {
                        return Ok(Flow::Stop);
                    }
                    let Some((recorded_at, line)) =
                        export_line(event.position, &event.subject, &event.body)
                    else {
                        warn!(position = event.position, "unreadable body left out of the export");
                        summary.unreadable.push(event.position);
                        return Ok(Flow::Continue);
                    };
                    if recorded_at >= query.from && recorded_at < query.to {
                        out.write_all(line.as_bytes())?;
                        summary.exported += 1;
                        summary.first_position.get_or_insert(event.position);
                        summary.last_position = Some(event.position);
                    }
                    Ok(Flow::Continue)
                },
            )
            .await?;
        summary.read = read;
        out.flush()?;
        info!(
            tenant = %query.tenant,
            exported = summary.exported,
            read = summary.read,
            "export done"
        );
        Ok(summary)
    }
}

/// The export line of a stored body (with its line break) and the body's `recorded_at`; `None`
/// when the body is not JSON or names no valid `recorded_at`.
pub fn export_line(position: u64, subject: &str, body: &[u8]) -> Option<(DateTime<Utc>, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let recorded_at = value.get("recorded_at")?.as_str()?;
    let recorded_at = DateTime::parse_from_rfc3339(recorded_at).ok()?.with_timezone(&Utc);
    let text = std::str::from_utf8(body).ok()?.trim();
    let event = if text.contains(['\n', '\r']) { value.to_string() } else { text.to_owned() };
    let subject = Value::String(subject.to_owned());
    Some((
        recorded_at,
        format!("{{\"position\":{position},\"subject\":{subject},\"event\":{event}}}\n"),
    ))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_stored_body_goes_out_byte_for_byte() {
        let body = br#"{"version":1,"recorded_at":"2026-03-04T05:06:07Z","zeta":1.50,"alpha":2}"#;
        let (recorded_at, line) = export_line(7, "csmp.acme.ticket.x", body).unwrap();
        assert_eq!(recorded_at, Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap());
        assert_eq!(
            line,
            "{\"position\":7,\"subject\":\"csmp.acme.ticket.x\",\"event\":{\"version\":1,\
             \"recorded_at\":\"2026-03-04T05:06:07Z\",\"zeta\":1.50,\"alpha\":2}}\n"
        );
    }

    #[test]
    fn a_body_over_several_lines_is_compacted_and_one_without_a_time_is_left_out() {
        let body = b"{\n  \"recorded_at\": \"2026-03-04T05:06:07+01:00\"\n}";
        let (recorded_at, line) = export_line(1, "s", body).unwrap();
        assert_eq!(recorded_at, Utc.with_ymd_and_hms(2026, 3, 4, 4, 6, 7).unwrap());
        assert_eq!(
            line,
            "{\"position\":1,\"subject\":\"s\",\"event\":\
             {\"recorded_at\":\"2026-03-04T05:06:07+01:00\"}}\n"
        );
        assert_eq!(export_line(2, "s", b"{\"recorded_at\": 5}"), None);
        assert_eq!(export_line(3, "s", b"not json"), None);
    }
}
