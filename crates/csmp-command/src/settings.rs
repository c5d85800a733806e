//! The service's configuration: where events live, per-tenant refund limits, retry and cache
//! bounds.
//!
//! Tenant settings come from a JSON file. Every part is optional; what a tenant gives replaces the
//! built-in default role by role:
//!
//! ```json
//! {
//!   "default": { "refund_limits": { "default_by_role": { "tier1_agent": 10000 } } },
//!   "tenants": {
//!     "acme": {
//!       "refund_limits": {
//!         "by_role": { "tier1_agent": { "JPY": 5000 } },
//!         "default_by_role": { "tier2_agent": null }
//!       }
//!     }
//!   }
//! }
//! ```
//!
//! Amounts are in the currency's minor unit; `null` lifts a role's limit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use csmp_domain::{Currency, RefundLimits, Role, TenantId};
use csmp_eventstore::EventStoreConfig;
use serde::Deserialize;

/// Everything [`CommandService::connect`](crate::CommandService::connect) needs besides the
/// NATS client and the clock.
#[derive(Debug, Clone)]
pub struct CommandServiceConfig {
    pub store: EventStoreConfig,
    pub tenants: TenantSettings,
    /// How often a command is decided again after losing a race for its ticket before the
    /// caller gets `ABORTED`.
    pub max_retries: u32,
    /// How many tickets' states the service keeps in memory.
    pub cache_capacity: usize,
}

impl Default for CommandServiceConfig {
    /// The default stream, built-in refund limits, 5 retries and 10,000 cached tickets.
    fn default() -> Self {
        CommandServiceConfig {
            store: EventStoreConfig::default(),
            tenants: TenantSettings::default(),
            max_retries: 5,
            cache_capacity: 10_000,
        }
    }
}

/// Per-tenant rules, read from a JSON file (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Applies to every tenant, over the built-in defaults.
    #[serde(default)]
    pub default: TenantRules,
    /// Applies to one tenant, over `default`.
    #[serde(default)]
    pub tenants: BTreeMap<TenantId, TenantRules>,
}

/// The rules one tenant may change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRules {
    #[serde(default)]
    pub refund_limits: RefundLimitChanges,
}

/// Changes to [`RefundLimits`], role by role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLimitChanges {
    /// A role's limits in particular currencies, in minor units.
    #[serde(default)]
    pub by_role: BTreeMap<Role, BTreeMap<Currency, i64>>,
    /// A role's limit in other currencies; `None` lifts it.
    #[serde(default)]
    pub default_by_role: BTreeMap<Role, Option<i64>>,
}

/// The tenant settings file could not be used. The service does not start; an operator fixes
/// the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("failed to read tenant settings {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse tenant settings {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid tenant settings {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl TenantSettings {
    /// Reads and checks a settings file.
    pub fn from_json_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SettingsError::Read { path: path.to_owned(), source })?;
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        let parse_error = |source| SettingsError::Parse { path: path.to_owned(), source };
        let invalid = |reason: String| SettingsError::Invalid { path: path.to_owned(), reason };
        // serde would also read a struct from an array of its fields: `[]` would pass as empty
        // settings and start the service on the defaults. The settings hold no arrays at all.
        let value: serde_json::Value = serde_json::from_str(text).map_err(parse_error)?;
        if !value.is_object() {
            return Err(invalid(
                "the file must hold one JSON object (see docs/configuration.md)".into(),
            ));
        }
        if let Some(at) = first_array(&value, "") {
            return Err(invalid(format!("{at} is an array; the settings hold objects only")));
        }
        let settings: TenantSettings = serde_json::from_str(text).map_err(parse_error)?;
        settings
            .check()
            .map_err(|reason| SettingsError::Invalid { path: path.to_owned(), reason })?;
        Ok(settings)
    }

    /// The refund limits of `tenant`: the built-in defaults, changed by `default`, changed by the
    /// tenant's own entry.
    pub fn refund_limits(&self, tenant: &TenantId) -> RefundLimits {
        let mut limits = self.default_refund_limits();
        if let Some(rules) = self.tenants.get(tenant) {
            rules.refund_limits.apply_to(&mut limits);
        }
        limits
    }

    /// The refund limits of a tenant without an entry: the built-in defaults, changed by
    /// `default`.
    pub fn default_refund_limits(&self) -> RefundLimits {
        let mut limits = RefundLimits::default();
        self.default.refund_limits.apply_to(&mut limits);
        limits
    }

    fn check(&self) -> Result<(), String> {
        let all = std::iter::once(("default".to_owned(), &self.default))
            .chain(self.tenants.iter().map(|(tenant, rules)| (format!("tenant {tenant}"), rules)));
        for (whose, rules) in all {
            let changes = &rules.refund_limits;
            let per_currency = changes.by_role.iter().flat_map(|(role, per_currency)| {
                per_currency.iter().map(move |(currency, limit)| (*role, Some(*currency), *limit))
            });
            let per_role = changes
                .default_by_role
                .iter()
                .filter_map(|(role, limit)| limit.map(|limit| (*role, None, limit)));
            if let Some((role, currency, limit)) =
                per_currency.chain(per_role).find(|(_, _, limit)| *limit < 0)
            {
                let currency = currency.map_or_else(String::new, |c| format!(" in {c}"));
                return Err(format!("{whose}: the refund limit of {role}{currency} is {limit}"));
            }
        }
        Ok(())
    }
}

/// The dotted path of the first array inside `value`, which sits at `at`.
fn first_array(value: &serde_json::Value, at: &str) -> Option<String> {
    match value {
        serde_json::Value::Array(_) => Some(at.to_owned()),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, field)| {
            let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
            first_array(field, &path)
        }),
        _ => None,
    }
}

impl RefundLimitChanges {
    fn apply_to(&self, limits: &mut RefundLimits) {
        for (role, per_currency) in &self.by_role {
            let entry = limits.by_role.entry(*role).or_default();
            entry.extend(per_currency.iter().map(|(currency, limit)| (*currency, *limit)));
        }
        for (role, limit) in &self.default_by_role {
            match limit {
                Some(limit) => limits.default_by_role.insert(*role, *limit),
                None => limits.default_by_role.remove(role),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn refund_limits_change_the_defaults_role_by_role() {
        let settings: TenantSettings = serde_json::from_str(
            r#"{
                "default": { "refund_limits": { "default_by_role": { "tier1_agent": 10000 } } },
                "tenants": { "acme": { "refund_limits": {
                    "by_role": { "tier1_agent": { "EUR": 2000 } },
                    "default_by_role": { "tier2_agent": null }
                } } }
            }"#,
        )
        .unwrap();
        let acme = settings.refund_limits(&TenantId::parse("acme").unwrap());
        let other = settings.refund_limits(&TenantId::parse("globex").unwrap());
        let usd = Currency::parse("USD").unwrap();

        assert_eq!(acme.limit(Role::Tier1Agent, eur()), Some(2_000));
        assert_eq!(acme.limit(Role::Tier1Agent, usd), Some(10_000));
        assert_eq!(acme.limit(Role::Tier2Agent, eur()), None);
        assert_eq!(acme.limit(Role::Importer, eur()), Some(0));
        assert_eq!(other.limit(Role::Tier1Agent, eur()), Some(10_000));
        assert_eq!(other.limit(Role::Tier2Agent, eur()), Some(50_000));
    }

    #[test]
    fn empty_settings_give_the_built_in_limits() {
        let settings: TenantSettings = serde_json::from_str("{}").unwrap();

        assert_eq!(settings, TenantSettings::default());
        assert_eq!(
            settings.refund_limits(&TenantId::parse("acme").unwrap()),
            RefundLimits::default()
        );
    }

    #[test]
    fn a_settings_file_with_a_negative_limit_is_refused() {
        let dir = std::env::temp_dir().join(format!("csmp-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tenants.json");
        std::fs::write(
            &path,
            r#"{"tenants": {"acme": {"refund_limits": {"by_role": {"lead": {"EUR": -1}}}}}}"#,
        )
        .unwrap();

        let err = TenantSettings::from_json_file(&path).unwrap_err();

        assert_eq!(
            err.to_string(),
            format!(
                "invalid tenant settings {}: tenant acme: the refund limit of lead in EUR is -1",
                path.display()
            )
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_settings_file_that_is_no_object_is_refused() {
        let dir = std::env::temp_dir().join(format!("csmp-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tenants.json");
        for text in ["[]", " [{}]", "null", "42"] {
            std::fs::write(&path, text).unwrap();

            let err = TenantSettings::from_json_file(&path).unwrap_err();

            assert_eq!(
                err.to_string(),
                format!(
                    "invalid tenant settings {}: the file must hold one JSON object (see \
                     docs/configuration.md)",
                    path.display()
                ),
                "{text}"
            );
        }
        let nested = [
            (r#"{"tenants": {"acme": []}}"#, "tenants.acme"),
            (r#"{"default": []}"#, "default"),
            (r#"{"tenants": {"acme": {"refund_limits": [1]}}}"#, "tenants.acme.refund_limits"),
        ];
        for (text, at) in nested {
            std::fs::write(&path, text).unwrap();

            let err = TenantSettings::from_json_file(&path).unwrap_err();

            assert_eq!(
                err.to_string(),
                format!(
                    "invalid tenant settings {}: {at} is an array; the settings hold objects only",
                    path.display()
                ),
            );
        }
        std::fs::write(&path, " {}").unwrap();
        assert!(TenantSettings::from_json_file(&path).is_ok());
        // A byte order mark, as some editors write one, is not part of the JSON.
        std::fs::write(&path, "\u{FEFF}{\"default\": {}}").unwrap();
        assert!(TenantSettings::from_json_file(&path).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<TenantSettings>(r#"{"tenant": {}}"#).unwrap_err();

        assert!(err.to_string().starts_with("unknown field `tenant`"), "{err}");
    }
}
