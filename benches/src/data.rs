//! Generated data: ids, about 1 KB JSON documents and update times, all from fixed seeds.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng as _, SeedableRng};
use serde_json::{json, Value};

/// The random generator of every benchmark (seeded, so runs and engines see the same data).
pub type Rng = SmallRng;

/// Update time of the first generated commit: 2023-11-14, microseconds since the Unix epoch.
/// Fixtures commit at explicit times from here on, one millisecond apart, so both engines hold
/// identical times and "as of" queries hit the same versions.
pub const BASE_TIME: u64 = 1_700_000_000_000_000;

/// Length of the free-text field, chosen so a document encodes to about 1 KB.
const TEXT_BYTES: usize = 730;

const WORDS: &[&str] = &[
    "amber", "anchor", "arrow", "atlas", "basalt", "beacon", "birch", "bolt", "bramble", "breeze",
    "canyon", "cedar", "cinder", "cobalt", "comet", "coral", "crane", "crest", "delta", "drift",
    "ember", "falcon", "fern", "fjord", "flint", "forge", "frost", "garnet", "glacier", "grove",
    "harbor", "hazel", "heron", "indigo", "iris", "jasper", "juniper", "kestrel", "lagoon",
    "lantern", "larch", "lichen", "linen", "lumen", "maple", "marble", "meadow", "mesa", "meteor",
    "moss", "nectar", "nimbus", "oak", "obsidian", "onyx", "orbit", "osprey", "pebble", "pine",
    "prairie", "quartz", "quill", "raven", "reef", "ridge", "river", "saffron", "sage", "shale",
    "sierra", "slate", "sparrow", "spruce", "summit", "tundra", "umber", "valley", "vapor",
    "willow", "zephyr",
];

const TAGS: &[&str] = &[
    "new",
    "sale",
    "popular",
    "limited",
    "eco",
    "imported",
    "handmade",
    "bulk",
    "premium",
    "refurbished",
    "seasonal",
    "clearance",
    "bestseller",
    "exclusive",
    "organic",
    "vintage",
];

const CATEGORIES: &[&str] = &[
    "books",
    "electronics",
    "garden",
    "kitchen",
    "music",
    "outdoor",
    "sports",
    "toys",
    "tools",
    "travel",
];

const STATUSES: &[&str] = &["active", "archived", "draft", "pending"];

/// A generator seeded from `seed` and `n`, so item `n` of a stream is the same whatever was
/// generated before it.
fn rng_for(seed: u64, n: u64) -> Rng {
    Rng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or_default()
}

fn words(rng: &mut Rng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 16);
    while out.len() < bytes {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(pick(rng, WORDS));
    }
    out
}

/// The id of document `n`: `/items/` and eight digits (15 bytes).
pub fn id(n: u64) -> String {
    format!("/items/{n:08}")
}

/// Document number `n` of the stream `seed`: keywords, numbers, a nested object and a text
/// field, about 1 KB of JSON.
pub fn document(seed: u64, n: u64) -> Value {
    let mut rng = rng_for(seed, n);
    let name_len = rng.random_range(12..40);
    let tags: Vec<&str> = (0..rng.random_range(2..6))
        .map(|_| pick(&mut rng, TAGS))
        .collect();
    json!({
        "name": words(&mut rng, name_len),
        "category": pick(&mut rng, CATEGORIES),
        "status": pick(&mut rng, STATUSES),
        "tags": tags,
        "owner": format!("user-{:05}", rng.random_range(0..50_000)),
        "price": f64::from(rng.random_range(100..100_000u32)) / 100.0,
        "quantity": rng.random_range(0..10_000u32),
        "rating": f64::from(rng.random_range(0..500u32)) / 100.0,
        "created": BASE_TIME / 1_000_000 - rng.random_range(0..31_536_000u64),
        "dimensions": {
            "width": rng.random_range(1..200u32),
            "height": rng.random_range(1..200u32),
            "depth": rng.random_range(1..200u32),
        },
        "revision": n,
        "text": words(&mut rng, TEXT_BYTES),
    })
}

/// Documents generated ahead of a write benchmark, so the measured loop only clones one.
#[derive(Debug, Clone)]
pub struct DocPool {
    docs: Vec<Value>,
}

impl DocPool {
    /// `len` documents of stream `seed`.
    pub fn new(seed: u64, len: usize) -> Self {
        DocPool {
            docs: (0..len as u64).map(|n| document(seed, n)).collect(),
        }
    }

    /// Document `i` modulo the pool size.
    pub fn get(&self, i: u64) -> &Value {
        &self.docs[(i % self.docs.len() as u64) as usize]
    }
}

/// A seeded generator for choosing ids and times.
pub fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_about_one_kilobyte_and_reproducible() {
        let sizes: Vec<usize> = (0..1000)
            .map(|n| serde_json::to_vec(&document(7, n)).unwrap().len())
            .collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((950..=1100).contains(&mean), "mean size {mean}");
        assert!(
            sizes.iter().all(|&s| (850..=1200).contains(&s)),
            "{sizes:?}"
        );
        assert_eq!(document(7, 42), document(7, 42));
        assert_ne!(document(7, 42), document(8, 42));
    }
}
