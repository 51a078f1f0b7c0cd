//! The query benchmarks' corpus: package-like documents of about 1 KB with keyword fields,
//! numbers, a date and an English-looking description, and the versions that update them. All
//! generated from fixed seeds, so every engine and every run sees the same data.
//!
//! The version stream of a corpus of `docs` documents and `versions` versions is item `i` =
//! version `i / docs` of document `i % docs`: the first `docs` items create every document, the
//! rest update them round-robin. Batch `k` (items `k * batch ..`) commits at
//! [`Corpus::time`]`(k)`.

use rand::seq::IndexedRandom;
use rand::{Rng as _, SeedableRng};
use serde_json::{json, Value};

use crate::data::{Rng, BASE_TIME};

/// Sections, as in a package archive; `python` is the one the term queries ask for.
pub const SECTIONS: [&str; 20] = [
    "admin", "database", "debug", "devel", "doc", "editors", "games", "graphics", "libs", "mail",
    "math", "net", "perl", "python", "science", "shells", "sound", "text", "utils", "web",
];

/// Priorities and their weights (out of 100): most packages are `optional`.
pub const PRIORITIES: [(&str, u32); 5] = [
    ("required", 4),
    ("important", 6),
    ("standard", 15),
    ("optional", 60),
    ("extra", 15),
];

/// Tags: each document has 1 to 4 distinct ones.
pub const TAGS: [&str; 50] = [
    "cli",
    "gui",
    "network",
    "security",
    "testing",
    "web",
    "database",
    "graphics",
    "audio",
    "video",
    "science",
    "math",
    "games",
    "editor",
    "shell",
    "compiler",
    "interpreter",
    "library",
    "daemon",
    "plugin",
    "documentation",
    "font",
    "theme",
    "i18n",
    "admin",
    "backup",
    "monitoring",
    "logging",
    "parser",
    "crypto",
    "compression",
    "filesystem",
    "kernel",
    "driver",
    "hardware",
    "printing",
    "mail",
    "chat",
    "web-server",
    "http",
    "json",
    "xml",
    "yaml",
    "python3",
    "perl",
    "rust",
    "java",
    "javascript",
    "embedded",
    "cloud",
];

/// Distinct maintainers.
pub const MAINTAINERS: u64 = 2000;

/// Common English words, most frequent first; descriptions draw them with Zipf-like weights
/// (word `r` has weight `1 / (r + 2)`), so the first ones are in nearly every description and
/// the last ones in few.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "for", "that", "with", "it", "as", "on", "this",
    "be", "by", "are", "from", "or", "an", "can", "which", "you", "all", "not", "at", "used",
    "data", "files", "package", "provides", "support", "library", "also", "program", "other",
    "use", "system", "more", "such", "new", "one", "file", "into", "these", "its", "has", "their",
    "simple", "tools", "set", "based", "when", "user", "version", "some", "most", "many", "but",
    "server", "different", "way", "written", "each", "well", "time", "common", "work", "only",
    "format", "client", "using", "was", "if", "includes", "functions", "code", "both", "source",
    "allows", "applications", "several", "them", "than", "contains", "make", "small", "fast",
    "easy", "will", "interface", "memory", "they", "any", "tool", "network", "over", "high",
    "text", "access", "through", "web", "output", "development", "open", "command", "line",
    "there", "options", "between", "very", "without", "may", "like", "number", "while", "how",
    "standard", "image", "write", "read", "language", "full", "own", "test", "create", "large",
    "modules", "python", "module", "input", "useful", "documentation", "features", "default",
    "graphical", "users", "run", "does", "need", "including", "where", "display", "first",
    "project", "local", "management", "control", "allow", "designed", "could", "would", "should",
    "must", "remote", "security", "directory", "database", "tree", "list", "value", "values",
    "object", "objects", "class", "classes", "method", "methods", "level", "low", "quick",
    "reliable", "portable", "efficient", "powerful", "flexible", "modern", "classic", "graphics",
    "sound", "audio", "video", "stream", "streams", "messages", "message", "mail", "protocol",
    "protocols", "service", "services", "daemon", "configuration", "settings", "shared", "static",
    "dynamic", "runtime", "engine", "framework", "toolkit", "plugin", "plugins", "extension",
    "extensions", "script", "scripts", "shell", "terminal", "window", "windows", "desktop",
    "environment", "editor", "viewer", "browser", "player", "manager", "monitor", "backup",
    "archive", "compression", "encryption", "keys", "certificates", "packages", "dependencies",
    "building", "build", "compile", "compiler", "debugger", "profiler", "tests", "testing",
    "results", "reports", "logging", "events", "queue", "cache", "storage", "disk", "device",
    "devices", "hardware", "driver", "kernel", "process", "processes", "threads", "parallel",
    "distributed", "cluster", "cloud", "machine", "learning", "models", "statistics", "numbers",
    "math", "science", "scientific", "chemistry", "biology", "physics", "astronomy", "maps",
    "geographic", "games", "puzzle", "board", "cards", "fonts", "themes", "icons", "colors",
    "printing", "printer", "scanner", "camera", "photos", "pictures", "music", "notes", "calendar",
    "contacts", "tasks", "documents", "spreadsheet", "presentation", "office", "reader", "writer",
    "converter", "generator", "parser", "validator", "formatter", "linter", "checker",
    "translation", "languages", "unicode", "characters", "encoding", "regular", "expressions",
    "patterns", "search", "index", "queries", "tables", "records", "fields", "columns", "rows",
    "transactions", "consistent", "durable", "secure", "safe", "stable", "experimental", "legacy",
    "compatible", "optional", "additional", "extra", "minimal", "complete", "lightweight",
];

/// The word of [`WORDS`] the full-text benchmarks search for: common (in about half of the
/// descriptions) without being a stop word.
pub const TEXT_WORD: &str = "library";

/// Bytes of description aimed at (a random length in this range).
const DESCRIPTION_BYTES: std::ops::Range<usize> = 600..800;

/// A generated version: the document it belongs to and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Document number in the corpus.
    pub docno: u64,
    /// Per-document version, 0 on create.
    pub version: u64,
    /// The document id.
    pub id: String,
    /// The JSON body.
    pub body: Value,
}

/// The shape of a generated corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corpus {
    /// Documents.
    pub docs: u64,
    /// Versions in all (at least `docs`).
    pub versions: u64,
    /// Versions per committed batch.
    pub batch: u64,
    /// Seed of the bodies.
    pub seed: u64,
}

impl Corpus {
    /// Batches of the version stream.
    pub fn batches(&self) -> u64 {
        self.versions.div_ceil(self.batch)
    }

    /// Update time of batch `k`: one millisecond apart from [`BASE_TIME`].
    pub fn time(k: u64) -> u64 {
        BASE_TIME + k * 1000
    }

    /// Update time of the last batch.
    pub fn last_time(&self) -> u64 {
        Self::time(self.batches().saturating_sub(1))
    }

    /// Item `i` of the version stream.
    pub fn version(&self, i: u64) -> Version {
        let docno = i % self.docs;
        let version = i / self.docs;
        Version {
            docno,
            version,
            id: doc_id(docno),
            body: package(self.seed, docno, version),
        }
    }

    /// Batch `k` of the version stream.
    pub fn batch(&self, k: u64) -> Vec<Version> {
        let first = k * self.batch;
        let last = (first + self.batch).min(self.versions);
        (first..last).map(|i| self.version(i)).collect()
    }
}

/// The id of document `docno`: `/packages/` and eight digits (18 bytes).
pub fn doc_id(docno: u64) -> String {
    format!("/packages/{docno:08}")
}

fn rng_for(seed: u64, docno: u64, version: u64) -> Rng {
    Rng::seed_from_u64(
        seed ^ docno.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ version.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
    )
}

/// Cumulative Zipf-like weights of [`WORDS`].
fn word_table() -> &'static [f64] {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut total = 0.0;
        WORDS
            .iter()
            .enumerate()
            .map(|(r, _)| {
                total += 1.0 / (r as f64 + 2.0);
                total
            })
            .collect()
    })
}

fn word(rng: &mut Rng) -> &'static str {
    let table = word_table();
    let x = rng.random::<f64>() * table.last().copied().unwrap_or(1.0);
    let at = table.partition_point(|&c| c < x).min(WORDS.len() - 1);
    WORDS[at]
}

/// One sentence: 6 to 16 words, capitalised, with a comma now and then, ending in a period.
fn sentence(rng: &mut Rng) -> String {
    let n = rng.random_range(6..=16);
    let mut out = String::with_capacity(n * 8);
    for k in 0..n {
        let w = word(rng);
        if k == 0 {
            let mut chars = w.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(w);
        }
        if k + 1 < n && k > 2 && rng.random_ratio(1, 12) {
            out.push(',');
        }
    }
    out.push('.');
    out
}

fn weighted<'a>(rng: &mut Rng, choices: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (value, weight) in choices {
        if x < *weight {
            return value;
        }
        x -= weight;
    }
    choices[0].0
}

/// Version `version` of package `docno`: stable name, section, maintainer, tags and homepage
/// (from the document's own seed), and per version a new installed size and release date, now
/// and then a new priority or major version, and one more description sentence rewritten.
pub fn package(seed: u64, docno: u64, version: u64) -> Value {
    let mut base = rng_for(seed, docno, u64::MAX);
    let name = format!("{}-{}{docno}", word(&mut base), word(&mut base));
    let section = *SECTIONS.choose(&mut base).unwrap_or(&"misc");
    let maintainer = format!(
        "maintainer-{:04}@example.org",
        base.random_range(0..MAINTAINERS)
    );
    let tag_count = base.random_range(1..=4);
    let tags: Vec<&str> = TAGS
        .choose_multiple(&mut base, tag_count)
        .copied()
        .collect();
    let mut priority = weighted(&mut base, &PRIORITIES);
    let mut major = base.random_range(0..10u64);
    let target = base.random_range(DESCRIPTION_BYTES);
    let mut sentences = Vec::new();
    let mut len = 0;
    while len < target {
        let s = sentence(&mut base);
        len += s.len() + 1;
        sentences.push(s);
    }
    let released_base = base.random_range(0..3 * 365u64);
    // Each later version rewrites the next sentence, in turn.
    for v in 1..=version {
        let mut rng = rng_for(seed, docno, v);
        let at = ((v - 1) % sentences.len() as u64) as usize;
        sentences[at] = sentence(&mut rng);
        if rng.random_ratio(1, 5) {
            priority = weighted(&mut rng, &PRIORITIES);
        }
        if rng.random_ratio(1, 4) {
            major += 1;
        }
    }
    let mut rng = rng_for(seed, docno, version);
    let installed_size = rng.random_range(1..=100_000u64);
    // 2020-01-01 plus some days, 30 days further per version.
    let days = released_base + 30 * version;
    let released = format!(
        "{}T{:02}:{:02}:00Z",
        civil_date(18_262 + days),
        rng.random_range(0..24),
        rng.random_range(0..60)
    );
    json!({
        "name": name,
        "section": section,
        "priority": priority,
        "maintainer": maintainer,
        "tags": tags,
        "installed_size": installed_size,
        "version_major": major,
        "released": released,
        "homepage": format!("https://example.org/projects/{name}"),
        "description": sentences.join(" "),
    })
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_about_one_kilobyte_and_reproducible() {
        let sizes: Vec<usize> = (0..2000)
            .map(|n| serde_json::to_vec(&package(7, n, n % 5)).unwrap().len())
            .collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((900..=1150).contains(&mean), "mean size {mean}");
        assert!(
            sizes.iter().all(|&s| (700..=1350).contains(&s)),
            "{:?}",
            (sizes.iter().min(), sizes.iter().max())
        );
        assert_eq!(package(7, 42, 3), package(7, 42, 3));
        assert_ne!(package(7, 42, 3), package(7, 42, 2));
    }

    #[test]
    fn updates_keep_the_stable_fields() {
        let (a, b) = (package(7, 9, 0), package(7, 9, 4));
        for field in ["name", "section", "maintainer", "tags", "homepage"] {
            assert_eq!(a[field], b[field], "{field}");
        }
        assert_ne!(a["description"], b["description"]);
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(18_262), "2020-01-01");
        assert_eq!(civil_date(19_782), "2024-02-29");
    }

    #[test]
    fn the_text_word_is_common_but_not_everywhere() {
        let docs = 2000;
        let hits = (0..docs)
            .filter(|&n| {
                package(7, n, 0)["description"]
                    .as_str()
                    .unwrap()
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w.eq_ignore_ascii_case(TEXT_WORD))
            })
            .count();
        assert!(
            (docs / 10..docs * 7 / 10).contains(&(hits as u64)),
            "{hits}"
        );
    }

    #[test]
    fn words_are_distinct() {
        let set: std::collections::HashSet<_> = WORDS.iter().collect();
        assert_eq!(set.len(), WORDS.len());
    }

    #[test]
    fn the_stream_creates_then_updates() {
        let c = Corpus {
            docs: 10,
            versions: 35,
            batch: 4,
            seed: 1,
        };
        assert_eq!(c.batches(), 9);
        let v = c.version(23);
        assert_eq!((v.docno, v.version), (3, 2));
        assert_eq!(c.batch(8).len(), 3);
        assert_eq!(Corpus::time(1) - Corpus::time(0), 1000);
    }
}
