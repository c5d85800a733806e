//! SLA targets by priority and customer tier, on wall-clock time.
//!
//! The defaults are documented in `docs/sla.md`. A tenant may replace the whole table. Targets
//! serialize as whole seconds (`{"first_response": 900, "resolution": 14400}`), the form the
//! projectors store per tenant.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::types::{CustomerTier, Priority};

/// The two promises made for a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTargets {
    #[serde(with = "whole_seconds")]
    pub first_response: Duration,
    #[serde(with = "whole_seconds")]
    pub resolution: Duration,
}

/// Targets for every priority and customer tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    /// Indexed `[priority][customer tier]`, both in declaration order (low..critical,
    /// enterprise..standard).
    pub targets: [[SlaTargets; 3]; 4],
    /// Share of a target after which a running clock counts as at risk, in percent.
    pub at_risk_percent: u8,
}

impl SlaPolicy {
    pub fn targets(&self, priority: Priority, tier: CustomerTier) -> SlaTargets {
        self.targets[priority as usize][tier as usize]
    }

    /// The same table with every duration divided by `factor`: a demo tenant's short targets.
    pub fn scaled_down(&self, factor: i32) -> SlaPolicy {
        let mut policy = self.clone();
        for row in policy.targets.iter_mut() {
            for t in row.iter_mut() {
                t.first_response = t.first_response / factor;
                t.resolution = t.resolution / factor;
            }
        }
        policy
    }
}

impl Default for SlaPolicy {
    fn default() -> Self {
        let t = |first_minutes: i64, resolution_hours: i64| SlaTargets {
            first_response: Duration::minutes(first_minutes),
            resolution: Duration::hours(resolution_hours),
        };
        SlaPolicy {
            targets: [
                // low: enterprise, business, standard
                [t(240, 72), t(480, 120), t(1440, 168)],
                // medium
                [t(120, 24), t(240, 48), t(480, 72)],
                // high
                [t(60, 8), t(120, 16), t(240, 24)],
                // critical
                [t(15, 4), t(30, 8), t(60, 12)],
            ],
            at_risk_percent: 75,
        }
    }
}

/// A duration as a whole number of seconds; fractions of a second are dropped when writing.
mod whole_seconds {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(value.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = i64::deserialize(deserializer)?;
        Duration::try_seconds(seconds)
            .ok_or_else(|| serde::de::Error::custom(format!("{seconds} seconds is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_serialize_as_whole_seconds() {
        let policy = SlaPolicy::default();

        let json = serde_json::to_value(&policy).unwrap();

        let critical_enterprise = &json["targets"][3][0];
        assert_eq!(critical_enterprise["first_response"], 900);
        assert_eq!(critical_enterprise["resolution"], 14_400);
        assert_eq!(json["at_risk_percent"], 75);
        let back: SlaPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, policy);
    }
}
