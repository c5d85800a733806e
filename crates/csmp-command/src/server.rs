//! Serving the command API over gRPC, with health checking and server reflection beside it.

use std::future::Future;

use csmp_proto::v1::ticket_commands_server::{TicketCommandsServer, SERVICE_NAME};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tracing::info;

use crate::service::CommandService;

/// Serves `service` on `listener` until `shutdown` completes, then lets running calls finish.
///
/// Beside `csmp.v1.TicketCommands` the server answers the gRPC health protocol (the command
/// service and the server as a whole report `SERVING` until shutdown begins) and server
/// reflection, versions `v1` and `v1alpha`.
pub async fn serve(
    listener: TcpListener,
    service: CommandService,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let addr = listener.local_addr().ok();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TicketCommandsServer<CommandService>>().await;

    // Reflection is a convenience for tools such as grpcurl; the commands work without it.
    let (reflection_v1, reflection_v1alpha) = csmp_proto::reflection(&[SERVICE_NAME]);

    // Health turns to NOT_SERVING as soon as shutdown begins, so that balancers stop sending.
    let reporter = health.clone();
    let shutdown = async move {
        shutdown.await;
        info!("command service shutting down");
        reporter.set_not_serving::<TicketCommandsServer<CommandService>>().await;
        reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    };

    info!(addr = ?addr, "command service listening");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(TicketCommandsServer::new(service))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
