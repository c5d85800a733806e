//! Read-model rows written in bulk: one array parameter per column, unnested by PostgreSQL, so
//! that a batch writes each table with one statement whatever its number of rows.
//!
//! The projections build their rows in memory; this module only shapes the SQL and parameters.

use tokio_postgres::types::ToSql;

use crate::error::ProjectorError;

/// The SQL of a multi-row upsert from one array parameter per column:
/// `INSERT INTO table (..) SELECT * FROM UNNEST($1::type[], ..) ON CONFLICT (key) DO UPDATE`
/// setting every column that is not part of the key, or a plain insert when `key` is empty.
pub(crate) fn unnest_upsert(table: &str, columns: &[(&str, &str)], key: &[&str]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let arrays: Vec<String> =
        columns.iter().enumerate().map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1)).collect();
    let mut sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM UNNEST({})",
        names.join(", "),
        arrays.join(", ")
    );
    if !key.is_empty() {
        let updates: Vec<String> = names
            .iter()
            .filter(|name| !key.contains(name))
            .map(|name| format!("{name} = EXCLUDED.{name}"))
            .collect();
        sql.push_str(&format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            updates.join(", ")
        ));
    }
    sql
}

/// Parses a text column written by this crate, or reports the read model as unreadable.
pub(crate) fn parse_column<T>(
    schema: &'static str,
    column: &str,
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, csmp_domain::DomainError>,
) -> Result<T, ProjectorError> {
    parse(raw).map_err(|err| ProjectorError::read_model(schema, format!("{column}: {err}")))
}

/// A read-model table written from in-memory rows: a row created by the batch is inserted with
/// every column, a row that existed is updated in its changing columns only, which spares
/// PostgreSQL the speculative insertion of an upsert and the parsing of columns that never
/// change after the opening.
pub(crate) struct RowTable {
    /// The table's name within its schema.
    pub name: &'static str,
    /// Every column with its PostgreSQL type, in the order of the insert's parameters.
    pub columns: &'static [(&'static str, &'static str)],
    pub key: &'static [&'static str],
    /// Columns fixed at the ticket's opening, left out of updates.
    pub fixed: &'static [&'static str],
}

impl RowTable {
    /// `INSERT .. SELECT * FROM UNNEST(..)` over every column, into the table in `schema`.
    pub fn insert_sql(&self, schema: &str) -> String {
        unnest_upsert(&format!("{schema}.{}", self.name), self.columns, &[])
    }

    /// The key and changing columns, in the order of the update's parameters.
    pub fn update_columns(&self) -> Vec<(&'static str, &'static str)> {
        let mut columns: Vec<_> =
            self.columns.iter().filter(|(name, _)| self.key.contains(name)).copied().collect();
        columns.extend(
            self.columns
                .iter()
                .filter(|(name, _)| !self.key.contains(name) && !self.fixed.contains(name)),
        );
        columns
    }

    /// `UPDATE .. FROM UNNEST(..)` setting the changing columns of rows matched on the key, in
    /// the table in `schema`.
    pub fn update_sql(&self, schema: &str) -> String {
        let columns = self.update_columns();
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let arrays: Vec<String> =
            columns.iter().enumerate().map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1)).collect();
        let sets: Vec<String> = names
            .iter()
            .filter(|name| !self.key.contains(name))
            .map(|name| format!("{name} = u.{name}"))
            .collect();
        let matches: Vec<String> = self.key.iter().map(|k| format!("t.{k} = u.{k}")).collect();
        format!(
            "UPDATE {schema}.{} AS t SET {} FROM UNNEST({}) AS u({}) WHERE {}",
            self.name,
            sets.join(", "),
            arrays.join(", "),
            names.join(", "),
            matches.join(" AND ")
        )
    }
}

/// One array parameter per column, by column name, for [`RowTable`] statements.
#[derive(Default)]
pub(crate) struct ColumnArrays<'a> {
    arrays: std::collections::HashMap<&'static str, Box<dyn ToSql + Sync + Send + 'a>>,
}

impl<'a> ColumnArrays<'a> {
    pub fn set<T: ToSql + Sync + Send + 'a>(&mut self, column: &'static str, array: Vec<T>) {
        self.arrays.insert(column, Box::new(array));
    }

    /// The parameters for `columns`, in their order.
    pub fn params(&self, columns: &[(&'static str, &'static str)]) -> Vec<&(dyn ToSql + Sync)> {
        columns
            .iter()
            .map(|(name, _)| {
                let array = self.arrays.get(name).unwrap_or_else(|| panic!("no array for {name}"));
                array.as_ref() as &(dyn ToSql + Sync)
            })
            .collect()
    }
}
