//! Business-hours calendars and business-time arithmetic.
//!
//! Owns [`Calendar`] (an IANA time zone, weekly opening hours, holidays), its validation and
//! JSON form, and the two computations everything else builds on:
//! [`Calendar::add_business_time`] and [`Calendar::business_time_between`]. It knows nothing
//! of tickets or policies, and reads no clock: every instant comes in as an argument.
//!
//! # Working time
//!
//! Each opening interval is a shift in local wall-clock time, anchored on the local date it
//! starts on; an interval whose end is not after its start (`22:00-06:00`) runs overnight into
//! the next local date. A shift is one stretch of real time, from the instant the wall clock
//! first shows its start to the instant it last shows its end:
//!
//! - a wall time skipped by a spring-forward change counts as the instant the clocks jump, so
//!   `01:30-03:30` in New York on 2026-03-08 runs 06:30Z to 07:00Z, one hour;
//! - a wall time shown twice by a fall-back change counts as its first showing for a start
//!   and its second for an end, so `01:30-03:30` in New York on 2026-11-01 runs 05:30Z to
//!   08:30Z, three hours: the repeated hour is worked once per showing.
//!
//! A holiday removes the working time that falls on its local date, including the part of an
//! overnight shift after midnight. Working time is the union of all shifts, so two shifts that
//! touch or (through a fall-back change) overlap count once.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::CalendarError;
use crate::ical;

const DAY_SECONDS: u32 = 86_400;

/// Days in a row without working time after which a search gives up: two years of holidays.
pub const MAX_IDLE_DAYS: u32 = 731;

/// How far ahead [`Calendar::add_business_time`] looks before giving up, in years.
pub const HORIZON_YEARS: u32 = 50;

/// Lower-case day names used in the JSON form and in error messages, Monday first.
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One opening interval of a weekday, in local wall-clock time.
///
/// Written `HH:MM-HH:MM` (seconds optional, `HH:MM:SS`). An end of `24:00` or `00:00` is
/// midnight at the end of the day, so `00:00-00:00` is the whole day; an end before the start
/// (`22:00-06:00`) runs overnight into the next local date. Start equal to end is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpeningInterval {
    /// Seconds after local midnight, below 86 400.
    start: u32,
    /// Seconds after local midnight, 1 to 86 400; below `start` for an overnight interval.
    end: u32,
}

impl OpeningInterval {
    /// Parses `HH:MM-HH:MM` for `day`, the weekday named in errors.
    pub fn parse(day: Weekday, text: &str) -> Result<OpeningInterval, CalendarError> {
        let day_name = DAY_NAMES[day.num_days_from_monday() as usize];
        let invalid = |reason: String| CalendarError::InvalidInterval {
            day: day_name,
            text: text.to_owned(),
            reason,
        };

        let (start, end) =
            text.split_once('-').ok_or_else(|| invalid("expected HH:MM-HH:MM".to_owned()))?;
        let start = parse_wall_time(start.trim()).map_err(&invalid)?;
        let end = parse_wall_time(end.trim()).map_err(&invalid)?;
        if start == DAY_SECONDS {
            return Err(invalid("an interval cannot start at 24:00".to_owned()));
        }
        // 00:00 as an end means midnight at the end of the day, as 24:00 does.
        let end = if end == 0 { DAY_SECONDS } else { end };
        let interval = OpeningInterval { start, end };
        if start == end {
            return Err(CalendarError::EmptyInterval {
                day: day_name,
                interval: interval.to_string(),
            });
        }
        Ok(interval)
    }

    /// True if and only if the interval runs past midnight into the next local date.
    pub fn is_overnight(&self) -> bool {
        self.end < self.start
    }

    /// The wall-clock length, which a DST change makes longer or shorter in real time.
    pub fn wall_length(&self) -> Duration {
        Duration::seconds(i64::from(self.end_from_anchor() - self.start))
    }

    /// The end in seconds after the anchor date's midnight, past 86 400 when overnight.
    fn end_from_anchor(&self) -> u32 {
        if self.is_overnight() {
            self.end + DAY_SECONDS
        } else {
            self.end
        }
    }
}

impl fmt::Display for OpeningInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", WallTime(self.start), WallTime(self.end))
    }
}

/// Seconds after midnight, shown as `HH:MM` or `HH:MM:SS`.
struct WallTime(u32);

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if s == 0 {
            write!(f, "{h:02}:{m:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}")
        }
    }
}

/// `HH:MM` or `HH:MM:SS`, hours 0 to 24 (24 only as `24:00`), as seconds after midnight.
fn parse_wall_time(text: &str) -> Result<u32, String> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("{text:?} is not a time of day (HH:MM)"));
    }
    let mut numbers = [0u32; 3];
    for (i, part) in parts.iter().enumerate() {
        let digits_ok = !part.is_empty()
            && part.len() <= 2
            && (i == 0 || part.len() == 2)
            && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok {
            return Err(format!("{text:?} is not a time of day (HH:MM)"));
        }
        numbers[i] = part.parse().expect("checked digits");
    }
    let [h, m, s] = numbers;
    if m > 59 || s > 59 {
        return Err(format!("{text:?} has minutes or seconds past 59"));
    }
    if h > 24 || (h == 24 && (m, s) != (0, 0)) {
        return Err(format!("{text:?} is past 24:00"));
    }
    Ok(h * 3600 + m * 60 + s)
}

/// Opening intervals for each day of the week.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeeklyHours {
    /// Monday first; each day's intervals sorted by start.
    days: [Vec<OpeningInterval>; 7],
}

impl WeeklyHours {
    /// No opening hours on any day.
    pub fn closed() -> WeeklyHours {
        WeeklyHours::default()
    }

    /// The same intervals Monday to Friday, closed at weekends.
    pub fn weekdays(intervals: &[&str]) -> Result<WeeklyHours, CalendarError> {
        [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
            .into_iter()
            .try_fold(WeeklyHours::closed(), |hours, day| hours.with_day(day, intervals))
    }

    /// Replaces `day`'s intervals with `intervals` (`HH:MM-HH:MM` each); an empty slice closes
    /// the day. Overlaps are checked when the calendar is built.
    pub fn with_day(
        mut self,
        day: Weekday,
        intervals: &[&str],
    ) -> Result<WeeklyHours, CalendarError> {
        let mut parsed = intervals
            .iter()
            .map(|text| OpeningInterval::parse(day, text))
            .collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        self.days[day.num_days_from_monday() as usize] = parsed;
        Ok(self)
    }

    /// `day`'s intervals, sorted by start.
    pub fn intervals(&self, day: Weekday) -> &[OpeningInterval] {
        &self.days[day.num_days_from_monday() as usize]
    }

    /// True if and only if no day has an interval.
    pub fn is_closed(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }

    /// Checks that no two intervals share working time, across midnight and from Sunday into
    /// Monday too.
    fn check_overlaps(&self) -> Result<(), CalendarError> {
        const WEEK: u32 = 7 * DAY_SECONDS;
        let mut ranges = Vec::new();
        for (day, intervals) in self.days.iter().enumerate() {
            for interval in intervals {
                let start = day as u32 * DAY_SECONDS + interval.start;
                let end = day as u32 * DAY_SECONDS + interval.end_from_anchor();
                if end > WEEK {
                    ranges.push((start, WEEK, day, *interval));
                    ranges.push((0, end - WEEK, day, *interval));
                } else {
                    ranges.push((start, end, day, *interval));
                }
            }
        }
        ranges.sort();
        for pair in ranges.windows(2) {
            let (_, first_end, first_day, first) = pair[0];
            let (second_start, _, second_day, second) = pair[1];
            if first_end > second_start {
                return Err(CalendarError::OverlappingIntervals {
                    first: format!("{} {first}", DAY_NAMES[first_day]),
                    second: format!("{} {second}", DAY_NAMES[second_day]),
                });
            }
        }
        Ok(())
    }
}

/// Looks up an IANA time zone name such as `America/New_York`.
pub fn parse_time_zone(name: &str) -> Result<Tz, CalendarError> {
    name.parse::<Tz>().map_err(|_| CalendarError::UnknownTimeZone { name: name.to_owned() })
}

/// When working time happens: a time zone, weekly opening hours and holidays.
///
/// Serializes as
/// `{"time_zone": "Europe/Berlin", "opening_hours": {"mon": ["09:00-17:00"], ...},
/// "holidays": ["2026-12-25"]}`; days left out are closed, and deserializing validates
/// exactly as [`Calendar::new`] does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CalendarSpec", into = "CalendarSpec")]
pub struct Calendar {
    time_zone: Tz,
    opening_hours: WeeklyHours,
    holidays: BTreeSet<NaiveDate>,
}

/// A stretch of working time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Which showing of a wall time to take when a DST change shows it twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The first showing: a shift starts as early as the wall clock allows.
    Start,
    /// The last showing: a shift ends as late as the wall clock allows.
    End,
}

impl Calendar {
    /// A calendar of `opening_hours` in `time_zone`, without holidays.
    ///
    /// Fails with [`CalendarError::OverlappingIntervals`] if two intervals share working time.
    /// A calendar with no opening hours at all is accepted; computing with it fails with
    /// [`CalendarError::NoOpeningHours`].
    pub fn new(time_zone: Tz, opening_hours: WeeklyHours) -> Result<Calendar, CalendarError> {
        opening_hours.check_overlaps()?;
        Ok(Calendar { time_zone, opening_hours, holidays: BTreeSet::new() })
    }

    /// Around the clock, every day, in UTC: business time is plain elapsed time.
    pub fn always() -> Calendar {
        let all_day = [OpeningInterval { start: 0, end: DAY_SECONDS }];
        Calendar {
            time_zone: Tz::UTC,
            opening_hours: WeeklyHours { days: std::array::from_fn(|_| all_day.to_vec()) },
            holidays: BTreeSet::new(),
        }
    }

    /// The same calendar with `dates` (local dates in the calendar's zone) as holidays too.
    pub fn with_holidays(mut self, dates: impl IntoIterator<Item = NaiveDate>) -> Calendar {
        self.holidays.extend(dates);
        self
    }

    /// The same calendar with the holidays of an iCalendar file added; see [`crate::ical`] for
    /// what is accepted.
    pub fn with_holidays_from_ical(self, text: &str) -> Result<Calendar, CalendarError> {
        let dates = ical::holiday_dates(text, self.time_zone)?;
        Ok(self.with_holidays(dates))
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub fn opening_hours(&self) -> &WeeklyHours {
        &self.opening_hours
    }

    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    /// True if and only if working time runs at `at` (an instant on a shift's closing edge is
    /// outside it).
    pub fn is_open_at(&self, at: DateTime<Utc>) -> bool {
        self.business_time_between(at, at + Duration::seconds(1)) > Duration::zero()
    }

    /// The instant at which `amount` of working time has elapsed after `start`.
    ///
    /// A zero amount gives `start` itself, open or not. Otherwise the result is inside or at
    /// the closing edge of a shift, never the opening of the next one: one hour before 17:00
    /// closing is due at 17:00 that day.
    ///
    /// Errors: [`CalendarError::NegativeAmount`]; [`CalendarError::NoOpeningHours`] for a
    /// calendar without opening hours; [`CalendarError::NoWorkingTime`] when holidays leave
    /// [`MAX_IDLE_DAYS`] days in a row without working time; [`CalendarError::BeyondHorizon`]
    /// when the amount does not fit within [`HORIZON_YEARS`] years.
    pub fn add_business_time(
        &self,
        start: DateTime<Utc>,
        amount: Duration,
    ) -> Result<DateTime<Utc>, CalendarError> {
        if amount < Duration::zero() {
            return Err(CalendarError::NegativeAmount { amount });
        }
        if amount.is_zero() {
            return Ok(start);
        }
        let beyond_horizon =
            || CalendarError::BeyondHorizon { amount, from: start, years: HORIZON_YEARS };
        if self.is_always() {
            return start.checked_add_signed(amount).ok_or_else(beyond_horizon);
        }
        if self.opening_hours.is_closed() {
            return Err(CalendarError::NoOpeningHours);
        }

        let mut left = amount;
        for span in self.spans(start, Limit::Horizon) {
            let span = match span {
                Ok(span) => span,
                Err(Stop::Idle { from }) => {
                    return Err(CalendarError::NoWorkingTime { from, days: MAX_IDLE_DAYS });
                }
                Err(Stop::Horizon) => return Err(beyond_horizon()),
            };
            let length = span.end - span.start;
            if left <= length {
                return Ok(span.start + left);
            }
            left -= length;
        }
        Err(beyond_horizon())
    }

    /// The working time in `[a, b)`; zero when `b` is not after `a`.
    ///
    /// Never fails and never searches past `b`, so a calendar without working time gives zero.
    pub fn business_time_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::zero();
        }
        if self.is_always() {
            return b - a;
        }

        let last_date = self.local_date(b).succ_opt().unwrap_or(NaiveDate::MAX);
        let mut total = Duration::zero();
        for span in self.spans(a, Limit::Until(last_date)).map_while(Result::ok) {
            if span.start >= b {
                break;
            }
            total += span.end.min(b) - span.start;
        }
        total
    }

    /// True if and only if every instant is working time.
    fn is_always(&self) -> bool {
        let all_day = OpeningInterval { start: 0, end: DAY_SECONDS };
        self.holidays.is_empty() && self.opening_hours.days.iter().all(|day| day == &[all_day])
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// The instant of wall time `seconds` after local midnight of `date`; see the module doc
    /// for skipped and repeated wall times.
    fn instant(&self, date: NaiveDate, seconds: u32, side: Side) -> DateTime<Utc> {
        let local = date.and_time(NaiveTime::MIN) + Duration::seconds(i64::from(seconds));
        match self.time_zone.from_local_datetime(&local) {
            LocalResult::Single(at) => at.with_timezone(&Utc),
            LocalResult::Ambiguous(first, second) => {
                let (first, second) = (first.with_timezone(&Utc), second.with_timezone(&Utc));
                match side {
                    Side::Start => first.min(second),
                    Side::End => first.max(second),
                }
            }
            LocalResult::None => self.gap_end(local),
        }
    }

    /// The instant the clocks jump over the skipped wall time `local`: the earliest instant
    /// whose wall reading is later than `local`.
    fn gap_end(&self, local: NaiveDateTime) -> DateTime<Utc> {
        // No zone's offset is beyond ±16 h, so the reading at `local - 26 h` (as UTC) is
        // before `local` and the one at `local + 26 h` after it; bisect to the second.
        let reading = |seconds: i64| {
            let at = DateTime::from_timestamp(seconds, 0).expect("within chrono's range");
            at.with_timezone(&self.time_zone).naive_local()
        };
        let guess = local.and_utc().timestamp();
        let (mut before, mut after) = (guess - 26 * 3600, guess + 26 * 3600);
        while after - before > 1 {
            let mid = before + (after - before) / 2;
            if reading(mid) > local {
                after = mid;
            } else {
                before = mid;
            }
        }
        DateTime::from_timestamp(after, 0).expect("within chrono's range")
    }

    /// The working time anchored on `date`, clipped by holidays, in order; may be empty.
    fn day_spans(&self, date: NaiveDate, out: &mut Vec<Span>) {
        let intervals = self.opening_hours.intervals(date.weekday());
        let Some(next) = date.succ_opt() else { return };
        if intervals.is_empty() {
            return;
        }

        let midnight = self.instant(next, 0, Side::Start);
        let today_off = self.holidays.contains(&date);
        let tomorrow_off = self.holidays.contains(&next);
        for interval in intervals {
            let start = self.instant(date, interval.start, Side::Start);
            let end = self.instant(date, interval.end_from_anchor(), Side::End);
            // The part on the anchor date, then what runs past midnight; a holiday removes
            // the part on its own date only.
            if !today_off {
                out.push(Span { start, end: end.min(midnight) });
            }
            if !tomorrow_off && end > midnight {
                out.push(Span { start: start.max(midnight), end });
            }
        }
        out.retain(|span| span.start < span.end);
        out.sort_by_key(|span| span.start);
    }

    /// Merged stretches of working time from `from` on, each clipped to start at `from` or
    /// later.
    fn spans(&self, from: DateTime<Utc>, limit: Limit) -> Spans<'_> {
        // A shift anchored on the previous date may still run at `from`.
        let date = self.local_date(from).pred_opt().unwrap_or(NaiveDate::MIN);
        Spans {
            calendar: self,
            from,
            date,
            limit,
            pieces: VecDeque::new(),
            pending: None,
            idle_days: 0,
            scanned_days: 0,
            stopped: None,
        }
    }
}

/// How far [`Spans`] goes.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// Up to and including this anchor date, then stop quietly.
    Until(NaiveDate),
    /// Until [`MAX_IDLE_DAYS`] days in a row without working time, or [`HORIZON_YEARS`].
    Horizon,
}

/// Why [`Spans`] stopped under [`Limit::Horizon`].
#[derive(Debug, Clone, Copy)]
enum Stop {
    Idle { from: DateTime<Utc> },
    Horizon,
}

/// Iterates merged working-time spans, one local date at a time.
struct Spans<'a> {
    calendar: &'a Calendar,
    from: DateTime<Utc>,
    /// The next anchor date to expand.
    date: NaiveDate,
    limit: Limit,
    /// Expanded spans not yet merged, in order.
    pieces: VecDeque<Span>,
    /// The span being merged; handed out once a later span does not touch it.
    pending: Option<Span>,
    idle_days: u32,
    scanned_days: u32,
    /// Set once the limit is reached: the pending span goes out first, then this.
    stopped: Option<Option<Stop>>,
}

impl Iterator for Spans<'_> {
    type Item = Result<Span, Stop>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(piece) = self.pieces.pop_front() {
                if piece.end <= self.from {
                    continue;
                }
                let piece = Span { start: piece.start.max(self.from), end: piece.end };
                match &mut self.pending {
                    Some(pending) if piece.start <= pending.end => {
                        pending.end = pending.end.max(piece.end);
                    }
                    Some(_) => return self.pending.replace(piece).map(Ok),
                    None => self.pending = Some(piece),
                }
                continue;
            }

            if let Some(stop) = self.stopped {
                if let Some(span) = self.pending.take() {
                    return Some(Ok(span));
                }
                // Report a stop once; after that the iterator is finished.
                self.stopped = Some(None);
                return stop.map(Err);
            }
            self.expand_next_date();
        }
    }
}

impl Spans<'_> {
    fn expand_next_date(&mut self) {
        match self.limit {
            Limit::Until(last) if self.date > last => {
                self.stopped = Some(None);
                return;
            }
            Limit::Horizon if self.idle_days >= MAX_IDLE_DAYS => {
                self.stopped = Some(Some(Stop::Idle { from: self.from }));
                return;
            }
            Limit::Horizon if self.scanned_days >= HORIZON_YEARS * 366 => {
                self.stopped = Some(Some(Stop::Horizon));
                return;
            }
            _ => {}
        }

        let mut spans = Vec::new();
        self.calendar.day_spans(self.date, &mut spans);
        let worked = spans.iter().any(|span| span.end > self.from);
        self.idle_days = if worked { 0 } else { self.idle_days + 1 };
        self.scanned_days += 1;
        self.pieces.extend(spans);
        match self.date.succ_opt() {
            Some(next) => self.date = next,
            None => self.stopped = Some(Some(Stop::Horizon)),
        }
    }
}

/// The JSON form of a [`Calendar`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarSpec {
    time_zone: String,
    #[serde(default)]
    opening_hours: WeekSpec,
    #[serde(default)]
    holidays: Vec<NaiveDate>,
}

/// Opening intervals by lower-case day name; a day left out is closed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeekSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mon: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tue: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    thu: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fri: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sat: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sun: Vec<String>,
}

impl WeekSpec {
    fn days(&self) -> [(Weekday, &Vec<String>); 7] {
        [
            (Weekday::Mon, &self.mon),
            (Weekday::Tue, &self.tue),
            (Weekday::Wed, &self.wed),
            (Weekday::Thu, &self.thu),
            (Weekday::Fri, &self.fri),
            (Weekday::Sat, &self.sat),
            (Weekday::Sun, &self.sun),
        ]
    }
}

impl TryFrom<CalendarSpec> for Calendar {
    type Error = CalendarError;

    fn try_from(spec: CalendarSpec) -> Result<Self, Self::Error> {
        let time_zone = parse_time_zone(&spec.time_zone)?;
        let mut hours = WeeklyHours::closed();
        for (day, intervals) in spec.opening_hours.days() {
            let intervals: Vec<&str> = intervals.iter().map(String::as_str).collect();
            hours = hours.with_day(day, &intervals)?;
        }
        Ok(Calendar::new(time_zone, hours)?.with_holidays(spec.holidays))
    }
}

impl From<Calendar> for CalendarSpec {
    fn from(calendar: Calendar) -> Self {
        let day = |d: Weekday| {
            calendar.opening_hours.intervals(d).iter().map(ToString::to_string).collect()
        };
        CalendarSpec {
            time_zone: calendar.time_zone.name().to_owned(),
            opening_hours: WeekSpec {
                mon: day(Weekday::Mon),
                tue: day(Weekday::Tue),
                wed: day(Weekday::Wed),
                thu: day(Weekday::Thu),
                fri: day(Weekday::Fri),
                sat: day(Weekday::Sat),
                sun: day(Weekday::Sun),
            },
            holidays: calendar.holidays.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn parse_accepts_overnight_and_24_00() {
        let night = OpeningInterval::parse(Weekday::Mon, "22:00-06:00").unwrap();
        let evening = OpeningInterval::parse(Weekday::Mon, "18:00-24:00").unwrap();
        let to_midnight = OpeningInterval::parse(Weekday::Mon, "18:00-00:00").unwrap();

        assert!(night.is_overnight());
        assert_eq!(night.wall_length(), Duration::hours(8));
        assert_eq!(evening, to_midnight);
        assert_eq!(evening.to_string(), "18:00-24:00");
    }

    #[test]
    fn parse_names_the_day_and_the_fault() {
        let cases = [
            ("9-17", "invalid opening_hours.tue: \"9-17\": \"9\" is not a time of day (HH:MM)"),
            ("25:00-26:00", "invalid opening_hours.tue: \"25:00-26:00\": \"25:00\" is past 24:00"),
            (
                "09:60-10:00",
                "invalid opening_hours.tue: \"09:60-10:00\": \"09:60\" has minutes \
              or seconds past 59",
            ),
            ("09:00", "invalid opening_hours.tue: \"09:00\": expected HH:MM-HH:MM"),
            (
                "24:00-01:00",
                "invalid opening_hours.tue: \"24:00-01:00\": an interval cannot \
              start at 24:00",
            ),
            ("09:00-09:00", "invalid opening_hours.tue: 09:00-09:00 is empty"),
        ];

        for (text, expected) in cases {
            let err = OpeningInterval::parse(Weekday::Tue, text).unwrap_err();
            assert_eq!(err.to_string(), expected, "{text}");
        }
    }

    #[test]
    fn gap_end_is_the_instant_the_clocks_jump() {
        let calendar = Calendar::new(Tz::America__New_York, WeeklyHours::closed()).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();

        // 02:30 does not exist on 2026-03-08 in New York; 03:00 EDT is 07:00Z.
        let at = calendar.instant(date, 2 * 3600 + 1800, Side::Start);

        assert_eq!(at, utc("2026-03-08T07:00:00Z"));
    }

    #[test]
    fn repeated_wall_time_takes_first_showing_for_start_last_for_end() {
        let calendar = Calendar::new(Tz::America__New_York, WeeklyHours::closed()).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();

        // 01:30 shows at 05:30Z (EDT) and again at 06:30Z (EST).
        assert_eq!(calendar.instant(date, 5400, Side::Start), utc("2026-11-01T05:30:00Z"));
        assert_eq!(calendar.instant(date, 5400, Side::End), utc("2026-11-01T06:30:00Z"));
    }
}
