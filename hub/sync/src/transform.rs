//! The optional SQL transform of a sync job: DataFusion runs the job's
//! query over the source's batch stream, registered as the table `source`,
//! and the run continues with the query's output. The stream is consumed as
//! it arrives (a `StreamingTable`), so a transform of ten million rows
//! holds no more than the query itself needs (a projection or filter: one
//! batch; an aggregate: its groups).

use crate::{Error, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::{Arc, Mutex};

/// Checks that `sql` is one query (syntax only: the columns are checked
/// against the source when a run starts).
pub fn check(sql: &str) -> Result<()> {
    use datafusion::sql::parser::{DFParser, Statement};
    let statements = DFParser::parse_sql(sql).map_err(|e| Error::Transform(e.to_string()))?;
    match statements.len() {
        1 if matches!(&statements[0], Statement::Statement(s) if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Query(_))) => {
            Ok(())
        }
        1 => Err(Error::Transform(
            "give a SELECT query over the table `source`".into(),
        )),
        n => Err(Error::Transform(format!(
            "give one query, not {n} statements"
        ))),
    }
}

/// The source stream, handed to DataFusion once.
struct Once {
    schema: SchemaRef,
    stream: Mutex<Option<BoxStream<'static, Result<RecordBatch>>>>,
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sync source stream")
    }
}

impl PartitionStream for Once {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().expect("not poisoned").take();
        let stream: BoxStream<'static, datafusion::error::Result<RecordBatch>> = match taken {
            Some(s) => s
                .map(|r| r.map_err(|e| DataFusionError::External(Box::new(e))))
                .boxed(),
            None => futures::stream::once(async {
                Err(DataFusionError::Execution(
                    "the source can be read only once".into(),
                ))
            })
            .boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// Plans `sql` over `input` (of `schema`) and returns the output's schema
/// (known before any row is read) and its stream.
pub async fn apply(
    sql: &str,
    schema: SchemaRef,
    input: BoxStream<'static, Result<RecordBatch>>,
) -> Result<(SchemaRef, BoxStream<'static, Result<RecordBatch>>)> {
    check(sql)?;
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    let once = Arc::new(Once {
        schema: schema.clone(),
        stream: Mutex::new(Some(input)),
    });
    let table = StreamingTable::try_new(schema, vec![once]).map_err(transform)?;
    ctx.register_table("source", Arc::new(table))
        .map_err(transform)?;
    let df = ctx.sql(sql).await.map_err(transform)?;
    let out: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await.map_err(transform)?;
    Ok((out, stream.map(|r| r.map_err(transform)).boxed()))
}

fn transform(e: DataFusionError) -> Error {
    Error::Transform(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[tokio::test]
    async fn a_query_reshapes_the_stream() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("nm", DataType::Utf8, true),
        ]));
        let batches: Vec<Result<RecordBatch>> = (0..3)
            .map(|k| {
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter_values(k * 10..k * 10 + 10)),
                        Arc::new(StringArray::from_iter_values(
                            (0..10).map(|i| format!(" n{i} ")),
                        )),
                    ],
                )
                .unwrap())
            })
            .collect();
        let (out, stream) = apply(
            "SELECT id * 2 AS id, trim(nm) AS name FROM source WHERE id % 2 = 0",
            schema,
            futures::stream::iter(batches).boxed(),
        )
        .await
        .unwrap();
        assert_eq!(out.field(1).name(), "name");
        let rows: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect().await;
        assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 15);
        assert!(check("DROP TABLE source").is_err());
        assert!(check("SELECT 1; SELECT 2").is_err());
        assert!(
            check("SELEC id FROM source")
                .unwrap_err()
                .to_string()
                .contains("transform")
        );
    }
}
