//! The `tongban` binary; everything lives in the library.

/// mimalloc instead of glibc's malloc: streamed lookups and syncs allocate
/// and free millions of small buffers across threads, and glibc's free
/// lists (`_int_free`, `malloc_consolidate`) took a third of a stream's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tongban_hub::cli::main()
}
