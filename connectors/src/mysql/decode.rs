//! Rows to Arrow: one builder per column, filled value by value from the
//! bytes the binary protocol sends, and cut into batches.

use super::types::{self, MyType};
use crate::{Error, Result};
use arrow::array::*;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sqlx::mysql::MySqlRow;
use sqlx::{Decode, MySql, Row};
use std::sync::Arc;

/// Collects rows into a batch of the announced schema.
pub(super) struct Batcher {
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
}

struct Column {
    name: String,
    builder: Builder,
}

impl Batcher {
    /// `types` are the columns' types, in the schema's order.
    pub(super) fn new(schema: SchemaRef, types: &[MyType], capacity: usize) -> Batcher {
        let columns = schema
            .fields()
            .iter()
            .zip(types)
            .map(|(f, ty)| Column {
                name: f.name().clone(),
                builder: Builder::new(*ty, capacity),
            })
            .collect();
        Batcher {
            schema,
            columns,
            rows: 0,
        }
    }

    /// Rows collected since the last batch.
    pub(super) fn len(&self) -> usize {
        self.rows
    }

    pub(super) fn push(&mut self, row: &MySqlRow) -> Result<()> {
        for (i, col) in self.columns.iter_mut().enumerate() {
            let decode = |message: String| Error::Decode {
                column: col.name.clone(),
                message,
            };
            let raw = row.try_get_raw(i).map_err(|e| decode(e.to_string()))?;
            // `&[u8]` gives the value's bytes as sent and fails only for SQL
            // NULL. (`is_null()` would also call a zero date NULL, which
            // would hide it.)
            let bytes = <&[u8] as Decode<MySql>>::decode(raw).ok();
            col.builder.append(bytes).map_err(decode)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows collected so far as a batch; the builders start over.
    pub(super) fn finish(&mut self) -> Result<RecordBatch> {
        let arrays = self
            .columns
            .iter_mut()
            .map(|c| c.builder.finish())
            .collect();
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

/// An Arrow builder for each supported type. Integers remember whether the
/// server's bytes are unsigned.
enum Builder {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder, bool),
    Int32(Int32Builder, bool),
    Int64(Int64Builder, bool),
    UInt64(UInt64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    DateTime(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
}

/// An integer from the wire, in the (wide enough) Arrow type `T`.
fn int<T: TryFrom<i128>>(v: &[u8], unsigned: bool) -> Result<T, String> {
    let n = types::wire_int(v, unsigned)?;
    T::try_from(n).map_err(|_| format!("{n} is out of range"))
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| "the text is not valid UTF-8".to_string())
}

impl Builder {
    fn new(ty: MyType, n: usize) -> Builder {
        match ty {
            MyType::Bool => Builder::Bool(BooleanBuilder::with_capacity(n)),
            MyType::Int8 => Builder::Int8(Int8Builder::with_capacity(n)),
            MyType::Int16 { unsigned } => Builder::Int16(Int16Builder::with_capacity(n), unsigned),
            MyType::Int32 { unsigned } => Builder::Int32(Int32Builder::with_capacity(n), unsigned),
            MyType::Int64 { unsigned } => Builder::Int64(Int64Builder::with_capacity(n), unsigned),
            MyType::UInt64 => Builder::UInt64(UInt64Builder::with_capacity(n)),
            MyType::Float32 => Builder::Float32(Float32Builder::with_capacity(n)),
            MyType::Float64 => Builder::Float64(Float64Builder::with_capacity(n)),
            MyType::Decimal { scale, .. } => Builder::Decimal(
                Decimal128Builder::with_capacity(n).with_data_type(ty.arrow()),
                scale,
            ),
            MyType::DecimalText | MyType::Text => {
                Builder::Utf8(StringBuilder::with_capacity(n, n * 16))
            }
            MyType::Binary => Builder::Binary(BinaryBuilder::with_capacity(n, n * 16)),
            MyType::Date => Builder::Date(Date32Builder::with_capacity(n)),
            MyType::DateTime => Builder::DateTime(TimestampMicrosecondBuilder::with_capacity(n)),
            MyType::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(n)),
        }
    }

    /// Appends one value (`None` is NULL); an error says what is wrong with
    /// the value.
    fn append(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let Some(v) = value else {
            self.append_null();
            return Ok(());
        };
        match self {
            // tinyint(1) may hold any of -128..=127; rather than guess what
            // 2 means, anything but 0 and 1 is an error.
            Builder::Bool(b) => b.append_value(match types::wire_int(v, false)? {
                0 => false,
                1 => true,
                n => return Err(format!("tinyint(1) value {n} is not a boolean (0 or 1)")),
            }),
            Builder::Int8(b) => b.append_value(int(v, false)?),
            Builder::Int16(b, unsigned) => b.append_value(int(v, *unsigned)?),
            Builder::Int32(b, unsigned) => b.append_value(int(v, *unsigned)?),
            Builder::Int64(b, unsigned) => b.append_value(int(v, *unsigned)?),
            Builder::UInt64(b) => b.append_value(int(v, true)?),
            Builder::Float32(b) => b.append_value(f32::from_le_bytes(types::fixed(v)?)),
            Builder::Float64(b) => b.append_value(f64::from_le_bytes(types::fixed(v)?)),
            // DECIMAL is sent as its exact text.
            Builder::Decimal(b, scale) => b.append_value(types::decimal_to_i128(utf8(v)?, *scale)?),
            Builder::Utf8(b) => b.append_value(utf8(v)?),
            Builder::Binary(b) => b.append_value(v),
            Builder::Date(b) => b.append_value(types::wire_date(v)?),
            Builder::DateTime(b) => b.append_value(types::wire_datetime(v)?),
            Builder::Time(b) => b.append_value(types::wire_time(v)?),
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::Int8(b) => b.append_null(),
            Builder::Int16(b, _) => b.append_null(),
            Builder::Int32(b, _) => b.append_null(),
            Builder::Int64(b, _) => b.append_null(),
            Builder::UInt64(b) => b.append_null(),
            Builder::Float32(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Decimal(b, _) => b.append_null(),
            Builder::Utf8(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::DateTime(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int8(b) => Arc::new(b.finish()),
            Builder::Int16(b, _) => Arc::new(b.finish()),
            Builder::Int32(b, _) => Arc::new(b.finish()),
            Builder::Int64(b, _) => Arc::new(b.finish()),
            Builder::UInt64(b) => Arc::new(b.finish()),
            Builder::Float32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Decimal(b, _) => Arc::new(b.finish()),
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::DateTime(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
        }
    }
}
