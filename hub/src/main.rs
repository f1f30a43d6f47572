//! The `tongban` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    tongban_hub::cli::main()
}
