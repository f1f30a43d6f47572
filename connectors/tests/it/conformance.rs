//! The conformance suite every connector passes: the schema announced is the
//! schema read; an empty input gives no rows and the same schema; dropping a
//! stream midway cancels the read and leaves the source usable; a watermark
//! read returns exactly the rows past it; a sink that fails midway keeps
//! nothing.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use std::future::Future;
use std::time::Duration;
use tongban_connectors::{BatchStream, Error, Read, Sink, Source};

/// A source to check: over a fixture of `rows` rows (more than one batch),
/// and over an empty fixture with the same columns.
pub struct SourceCase {
    pub full: Box<dyn Source>,
    pub empty: Box<dyn Source>,
    pub rows: usize,
    /// A watermark column, a value, and how many rows lie past that value.
    pub since: Option<(String, String, usize)>,
}

async fn collect(source: &dyn Source, read: &Read) -> (Vec<RecordBatch>, usize) {
    let mut stream = source.read(read).await.expect("read starts");
    let mut batches = Vec::new();
    let mut rows = 0;
    while let Some(b) = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("a batch within 60 s")
    {
        let b = b.expect("a batch reads");
        rows += b.num_rows();
        batches.push(b);
    }
    (batches, rows)
}

pub async fn check_source(case: SourceCase) {
    // Schema stable: announced twice the same, and every batch has it.
    let schema = case.full.schema().await.expect("schema");
    assert_eq!(schema, case.full.schema().await.expect("schema again"));
    let (batches, rows) = collect(case.full.as_ref(), &Read::Full).await;
    assert_eq!(rows, case.rows, "a full read returns every row");
    assert!(batches.len() > 1, "the fixture spans several batches");
    for b in &batches {
        assert_eq!(b.schema(), schema, "every batch has the announced schema");
    }

    // Empty input: no rows, no error, the same schema.
    let empty_schema = case.empty.schema().await.expect("empty schema");
    assert_eq!(
        empty_schema, schema,
        "an empty source announces the same schema"
    );
    let (_, rows) = collect(case.empty.as_ref(), &Read::Full).await;
    assert_eq!(rows, 0);

    // Cancellation: take one batch, drop the stream; the drop is prompt and
    // the source reads in full again afterwards.
    let mut stream = case.full.read(&Read::Full).await.expect("read starts");
    stream
        .next()
        .await
        .expect("a first batch")
        .expect("it reads");
    let dropped = std::time::Instant::now();
    drop(stream);
    assert!(dropped.elapsed() < Duration::from_secs(1));
    let (_, rows) = collect(case.full.as_ref(), &Read::Full).await;
    assert_eq!(rows, case.rows, "the source works after a cancelled read");

    // Incremental: exactly the rows past the watermark.
    if let Some((column, after, expected)) = case.since {
        let read = Read::Since {
            column: column.clone(),
            after: after.clone(),
        };
        let (batches, rows) = collect(case.full.as_ref(), &read).await;
        assert_eq!(rows, expected, "rows with {column} > {after}");
        for b in &batches {
            assert_eq!(b.schema(), schema);
        }
    }
}

/// A stream of `batches`, then an error when `fail` is set.
pub fn stream_of(batches: Vec<RecordBatch>, fail: bool) -> BatchStream {
    let tail = fail.then(|| Err(Error::Config("the input failed on purpose".into())));
    futures::stream::iter(batches.into_iter().map(Ok).chain(tail)).boxed()
}

/// A sink to check: `count` reads how many rows the target holds.
pub async fn check_sink<F, Fut>(
    sink: &dyn Sink,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    count: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = u64>,
{
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let before = count().await;
    // A failing input: the sink reports the error and keeps nothing.
    let err = sink
        .write_all(schema.clone(), stream_of(batches.clone(), true))
        .await
        .expect_err("a failing input fails the write");
    assert!(
        err.to_string().contains("on purpose"),
        "the input's error comes back: {err}"
    );
    assert_eq!(count().await, before, "a failed write leaves nothing");
    // A good input: every row, committed.
    let written = sink
        .write_all(schema, stream_of(batches, false))
        .await
        .expect("the write commits");
    assert_eq!(written, rows);
    assert_eq!(count().await, before + rows);
}
