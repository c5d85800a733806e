//! Rust types and tonic clients and servers generated from `proto/csmp/v1`, and the server
//! reflection that describes them.
//!
//! Nothing else lives here: conversions between these types and the domain belong to the
//! services that use them.

#![allow(clippy::all, missing_docs)]

pub mod v1 {
    tonic::include_proto!("csmp.v1");
}

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("csmp_descriptor");

/// Server reflection (versions `v1` and `v1alpha`) describing exactly the services a server
/// runs: `served` (full names such as `csmp.v1.TicketQueries`), gRPC health and reflection
/// itself. The descriptor set holds every `csmp.v1` service; listing only the served ones keeps
/// a tool from offering a service that answers `UNIMPLEMENTED` on this port. A version that
/// cannot be built is left out with an error in the log: the API works without reflection.
pub fn reflection(
    served: &[&'static str],
) -> (
    Option<
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
    >,
    Option<
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    >,
) {
    let builder = |own_name: &'static str| {
        served.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health")
                .with_service_name(own_name),
            |builder, name| builder.with_service_name(*name),
        )
    };
    let v1 = builder("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .inspect_err(|err| tracing::error!(cause = %err, "reflection v1 is not served"))
        .ok();
    let v1alpha = builder("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()
        .inspect_err(|err| tracing::error!(cause = %err, "reflection v1alpha is not served"))
        .ok();
    (v1, v1alpha)
}
