//! The hostile-file campaign: mutated index files through `index_from_slice` (with and
//! without verification) and every search entry point, counting what happened.
//!
//! ```sh
//! cargo run --release -p panns-io --example campaign -- 20000   # mutants per base file
//! cargo run --release -p panns-io --example campaign -- 500 --write DIR   # files only
//! ```
//! With `--write DIR` it only writes the clean bases and the mutants as files, for
//! `scripts/campaign.sh` (the same files through the CLI, C, Go and Python).
//! Prints one line of totals; exits non-zero if any input panicked or broke an
//! invariant (an id out of range, a NaN distance, unsorted results, a damaged row
//! scoring finite, more results than asked). `panns-io/tests/campaign.rs` runs a small
//! campaign in the test suite.

fn main() {
    let per_base: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--write") {
        let dir = std::path::Path::new(args.get(at + 1).expect("--write DIR"));
        let n = campaign::write_files(dir, per_base, 0xC0FFEE).expect("writing the files");
        println!("{n} files in {}", dir.display());
        return;
    }
    let t = std::time::Instant::now();
    let totals = campaign::run(per_base, 0xC0FFEE);
    println!("{totals} in {:.1} s", t.elapsed().as_secs_f64());
    if !totals.clean() {
        std::process::exit(1);
    }
}

#[path = "../tests/common/campaign.rs"]
mod campaign;
