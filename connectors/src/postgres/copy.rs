//! The binary `COPY` format, both ways.
//!
//! A stream is an 11-byte signature, flags and a header extension, then one
//! tuple per row — a 16-bit field count, and per field a 32-bit length (−1
//! for NULL) and the value in the type's binary send format — and a trailer
//! (field count −1). Decoding appends straight into Arrow builders.

use super::types::{self, PG_EPOCH_DAYS, PG_EPOCH_MICROS, PgType};
use crate::{Error, Result};
use arrow::array::*;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use std::sync::Arc;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// One column's builder, by the PostgreSQL type it decodes.
enum Col {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder, u8, i8),
    NumText(StringBuilder),
    Text(StringBuilder),
    Jsonb(StringBuilder),
    Uuid(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Ts(TimestampMicrosecondBuilder, bool),
}

impl Col {
    fn new(ty: PgType, capacity: usize) -> Col {
        match ty {
            PgType::Bool => Col::Bool(BooleanBuilder::with_capacity(capacity)),
            PgType::Int2 => Col::I16(Int16Builder::with_capacity(capacity)),
            PgType::Int4 => Col::I32(Int32Builder::with_capacity(capacity)),
            PgType::Int8 => Col::I64(Int64Builder::with_capacity(capacity)),
            PgType::Float4 => Col::F32(Float32Builder::with_capacity(capacity)),
            PgType::Float8 => Col::F64(Float64Builder::with_capacity(capacity)),
            PgType::Numeric { precision, scale } => {
                Col::Dec(Decimal128Builder::with_capacity(capacity), precision, scale)
            }
            PgType::NumericText => Col::NumText(StringBuilder::new()),
            PgType::Text | PgType::Json => {
                Col::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            PgType::Jsonb => Col::Jsonb(StringBuilder::new()),
            PgType::Uuid => Col::Uuid(StringBuilder::with_capacity(capacity, capacity * 36)),
            PgType::Bytea => Col::Bytes(BinaryBuilder::new()),
            PgType::Date => Col::Date(Date32Builder::with_capacity(capacity)),
            PgType::Time => Col::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            PgType::Timestamp => {
                Col::Ts(TimestampMicrosecondBuilder::with_capacity(capacity), false)
            }
            PgType::Timestamptz => {
                Col::Ts(TimestampMicrosecondBuilder::with_capacity(capacity), true)
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            Col::Bool(b) => b.append_null(),
            Col::I16(b) => b.append_null(),
            Col::I32(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::F32(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Dec(b, ..) => b.append_null(),
            Col::NumText(b) | Col::Text(b) | Col::Jsonb(b) | Col::Uuid(b) => b.append_null(),
            Col::Bytes(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Time(b) => b.append_null(),
            Col::Ts(b, _) => b.append_null(),
        }
    }

    /// Appends one binary value; the error says what was wrong with it.
    fn append(&mut self, v: &[u8]) -> std::result::Result<(), String> {
        fn fixed<const N: usize>(v: &[u8]) -> std::result::Result<[u8; N], String> {
            v.try_into()
                .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
        }
        fn text(v: &[u8]) -> std::result::Result<&str, String> {
            std::str::from_utf8(v).map_err(|e| format!("not UTF-8: {e}"))
        }
        match self {
            Col::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Col::I16(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Col::I32(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Col::I64(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Col::F32(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Col::F64(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Col::Dec(b, _, scale) => b.append_value(types::numeric_to_i128(v, *scale)?),
            Col::NumText(b) => b.append_value(types::numeric_to_text(v)?),
            Col::Text(b) => b.append_value(text(v)?),
            Col::Jsonb(b) => match v.split_first() {
                Some((1, rest)) => b.append_value(text(rest)?),
                _ => return Err("unknown jsonb version".into()),
            },
            Col::Uuid(b) => b.append_value(types::uuid_text(v)?),
            Col::Bytes(b) => b.append_value(v),
            Col::Date(b) => {
                let d = i32::from_be_bytes(fixed(v)?);
                // ±infinity dates have no Arrow value.
                if d == i32::MAX || d == i32::MIN {
                    return Err("infinite date".into());
                }
                b.append_value(d + PG_EPOCH_DAYS)
            }
            Col::Time(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Col::Ts(b, _) => {
                let t = i64::from_be_bytes(fixed(v)?);
                if t == i64::MAX || t == i64::MIN {
                    return Err("infinite timestamp".into());
                }
                b.append_value(t + PG_EPOCH_MICROS)
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match self {
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I16(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Dec(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s)?),
            Col::NumText(b) | Col::Text(b) | Col::Jsonb(b) | Col::Uuid(b) => Arc::new(b.finish()),
            Col::Bytes(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Time(b) => Arc::new(b.finish()),
            Col::Ts(b, false) => Arc::new(b.finish()),
            Col::Ts(b, true) => Arc::new(b.finish().with_timezone("UTC")),
        })
    }
}

/// Decodes a binary `COPY` stream, chunk by chunk, into batches of
/// `batch_rows` rows.
pub struct Decoder {
    schema: SchemaRef,
    cols: Vec<Col>,
    batch_rows: usize,
    rows: usize,
    pending: Vec<u8>,
    header_done: bool,
    ended: bool,
}

impl Decoder {
    pub fn new(schema: SchemaRef, types: Vec<PgType>, batch_rows: usize) -> Decoder {
        let cols = types.iter().map(|t| Col::new(*t, batch_rows)).collect();
        Decoder {
            schema,
            cols,
            batch_rows,
            rows: 0,
            pending: Vec::new(),
            header_done: false,
            ended: false,
        }
    }

    /// Takes the next chunk of the stream; returns the batches it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        if self.pending.is_empty() {
            let used = self.parse(chunk, &mut out)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            self.pending.extend_from_slice(chunk);
            let buf = std::mem::take(&mut self.pending);
            let used = self.parse(&buf, &mut out)?;
            self.pending = buf;
            self.pending.drain(..used);
        }
        Ok(out)
    }

    /// The last, partial batch; an error if the stream stopped mid-tuple or
    /// without its trailer.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>> {
        if !self.pending.is_empty() || (self.header_done && !self.ended) {
            return Err(Error::Remote {
                system: "postgres",
                message: "the COPY stream ended early".into(),
            });
        }
        if self.rows == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        let arrays = self
            .cols
            .iter_mut()
            .map(Col::finish)
            .collect::<Result<Vec<_>>>()?;
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }

    /// Parses whole tuples from `buf`; returns the bytes used.
    fn parse(&mut self, buf: &[u8], out: &mut Vec<RecordBatch>) -> Result<usize> {
        let mut pos = 0;
        if !self.header_done {
            if buf.len() < 19 {
                return Ok(0);
            }
            if &buf[..11] != SIGNATURE {
                return Err(bad("stream", "not a binary COPY stream"));
            }
            let ext = u32::from_be_bytes(buf[15..19].try_into().expect("4 bytes")) as usize;
            if buf.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        let ncols = self.cols.len();
        loop {
            if self.ended || buf.len() < pos + 2 {
                return Ok(pos);
            }
            let n = i16::from_be_bytes([buf[pos], buf[pos + 1]]);
            if n == -1 {
                self.ended = true;
                return Ok(pos + 2);
            }
            if n as usize != ncols {
                return Err(bad(
                    "stream",
                    &format!("a row of {n} fields, expected {ncols}"),
                ));
            }
            // Is the whole tuple here?
            let mut end = pos + 2;
            let mut complete = true;
            for _ in 0..ncols {
                if buf.len() < end + 4 {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes(buf[end..end + 4].try_into().expect("4 bytes"));
                end += 4 + len.max(0) as usize;
                if buf.len() < end {
                    complete = false;
                    break;
                }
            }
            if !complete {
                return Ok(pos);
            }
            let mut at = pos + 2;
            for (i, col) in self.cols.iter_mut().enumerate() {
                let len = i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
                at += 4;
                if len < 0 {
                    col.append_null();
                } else {
                    let v = &buf[at..at + len as usize];
                    at += len as usize;
                    col.append(v)
                        .map_err(|m| bad(self.schema.field(i).name(), &m))?;
                }
            }
            pos = end;
            self.rows += 1;
            if self.rows == self.batch_rows {
                out.push(self.flush()?);
            }
        }
    }
}

fn bad(column: &str, message: &str) -> Error {
    Error::Decode {
        column: column.to_string(),
        message: message.to_string(),
    }
}

/// Encodes Arrow batches as binary `COPY` tuples for the target columns.
pub struct Encoder {
    types: Vec<PgType>,
}

impl Encoder {
    pub fn new(types: Vec<PgType>) -> Encoder {
        Encoder { types }
    }

    pub fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SIGNATURE);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
    }

    pub fn trailer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(-1i16).to_be_bytes());
    }

    /// Appends the batch's rows; its columns are cast to each target
    /// column's Arrow type first (e.g. Int64 into an `int4` column).
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let mut cols = Vec::with_capacity(self.types.len());
        for (i, ty) in self.types.iter().enumerate() {
            let field = batch.schema().field(i).clone();
            let col = batch.column(i);
            let target = match (ty, col.data_type()) {
                // Unconstrained numeric: keep the input decimal's own scale.
                (PgType::NumericText, DataType::Decimal128(..)) => col.data_type().clone(),
                (PgType::NumericText, _) => DataType::Decimal128(38, 9),
                (PgType::Jsonb | PgType::Json | PgType::Uuid, _) => DataType::Utf8,
                _ => ty.arrow(),
            };
            let cast = arrow::compute::cast(col, &target).map_err(|e| Error::Decode {
                column: field.name().clone(),
                message: format!("cannot write {} as {:?}: {e}", col.data_type(), ty),
            })?;
            cols.push(cast);
        }
        for row in 0..batch.num_rows() {
            out.extend_from_slice(&(self.types.len() as i16).to_be_bytes());
            for (i, (ty, col)) in self.types.iter().zip(&cols).enumerate() {
                if col.is_null(row) {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                    continue;
                }
                let at = out.len();
                out.extend_from_slice(&0i32.to_be_bytes());
                encode_value(*ty, col.as_ref(), row, out)
                    .map_err(|m| bad(batch.schema().field(i).name(), &m))?;
                let len = (out.len() - at - 4) as i32;
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        Ok(())
    }
}

fn encode_value(
    ty: PgType,
    col: &dyn Array,
    row: usize,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    use arrow::array::cast::*;
    use arrow::datatypes::*;
    match ty {
        PgType::Bool => out.push(as_boolean_array(col).value(row) as u8),
        PgType::Int2 => out.extend_from_slice(
            &as_primitive_array::<Int16Type>(col)
                .value(row)
                .to_be_bytes(),
        ),
        PgType::Int4 => out.extend_from_slice(
            &as_primitive_array::<Int32Type>(col)
                .value(row)
                .to_be_bytes(),
        ),
        PgType::Int8 => out.extend_from_slice(
            &as_primitive_array::<Int64Type>(col)
                .value(row)
                .to_be_bytes(),
        ),
        PgType::Float4 => out.extend_from_slice(
            &as_primitive_array::<Float32Type>(col)
                .value(row)
                .to_be_bytes(),
        ),
        PgType::Float8 => out.extend_from_slice(
            &as_primitive_array::<Float64Type>(col)
                .value(row)
                .to_be_bytes(),
        ),
        PgType::Numeric { .. } | PgType::NumericText => {
            let a = as_primitive_array::<Decimal128Type>(col);
            types::i128_to_numeric(a.value(row), a.scale(), out)
        }
        PgType::Text | PgType::Json => {
            out.extend_from_slice(as_string_array(col).value(row).as_bytes())
        }
        PgType::Jsonb => {
            out.push(1);
            out.extend_from_slice(as_string_array(col).value(row).as_bytes())
        }
        PgType::Uuid => {
            let hex: String = as_string_array(col)
                .value(row)
                .chars()
                .filter(|c| *c != '-')
                .collect();
            if hex.len() != 32 {
                return Err(format!(
                    "'{}' is not a uuid",
                    as_string_array(col).value(row)
                ));
            }
            for i in 0..16 {
                let b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                    .map_err(|_| format!("'{hex}' is not a uuid"))?;
                out.push(b);
            }
        }
        PgType::Bytea => out.extend_from_slice(as_generic_binary_array::<i32>(col).value(row)),
        PgType::Date => out.extend_from_slice(
            &(as_primitive_array::<Date32Type>(col).value(row) - PG_EPOCH_DAYS).to_be_bytes(),
        ),
        PgType::Time => out.extend_from_slice(
            &as_primitive_array::<Time64MicrosecondType>(col)
                .value(row)
                .to_be_bytes(),
        ),
        PgType::Timestamp | PgType::Timestamptz => out.extend_from_slice(
            &(as_primitive_array::<TimestampMicrosecondType>(col).value(row) - PG_EPOCH_MICROS)
                .to_be_bytes(),
        ),
    }
    Ok(())
}
