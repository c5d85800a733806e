//! The read models' PostgreSQL schemas: versioned migrations, and the tenants' SLA policies.
//!
//! Each projector owns one live schema named after it, and a rebuild builds a copy in a schema of
//! its own ([`migrate_schema`]). The migrations are numbered; the applied ones are recorded in
//! `<schema>.schema_migrations`, and a transaction-level advisory lock makes two instances that
//! start at once apply them one after the other. Every schema has the same bookkeeping tables:
//! `checkpoint` (one row: the last stream position applied), `dead_letters` (messages that could
//! not be applied) and the `status` view over both.
//!
//! The advisory locks of the projectors are defined here too: the migration lock, the projector
//! lock of the one instance that writes a schema, the switch lock that keeps live batches and
//! the switch to a rebuilt schema apart, and the lock a rebuild holds on the schema it builds.

use std::collections::HashMap;

use csmp_domain::sla::SlaPolicy;
use csmp_domain::TenantId;
use tokio_postgres::Client;
use tracing::info;

use crate::error::ProjectorError;
use crate::ProjectorKind;

/// First key of every advisory lock taken by the projectors ("csmp" in ASCII).
const LOCK_CLASS: i32 = 0x6373_6d70;

/// The advisory lock key serialising the migrations of one read model.
fn migration_lock(kind: ProjectorKind) -> i32 {
    kind_index(kind) * 2
}

/// First key of the projector locks of schemas other than the live ones ("csmq").
const OTHER_SCHEMA_LOCK_CLASS: i32 = 0x6373_6d71;

/// The advisory lock held by the one instance that projects into `schema`. The live schemas
/// keep the keys they always had; another schema gets a key hashed from its name (a collision
/// only makes one of two projectors wait as a standby).
pub(crate) fn projector_lock(kind: ProjectorKind, schema: &str) -> (i32, i32) {
    if schema == kind.name() {
        return (LOCK_CLASS, kind_index(kind) * 2 + 1);
    }
    // FNV-1a: stable across processes and versions, unlike the standard library's hasher.
    let hash =
        schema.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    (OTHER_SCHEMA_LOCK_CLASS, hash as i32)
}

/// The advisory lock that keeps live batches and a switch apart: every batch transaction of a
/// projector takes it shared, the switch to a rebuilt schema (and a verification comparing at
/// one position) takes it exclusively, so that no batch transaction straddles the switch.
pub(crate) fn switch_lock(kind: ProjectorKind) -> (i32, i32) {
    (LOCK_CLASS, 6 + kind_index(kind))
}

/// Takes `kind`'s switch lock exclusively within `tx`, waiting for the live projector's batch
/// in progress to end; held until `tx` ends.
pub(crate) async fn hold_switch_lock(
    tx: &tokio_postgres::Transaction<'_>,
    kind: ProjectorKind,
) -> Result<(), ProjectorError> {
    let (class, key) = switch_lock(kind);
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&class, &key])
        .await
        .map_err(ProjectorError::postgres("take the switch lock"))?;
    Ok(())
}

/// High half of the session lock a rebuild or a verification holds on the schema it builds
/// ("csmr"); the low half is the schema's oid. A `*_rebuild_*` or `*_verify_*` schema whose lock
/// nobody holds was left by a process that died.
pub(crate) const SCRATCH_LOCK_CLASS: u32 = 0x6373_6d72;

/// The session lock (one `bigint` key) held on the scratch schema with the oid `oid`.
pub(crate) fn scratch_lock(oid: u32) -> i64 {
    (i64::from(SCRATCH_LOCK_CLASS) << 32) | i64::from(oid)
}

/// Checks that `schema` can be written into SQL as it is: a lowercase identifier.
pub(crate) fn check_schema_name(schema: &str) -> Result<(), ProjectorError> {
    let mut bytes = schema.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(ProjectorError::InvalidSchema(schema.to_owned()))
    }
}

fn kind_index(kind: ProjectorKind) -> i32 {
    match kind {
        ProjectorKind::Queues => 0,
        ProjectorKind::Sla => 1,
        ProjectorKind::Feedback => 2,
    }
}

/// The tables every read model has; `{schema}` is replaced by the schema name.
const BOOKKEEPING: &str = "
CREATE TABLE {schema}.checkpoint (
    id smallint PRIMARY KEY CHECK (id = 1),
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.checkpoint (id, position) VALUES (1, 0);
CREATE TABLE {schema}.dead_letters (
    position bigint PRIMARY KEY,
    subject text NOT NULL,
    event_type text,
    reason text NOT NULL,
    body bytea NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT now()
);
CREATE VIEW {schema}.status AS
    SELECT c.position AS checkpoint,
           c.updated_at,
           (SELECT count(*) FROM {schema}.dead_letters) AS dead_letters
    FROM {schema}.checkpoint c;
";

const QUEUES_V1: &str = "
CREATE TABLE {schema}.tickets (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    customer_id text NOT NULL,
    customer_tier text NOT NULL,
    channel text NOT NULL,
    category text NOT NULL,
    product text NOT NULL,
    priority text NOT NULL,
    tier text NOT NULL,
    status text NOT NULL,
    subject text NOT NULL,
    description text NOT NULL,
    assignee text,
    is_complaint boolean NOT NULL,
    opened_at timestamptz,
    opened_position bigint NOT NULL,
    first_response_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    version bigint NOT NULL,
    last_position bigint NOT NULL,
    csat smallint,
    nps smallint,
    priority_rank smallint GENERATED ALWAYS AS (
        CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END
    ) STORED,
    customer_tier_rank smallint GENERATED ALWAYS AS (
        CASE customer_tier WHEN 'enterprise' THEN 0 WHEN 'business' THEN 1 ELSE 2 END
    ) STORED,
    PRIMARY KEY (tenant, ticket_id)
) WITH (fillfactor = 80);
CREATE INDEX tickets_queue_order ON {schema}.tickets
    (tenant, priority_rank, customer_tier_rank, ticket_id)
    WHERE status IN ('new', 'open', 'waiting_on_customer');
CREATE INDEX tickets_customer_history ON {schema}.tickets
    (tenant, customer_id, opened_at DESC NULLS LAST, opened_position DESC);
CREATE INDEX tickets_assignee ON {schema}.tickets (tenant, assignee) WHERE assignee IS NOT NULL;

CREATE TABLE {schema}.timeline (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    occurred_at timestamptz,
    recorded_at timestamptz NOT NULL,
    payload jsonb NOT NULL,
    PRIMARY KEY (tenant, ticket_id, version)
);

CREATE TABLE {schema}.refunds (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    refund_id text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('issued', 'awaiting_approval', 'approved', 'rejected')),
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    reason text NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL,
    changed_at timestamptz NOT NULL,
    last_position bigint NOT NULL,
    PRIMARY KEY (tenant, ticket_id, refund_id)
);
CREATE INDEX refunds_by_currency ON {schema}.refunds (tenant, currency, status);
";

const SLA_V1: &str = "
CREATE TABLE {schema}.tenant_policies (
    tenant text PRIMARY KEY,
    policy jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {schema}.tickets (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    priority text NOT NULL,
    customer_tier text NOT NULL,
    opened_at timestamptz,
    fr_target_seconds bigint NOT NULL,
    fr_at_risk_percent smallint NOT NULL,
    fr_due_at timestamptz,
    fr_stopped_at timestamptz,
    fr_outcome text CHECK (fr_outcome IN ('met', 'breached')),
    res_target_seconds bigint NOT NULL,
    res_at_risk_percent smallint NOT NULL,
    res_due_at timestamptz,
    res_paused_since timestamptz,
    res_paused_seconds bigint NOT NULL,
    res_resolved_seconds bigint NOT NULL,
    res_stopped_at timestamptz,
    res_outcome text CHECK (res_outcome IN ('met', 'breached')),
    version bigint NOT NULL,
    last_position bigint NOT NULL,
    PRIMARY KEY (tenant, ticket_id)
) WITH (fillfactor = 80);
CREATE INDEX tickets_first_response_running ON {schema}.tickets (tenant, fr_due_at)
    WHERE fr_stopped_at IS NULL;
CREATE INDEX tickets_resolution_running ON {schema}.tickets (tenant, res_due_at)
    WHERE res_stopped_at IS NULL AND res_paused_since IS NULL;
";

/// The business-hours SLA: per-ticket facts and one row per clock, measured by `csmp-sla`.
/// The old wall-clock columns go, and the checkpoint goes back to 0 so that the projector
/// rebuilds the read model from the stream (the runner re-creates its consumer to match).
const SLA_V2: &str = "
DROP TABLE {schema}.tickets;
CREATE TABLE {schema}.policy_versions (
    tenant text NOT NULL,
    version integer NOT NULL,
    effective_from timestamptz NOT NULL,
    policy jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, version)
);
CREATE TABLE {schema}.calendars (
    tenant text NOT NULL,
    name text NOT NULL,
    calendar jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);
CREATE TABLE {schema}.tickets (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    priority text NOT NULL,
    customer_tier text NOT NULL,
    opened_at timestamptz,
    policy_version integer,
    facts jsonb NOT NULL,
    version bigint NOT NULL,
    last_position bigint NOT NULL,
    PRIMARY KEY (tenant, ticket_id)
) WITH (fillfactor = 80);
CREATE TABLE {schema}.clocks (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    target text NOT NULL
        CHECK (target IN ('first_response', 'next_response', 'resolution',
                          'complaint_acknowledgement')),
    cycle integer NOT NULL,
    within_seconds bigint NOT NULL,
    measured_in text NOT NULL,
    started_at timestamptz NOT NULL,
    stopped_at timestamptz,
    running boolean NOT NULL,
    warning_at timestamptz,
    due_at timestamptz,
    PRIMARY KEY (tenant, ticket_id, target, cycle)
);
CREATE INDEX clocks_running_due ON {schema}.clocks (tenant, due_at) WHERE running;
CREATE TABLE {schema}.signals (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    target text NOT NULL,
    cycle integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('warning', 'breach')),
    due_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    policy_version integer NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant, ticket_id, target, cycle, kind)
);
CREATE INDEX signals_by_kind ON {schema}.signals (tenant, kind);
UPDATE {schema}.checkpoint SET position = 0, updated_at = now();
DELETE FROM {schema}.dead_letters;
";

/// Versioned calendars: a calendar is stored once per `effective_from`, the rows stored before
/// taking effect in 1970, and each clock records the calendar version it was measured in
/// (`NULL` around the clock, or until the projector next measures the ticket).
const SLA_V3: &str = "
ALTER TABLE {schema}.calendars ADD COLUMN effective_from timestamptz NOT NULL
    DEFAULT '1970-01-01T00:00:00Z';
ALTER TABLE {schema}.calendars ALTER COLUMN effective_from DROP DEFAULT;
ALTER TABLE {schema}.calendars DROP CONSTRAINT calendars_pkey;
ALTER TABLE {schema}.calendars ADD PRIMARY KEY (tenant, name, effective_from);
ALTER TABLE {schema}.clocks ADD COLUMN calendar_from timestamptz;
";

const FEEDBACK_V1: &str = "
CREATE TABLE {schema}.tickets (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    customer_id text NOT NULL,
    customer_tier text NOT NULL,
    channel text NOT NULL,
    category text NOT NULL,
    product text NOT NULL,
    priority text NOT NULL,
    tier text NOT NULL,
    acknowledged_by text,
    resolved_by text,
    agent text,
    opened_at timestamptz,
    first_response_at timestamptz,
    first_response_seconds double precision,
    resolved_at timestamptz,
    resolved_day date,
    resolution_seconds double precision,
    csat smallint,
    nps smallint,
    comment text,
    rated_at timestamptz,
    escalations integer NOT NULL,
    version bigint NOT NULL,
    last_position bigint NOT NULL,
    PRIMARY KEY (tenant, ticket_id)
) WITH (fillfactor = 80);
CREATE INDEX feedback_resolved ON {schema}.tickets (tenant, resolved_at);
CREATE INDEX feedback_agent ON {schema}.tickets (tenant, agent);
CREATE INDEX feedback_rated ON {schema}.tickets (tenant, csat, nps) WHERE csat IS NOT NULL;

CREATE TABLE {schema}.escalations (
    tenant text NOT NULL,
    ticket_id uuid NOT NULL,
    version bigint NOT NULL,
    agent text NOT NULL,
    from_tier text NOT NULL,
    to_tier text NOT NULL,
    occurred_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant, ticket_id, version)
);
CREATE INDEX escalations_agent ON {schema}.escalations (tenant, agent, occurred_at);
";

/// Feedback sentiment and themes (`feedback.given` version 2): two columns, and the read model
/// projected again from the first event so that every rating has them, older ones upcast.
/// `themes` holds the theme names sorted and joined by commas, empty for none.
const FEEDBACK_V2: &str = "
ALTER TABLE {schema}.tickets ADD COLUMN sentiment text
    CHECK (sentiment IN ('positive', 'neutral', 'negative'));
ALTER TABLE {schema}.tickets ADD COLUMN themes text NOT NULL DEFAULT '';
TRUNCATE {schema}.tickets, {schema}.escalations;
UPDATE {schema}.checkpoint SET position = 0, updated_at = now();
DELETE FROM {schema}.dead_letters;
";

/// The numbered migrations of a read model in `schema`, oldest first. A released migration
/// never changes; a change to a schema is a new number.
fn migrations(kind: ProjectorKind, schema: &str) -> Vec<(i32, &'static str, String)> {
    let tables = match kind {
        ProjectorKind::Queues => QUEUES_V1,
        ProjectorKind::Sla => SLA_V1,
        ProjectorKind::Feedback => FEEDBACK_V1,
    };
    let mut all = vec![(1, "read model tables", format!("{BOOKKEEPING}{tables}"))];
    if kind == ProjectorKind::Sla {
        all.push((2, "business-hours SLA clocks and signals", SLA_V2.to_owned()));
        all.push((3, "versioned SLA calendars", SLA_V3.to_owned()));
    }
    if kind == ProjectorKind::Feedback {
        all.push((2, "feedback sentiment and themes", FEEDBACK_V2.to_owned()));
    }
    all.into_iter().map(|(v, d, sql)| (v, d, sql.replace("{schema}", schema))).collect()
}

/// Creates or upgrades the live schema of `kind`'s read model. Idempotent; safe when several
/// instances call it at once (they take turns on an advisory lock).
///
/// Runs its own transaction on `pg` with `BEGIN` and `COMMIT`, so no other task may use the same
/// client meanwhile.
pub async fn migrate(pg: &Client, kind: ProjectorKind) -> Result<(), ProjectorError> {
    migrate_schema(pg, kind, kind.name()).await
}

/// Like [`migrate`], for a read model of `kind` in `schema`, for example one being rebuilt.
///
/// Fails with [`ProjectorError::InvalidSchema`] when `schema` is not a lowercase identifier.
pub async fn migrate_schema(
    pg: &Client,
    kind: ProjectorKind,
    schema: &str,
) -> Result<(), ProjectorError> {
    migrate_schema_up_to(pg, kind, schema, i32::MAX).await
}

/// Like [`migrate_schema`], applying the migrations up to number `last` only: the read model as
/// an earlier release left it, for upgrade tests.
pub async fn migrate_schema_up_to(
    pg: &Client,
    kind: ProjectorKind,
    schema: &str,
    last: i32,
) -> Result<(), ProjectorError> {
    check_schema_name(schema)?;
    pg.batch_execute("BEGIN").await.map_err(ProjectorError::postgres("begin migrations"))?;
    let applied = migrate_in_transaction(pg, kind, schema, last).await;
    let end = if applied.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = pg.batch_execute(end).await.map_err(ProjectorError::postgres("end migrations"));
    let applied = applied?;
    ended?;
    if applied > 0 {
        info!(schema, applied, "migrated read model");
    }
    Ok(())
}

async fn migrate_in_transaction(
    pg: &Client,
    kind: ProjectorKind,
    schema: &str,
    last: i32,
) -> Result<usize, ProjectorError> {
    // Two instances starting at once queue here; the second finds everything applied.
    pg.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &migration_lock(kind)])
        .await
        .map_err(ProjectorError::postgres("lock migrations"))?;

    pg.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(ProjectorError::postgres("create schema"))?;
    let current: i32 = pg
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .map_err(ProjectorError::postgres("read schema version"))?
        .get(0);

    let mut applied = 0;
    for (version, description, sql) in migrations(kind, schema) {
        if version <= current || version > last {
            continue;
        }
        pg.batch_execute(&sql).await.map_err(ProjectorError::postgres("apply migration"))?;
        pg.execute(
            &format!(
                "INSERT INTO {schema}.schema_migrations (version, description) VALUES ($1, $2)"
            ),
            &[&version, &description],
        )
        .await
        .map_err(ProjectorError::postgres("record migration"))?;
        applied += 1;
    }
    Ok(applied)
}

/// Stores `policy` as `tenant`'s wall-clock SLA table, replacing the default one
/// ([`SlaPolicy::default`]).
///
/// It becomes the tenant's base policy version 0, effective from 1970 and measured around the
/// clock ([`policy_from_wall_clock`](crate::sla_config::policy_from_wall_clock)); versions
/// stored with [`set_sla_policy_version`](crate::set_sla_policy_version) still follow it.
/// Tickets under version 0 are measured under the new table the next time the projector folds
/// one of their events. Creates the `sla` schema if it is not there yet.
pub async fn set_sla_policy(
    pg: &Client,
    tenant: &TenantId,
    policy: &SlaPolicy,
) -> Result<(), ProjectorError> {
    check_policy(policy)?;
    migrate(pg, ProjectorKind::Sla).await?;
    let json = serde_json::to_value(policy).expect("a policy always serializes");
    pg.execute(
        "INSERT INTO sla.tenant_policies (tenant, policy, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (tenant) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()",
        &[&tenant.as_str(), &json],
    )
    .await
    .map_err(ProjectorError::postgres("store SLA policy"))?;
    info!(tenant = %tenant, "stored SLA policy");
    Ok(())
}

/// The SLA policy in force for `tenant`: the stored one, or [`SlaPolicy::default`].
pub async fn sla_policy(pg: &Client, tenant: &TenantId) -> Result<SlaPolicy, ProjectorError> {
    let policies = load_policies(pg, &[tenant.as_str()]).await?;
    Ok(policies.get(tenant.as_str()).cloned().unwrap_or_default())
}

/// The stored policies of `tenants`; a tenant without one is absent from the map.
pub(crate) async fn load_policies(
    pg: &impl tokio_postgres::GenericClient,
    tenants: &[&str],
) -> Result<HashMap<String, SlaPolicy>, ProjectorError> {
    let rows = pg
        .query("SELECT tenant, policy FROM sla.tenant_policies WHERE tenant = ANY($1)", &[&tenants])
        .await
        .map_err(ProjectorError::postgres("load SLA policies"))?;
    rows.into_iter()
        .map(|row| {
            let tenant: String = row.get(0);
            let json: serde_json::Value = row.get(1);
            match serde_json::from_value(json) {
                Ok(policy) => Ok((tenant, policy)),
                Err(source) => Err(ProjectorError::Policy { tenant, source }),
            }
        })
        .collect()
}

fn check_policy(policy: &SlaPolicy) -> Result<(), ProjectorError> {
    if !(1..=100).contains(&policy.at_risk_percent) {
        return Err(ProjectorError::InvalidPolicy(format!(
            "at_risk_percent {} is not within 1 to 100",
            policy.at_risk_percent
        )));
    }
    let all_positive = policy
        .targets
        .iter()
        .flatten()
        .all(|t| t.first_response.num_seconds() > 0 && t.resolution.num_seconds() > 0);
    if !all_positive {
        return Err(ProjectorError::InvalidPolicy("every target must be at least a second".into()));
    }
    Ok(())
}
