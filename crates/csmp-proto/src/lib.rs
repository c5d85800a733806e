//! Rust types and tonic clients and servers generated from `proto/csmp/v1`.
//!
//! Nothing else lives here: conversions between these types and the domain belong to the
//! services that use them.

#![allow(clippy::all, missing_docs)]

pub mod v1 {
    tonic::include_proto!("csmp.v1");
}

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("csmp_descriptor");
