//! Properties of business-time arithmetic and of the clocks, over many calendars and instants.

mod support;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use csmp_domain::{CustomerTier, Priority};
use csmp_sla::{Calendar, ClockStatus, Measure, Opening, SlaClocks, TicketFact};
use proptest::prelude::*;
use support::*;

/// Calendars with weekends, lunch breaks, holidays, overnight shifts and DST-cut windows.
fn calendars_under_test() -> Vec<Calendar> {
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    vec![
        ny_office(),
        berlin_split().with_holidays([date(2026, 12, 24), date(2026, 12, 25), date(2026, 4, 3)]),
        ny_night_desk().with_holidays([date(2026, 6, 17), date(2026, 11, 26)]),
        nightly_batch(Tz::America__New_York),
        nightly_batch(Tz::Europe__Berlin),
        nightly_shift(Tz::Europe__Berlin),
        nightly_shift(Tz::America__New_York),
        Calendar::always(),
    ]
}

/// Around the clock, but written as two half-days in a DST zone, so the general path (not
/// the 24x7 shortcut) computes it.
fn around_the_clock_in_berlin() -> Calendar {
    Calendar::new(Tz::Europe__Berlin, every_day(&["00:00-12:00", "12:00-24:00"])).unwrap()
}

/// Instants from October 2025 to December 2027, covering four DST changes in each zone, with
/// a fraction of a second now and then.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let from = utc("2025-10-01T00:00:00Z").timestamp();
    let to = utc("2027-12-31T00:00:00Z").timestamp();
    (from..to, prop_oneof![Just(0u32), 0u32..1_000_000_000])
        .prop_map(|(seconds, nanos)| DateTime::from_timestamp(seconds, nanos).unwrap())
}

/// Up to 300 hours, to the second.
fn amount() -> impl Strategy<Value = Duration> {
    (0i64..300 * 3600).prop_map(Duration::seconds)
}

proptest! {
    #[test]
    fn business_time_between_undoes_add(
        which in 0usize..8,
        start in instant(),
        amount in amount(),
    ) {
        let calendar = &calendars_under_test()[which];

        let due = calendar.add_business_time(start, amount).unwrap();

        prop_assert_eq!(calendar.business_time_between(start, due), amount);
        prop_assert!(due - start >= amount, "business time is never more than wall time");
    }

    #[test]
    fn add_is_monotonic_in_the_amount(
        which in 0usize..8,
        start in instant(),
        a in amount(),
        b in amount(),
    ) {
        let calendar = &calendars_under_test()[which];
        let (less, more) = if a <= b { (a, b) } else { (b, a) };

        let earlier = calendar.add_business_time(start, less).unwrap();
        let later = calendar.add_business_time(start, more).unwrap();

        prop_assert!(earlier <= later, "{} then {}", earlier, later);
    }

    #[test]
    fn business_time_between_adds_up(
        which in 0usize..8,
        mut points in proptest::collection::vec(instant(), 3),
    ) {
        let calendar = &calendars_under_test()[which];
        points.sort();
        let (a, b, c) = (points[0], points[1], points[2]);

        let parts = calendar.business_time_between(a, b) + calendar.business_time_between(b, c);

        prop_assert_eq!(parts, calendar.business_time_between(a, c));
    }

    #[test]
    fn around_the_clock_is_plain_addition(start in instant(), amount in amount()) {
        for calendar in [Calendar::always(), around_the_clock_in_berlin()] {
            let due = calendar.add_business_time(start, amount).unwrap();

            prop_assert_eq!(due, start + amount);
            prop_assert_eq!(calendar.business_time_between(start, due), amount);
        }
    }

    #[test]
    fn running_clocks_have_exactly_their_remaining_business_time_left(
        priority in 0usize..4,
        steps in proptest::collection::vec((0i64..20 * 3600, 0usize..8), 0..12),
        later in 0i64..72 * 3600,
    ) {
        let opening = Opening {
            priority: Priority::ALL[priority],
            customer_tier: CustomerTier::Business,
            is_complaint: true,
        };
        let opened_at = utc("2026-03-05T14:00:00Z");
        let facts = [
            TicketFact::Acknowledged,
            TicketFact::CustomerAsked,
            TicketFact::CustomerReplied,
            TicketFact::PriorityChanged { to: Priority::ALL[(priority + 1) % 4] },
            TicketFact::PriorityChanged { to: Priority::Low },
            TicketFact::Resolved,
            TicketFact::Reopened,
            TicketFact::CustomerReplied,
        ];
        let mut clocks =
            SlaClocks::open(ticket(), opened_at, opening, &history(), &calendars()).unwrap();
        let mut at = opened_at;
        for (gap, fact) in &steps {
            at += Duration::seconds(*gap);
            clocks.apply(at, facts[*fact]);
        }
        let now = at + Duration::seconds(later);
        let office = ny_office();

        for report in clocks.report(now).unwrap() {
            let calendar = match report.measured_in {
                Measure::Always => Calendar::always(),
                Measure::Calendar(_) => office.clone(),
            };

            // A clock never counts more than the working time since it started.
            prop_assert!(report.elapsed <= calendar.business_time_between(report.started_at, now));
            if report.status == ClockStatus::Running {
                let due = report.due_at.unwrap();
                prop_assert!(due > now);
                prop_assert_eq!(calendar.business_time_between(now, due), report.remaining);
            }
            if report.status == ClockStatus::Breached {
                prop_assert!(report.due_at.unwrap() <= now);
            }
        }
    }
}
