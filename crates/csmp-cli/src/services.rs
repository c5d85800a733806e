//! The long-running services, each started by its own subcommand in its own process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use csmp_command::{CommandService, CommandServiceConfig, TenantSettings};
use csmp_domain::sla::SlaPolicy;
use csmp_domain::{SystemClock, TenantId};
use csmp_projector::{ProjectorConfig, ProjectorKind};
use csmp_query::{QueryService, QueryServiceConfig};
use tokio::net::TcpListener;

use crate::GlobalArgs;

pub async fn command_service(
    global: &GlobalArgs,
    listen: SocketAddr,
    tenant_settings: Option<PathBuf>,
) -> anyhow::Result<()> {
    let tenants = match tenant_settings {
        // The error names the file and what is wrong with it.
        Some(path) => TenantSettings::from_json_file(&path)?,
        None => TenantSettings::default(),
    };
    let nats = connect_nats(&global.nats_url).await?;
    let config = CommandServiceConfig { store: global.store(), tenants, ..Default::default() };
    let service = CommandService::connect(nats, config, Arc::new(SystemClock))
        .await
        .context("failed to start the command service")?;
    let listener =
        TcpListener::bind(listen).await.with_context(|| format!("failed to listen on {listen}"))?;
    tracing::info!(%listen, stream = %global.stream, "command service listening");
    csmp_command::serve(listener, service, shutdown_signal()).await?;
    tracing::info!("command service stopped");
    Ok(())
}

pub async fn projector(global: &GlobalArgs, kind: &str, batch_size: usize) -> anyhow::Result<()> {
    let kind: ProjectorKind = kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let nats = connect_nats(&global.nats_url).await?;
    let config = ProjectorConfig {
        kind,
        store: global.store(),
        database_url: global.database_url.clone(),
        batch_size,
        consumer_name: None,
        schema: None,
    };
    tracing::info!(projector = kind.name(), "projector starting");
    csmp_projector::run(config, nats, shutdown_signal()).await?;
    tracing::info!(projector = kind.name(), "projector stopped");
    Ok(())
}

pub async fn query_service(global: &GlobalArgs, listen: SocketAddr) -> anyhow::Result<()> {
    let nats = connect_nats(&global.nats_url).await?;
    let config = QueryServiceConfig {
        store: global.store(),
        database_url: global.database_url.clone(),
        read_your_writes_timeout: Duration::from_secs(5),
    };
    let service = QueryService::connect(nats, config, Arc::new(SystemClock))
        .await
        .context("failed to start the query service")?;
    let listener =
        TcpListener::bind(listen).await.with_context(|| format!("failed to listen on {listen}"))?;
    tracing::info!(%listen, "query service listening");
    csmp_query::serve(listener, service, shutdown_signal()).await?;
    tracing::info!("query service stopped");
    Ok(())
}

/// Stores SLA targets for `tenant`: the defaults divided by `scale_down`.
pub async fn set_sla_policy(
    global: &GlobalArgs,
    tenant: &str,
    scale_down: i32,
) -> anyhow::Result<()> {
    anyhow::ensure!(scale_down >= 1, "--scale-down must be at least 1, got {scale_down}");
    let tenant = TenantId::parse(tenant)?;
    let (pg, conn) = tokio_postgres::connect(&global.database_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("failed to connect to PostgreSQL at {}", global.database_url))?;
    tokio::spawn(conn);
    csmp_projector::migrate(&pg, ProjectorKind::Sla).await?;
    let policy = SlaPolicy::default().scaled_down(scale_down);
    csmp_projector::set_sla_policy(&pg, &tenant, &policy).await?;
    Ok(())
}

async fn connect_nats(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::connect(url).await.with_context(|| format!("failed to connect to NATS at {url}"))
}

/// Resolves on Ctrl-C or SIGTERM, so that a service drains and stops cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async {
                match term.as_mut() {
                    Some(term) => { term.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
