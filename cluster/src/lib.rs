//! Strata's cluster layer (issue 14, in progress): documents hash to a fixed number of
//! partitions, each partition's log of record is a NATS JetStream stream, and Strata nodes
//! apply the streams into local stores (docs/DESIGN.md §8, ARCHITECTURE.md).
//!
//! What is here so far is the part every other piece builds on and that must never change by
//! accident: which partition a document belongs to ([`Partitioner`]) and the bytes of a stream
//! message ([`Message`], storage/FORMAT.md §13).
#![warn(missing_docs)]

mod message;
mod partition;

pub use message::{
    CodecError, Message, MessageBatch, MessageExpect, MessageOp, MessageWrite, MAX_MESSAGE_BYTES,
    MESSAGE_FORMAT_VERSION,
};
pub use partition::{Partitioner, PartitionerError, MAX_PARTITIONS};
