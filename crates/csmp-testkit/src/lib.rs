//! Fixtures for tests that run against real NATS and PostgreSQL.
//!
//! Every test gets its own stream name and subject prefix ([`TestStream`]) and its own database
//! ([`TestDatabase`]), so tests run in parallel and leave nothing behind: both are removed when
//! the fixture is dropped, also when the test panics. The servers are found at `NATS_URL` and
//! `DATABASE_URL`, defaulting to the local ones on their standard ports.

use std::sync::atomic::{AtomicU64, Ordering};

/// `NATS_URL`, or the local server on the standard port.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// `DATABASE_URL`, or the local server on the standard port as user `postgres`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A name no other test of any process uses: `label`, the process id, a counter and random
/// characters, lowercase and safe for NATS stream names, subjects and PostgreSQL identifiers.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = uuid::Uuid::new_v4().simple().to_string();
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    format!("t_{label}_{}_{n}_{}", std::process::id(), &random[..8])
}

/// A stream name and subject prefix of a test's own. The stream itself is created by the code
/// under test; dropping the fixture deletes it if it exists.
pub struct TestStream {
    pub stream: String,
    pub subject_prefix: String,
    pub nats_url: String,
}

impl TestStream {
    pub fn new(label: &str) -> Self {
        let name = unique_name(label);
        TestStream { stream: name.to_uppercase(), subject_prefix: name, nats_url: nats_url() }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let url = self.nats_url.clone();
        let stream = self.stream.clone();
        run_detached(async move {
            if let Ok(client) = async_nats::connect(url).await {
                let js = async_nats::jetstream::new(client);
                let _ = js.delete_stream(&stream).await;
            }
        });
    }
}

/// A PostgreSQL database of a test's own, created empty and dropped with the fixture.
pub struct TestDatabase {
    pub name: String,
    /// A connection URL for the new database.
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn new(label: &str) -> Self {
        let admin_url = database_url();
        let name = unique_name(label);
        let admin = connect(&admin_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        TestDatabase { name, url, admin_url }
    }

    /// A connection to the test database, driven on the current runtime.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        run_detached(async move {
            if let Ok((client, conn)) =
                tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        });
    }
}

/// `url` with its database name replaced by `database`, keeping any query parameters.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to PostgreSQL at {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Runs cleanup on a thread with its own runtime: `Drop` cannot await, and the test's runtime
/// may already be shutting down.
fn run_detached<F: std::future::Future<Output = ()> + Send + 'static>(cleanup: F) {
    let handle = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(async {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), cleanup).await;
            });
        }
    });
    let _ = handle.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_or_adds_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/main?sslmode=disable", "t2"),
            "postgres://u:p@h:1/t2?sslmode=disable"
        );
    }

    #[tokio::test]
    async fn test_database_exists_until_dropped() {
        let db = TestDatabase::new("kit").await;
        let name = db.name.clone();
        let client = db.client().await;
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        drop(client);
        drop(db);

        let admin = connect(&database_url()).await;
        let left =
            admin.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
        assert!(left.is_empty(), "database {name} was not dropped");
    }
}
