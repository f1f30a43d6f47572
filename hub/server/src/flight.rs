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

/// Batches of one exchange answered at once (each on its own task, so an
/// exchange uses every core); answers leave in input order.
const IN_FLIGHT: usize = 4;

/// A batch admitted in input order: its keys checked, the grant it is
/// released under (the lists checked again), its quota taken.
struct Admitted {
    /// The input keys, for the answer's `key` column where one is bad.
    input: StringArray,
    /// The keys that passed their check digits, normalised.
    good: Vec<String>,
    /// Per input key: its place in `good`, or why it is not a key.
    checked: Vec<Result<usize, String>>,
    grant: Arc<Grant>,
}

/// Stages 2–4 of the pipeline for one batch, in input order: check
/// digits, the lists checked again (an exchange held open never outlives
/// a change that refuses it), the quota.
async fn admit(exchange: &Exchange, batch: &RecordBatch) -> Result<Admitted, Status> {
    let Exchange { state, index, .. } = exchange;
    let ask = &exchange.ask();
    let input = batch
        .column_by_name("key")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Status::invalid_argument("input batches need a Utf8 column 'key'"))?
        .clone();
    let key_item = index.key_items.join("+");
    let mut good: Vec<String> = Vec::with_capacity(input.len());
    let mut checked: Vec<Result<usize, String>> = Vec::with_capacity(input.len());
    for i in 0..input.len() {
        let raw = if input.is_null(i) { "" } else { input.value(i) };
        checked.push(
            match tongban_lookup::keys::normalise(&key_item, raw.to_string()) {
                Ok(k) => {
                    good.push(k);
                    Ok(good.len() - 1)
                }
                Err(e) => Err(format!("key: {e}")),
            },
        );
    }
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
    state
        .access
        .take_quota(ask, &grant, &good)
        .await
        .map_err(status)?;
    Ok(Admitted {
        input,
        good,
        checked,
        grant,
    })
}

/// Stages 5 and 6 for an admitted batch: the grant's row filters,
/// projection and masks, then the audit record before the batch leaves.
/// Only the columns the answer releases (and the filters read) are
/// copied: a population row has 15 items, an answer often two.
async fn answer(exchange: &Exchange, admitted: Admitted) -> Result<RecordBatch, Status> {
    let Exchange { state, index, .. } = exchange;
    let ask = &exchange.ask();
    let Admitted {
        input,
        good,
        checked,
        grant,
    } = admitted;
    let decision = grant.decision();
    let internal = |e: &dyn std::fmt::Display| Status::internal(e.to_string());
    // Rows of the keys found, then the row filters, then one take with
    // nulls for the keys absent or hidden.
    let found: Vec<Option<u32>> = checked
        .iter()
        .map(|c| c.as_ref().ok().and_then(|&g| index.row(&good[g])))
        .collect();
    let present: Vec<u32> = found.iter().flatten().copied().collect();
    let visible = if present.is_empty() || decision.row_filters.is_empty() {
        None
    } else {
        let gathered = index
            .take_columns(
                &present,
                decision.row_filters.iter().map(|f| f.item.as_str()),
            )
            .map_err(|e| internal(&e))?;
        Some(enforce::visible_rows(&gathered, &decision.row_filters).map_err(|e| internal(&e))?)
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
    // The released columns only; absent keys take null rows, so every
    // column must admit nulls.
    let projection = decision.projection();
    let schema = index.batch.schema();
    let mut source_fields = Vec::with_capacity(projection.len());
    let mut source_columns = Vec::with_capacity(projection.len());
    for (item, _) in &projection {
        if let Ok(i) = schema.index_of(item)
            && !source_fields.iter().any(|f: &Field| f.name() == item)
        {
            source_fields.push(schema.field(i).clone().with_nullable(true));
            source_columns.push(index.batch.column(i).clone());
        }
    }
    let source = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(source_fields)),
        source_columns,
        &arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(index.batch.num_rows())),
    )
    .map_err(|e| internal(&e))?;
    let taken = arrow::compute::take_record_batch(&source, &UInt32Array::from(indices.clone()))
        .map_err(|e| internal(&e))?;
    let released = enforce::project_and_mask(&taken, &projection, state.hash_key.as_bytes())
        .map_err(|e| internal(&e))?;
    let mut fields = vec![
        Arc::new(Field::new("key", DataType::Utf8, false)),
        Arc::new(Field::new("found", DataType::Boolean, false)),
        Arc::new(Field::new("error", DataType::Utf8, true)),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            checked.iter().enumerate().map(|(i, c)| match c {
                Ok(g) => good[*g].as_str(),
                Err(_) => input.value(i),
            }),
        )),
        Arc::new(BooleanArray::from(
            indices.iter().map(Option::is_some).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from_iter(
            checked.iter().map(|c| c.as_ref().err().map(String::as_str)),
        )),
    ];
    for (f, c) in released.schema().fields().iter().zip(released.columns()) {
        fields.push(f.clone());
        columns.push(c.clone());
    }
    state
        .access
        .release(ask, &grant, &good)
        .await
        .map_err(status)?;
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| internal(&e))
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
        // Admitted one by one in input order (quota, lists), then answered
        // on tasks, IN_FLIGHT at once, and sent on in input order. The
        // first failure is sent after the answers before it, and ends the
        // exchange.
        let answers = batches
            .then(move |batch| {
                let exchange = exchange.clone();
                async move {
                    let admitted = match batch {
                        Ok(batch) => admit(&exchange, &batch).await,
                        Err(e) => Err(Status::invalid_argument(format!("input: {e}"))),
                    };
                    let answered: futures::future::BoxFuture<'static, Result<RecordBatch, Status>> =
                        match admitted {
                            Ok(admitted) => {
                                let task =
                                    tokio::spawn(async move { answer(&exchange, admitted).await });
                                Box::pin(async move {
                                    task.await
                                        .map_err(|e| Status::internal(format!("batch task: {e}")))?
                                })
                            }
                            Err(e) => Box::pin(futures::future::ready(Err(e))),
                        };
                    answered
                }
            })
            .buffered(IN_FLIGHT)
            .scan(false, |failed, answer| {
                let next = (!*failed).then_some(answer);
                *failed = next.as_ref().is_some_and(Result::is_err);
                futures::future::ready(next)
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
