//! Which partition does a document belong to? A stable hash of its id, or of the id's first
//! segments, modulo the cluster's fixed partition count (storage/FORMAT.md §13.1).

/// The most partitions a cluster may have.
pub const MAX_PARTITIONS: u32 = 4096;

/// Maps document ids to partitions. Every node and client computes the same answer, on every
/// platform and in every version (the hash is FNV-1a, 64 bits, written out here: a change is a
/// change of the cluster format).
///
/// ```
/// use strata_cluster::Partitioner;
/// let by_id = Partitioner::new(16, None)?;
/// assert!(by_id.partition_of("/users/ada") < 16);
/// // Documents under one first segment share a partition, so they can share a batch.
/// let by_tenant = Partitioner::new(16, Some(1))?;
/// assert_eq!(by_tenant.partition_of("/acme/orders/1"), by_tenant.partition_of("/acme/users/7"));
/// # Ok::<_, strata_cluster::PartitionerError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioner {
    partitions: u32,
    prefix_segments: Option<u32>,
}

/// A partitioner's settings are out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionerError {
    /// The partition count is 0 or above [`MAX_PARTITIONS`].
    #[error("partition count {0} is outside 1..={MAX_PARTITIONS}")]
    Partitions(u32),
    /// A prefix of 0 segments would put every document into one partition.
    #[error("prefix_segments must be at least 1 (None: the whole id)")]
    PrefixSegments,
}

impl Partitioner {
    /// `partitions` partitions; documents hash by their whole id, or by their first
    /// `prefix_segments` `/`-separated segments (`/acme/orders/1` has the segments `acme`,
    /// `orders`, `1`).
    pub fn new(partitions: u32, prefix_segments: Option<u32>) -> Result<Self, PartitionerError> {
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(PartitionerError::Partitions(partitions));
        }
        if prefix_segments == Some(0) {
            return Err(PartitionerError::PrefixSegments);
        }
        Ok(Partitioner {
            partitions,
            prefix_segments,
        })
    }

    /// The partition count.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// How many leading segments of an id decide its partition (`None`: all of it).
    pub fn prefix_segments(&self) -> Option<u32> {
        self.prefix_segments
    }

    /// The partition of document `id`, in `0..partitions`.
    pub fn partition_of(&self, id: &str) -> u32 {
        let key = match self.prefix_segments {
            None => id,
            Some(n) => key_prefix(id, n),
        };
        (fnv1a64(key.as_bytes()) % u64::from(self.partitions)) as u32
    }
}

/// The part of `id` up to the end of its `n`th segment (the whole id if it has fewer). A
/// leading `/` starts the first segment.
fn key_prefix(id: &str, n: u32) -> &str {
    let body = id.strip_prefix('/').unwrap_or(id);
    let start = id.len() - body.len();
    let mut seen = 0;
    for (i, b) in body.bytes().enumerate() {
        if b == b'/' {
            seen += 1;
            if seen == n {
                return &id[..start + i];
            }
        }
    }
    id
}

/// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pins the hash: these values are the cluster format (FORMAT.md §13.1). A change moves
    // documents to other partitions in every existing cluster.
    #[test]
    fn the_hash_is_fnv1a_and_never_changes() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let p = Partitioner::new(16, None).unwrap();
        assert_eq!(
            p.partition_of("/users/ada"),
            (fnv1a64(b"/users/ada") % 16) as u32
        );
    }

    #[test]
    fn prefixes_group_documents() {
        assert_eq!(key_prefix("/acme/orders/1", 1), "/acme");
        assert_eq!(key_prefix("/acme/orders/1", 2), "/acme/orders");
        assert_eq!(key_prefix("/acme/orders/1", 3), "/acme/orders/1");
        assert_eq!(key_prefix("/acme/orders/1", 9), "/acme/orders/1");
        assert_eq!(key_prefix("acme/orders", 1), "acme");
        assert_eq!(key_prefix("/", 1), "/");
        assert_eq!(key_prefix("", 1), "");
        let p = Partitioner::new(64, Some(2)).unwrap();
        assert_eq!(p.partition_of("/t/x/1"), p.partition_of("/t/x/2"));
    }

    #[test]
    fn settings_out_of_range_are_typed_errors() {
        assert_eq!(
            Partitioner::new(0, None),
            Err(PartitionerError::Partitions(0))
        );
        assert_eq!(
            Partitioner::new(MAX_PARTITIONS + 1, None),
            Err(PartitionerError::Partitions(MAX_PARTITIONS + 1))
        );
        assert_eq!(
            Partitioner::new(4, Some(0)),
            Err(PartitionerError::PrefixSegments)
        );
        assert!(Partitioner::new(MAX_PARTITIONS, Some(1)).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn every_id_lands_in_range(id in ".{0,64}", partitions in 1u32..=MAX_PARTITIONS, n in proptest::option::of(1u32..5)) {
            let p = Partitioner::new(partitions, n).unwrap();
            proptest::prop_assert!(p.partition_of(&id) < partitions);
        }
    }
}
