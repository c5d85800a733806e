//! Business-time arithmetic, calendar validation and the calendar's JSON form.
//!
//! Offsets used below: New York is UTC-5 (EST) until 2026-03-08 02:00 local, then UTC-4 (EDT)
//! until 2026-11-01 02:00 local, when the hour 01:00-02:00 repeats. Berlin is UTC+1 (CET) until
//! 2026-03-29 02:00 local, then UTC+2 (CEST) until 2026-10-25 03:00 local, when the hour
//! 02:00-03:00 repeats.

mod support;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use chrono_tz::Tz;
use csmp_sla::calendar::{HORIZON_YEARS, MAX_IDLE_DAYS};
use csmp_sla::{Calendar, CalendarError, ErrorKind, WeeklyHours};
use support::*;

#[test]
fn add_business_time_lands_on_the_expected_second() {
    let thanksgiving = ny_office().with_holidays(
        [(2026, 11, 26), (2026, 11, 27)].map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap()),
    );
    let night_desk_wednesday_off =
        ny_night_desk().with_holidays([NaiveDate::from_ymd_opt(2026, 6, 17).unwrap()]);
    let ny = Tz::America__New_York;
    let berlin = Tz::Europe__Berlin;

    // (case, calendar, start, amount, expected)
    let cases = [
        (
            // Fri 16:00 EDT: 1 h to closing, weekend closed, Mon 09:00 + 3 h = 12:00 EDT.
            "weekend crossing",
            ny_office(),
            "2026-06-19T20:00:00Z",
            hm(4, 0),
            "2026-06-22T16:00:00Z",
        ),
        (
            // Same on the DST weekend: Fri 16:00 EST is 21:00Z, Mon 12:00 EDT is 16:00Z, so the
            // due time is 91 h of wall time later, not 92.
            "weekend crossing the spring-forward Sunday",
            ny_office(),
            "2026-03-06T21:00:00Z",
            hm(4, 0),
            "2026-03-09T16:00:00Z",
        ),
        (
            // Mon 07:00 EDT, before opening: the clock starts at 09:00 EDT.
            "start before opening",
            ny_office(),
            "2026-06-22T11:00:00Z",
            hm(0, 30),
            "2026-06-22T13:30:00Z",
        ),
        (
            // Mon 16:00 EDT + 1 h is 17:00 EDT that day, not Tue 09:00.
            "due at the closing edge",
            ny_office(),
            "2026-06-22T20:00:00Z",
            hm(1, 0),
            "2026-06-22T21:00:00Z",
        ),
        (
            // Tue 11:00 CEST: 1 h to lunch, then 13:00-16:00 CEST = 14:00Z.
            "several intervals per day",
            berlin_split(),
            "2026-06-16T09:00:00Z",
            hm(4, 0),
            "2026-06-16T14:00:00Z",
        ),
        (
            // Tue 11:00 CEST: 1 h + 4 h 30 (13:00-17:30) = 5 h 30; Wed 09:00 + 30 min = 09:30
            // CEST.
            "several intervals, into the next day",
            berlin_split(),
            "2026-06-16T09:00:00Z",
            hm(6, 0),
            "2026-06-17T07:30:00Z",
        ),
        (
            // Tue 12:15 CEST, at lunch: counting starts 13:00 CEST; + 1 h = 14:00 CEST.
            "opened during lunch",
            berlin_split(),
            "2026-06-16T10:15:00Z",
            hm(1, 0),
            "2026-06-16T12:00:00Z",
        ),
        (
            // Tue 03:00 EDT, inside Monday's 22:00-06:00 shift: 3 h to 06:00; Tue 22:00 + 2 h =
            // Wed 00:00 EDT.
            "overnight window",
            ny_night_desk(),
            "2026-06-16T07:00:00Z",
            hm(5, 0),
            "2026-06-17T04:00:00Z",
        ),
        (
            // Sat 05:00 EDT, inside Friday's shift: 1 h to 06:00; no shift starts Sat or Sun;
            // Mon 22:00 + 1 h = 23:00 EDT.
            "overnight window over the weekend",
            ny_night_desk(),
            "2026-06-20T09:00:00Z",
            hm(2, 0),
            "2026-06-23T03:00:00Z",
        ),
        (
            // Wed 25 Nov 15:00 EST: 2 h to closing; Thu 26 and Fri 27 are holidays, then the
            // weekend; Mon 30 09:00 + 2 h = 11:00 EST.
            "multi-day holiday",
            thanksgiving,
            "2026-11-25T20:00:00Z",
            hm(4, 0),
            "2026-11-30T16:00:00Z",
        ),
        (
            // Tue 22:00 EDT: Tue 22:00-24:00 counts (2 h); Wednesday is a holiday, which removes
            // Tuesday's shift after midnight and Wednesday's shift before midnight; Thursday's
            // 00:00-06:00 part of Wednesday's shift counts: + 1 h = Thu 01:00 EDT.
            "holiday inside overnight shifts",
            night_desk_wednesday_off,
            "2026-06-17T02:00:00Z",
            hm(3, 0),
            "2026-06-18T05:00:00Z",
        ),
        (
            // 01:30-03:30 on 2026-03-08 in New York is 01:30 EST (06:30Z) to 03:30 EDT (07:30Z):
            // one hour. From 00:00 EST, 1 h of work ends at 07:30Z.
            "New York spring forward: the window is one hour",
            nightly_batch(ny),
            "2026-03-08T05:00:00Z",
            hm(1, 0),
            "2026-03-08T07:30:00Z",
        ),
        (
            // 30 min after 01:30 EST is 07:00Z, the instant clocks jump from 02:00 to 03:00.
            "New York spring forward: half of it",
            nightly_batch(ny),
            "2026-03-08T05:00:00Z",
            hm(0, 30),
            "2026-03-08T07:00:00Z",
        ),
        (
            // 1 h on 8 March, the other 30 min from 01:30 EDT (05:30Z) on 9 March.
            "New York spring forward: into the next night",
            nightly_batch(ny),
            "2026-03-08T05:00:00Z",
            hm(1, 30),
            "2026-03-09T06:00:00Z",
        ),
        (
            // 01:30-03:30 on 2026-11-01 in New York is 01:30 EDT (05:30Z) to 03:30 EST (08:30Z):
            // three hours, the repeated hour worked twice. From 00:00 EDT (04:00Z), 3 h ends at
            // 08:30Z.
            "New York fall back: the window is three hours",
            nightly_batch(ny),
            "2026-11-01T04:00:00Z",
            hm(3, 0),
            "2026-11-01T08:30:00Z",
        ),
        (
            // 1 h after 01:30 EDT is 06:30Z, the second showing of 01:30 (EST).
            "New York fall back: into the repeated hour",
            nightly_batch(ny),
            "2026-11-01T04:00:00Z",
            hm(1, 0),
            "2026-11-01T06:30:00Z",
        ),
        (
            // 01:30 CET (00:30Z) to 03:30 CEST (01:30Z): one hour; 20 min in is 01:50 CET.
            "Berlin spring forward",
            nightly_batch(berlin),
            "2026-03-28T23:00:00Z",
            hm(0, 20),
            "2026-03-29T00:50:00Z",
        ),
        (
            "Berlin spring forward: the whole window",
            nightly_batch(berlin),
            "2026-03-28T23:00:00Z",
            hm(1, 0),
            "2026-03-29T01:30:00Z",
        ),
        (
            // 01:30 CEST (23:30Z on the 24th) to 03:30 CET (02:30Z): three hours; 2 h in is
            // 01:30Z, the second showing of 02:30 (CET).
            "Berlin fall back",
            nightly_batch(berlin),
            "2026-10-24T22:00:00Z",
            hm(2, 0),
            "2026-10-25T01:30:00Z",
        ),
        (
            "Berlin fall back: the whole window",
            nightly_batch(berlin),
            "2026-10-24T22:00:00Z",
            hm(3, 0),
            "2026-10-25T02:30:00Z",
        ),
        (
            // Sat 22:00 CEST (20:00Z) to Sun 06:00 CET (05:00Z) is a 9 h shift; 8 h in is
            // 04:00Z, which Berlin calls 05:00.
            "Berlin overnight shift on the fall-back night",
            nightly_shift(berlin),
            "2026-10-24T20:00:00Z",
            hm(8, 0),
            "2026-10-25T04:00:00Z",
        ),
        (
            // The 9 h shift, then Sun 22:00 CET (21:00Z) + 1 h.
            "Berlin overnight shift on the fall-back night, into the next",
            nightly_shift(berlin),
            "2026-10-24T20:00:00Z",
            hm(10, 0),
            "2026-10-25T22:00:00Z",
        ),
        (
            // Sat 22:00 CET (21:00Z) to Sun 06:00 CEST (04:00Z) is a 7 h shift.
            "Berlin overnight shift on the spring-forward night",
            nightly_shift(berlin),
            "2026-03-28T21:00:00Z",
            hm(7, 0),
            "2026-03-29T04:00:00Z",
        ),
        (
            // 7 h shift, then Sun 22:00 CEST (20:00Z) + 1 h.
            "Berlin overnight shift on the spring-forward night, into the next",
            nightly_shift(berlin),
            "2026-03-28T21:00:00Z",
            hm(8, 0),
            "2026-03-29T21:00:00Z",
        ),
        (
            // Sat 22:00 EST (03:00Z) to Sun 06:00 EDT (10:00Z): 7 h.
            "New York overnight shift on the spring-forward night",
            nightly_shift(ny),
            "2026-03-08T03:00:00Z",
            hm(7, 0),
            "2026-03-08T10:00:00Z",
        ),
        (
            // Sat 22:00 EDT (02:00Z) to Sun 06:00 EST (11:00Z): 9 h.
            "New York overnight shift on the fall-back night",
            nightly_shift(ny),
            "2026-11-01T02:00:00Z",
            hm(9, 0),
            "2026-11-01T11:00:00Z",
        ),
        (
            // Around the clock: plain addition, over the spring-forward instant too.
            "24x7",
            Calendar::always(),
            "2026-03-08T06:59:59Z",
            hm(1, 30),
            "2026-03-08T08:29:59Z",
        ),
        (
            // Nothing to add: the start itself, even on a Saturday.
            "zero amount",
            ny_office(),
            "2026-06-20T12:00:00Z",
            Duration::zero(),
            "2026-06-20T12:00:00Z",
        ),
    ];

    for (case, calendar, start, amount, expected) in cases {
        let due = calendar.add_business_time(utc(start), amount);

        assert_eq!(due, Ok(utc(expected)), "{case}");
        assert_eq!(calendar.business_time_between(utc(start), utc(expected)), amount, "{case}");
    }
}

#[test]
fn business_time_between_counts_only_working_time() {
    let ny = Tz::America__New_York;
    let berlin = Tz::Europe__Berlin;

    // (case, calendar, from, to, expected)
    let cases = [
        // Fri 16:00 EDT to Mon 12:00 EDT: 1 h + 3 h.
        ("weekend", ny_office(), "2026-06-19T20:00:00Z", "2026-06-22T16:00:00Z", hm(4, 0)),
        // A Berlin weekday, local midnight to midnight: 3 h + 4 h 30.
        ("split day", berlin_split(), "2026-06-15T22:00:00Z", "2026-06-16T22:00:00Z", hm(7, 30)),
        // New York 2026-03-08, local midnight (05:00Z) to midnight (04:00Z next day).
        (
            "NY spring day",
            nightly_batch(ny),
            "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z",
            hm(1, 0),
        ),
        // New York 2026-11-01, local midnight (04:00Z) to midnight (05:00Z next day).
        (
            "NY fall day",
            nightly_batch(ny),
            "2026-11-01T04:00:00Z",
            "2026-11-02T05:00:00Z",
            hm(3, 0),
        ),
        // Berlin 2026-03-29, local midnight (23:00Z before) to midnight (22:00Z).
        (
            "Berlin spring day",
            nightly_batch(berlin),
            "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z",
            hm(1, 0),
        ),
        // Berlin 2026-10-25, local midnight (22:00Z before) to midnight (23:00Z).
        (
            "Berlin fall day",
            nightly_batch(berlin),
            "2026-10-24T22:00:00Z",
            "2026-10-25T23:00:00Z",
            hm(3, 0),
        ),
        // 02:00-02:30 does not exist in New York on 2026-03-08: both ends are the jump.
        (
            "NY window inside the gap",
            Calendar::new(ny, every_day(&["02:00-02:30"])).unwrap(),
            "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z",
            Duration::zero(),
        ),
        // Saturday to Sunday: the office is closed.
        (
            "weekend only",
            ny_office(),
            "2026-06-20T00:00:00Z",
            "2026-06-22T04:00:00Z",
            Duration::zero(),
        ),
        // Backwards is zero, not negative.
        ("reversed", ny_office(), "2026-06-22T16:00:00Z", "2026-06-19T20:00:00Z", Duration::zero()),
        // A calendar with no hours never fails here: there is nothing to count.
        (
            "no opening hours",
            Calendar::new(ny, WeeklyHours::closed()).unwrap(),
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            Duration::zero(),
        ),
    ];

    for (case, calendar, from, to, expected) in cases {
        assert_eq!(calendar.business_time_between(utc(from), utc(to)), expected, "{case}");
    }
}

#[test]
fn is_open_at_follows_the_opening_edges() {
    let office = ny_office();

    // Mon 22 June 2026: 09:00 EDT is 13:00Z, 17:00 EDT is 21:00Z.
    assert!(!office.is_open_at(utc("2026-06-22T12:59:59Z")));
    assert!(office.is_open_at(utc("2026-06-22T13:00:00Z")));
    assert!(office.is_open_at(utc("2026-06-22T20:59:59Z")));
    assert!(!office.is_open_at(utc("2026-06-22T21:00:00Z")));
}

#[test]
fn no_working_time_is_an_error_not_a_hang() {
    let closed = Calendar::new(Tz::America__New_York, WeeklyHours::closed()).unwrap();
    let start = utc("2026-01-01T00:00:00Z");
    // Every date from 2026 to 2028 is a holiday: more than two years without working time.
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let all_holidays =
        ny_office().with_holidays(first.iter_days().take_while(|d| d.year() <= 2028));

    let no_hours = closed.add_business_time(start, hm(1, 0)).unwrap_err();
    let no_time = all_holidays.add_business_time(start, hm(1, 0)).unwrap_err();
    let negative = ny_office().add_business_time(start, -hm(1, 0)).unwrap_err();
    let beyond = ny_office().add_business_time(start, Duration::days(365 * 100)).unwrap_err();

    assert_eq!(no_hours, CalendarError::NoOpeningHours);
    assert_eq!(no_hours.to_string(), "calendar has no opening hours on any day of the week");
    assert_eq!(no_hours.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(no_time, CalendarError::NoWorkingTime { from: start, days: MAX_IDLE_DAYS });
    assert_eq!(
        no_time.to_string(),
        "calendar has no working time within 731 days from 2026-01-01 00:00:00 UTC"
    );
    assert_eq!(no_time.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(negative.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        negative.to_string(),
        "business time to add must not be negative, got -3600 seconds"
    );
    assert!(
        matches!(beyond, CalendarError::BeyondHorizon { years: HORIZON_YEARS, .. }),
        "{beyond:?}"
    );
}

#[test]
fn holidays_that_leave_working_time_within_the_horizon_are_crossed() {
    // Every date of 2026 is a holiday: the first working time is Fri 1 Jan 2027 09:00 EST.
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let calendar = ny_office().with_holidays(first.iter_days().take_while(|d| d.year() == 2026));

    let due = calendar.add_business_time(utc("2026-01-01T00:00:00Z"), hm(1, 0));

    assert_eq!(due, Ok(utc("2027-01-01T15:00:00Z")));
}

#[test]
fn validation_names_what_is_wrong() {
    let ny = Tz::America__New_York;
    let build = |hours: Result<WeeklyHours, CalendarError>| {
        hours.and_then(|hours| Calendar::new(ny, hours)).map(|_| ()).unwrap_err().to_string()
    };

    // (case, hours, expected message)
    let cases = [
        (
            "overlap within a day",
            WeeklyHours::closed().with_day(Weekday::Mon, &["09:00-12:00", "11:00-13:00"]),
            "invalid opening_hours: mon 09:00-12:00 overlaps mon 11:00-13:00",
        ),
        (
            "overnight overlaps the next morning",
            WeeklyHours::closed()
                .with_day(Weekday::Mon, &["22:00-06:00"])
                .and_then(|h| h.with_day(Weekday::Tue, &["05:00-09:00"])),
            "invalid opening_hours: mon 22:00-06:00 overlaps tue 05:00-09:00",
        ),
        (
            "Sunday night overlaps Monday morning",
            WeeklyHours::closed()
                .with_day(Weekday::Sun, &["22:00-06:00"])
                .and_then(|h| h.with_day(Weekday::Mon, &["05:00-09:00"])),
            "invalid opening_hours: sun 22:00-06:00 overlaps mon 05:00-09:00",
        ),
        (
            "empty interval",
            WeeklyHours::closed().with_day(Weekday::Wed, &["10:00-10:00"]),
            "invalid opening_hours.wed: 10:00-10:00 is empty",
        ),
        (
            "time that does not parse",
            WeeklyHours::closed().with_day(Weekday::Fri, &["9am-5pm"]),
            "invalid opening_hours.fri: \"9am-5pm\": \"9am\" is not a time of day (HH:MM)",
        ),
    ];

    for (case, hours, expected) in cases {
        assert_eq!(build(hours), expected, "{case}");
    }

    // Touching intervals do not overlap.
    let touching = WeeklyHours::weekdays(&["09:00-12:00", "12:00-17:00"]).unwrap();
    assert!(Calendar::new(ny, touching).is_ok());
}

#[test]
fn calendar_round_trips_through_json() {
    let calendar = berlin_split().with_holidays([NaiveDate::from_ymd_opt(2026, 12, 24).unwrap()]);

    let json = serde_json::to_value(&calendar).unwrap();
    let back: Calendar = serde_json::from_value(json.clone()).unwrap();

    assert_eq!(
        json,
        serde_json::json!({
            "time_zone": "Europe/Berlin",
            "opening_hours": {
                "mon": ["09:00-12:00", "13:00-17:30"],
                "tue": ["09:00-12:00", "13:00-17:30"],
                "wed": ["09:00-12:00", "13:00-17:30"],
                "thu": ["09:00-12:00", "13:00-17:30"],
                "fri": ["09:00-12:00", "13:00-17:30"],
            },
            "holidays": ["2026-12-24"],
        })
    );
    assert_eq!(back, calendar);
}

#[test]
fn calendar_json_is_validated() {
    // (case, json, expected message)
    let cases = [
        (
            "unknown zone",
            r#"{"time_zone": "Mars/Olympus", "opening_hours": {"mon": ["09:00-17:00"]}}"#,
            "invalid time_zone: \"Mars/Olympus\" is not an IANA time zone name",
        ),
        (
            "overlap",
            r#"{"time_zone": "UTC", "opening_hours": {"mon": ["09:00-17:00", "16:00-18:00"]}}"#,
            "invalid opening_hours: mon 09:00-17:00 overlaps mon 16:00-18:00",
        ),
        (
            "misspelt day",
            r#"{"time_zone": "UTC", "opening_hours": {"monday": ["09:00-17:00"]}}"#,
            "unknown field `monday`",
        ),
    ];

    for (case, json, expected) in cases {
        let err = serde_json::from_str::<Calendar>(json).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{case}: {err}");
    }
}

#[test]
fn always_is_plain_elapsed_time() {
    let always = Calendar::always();
    let start = utc("2026-10-25T00:59:59Z");

    assert_eq!(always.add_business_time(start, hm(25, 1)), Ok(utc("2026-10-26T02:00:59Z")));
    assert_eq!(always.business_time_between(start, utc("2026-10-26T02:00:59Z")), hm(25, 1));
    assert!(always.is_open_at(utc("2026-12-25T12:00:00Z")));
}
