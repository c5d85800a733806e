//! Contract tests of csmp: checks that span crates and the documents published to consumers.
//! The tests live beside this file; the library itself is empty.
