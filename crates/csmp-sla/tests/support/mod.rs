//! Calendars, a policy and helpers shared by the SLA engine's tests.
//!
//! Every instant in a test is written in UTC, with the local wall time beside it in a comment,
//! so expected values never go through the time zone code under test.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc, Weekday};
use chrono_tz::Tz;
use csmp_sla::{Calendar, Calendars, WeeklyHours};

/// An RFC 3339 instant, such as `2026-06-22T16:00:00Z`.
pub fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_else(|e| panic!("bad instant {text:?}: {e}"))
}

/// `h:m` as a duration, for table readability: `hm(4, 30)` is four and a half hours.
pub fn hm(hours: i64, minutes: i64) -> Duration {
    Duration::hours(hours) + Duration::minutes(minutes)
}

/// New York, Monday to Friday 09:00-17:00.
pub fn ny_office() -> Calendar {
    Calendar::new(Tz::America__New_York, WeeklyHours::weekdays(&["09:00-17:00"]).unwrap()).unwrap()
}

/// Berlin, Monday to Friday 09:00-12:00 and 13:00-17:30, lunch closed.
pub fn berlin_split() -> Calendar {
    let hours = WeeklyHours::weekdays(&["09:00-12:00", "13:00-17:30"]).unwrap();
    Calendar::new(Tz::Europe__Berlin, hours).unwrap()
}

/// New York night desk: shifts 22:00-06:00 starting Monday to Friday evening.
pub fn ny_night_desk() -> Calendar {
    Calendar::new(Tz::America__New_York, WeeklyHours::weekdays(&["22:00-06:00"]).unwrap()).unwrap()
}

/// Every day 01:30-03:30 in `zone`: the stretch a DST change cuts or repeats.
pub fn nightly_batch(zone: Tz) -> Calendar {
    Calendar::new(zone, every_day(&["01:30-03:30"])).unwrap()
}

/// Every day 22:00-06:00 in `zone`: an overnight shift across DST nights.
pub fn nightly_shift(zone: Tz) -> Calendar {
    Calendar::new(zone, every_day(&["22:00-06:00"])).unwrap()
}

pub fn every_day(intervals: &[&str]) -> WeeklyHours {
    let days = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    days.into_iter()
        .fold(WeeklyHours::closed(), |hours, day| hours.with_day(day, intervals).unwrap())
}

/// The tenant's calendars the test policy names.
pub fn calendars() -> Calendars {
    Calendars::from([("ny-office".to_owned(), ny_office())])
}

/// The test tenant's policy: business hours under `ny-office`, except first response for
/// critical enterprise tickets, which runs around the clock. Seconds: 3600 is 1 h.
pub const POLICY_JSON: &str = r#"{
    "measured_in": {"calendar": "ny-office"},
    "first_response": {
        "low":      {"enterprise": 14400, "business": 28800, "standard": 86400},
        "medium":   {"enterprise": 7200,  "business": 14400, "standard": 28800},
        "high":     {"enterprise": 3600,  "business": 7200,  "standard": 14400},
        "critical": {
            "enterprise": {"within": 1800, "measured_in": "always"},
            "business": 1800,
            "standard": 3600
        }
    },
    "next_response": {
        "low":      {"enterprise": 28800, "business": 28800, "standard": 57600},
        "medium":   {"enterprise": 14400, "business": 14400, "standard": 28800},
        "high":     {"enterprise": 7200,  "business": 7200,  "standard": 14400},
        "critical": {"enterprise": 3600,  "business": 3600,  "standard": 7200}
    },
    "resolution": {
        "low":      {"enterprise": 144000, "business": 144000, "standard": 288000},
        "medium":   {"enterprise": 57600,  "business": 86400,  "standard": 144000},
        "high":     {"enterprise": 28800,  "business": 57600,  "standard": 86400},
        "critical": {"enterprise": 14400,  "business": 28800,  "standard": 28800}
    },
    "complaint_acknowledgement": 7200,
    "warning_percent": 75,
    "escalations": [
        {"target": "first_response", "priority": "critical", "action": "escalate_one_tier"},
        {
            "target": "resolution",
            "customer_tier": "enterprise",
            "on": "warning",
            "action": {"escalate_to": "tier3"}
        }
    ]
}"#;

pub fn policy() -> csmp_sla::SlaPolicy {
    serde_json::from_str(POLICY_JSON).unwrap()
}

pub fn tenant() -> csmp_domain::TenantId {
    csmp_domain::TenantId::parse("acme").unwrap()
}

pub fn ticket() -> csmp_domain::TicketId {
    csmp_domain::TicketId::for_request(&tenant(), "open-1")
}

/// One version, in force from 2026-01-01.
pub fn history() -> csmp_sla::PolicyHistory {
    let version = csmp_sla::PolicyVersion {
        version: 1,
        effective_from: utc("2026-01-01T00:00:00Z"),
        policy: policy(),
    };
    csmp_sla::PolicyHistory::new(tenant(), vec![version]).unwrap()
}
