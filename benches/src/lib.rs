//! Benchmarks of Tongban. The harnesses are the `benches/*.rs` targets of this
//! package (`cargo bench -p tongban-benches`) and the scripts beside them; the
//! figures are recorded in `docs/benchmarks.md`. This library is empty: it
//! exists because a package needs one target besides its benches.
