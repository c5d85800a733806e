//! Holidays from iCalendar text: what is read, and errors that name the line.

mod support;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use chrono_tz::Tz;
use csmp_sla::ical::holiday_dates;
use csmp_sla::{CalendarError, ErrorKind};
use support::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A feed as exporters write it: CRLF, a folded line, a nested alarm, lower-case names.
const US_HOLIDAYS: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//csmp//holidays//EN\r\n\
BEGIN:VEVENT\r\n\
UID:thanksgiving-2026\r\n\
SUMMARY:Thanksgiving and the day\r\n  after\r\n\
DTSTART;VALUE=DATE:20261126\r\n\
DTEND;VALUE=DATE:20261128\r\n\
BEGIN:VALARM\r\n\
TRIGGER:-PT15M\r\n\
DTSTART:20200101T000000Z\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY:Christmas Day\r\n\
dtstart;value=date:20261225\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY:New Year break\r\n\
DTSTART;VALUE=DATE:20261231\r\n\
DURATION:P2D\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY:Offsite (a timed event in UTC)\r\n\
DTSTART:20261211T030000Z\r\n\
DTEND:20261211T050000Z\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
SUMMARY:Planned closure, called off\r\n\
STATUS:CANCELLED\r\n\
DTSTART;VALUE=DATE:20260703\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn reads_all_day_multi_day_and_timed_events() {
    let dates = holiday_dates(US_HOLIDAYS, Tz::America__New_York).unwrap();

    let expected = BTreeSet::from([
        // DTEND 28 Nov is exclusive: 26 and 27.
        date(2026, 11, 26),
        date(2026, 11, 27),
        // 03:00Z-05:00Z on 11 Dec is 22:00-24:00 EST on 10 Dec: the New York date is the 10th.
        date(2026, 12, 10),
        // No end: one day.
        date(2026, 12, 25),
        // P2D from 31 Dec: 31 Dec and 1 Jan.
        date(2026, 12, 31),
        date(2027, 1, 1),
    ]);
    assert_eq!(dates, expected);
}

#[test]
fn timed_events_take_the_calendar_zone_dates_they_touch() {
    let text = "BEGIN:VCALENDAR\n\
BEGIN:VEVENT\n\
SUMMARY:Christmas Eve, Berlin office\n\
DTSTART;TZID=Europe/Berlin:20261224T000000\n\
DTEND;TZID=Europe/Berlin:20261225T000000\n\
END:VEVENT\n\
BEGIN:VEVENT\n\
SUMMARY:Floating, read as local time\n\
DTSTART:20261230T120000\n\
END:VEVENT\n\
END:VCALENDAR\n";

    let berlin = holiday_dates(text, Tz::Europe__Berlin).unwrap();
    let new_york = holiday_dates(text, Tz::America__New_York).unwrap();

    // In Berlin the event is 24 Dec, its end at midnight not touching the 25th.
    assert_eq!(berlin, BTreeSet::from([date(2026, 12, 24), date(2026, 12, 30)]));
    // In New York it runs 23 Dec 18:00 to 24 Dec 18:00 EST: two local dates.
    assert_eq!(
        new_york,
        BTreeSet::from([date(2026, 12, 23), date(2026, 12, 24), date(2026, 12, 30)])
    );
}

#[test]
fn a_holiday_from_ical_moves_the_due_time() {
    let calendar = ny_office().with_holidays_from_ical(US_HOLIDAYS).unwrap();

    // Wed 25 Nov 15:00 EST (20:00Z): 2 h to closing; Thanksgiving (Thu 26) and Fri 27 are
    // holidays, then the weekend; Mon 30 09:00 + 2 h = 11:00 EST = 16:00Z.
    let due = calendar.add_business_time(utc("2026-11-25T20:00:00Z"), hm(4, 0));

    assert_eq!(due, Ok(utc("2026-11-30T16:00:00Z")));
}

#[test]
fn errors_name_the_line() {
    let wrap =
        |body: &str| format!("BEGIN:VCALENDAR\nBEGIN:VEVENT\n{body}END:VEVENT\nEND:VCALENDAR\n");

    // (case, text, expected message)
    let cases = [
        (
            "short date",
            wrap("DTSTART;VALUE=DATE:2026122\n"),
            "invalid holidays: line 3: DTSTART value \"2026122\" is not a date (YYYYMMDD)",
        ),
        (
            "no such date",
            wrap("DTSTART;VALUE=DATE:20260230\n"),
            "invalid holidays: line 3: DTSTART value \"20260230\" is not a date (YYYYMMDD)",
        ),
        (
            "folded value, reported at its first line",
            wrap("SUMMARY:x\nDTSTART;VALUE=DATE:2026\n 1325\n"),
            "invalid holidays: line 4: DTSTART value \"20261325\" is not a date (YYYYMMDD)",
        ),
        (
            "bad date-time",
            wrap("DTSTART:20261224T1300\n"),
            "invalid holidays: line 3: DTSTART value \"20261224T1300\" is not a date-time \
             (YYYYMMDDTHHMMSS)",
        ),
        (
            "recurring",
            wrap("DTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY\n"),
            "invalid holidays: line 4: recurring events (RRULE) are not supported; list each \
             holiday date",
        ),
        (
            "no start",
            wrap("SUMMARY:Nothing\n"),
            "invalid holidays: line 2: the event has no DTSTART",
        ),
        (
            "end before start",
            wrap("DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261224\n"),
            "invalid holidays: line 4: the event ends on 2026-12-24, before it starts",
        ),
        (
            "end of another type",
            wrap("DTSTART;VALUE=DATE:20261225\nDTEND:20261226T000000Z\n"),
            "invalid holidays: line 4: DTEND is a date-time but DTSTART is a date",
        ),
        (
            "Windows zone name",
            wrap("DTSTART;TZID=Eastern Standard Time:20261224T090000\n"),
            "invalid holidays: line 3: TZID \"Eastern Standard Time\" is not an IANA time zone \
             name",
        ),
        (
            "a line that is not a property",
            wrap("DTSTART;VALUE=DATE:20261225\nthis is not a property\n"),
            "invalid holidays: line 4: expected NAME:VALUE, found \"this is not a property\"",
        ),
        (
            "unclosed event",
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\nEND:VCALENDAR\n"
                .to_owned(),
            "invalid holidays: line 4: END:VCALENDAR does not close BEGIN:VEVENT of line 2",
        ),
        (
            "cut short",
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n".to_owned(),
            "invalid holidays: line 3: BEGIN:VEVENT of line 2 is not closed before the end",
        ),
        (
            "not a calendar",
            "BEGIN:VEVENT\nEND:VEVENT\n".to_owned(),
            "invalid holidays: line 1: expected BEGIN:VCALENDAR",
        ),
        (
            "empty",
            String::new(),
            "invalid holidays: line 1: expected BEGIN:VCALENDAR, found no content",
        ),
        (
            "content after the end",
            "BEGIN:VCALENDAR\nEND:VCALENDAR\nBEGIN:VCALENDAR\n".to_owned(),
            "invalid holidays: line 3: content after END:VCALENDAR",
        ),
        (
            "duration of hours on an all-day event",
            wrap("DTSTART;VALUE=DATE:20261225\nDURATION:PT8H\n"),
            "invalid holidays: line 4: DURATION PT8H of an all-day event is not whole days",
        ),
    ];

    for (case, text, expected) in cases {
        let err = holiday_dates(&text, Tz::UTC).unwrap_err();

        assert_eq!(err.to_string(), expected, "{case}");
        assert!(matches!(err, CalendarError::Ical { .. }), "{case}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case}");
    }
}
