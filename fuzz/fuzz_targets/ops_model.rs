#![no_main]

// Takes the decoded steps rather than bytes so that `cargo fuzz fmt` can print them; the
// decoding is the same as `targets::ops_model`'s, which the corpus replay test runs.
libfuzzer_sys::fuzz_target!(
    |steps: strata_fuzz::targets::Steps| strata_fuzz::targets::run_steps(&steps)
);
