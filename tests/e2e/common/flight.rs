//! Arrow Flight as a consumer uses it: a client of the hub, and one
//! `DoExchange` of lookup keys.

use super::Hub;
use arrow::record_batch::RecordBatch;
use arrow_flight::FlightClient;
use arrow_flight::error::FlightError;
use futures::TryStreamExt;
use serde_json::Value;
use std::sync::Arc;

impl Hub {
    /// An Arrow Flight client of the hub that speaks as `who`.
    pub async fn flight_client(&self, who: &str) -> FlightClient {
        self.flight_client_bearer(&self.token(who)).await
    }

    /// An Arrow Flight client of the hub with any bearer token (a forged
    /// one, say).
    pub async fn flight_client_bearer(&self, token: &str) -> FlightClient {
        let channel = tonic::transport::Channel::from_shared(self.flight.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = FlightClient::new(channel);
        client
            .add_header("authorization", &format!("Bearer {token}"))
            .unwrap();
        client
    }
}

/// Lookup keys as `DoExchange` takes them: one batch, one non-null Utf8
/// column `key`.
pub fn key_batch(keys: Vec<String>) -> RecordBatch {
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("key", arrow::datatypes::DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(arrow::array::StringArray::from(keys))],
    )
    .unwrap()
}

/// One `DoExchange` of `keys` under `cmd` (resource, matter, case, items):
/// every answer batch, or the error the hub ended it with.
pub async fn exchange(
    mut client: FlightClient,
    cmd: &Value,
    keys: Vec<String>,
) -> Result<Vec<RecordBatch>, FlightError> {
    use arrow_flight::FlightDescriptor;
    use arrow_flight::encode::FlightDataEncoderBuilder;
    let input = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(cmd.to_string())))
        .build(futures::stream::iter(vec![Ok(key_batch(keys))]));
    client.do_exchange(input).await?.try_collect().await
}

/// The gRPC status code of a Flight error; an error of any other kind fails
/// the test.
pub fn grpc_code(e: FlightError) -> tonic::Code {
    match e {
        FlightError::Tonic(s) => s.code(),
        other => panic!("expected a gRPC status, got {other}"),
    }
}
