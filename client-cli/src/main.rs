//! The `nudge` binary: parses arguments and hands over to the library.

fn main() -> std::process::ExitCode {
    nudge_cli::main()
}
