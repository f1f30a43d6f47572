//! Data read back without the hub: Parquet, columns as text, and keys a
//! test can write into a provider's table.

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use std::path::Path;

/// Every record batch of a Parquet file's bytes: what a consumer gets from a
/// Delta Sharing file URL or a Parquet webhook body, read as it would.
pub fn read_parquet(bytes: impl Into<bytes::Bytes>) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes.into())
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// [`read_parquet`] of a file on disk (a dataset version's part, a
/// quarantine file).
pub fn read_parquet_file(path: impl AsRef<Path>) -> Vec<RecordBatch> {
    let path = path.as_ref();
    read_parquet(std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A column's values as text, row by row (`None` for a null), whatever its
/// type: how tests compare what was released with what they expect.
pub fn cells(b: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let col = b
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).unwrap();
    let col = col.as_string::<i32>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect()
}

/// Valid citizen IDs (GB 11643 check digits), distinct per `n` below 1,000:
/// keys for the tables a test writes as a provider.
pub fn citizen_id(n: u32) -> String {
    let body = format!("31010119800101{:03}", n % 1000);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}
