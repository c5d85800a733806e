//! Holidays from an iCalendar (RFC 5545) file: a small, strict reader of `VEVENT` dates.
//!
//! Owns turning calendar text into the local dates a [`crate::Calendar`] takes as holidays, and
//! nothing else: no recurrence, no alarms, no writing. Every error names the 1-based input line
//! it is about.
//!
//! What is read, per `VEVENT` directly inside `VCALENDAR`:
//! - all-day events, `DTSTART;VALUE=DATE:20261225` (a bare eight-digit date is read the same),
//!   with an optional exclusive `DTEND;VALUE=DATE` or a `DURATION` of whole days or weeks;
//!   no end means one day;
//! - timed events, `DTSTART:20261224T130000Z`, with `TZID=<IANA name>`, or floating (taken as
//!   the calendar's local time); each local date in the calendar's zone that the event touches
//!   is a holiday, an end at exactly local midnight not counting that date;
//! - `STATUS:CANCELLED` events are skipped.
//!
//! Refused with an error: `RRULE` and `RDATE` (recurring holidays must be listed date by
//! date), `TZID`s that are not IANA names (Windows names from some exporters), malformed
//! dates, an end before its start, events longer than 366 days, unbalanced `BEGIN`/`END`.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::CalendarError;

/// Longest event accepted, in days.
const MAX_EVENT_DAYS: i64 = 366;

/// The local dates in `zone` that the events of `text` mark as holidays.
pub fn holiday_dates(text: &str, zone: Tz) -> Result<BTreeSet<NaiveDate>, CalendarError> {
    let mut dates = BTreeSet::new();
    // Open components with the line of their BEGIN, outermost first.
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut event: Option<Event> = None;
    let mut closed = false;
    let mut last_line = 0;

    for line in unfold(text) {
        last_line = line.number;
        if closed {
            return Err(error(line.number, "content after END:VCALENDAR"));
        }
        let property = ContentLine::parse(&line)?;
        match property.name.as_str() {
            "BEGIN" => {
                let component = property.value.to_ascii_uppercase();
                if open.is_empty() && component != "VCALENDAR" {
                    return Err(error(line.number, "expected BEGIN:VCALENDAR"));
                }
                if component == "VEVENT" && open.len() == 1 {
                    event = Some(Event { begin_line: line.number, ..Event::default() });
                }
                open.push((component, line.number));
            }
            "END" => {
                let component = property.value.to_ascii_uppercase();
                let Some((begun, begin_line)) = open.pop() else {
                    return Err(error(line.number, format!("END:{component} without BEGIN")));
                };
                if begun != component {
                    return Err(error(
                        line.number,
                        format!(
                            "END:{component} does not close BEGIN:{begun} of line {begin_line}"
                        ),
                    ));
                }
                if component == "VEVENT" && open.len() == 1 {
                    let done = event.take().expect("a VEVENT directly in VCALENDAR is tracked");
                    done.add_dates(&mut dates)?;
                }
                closed = open.is_empty();
            }
            _ if open.is_empty() => return Err(error(line.number, "expected BEGIN:VCALENDAR")),
            // Properties of the event itself; those of a nested VALARM are not the event's.
            _ if open.len() == 2 && open[1].0 == "VEVENT" => {
                let event = event.as_mut().expect("a VEVENT directly in VCALENDAR is tracked");
                event.take(property, line.number, zone)?;
            }
            _ => {}
        }
    }

    match open.last() {
        _ if closed => Ok(dates),
        None => Err(error(last_line.max(1), "expected BEGIN:VCALENDAR, found no content")),
        Some((name, begin_line)) => Err(error(
            last_line,
            format!("BEGIN:{name} of line {begin_line} is not closed before the end"),
        )),
    }
}

fn error(line: usize, reason: impl Into<String>) -> CalendarError {
    CalendarError::Ical { line, reason: reason.into() }
}

/// A logical line after unfolding, with the physical line it starts on.
struct Line {
    number: usize,
    text: String,
}

/// Joins folded lines (a line starting with a space or tab continues the one before) and drops
/// blank lines.
fn unfold(text: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match raw.strip_prefix([' ', '\t']) {
            Some(rest) if !lines.is_empty() => {
                lines.last_mut().expect("checked non-empty").text.push_str(rest)
            }
            _ if raw.trim().is_empty() => {}
            _ => lines.push(Line { number: index + 1, text: raw.to_owned() }),
        }
    }
    lines
}

/// `NAME;PARAM=VALUE;...:VALUE`, with the name and parameter names upper-cased.
struct ContentLine {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl ContentLine {
    fn parse(line: &Line) -> Result<ContentLine, CalendarError> {
        // The value starts at the first colon outside a quoted parameter value.
        let mut in_quotes = false;
        let mut colon = None;
        for (i, c) in line.text.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ':' if !in_quotes => {
                    colon = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(colon) = colon else {
            return Err(error(line.number, format!("expected NAME:VALUE, found {:?}", line.text)));
        };
        let (head, value) = (&line.text[..colon], &line.text[colon + 1..]);

        let mut parts = split_unquoted(head, ';').into_iter();
        let name = parts.next().unwrap_or_default().to_ascii_uppercase();
        let name_ok =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !name_ok {
            return Err(error(line.number, format!("{name:?} is not a property name")));
        }
        let params = parts
            .map(|param| match param.split_once('=') {
                Some((key, val)) => {
                    Ok((key.to_ascii_uppercase(), val.trim_matches('"').to_owned()))
                }
                None => Err(error(line.number, format!("parameter {param:?} has no value"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(ContentLine { name, params, value: value.to_owned() })
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut in_quotes, mut start) = (false, 0);
    for (i, c) in text.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if c == separator && !in_quotes {
            parts.push(&text[start..i]);
            start = i + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A `DTSTART` or `DTEND` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Date(NaiveDate),
    /// A timed value as the calendar's local time: UTC and `TZID` values converted, floating
    /// values as written.
    Local(NaiveDateTime),
}

#[derive(Default)]
struct Event {
    begin_line: usize,
    start: Option<(When, usize)>,
    end: Option<(When, usize)>,
    duration: Option<(String, usize)>,
    cancelled: bool,
}

impl Event {
    fn take(&mut self, property: ContentLine, line: usize, zone: Tz) -> Result<(), CalendarError> {
        match property.name.as_str() {
            "DTSTART" | "DTEND" => {
                let when = parse_when(&property, zone, line)?;
                let slot = if property.name == "DTSTART" { &mut self.start } else { &mut self.end };
                if let Some((_, first)) = slot {
                    return Err(error(
                        line,
                        format!(
                            "second {} in the event; the first is on line {first}",
                            property.name
                        ),
                    ));
                }
                *slot = Some((when, line));
            }
            "DURATION" => self.duration = Some((property.value, line)),
            "STATUS" => self.cancelled = property.value.eq_ignore_ascii_case("CANCELLED"),
            "RRULE" | "RDATE" => {
                return Err(error(
                    line,
                    format!(
                        "recurring events ({}) are not supported; list each holiday date",
                        property.name
                    ),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn add_dates(self, dates: &mut BTreeSet<NaiveDate>) -> Result<(), CalendarError> {
        let Some((start, start_line)) = self.start else {
            return Err(error(self.begin_line, "the event has no DTSTART"));
        };
        if self.cancelled {
            return Ok(());
        }

        let (first, last) = match start {
            When::Date(first) => {
                let end = match (self.end, &self.duration) {
                    (Some((When::Date(end), _)), None) => end,
                    (Some((When::Local(_), line)), None) => {
                        return Err(error(line, "DTEND is a date-time but DTSTART is a date"));
                    }
                    (None, Some((text, line))) => {
                        let days = parse_duration(text, *line)?;
                        if days.num_seconds() % 86_400 != 0 {
                            return Err(error(
                                *line,
                                format!("DURATION {text} of an all-day event is not whole days"),
                            ));
                        }
                        first + days
                    }
                    (None, None) => first + Duration::days(1),
                    (Some((_, line)), Some(_)) => {
                        return Err(error(line, "an event has either DTEND or DURATION, not both"));
                    }
                };
                if end <= first {
                    let line = self.end.map_or(start_line, |(_, line)| line);
                    return Err(error(line, format!("the event ends on {end}, before it starts")));
                }
                // DTEND of an all-day event is exclusive.
                (first, end - Duration::days(1))
            }
            When::Local(begin) => {
                let end = match (self.end, &self.duration) {
                    (Some((When::Local(end), _)), None) => end,
                    (Some((When::Date(_), line)), None) => {
                        return Err(error(line, "DTEND is a date but DTSTART is a date-time"));
                    }
                    (None, Some((text, line))) => begin + parse_duration(text, *line)?,
                    (None, None) => begin,
                    (Some((_, line)), Some(_)) => {
                        return Err(error(line, "an event has either DTEND or DURATION, not both"));
                    }
                };
                if end < begin {
                    let line = self.end.map_or(start_line, |(_, line)| line);
                    return Err(error(line, format!("the event ends at {end}, before it starts")));
                }
                // An end at exactly midnight does not touch the date it opens.
                let last = if end > begin && end.time() == NaiveTime::MIN {
                    end.date() - Duration::days(1)
                } else {
                    end.date()
                };
                (begin.date(), last)
            }
        };

        if (last - first).num_days() >= MAX_EVENT_DAYS {
            return Err(error(
                start_line,
                format!("the event spans more than {MAX_EVENT_DAYS} days, from {first} to {last}"),
            ));
        }
        dates.extend(first.iter_days().take_while(|date| *date <= last));
        Ok(())
    }
}

fn parse_when(property: &ContentLine, zone: Tz, line: usize) -> Result<When, CalendarError> {
    let name = &property.name;
    let value = property.value.trim();
    let value_type = property.param("VALUE").map(str::to_ascii_uppercase);
    let is_date = match value_type.as_deref() {
        Some("DATE") => true,
        Some("DATE-TIME") => false,
        Some(other) => {
            return Err(error(
                line,
                format!("{name} has VALUE={other}; expected DATE or DATE-TIME"),
            ));
        }
        None => value.len() == 8,
    };

    if is_date {
        return parse_date(value).map(When::Date).ok_or_else(|| {
            error(line, format!("{name} value {value:?} is not a date (YYYYMMDD)"))
        });
    }

    let not_date_time =
        || error(line, format!("{name} value {value:?} is not a date-time (YYYYMMDDTHHMMSS)"));
    let (local, is_utc) = match value.strip_suffix('Z') {
        Some(rest) => (parse_date_time(rest).ok_or_else(not_date_time)?, true),
        None => (parse_date_time(value).ok_or_else(not_date_time)?, false),
    };
    let instant: Option<DateTime<Utc>> = match (property.param("TZID"), is_utc) {
        (Some(_), true) => {
            return Err(error(line, format!("{name} has both TZID and a UTC time ({value})")));
        }
        (Some(tzid), false) => {
            let source: Tz = tzid
                .parse()
                .map_err(|_| error(line, format!("TZID {tzid:?} is not an IANA time zone name")))?;
            // A skipped wall time in the source zone moves to just after the jump.
            let at = source
                .from_local_datetime(&local)
                .earliest()
                .or_else(|| source.from_local_datetime(&(local + Duration::hours(1))).earliest())
                .ok_or_else(|| error(line, format!("{value} does not exist in {tzid}")))?;
            Some(at.with_timezone(&Utc))
        }
        (None, true) => Some(local.and_utc()),
        (None, false) => None,
    };
    Ok(When::Local(match instant {
        Some(at) => at.with_timezone(&zone).naive_local(),
        None => local,
    }))
}

/// `YYYYMMDD`, exactly eight digits naming a real date.
fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(4..6)?, number(6..8)?)
}

/// `YYYYMMDDTHHMMSS`, exactly, with a real date and time.
fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let (date, time) = text.split_once('T')?;
    if time.len() != 6 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| time[range].parse::<u32>().ok();
    let time = NaiveTime::from_hms_opt(number(0..2)?, number(2..4)?, number(4..6)?)?;
    Some(parse_date(date)?.and_time(time))
}

/// An RFC 5545 duration without sign: `P2D`, `P1W`, `PT8H`, `P1DT12H30M`.
fn parse_duration(text: &str, line: usize) -> Result<Duration, CalendarError> {
    let invalid =
        || error(line, format!("DURATION {text:?} is not a duration such as P1D or PT8H"));
    let rest = text.trim().strip_prefix('+').unwrap_or(text.trim());
    let rest = rest.strip_prefix('P').ok_or_else(invalid)?;
    let (days_part, time_part) = match rest.split_once('T') {
        Some((days, time)) if !time.is_empty() => (days, Some(time)),
        Some(_) => return Err(invalid()),
        None => (rest, None),
    };

    let mut total = Duration::zero();
    let mut read = |part: &str, units: &[(char, i64)]| -> Result<(), CalendarError> {
        let mut number = String::new();
        let mut allowed = units.iter();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            // Units must come in order, each at most once.
            let (_, seconds) = allowed.find(|(unit, _)| *unit == c).ok_or_else(invalid)?;
            let n: i64 = number.parse().map_err(|_| invalid())?;
            total += Duration::seconds(n.checked_mul(*seconds).ok_or_else(invalid)?);
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(invalid())
        }
    };
    read(days_part, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(time) = time_part {
        read(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    if days_part.is_empty() && time_part.is_none() {
        return Err(invalid());
    }
    Ok(total)
}
