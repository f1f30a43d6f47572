//! Arrow Flight for bulk lookups: `DoExchange` takes record batches of keys
//! and answers, batch for batch, the permitted, masked items of each key —
//! the same decision, quotas, row filters, masks and audit as the HTTP
//! lookups, in Arrow from end to end.
//!
//! The exchange opens with a `FlightDescriptor` whose `cmd` is JSON:
//! `{"resource": "101/000001", "matter": "…", "case": "…", "items": ["name"]}`;
//! the caller's token goes in the `authorization: Bearer …` metadata. Input
//! batches have a Utf8 column `key`; each answer batch has `key`, `found`,
//! `error` (a key that fails its check digit) and the permitted items.
//!
//! `DoGet` and `ListFlights` serve pull subscriptions
//! ([`super::flight_get`]).

use super::AppState;
use super::lookup;
use super::problem::status;
use arrow::array::{Array, ArrayRef, BooleanArray, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use std::sync::Arc;
use tongban_core::{Ask, Grant};
use tongban_policies::{Mode, enforce};
use tonic::{Request, Response, Status, Streaming};

/// What an exchange asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Command {
    resource: String,
    matter: String,
    case: String,
    #[serde(default)]
    items: Vec<String>,
}

/// The Flight service over the hub's state.
#[derive(Clone)]
pub struct Lookups {
    pub state: AppState,
}

impl Lookups {
    /// The caller, by the `authorization: Bearer …` metadata or, without
    /// it, the connection's registered client certificate (over TLS).
    fn identify<T>(&self, req: &Request<T>) -> Result<tongban_core::auth::Identity, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or(""));
        let certificate = req
            .extensions()
            .get::<crate::flight_tls::FlightPeer>()
            .and_then(|p| p.fingerprint.as_deref());
        self.state
            .identities
            .identify(header, certificate)
            .map_err(status)
    }
}

/// What every batch of one exchange shares.
struct Exchange {
    state: AppState,
    index: Arc<tongban_lookup::index::Index>,
    consumer: String,
    command: Command,
    /// The grant the next batch is released under: renewed when the lists
    /// change and still decide the exchange the same way.
    grant: std::sync::Mutex<Arc<Grant>>,
}

impl Exchange {
    /// The ask of one batch: its record's latency runs from now.
    fn ask(&self) -> Ask<'_> {
        Ask {
            consumer: &self.consumer,
            resource: &self.command.resource,
            matter: &self.command.matter,
            case: &self.command.case,
            mode: Mode::Lookup,
            started: std::time::Instant::now(),
        }
    }
}

/// Answers one batch of keys through the access pipeline: check digits,
/// quota, the grant's row filters, projection and masks, then the audit
/// record before the batch leaves.
async fn answer_batch(exchange: &Exchange, batch: &RecordBatch) -> Result<RecordBatch, Status> {
    let Exchange { state, index, .. } = exchange;
    let ask = &exchange.ask();
    let keys = batch
        .column_by_name("key")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Status::invalid_argument("input batches need a Utf8 column 'key'"))?;
    let key_item = index.key_items.join("+");
    let mut normalised: Vec<Option<String>> = Vec::with_capacity(keys.len());
    let mut errors: Vec<Option<String>> = Vec::with_capacity(keys.len());
    for i in 0..keys.len() {
        let raw = if keys.is_null(i) { "" } else { keys.value(i) };
        match tongban_lookup::keys::normalise(&key_item, raw.to_string()) {
            Ok(k) => {
                normalised.push(Some(k));
                errors.push(None);
            }
            Err(e) => {
                normalised.push(None);
                errors.push(Some(format!("key: {e}")));
            }
        }
    }
    let good: Vec<String> = normalised.iter().flatten().cloned().collect();
    // An exchange held open is checked against the lists at every batch.
    let current = exchange.grant.lock().expect("grant lock").clone();
    let grant = match state
        .access
        .recheck(ask, &current, &exchange.command.items, &good)
        .await
        .map_err(status)?
    {
        Some(renewed) => {
            let renewed = Arc::new(renewed);
            *exchange.grant.lock().expect("grant lock") = renewed.clone();
            renewed
        }
        None => current,
    };
    let grant = grant.as_ref();
    let decision = grant.decision();
    state
        .access
        .take_quota(ask, grant, &good)
        .await
        .map_err(status)?;
    // Rows of the keys found, then the row filters, then one take with
    // nulls for the keys absent or hidden.
    let found: Vec<Option<u32>> = normalised
        .iter()
        .map(|k| k.as_deref().and_then(|k| index.row(k)))
        .collect();
    let present: Vec<u32> = found.iter().flatten().copied().collect();
    let visible = if present.is_empty() || decision.row_filters.is_empty() {
        None
    } else {
        let gathered = index
            .take(&present)
            .map_err(|e| Status::internal(e.to_string()))?;
        Some(
            enforce::visible_rows(&gathered, &decision.row_filters)
                .map_err(|e| Status::internal(e.to_string()))?,
        )
    };
    let mut seen = 0;
    let indices: Vec<Option<u32>> = found
        .iter()
        .map(|row| {
            let row = (*row)?;
            let keep = visible.as_ref().is_none_or(|v| v.value(seen));
            seen += 1;
            keep.then_some(row)
        })
        .collect();
    // Absent keys take null rows: every column must admit nulls.
    let nullable = Schema::new(
        index
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    );
    let source = RecordBatch::try_new(Arc::new(nullable), index.batch.columns().to_vec())
        .map_err(|e| Status::internal(e.to_string()))?;
    let taken = arrow::compute::take_record_batch(&source, &UInt32Array::from(indices.clone()))
        .map_err(|e| Status::internal(e.to_string()))?;
    let released =
        enforce::project_and_mask(&taken, &decision.projection(), state.hash_key.as_bytes())
            .map_err(|e| Status::internal(e.to_string()))?;
    let mut fields = vec![
        Arc::new(Field::new("key", DataType::Utf8, false)),
        Arc::new(Field::new("found", DataType::Boolean, false)),
        Arc::new(Field::new("error", DataType::Utf8, true)),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            normalised
                .iter()
                .zip(0..keys.len())
                .map(|(k, i)| k.clone().unwrap_or_else(|| keys.value(i).to_string())),
        )),
        Arc::new(BooleanArray::from(
            indices.iter().map(Option::is_some).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(errors)),
    ];
    for (f, c) in released.schema().fields().iter().zip(released.columns()) {
        fields.push(f.clone());
        columns.push(c.clone());
    }
    state
        .access
        .release(ask, grant, &good)
        .await
        .map_err(status)?;
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl FlightService for Lookups {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        let started = std::time::Instant::now();
        let who = self.identify(&request)?;
        let mut input = request.into_inner();
        let first = input.message().await?.ok_or_else(|| {
            Status::invalid_argument("the exchange is empty: open it with a FlightDescriptor")
        })?;
        let command: Command = first
            .flight_descriptor
            .as_ref()
            .map(|d: &FlightDescriptor| d.cmd.clone())
            .ok_or_else(|| {
                Status::invalid_argument(
                    "open the exchange with a FlightDescriptor whose cmd is JSON",
                )
            })
            .and_then(|cmd| {
                serde_json::from_slice(&cmd)
                    .map_err(|e| Status::invalid_argument(format!("descriptor cmd: {e}")))
            })?;
        let state = self.state.clone();
        let ask = Ask {
            consumer: &who.department,
            resource: &command.resource,
            matter: &command.matter,
            case: &command.case,
            mode: Mode::Lookup,
            started,
        };
        ask.check().map_err(status)?;
        let index = lookup::index_of(&state, &command.resource).map_err(status)?;
        let grant = state
            .access
            .open(&ask, &command.items, &[])
            .await
            .map_err(status)?;
        // Arrow C++ (pyarrow) opens the exchange with a message that carries
        // only the descriptor; arrow-flight's client puts it on the schema
        // message instead. A message with an empty data_header (that one, or
        // app_metadata alone) is no IPC message: the decoder gets the rest.
        let rest = futures::stream::once(async move { Ok(first) })
            .chain(input)
            .try_filter(|m| futures::future::ready(!m.data_header.is_empty()))
            .map_err(|s| FlightError::Tonic(Box::new(s)));
        let batches = FlightRecordBatchStream::new_from_flight_data(rest);
        let exchange = Arc::new(Exchange {
            state,
            index,
            consumer: who.department,
            command,
            grant: std::sync::Mutex::new(Arc::new(grant)),
        });
        let answers = batches
            .map_err(|e| Status::invalid_argument(format!("input: {e}")))
            .and_then(move |batch| {
                let exchange = exchange.clone();
                async move { answer_batch(&exchange, &batch).await }
            })
            .map_err(|s| FlightError::Tonic(Box::new(s)));
        let encoded = FlightDataEncoderBuilder::new()
            .build(answers)
            .map_err(|e| match e {
                FlightError::Tonic(s) => *s,
                other => Status::internal(other.to_string()),
            });
        Ok(Response::new(encoded.boxed()))
    }

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented(
            "no handshake: send authorization: Bearer <token> metadata",
        ))
    }
    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let who = self.identify(&request)?;
        let flights = super::flight_get::list(&self.state, &who).await?;
        Ok(Response::new(
            futures::stream::iter(flights.into_iter().map(Ok)).boxed(),
        ))
    }
    async fn get_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented(
            "this endpoint serves DoExchange lookups only",
        ))
    }
    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "this endpoint serves DoExchange lookups only",
        ))
    }
    async fn get_schema(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented(
            "this endpoint serves DoExchange lookups only",
        ))
    }
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let who = self.identify(&request)?;
        let stream = super::flight_get::do_get(&self.state, &who, request.get_ref()).await?;
        Ok(Response::new(stream))
    }
    async fn do_put(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(Status::unimplemented(
            "this endpoint serves DoExchange lookups only",
        ))
    }
    async fn do_action(
        &self,
        _: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented(
            "this endpoint serves DoExchange lookups only",
        ))
    }
    async fn list_actions(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(futures::stream::empty().boxed()))
    }
}
