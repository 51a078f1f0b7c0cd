//! The `strata` command: a demo and operator commands on a data directory.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
