//! One negative-list entry stops its item on every release path.
//!
//! The design's rule (DESIGN §2, §4): every path that releases data goes
//! through the one access pipeline, and there the negative list wins over
//! any need. This test takes one data item that consumers receive on every
//! path — a citizen's `name` in the population library (101/000001), which
//! the acceptance office (sh-zwfw) looks up and verifies for 居住证
//! (310000-JZZ-001) and the Xuhui district (xh-zwfw) receives in clear by
//! subscription — and shows each path releasing it, so that nothing below is
//! vacuous. Then the data office puts the item on the negative list (every
//! mode, every consumer) and each path is tried again: nothing of the item
//! leaves, and each path still answers with the rest or refuses cleanly,
//! naming the entry's rule. Last, the audit log records every one of those
//! requests and deliveries with the item denied.
//!
//! A second test holds a Flight exchange and an NDJSON stream open across
//! the entry and sends more keys after it: they are refused (or answered
//! without the item), never released under the decision they opened with.
//!
//! Paths: lookup, verify, locate, the NDJSON stream, Flight `DoExchange`,
//! Flight `DoGet` (and `ListFlights`' schema), Delta Sharing (metadata,
//! query with and without predicate hints, the files, an old file URL, the
//! change feed), webhook push and PostgreSQL push of a new version, and each
//! subscription's plan as `GET /v1/subscriptions/{id}` shows it.
//!
//! Locate answers only over resources with boundaries — the divisions
//! (103/000001), never the population — so a second entry puts the
//! divisions' `name` on the list for that path.
//!
//! Not here: interface calls, whose items are those of the service's own
//! resource, never the population's — `services.rs` puts a response field of
//! a service on the negative list and shows it never leaves, even under a
//! need that covers it; and console pages that show data (there are none).

use crate::common::{
    Hub, Webhook, cells, exchange, expect_json, grpc_code, key_batch, ndjson, pg_connect, pg_url,
    problem, quick_delivery, read_parquet,
};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow_flight::error::FlightError;
use futures::TryStreamExt;
use serde_json::{Value, json};
use sqlx::{PgConnection, Row};
use std::collections::BTreeSet;

const ACCEPTANCE: &str = "acceptance";
const XUHUI: &str = "xuhui-district";
const POPULATION: &str = "101/000001";
const DIVISIONS: &str = "103/000001";
/// The acceptance office's matter for lookup and verify (need:1 and need:2).
const JZZ: &str = "310000-JZZ-001";
/// The district's demo pull subscription, as a Delta Sharing table.
const RESIDENTS: &str = "/delta-sharing/shares/population/schemas/sh-gaj/tables/residents";
/// Where the PostgreSQL push writes.
const PG_TABLE: &str = "tongban_e2e_every_path.residents";

/// The citizen every path is asked about: a Xuhui resident, so that the
/// district's row filter lets them through too.
struct Person {
    citizen_id: String,
    name: String,
    gender: String,
    birth_date: String,
}

/// The non-null values of a column, as text (none if there is no column).
fn texts(b: &RecordBatch, column: &str) -> Vec<String> {
    if b.column_by_name(column).is_none() {
        return Vec::new();
    }
    cells(b, column).into_iter().flatten().collect()
}

/// Every value of every column of the batches that reads as text.
fn values(batches: &[RecordBatch]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for b in batches {
        for field in b.schema().fields() {
            if arrow::compute::can_cast_types(field.data_type(), &DataType::Utf8) {
                out.extend(texts(b, field.name()));
            }
        }
    }
    out
}

/// The column names of the batches, in order (all batches agree).
fn columns(batches: &[RecordBatch]) -> Vec<String> {
    let first = batches.first().expect("some batches");
    let names: Vec<String> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for b in batches {
        let schema = b.schema();
        let these: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        assert_eq!(these, names.iter().collect::<Vec<_>>());
    }
    names
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// Every string anywhere in a JSON value, and every object key.
fn json_strings(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|v| json_strings(v, out)),
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            out.insert(k.clone());
            json_strings(v, out);
        }),
        _ => {}
    }
}

fn strings_of(values: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    values.iter().for_each(|v| json_strings(v, &mut out));
    out
}

/// The `denied` entry of `item` in an answer, with its rule.
fn denied_rule<'a>(answer: &'a Value, item: &str) -> Option<&'a str> {
    answer["denied"]
        .as_array()?
        .iter()
        .find(|d| d["item"] == item)?["rule"]
        .as_str()
}

/// Everything the test asks each path with.
struct Paths {
    hub: Hub,
    person: Person,
    /// Every citizen's name in the population data: none may leave once
    /// the item is listed (the second version has the same rows).
    names: BTreeSet<String>,
    /// Every division's name.
    division_names: BTreeSet<String>,
    /// A point inside a street (its centroid).
    point: (f64, f64),
}

/// Two push subscriptions of the district's residents.
struct Pushes {
    hook: Webhook,
    hook_id: i64,
    hook_secret: String,
    db_id: i64,
}

impl Paths {
    /// The person and the point, over a started hub.
    async fn new(hub: Hub) -> Paths {
        let (_, population) = hub.read_newest(POPULATION).await;
        let names: BTreeSet<String> = population.iter().flat_map(|b| texts(b, "name")).collect();
        let person = population
            .iter()
            .find_map(|b| {
                let street = cells(b, "residence_street");
                let i = street
                    .iter()
                    .position(|s| s.as_deref().is_some_and(|s| s.starts_with("310104")))?;
                let col = |c: &str| cells(b, c)[i].clone().expect("a value");
                Some(Person {
                    citizen_id: col("citizen_id"),
                    name: col("name"),
                    gender: col("gender"),
                    birth_date: col("birth_date"),
                })
            })
            .expect("a Xuhui resident");
        let (_, divisions) = hub.read_newest(DIVISIONS).await;
        let division_names = divisions.iter().flat_map(|b| texts(b, "name")).collect();
        let point = divisions
            .iter()
            .find_map(|b| {
                let i = cells(b, "level")
                    .iter()
                    .position(|l| l.as_deref() == Some("street"))?;
                let at = |c: &str| cells(b, c)[i].as_deref().unwrap().parse::<f64>().unwrap();
                Some((at("centroid_lon"), at("centroid_lat")))
            })
            .expect("a street");
        Paths {
            hub,
            person,
            names,
            division_names,
            point,
        }
    }

    async fn lookup(&self, items: Option<&[&str]>, case: &str) -> reqwest::Response {
        let mut body = json!({"keys": [self.person.citizen_id], "matter": JZZ, "case": case});
        if let Some(items) = items {
            body["items"] = json!(items);
        }
        self.hub
            .post_when_ready("/v1/lookup/101/000001", ACCEPTANCE, &body)
            .await
    }

    async fn verify(&self, claims: Value, case: &str) -> reqwest::Response {
        let body =
            json!({"key": self.person.citizen_id, "claims": claims, "matter": JZZ, "case": case});
        self.hub
            .post_when_ready("/v1/verify/101/000001", ACCEPTANCE, &body)
            .await
    }

    async fn locate(&self, case: &str) -> reqwest::Response {
        let body = json!({"lon": self.point.0, "lat": self.point.1, "items": ["code", "name", "level"],
                          "matter": JZZ, "case": case});
        self.hub
            .post_when_ready("/v1/locate/103/000001", ACCEPTANCE, &body)
            .await
    }

    async fn stream(&self, items: &str, case: &str) -> reqwest::Response {
        self.hub
            .post(
                &format!("/v1/lookup/101/000001/stream?matter={JZZ}&case={case}&items={items}"),
                ACCEPTANCE,
            )
            .header("content-type", "application/x-ndjson")
            .body(format!("{}\n", self.person.citizen_id))
            .send()
            .await
            .unwrap()
    }

    /// Flight `DoExchange`: one batch with the person's key.
    async fn exchange(&self, items: &[&str], case: &str) -> Result<Vec<RecordBatch>, FlightError> {
        let cmd = json!({"resource": POPULATION, "matter": JZZ, "case": case, "items": items});
        let client = self.hub.flight_client(ACCEPTANCE).await;
        exchange(client, &cmd, vec![self.person.citizen_id.clone()]).await
    }

    /// Flight `DoGet` of the district's `residents`, newest version.
    async fn do_get(&self) -> Vec<RecordBatch> {
        let ticket = arrow_flight::Ticket::new(json!({"subscription": "residents"}).to_string());
        let mut client = self.hub.flight_client(XUHUI).await;
        client
            .do_get(ticket)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    }

    /// The field names `ListFlights` announces for `residents`.
    async fn listed_schema(&self) -> Vec<String> {
        let mut client = self.hub.flight_client(XUHUI).await;
        let flights: Vec<_> = client
            .list_flights(bytes::Bytes::new())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(flights.len(), 1, "the district pulls one subscription");
        let schema = flights
            .into_iter()
            .next()
            .unwrap()
            .try_decode_schema()
            .unwrap();
        schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// A Delta Sharing query of `residents`: its lines.
    async fn share_query(&self, body: Value) -> Vec<Value> {
        ndjson(
            self.hub
                .post(&format!("{RESIDENTS}/query"), XUHUI)
                .json(&body)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    }

    /// The field names in a Delta Sharing answer's `metaData` line.
    fn shared_schema(lines: &[Value]) -> Vec<String> {
        let meta = lines
            .iter()
            .find_map(|l| l.get("metaData"))
            .expect("a metaData line");
        let schema: Value = serde_json::from_str(meta["schemaString"].as_str().unwrap()).unwrap();
        schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Downloads the files of Delta Sharing lines (`file`, `add`, `remove`,
    /// `cdf` actions) through their signed URLs, without a token.
    async fn download(&self, lines: &[Value]) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for action in lines.iter().filter_map(|l| {
            ["file", "add", "remove", "cdf"]
                .iter()
                .find_map(|k| l.get(*k))
        }) {
            let resp = self
                .hub
                .client
                .get(action["url"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{action}");
            out.extend(read_parquet(resp.bytes().await.unwrap()));
        }
        out
    }

    /// Polls a subscription until its cursor reaches `version` (at most 30 s).
    async fn wait_for_cursor(&self, id: i64, version: i64) -> Value {
        self.hub
            .wait_for_subscription(XUHUI, id, &format!("v{version}"), |s| {
                s["cursor"] == version
            })
            .await
    }

    async fn subscription(&self, id: i64) -> Value {
        self.hub.subscription(XUHUI, id).await
    }
}

impl Pushes {
    /// The rows of the `n`th webhook push (NDJSON), its signature checked.
    fn pushed(&self, n: usize, version: i64) -> Vec<Value> {
        let push = self.hook.pushed()[n].open(&self.hook_secret);
        assert_eq!(push.version, version);
        push.rows
    }
}

/// A Flight exchange and an NDJSON stream opened before the entry and held
/// open across it: the client sends more keys whenever it likes, so a
/// decision made when they opened must not outlive the entry.
struct Held {
    /// Dropped to end the exchange's input.
    exchange_keys: Option<tokio::sync::mpsc::Sender<RecordBatch>>,
    exchange_answers: arrow_flight::decode::FlightRecordBatchStream,
    /// Dropped to end the request body.
    stream_keys: Option<tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>>,
    stream_answers: reqwest::Response,
    /// Answer bytes of the stream not yet split into lines.
    stream_pending: Vec<u8>,
}

/// The stream answers a chunk of this many keys at once (the hub's chunk).
const CHUNK: usize = tongban_server::lookup::STREAM_CHUNK;

impl Paths {
    fn key_batch(&self) -> RecordBatch {
        key_batch(vec![self.person.citizen_id.clone()])
    }

    /// Opens both, sends a first batch and chunk of keys and reads their
    /// answers, which carry the name.
    async fn hold(&self) -> Held {
        use arrow_flight::FlightDescriptor;
        use arrow_flight::encode::FlightDataEncoderBuilder;
        // Through HTTP first, to wait for the index.
        expect_json(self.lookup(Some(&["gender"]), "EP-HELD-READY").await, 200).await;
        let (exchange_keys, rx) = tokio::sync::mpsc::channel::<RecordBatch>(1);
        let input =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) },
            );
        let cmd = json!({"resource": POPULATION, "matter": JZZ, "case": "EP-HELD-FLIGHT",
                         "items": ["name", "gender"]});
        let input = FlightDataEncoderBuilder::new()
            .with_flight_descriptor(Some(FlightDescriptor::new_cmd(cmd.to_string())))
            .build(input);
        exchange_keys.send(self.key_batch()).await.unwrap();
        let mut client = self.hub.flight_client(ACCEPTANCE).await;
        let mut exchange_answers = client.do_exchange(input).await.unwrap();
        let first = exchange_answers.try_next().await.unwrap().unwrap();
        assert_eq!(
            texts(&first, "name"),
            std::slice::from_ref(&self.person.name)
        );

        let (stream_keys, rx) = tokio::sync::mpsc::channel(1);
        let body = reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (b, rx))
        }));
        stream_keys.send(Ok(self.key_chunk())).await.unwrap();
        let stream_answers = self
            .hub
            .post(
                &format!("/v1/lookup/101/000001/stream?matter={JZZ}&case=EP-HELD-STREAM&items=name,gender"),
                ACCEPTANCE,
            )
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(stream_answers.status(), 200);
        let mut held = Held {
            exchange_keys: Some(exchange_keys),
            exchange_answers,
            stream_keys: Some(stream_keys),
            stream_answers,
            stream_pending: Vec::new(),
        };
        let lines = held.stream_lines(CHUNK).await;
        assert_eq!(lines.len(), CHUNK);
        assert!(
            lines
                .iter()
                .all(|l| l["rows"][0]["name"] == self.person.name.as_str())
        );
        held
    }

    /// One chunk of the stream: the person's key, [`CHUNK`] times.
    fn key_chunk(&self) -> bytes::Bytes {
        format!("{}\n", self.person.citizen_id).repeat(CHUNK).into()
    }
}

impl Held {
    /// The next `n` answer lines of the stream, or fewer if it ends.
    async fn stream_lines(&mut self, n: usize) -> Vec<Value> {
        let count = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
        while count(&self.stream_pending) < n {
            match self.stream_answers.chunk().await.unwrap() {
                Some(bytes) => self.stream_pending.extend_from_slice(&bytes),
                None => break,
            }
        }
        let text = String::from_utf8(std::mem::take(&mut self.stream_pending)).unwrap();
        let mut lines = text.split_inclusive('\n');
        let taken: Vec<Value> = lines
            .by_ref()
            .take(n)
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        self.stream_pending = lines.collect::<String>().into_bytes();
        taken
    }
}

/// (rows, rows with a name, rows with the person's name) in the pushed table.
async fn pushed_table(db: &mut PgConnection, name: &str) -> (i64, i64, i64) {
    let row = sqlx::query(&format!(
        "SELECT count(*) AS n, count(name) AS named, count(*) FILTER (WHERE name = $1) AS person
         FROM {PG_TABLE}"
    ))
    .bind(name)
    .fetch_one(db)
    .await
    .unwrap();
    (row.get("n"), row.get("named"), row.get("person"))
}

#[tokio::test]
async fn a_negative_entry_stops_its_item_on_every_release_path() {
    let hub = Hub::start_with(None, |c| {
        quick_delivery(c);
        // Several shared files, so that predicate hints have files to prune.
        c.delivery.file_rows = 10;
    })
    .await;
    let mut db = pg_connect().await;
    let paths = Paths::new(hub).await;
    let pushes = Pushes::subscribe(&paths, &mut db).await;

    let old_url = every_path_releases_the_item(&paths, &pushes, &mut db).await;

    // The data office lists the item for every mode and consumer, and the
    // divisions' names for locate. The API recompiles the policy set before
    // it answers, so nothing needs to wait for a refresh.
    let since = paths.hub.audit_records().len();
    let rule = list_negative(&paths.hub, POPULATION).await;
    let division_rule = list_negative(&paths.hub, DIVISIONS).await;

    no_path_releases_the_item(&paths, &pushes, &mut db, &rule, &division_rule, &old_url).await;
    every_request_is_audited_with_the_item_denied(&paths, since, &rule, &division_rule);
}

/// The same entry, while a Flight exchange and an NDJSON stream opened
/// before it are still open: the keys sent after it must get no name.
///
/// Both paths are decided when they open; the access pipeline checks every
/// later batch or chunk against the lists (`Access::recheck`) and ends the
/// request, recorded as denied, once they no longer decide it the same way.
/// (Found by this test: both once kept their opening decision for as long
/// as the consumer kept the connection, and released the listed item.)
#[tokio::test]
async fn streams_held_open_across_a_negative_entry_release_nothing_after_it() {
    let paths = Paths::new(Hub::start(None).await).await;
    let held = paths.hold().await;
    let since = paths.hub.audit_records().len();
    let rule = list_negative(&paths.hub, POPULATION).await;
    let mut leaks = what_leaves_what_was_opened_before(&paths, held).await;
    let after = &paths.hub.audit_records()[since..];
    for case in ["EP-HELD-FLIGHT", "EP-HELD-STREAM"] {
        let records: Vec<&Value> = after.iter().filter(|r| r["case"] == case).collect();
        assert!(
            !records.is_empty(),
            "{case}: the answers after the entry are audited"
        );
        for r in records {
            let released = r["items"].as_array().unwrap().iter().any(|i| i == "name");
            let denied = r["denied"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d == &format!("name:{rule}"));
            if released || !denied {
                let mut shown = r.clone();
                shown["keys"] = json!("…");
                leaks.push(format!(
                    "{case}: audited after the entry as releasing the name: {shown}"
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "held open across the entry, the name still leaves:\n{}",
        leaks.join("\n")
    );
}

impl Pushes {
    /// A webhook and a PostgreSQL push under the district's subscribe need
    /// (which carries the demo pull subscription too), once they have had v1.
    async fn subscribe(p: &Paths, db: &mut PgConnection) -> Pushes {
        let hub = &p.hub;
        let need = hub.approved_need(XUHUI, "subscribe").await;
        let hook = Webhook::start().await;
        let sub = expect_json(
            hub.subscribe(
                XUHUI,
                &json!({"name": "residents-push", "resource": POPULATION, "need": need,
                        "channel": {"type": "webhook", "url": hook.url}}),
            )
            .await,
            201,
        )
        .await;
        let (hook_id, hook_secret) = (
            sub["id"].as_i64().unwrap(),
            sub["secret"].as_str().unwrap().to_string(),
        );
        sqlx::raw_sql(
        "DROP SCHEMA IF EXISTS tongban_e2e_every_path CASCADE; CREATE SCHEMA tongban_e2e_every_path;
         CREATE TABLE tongban_e2e_every_path.residents (citizen_id text, name text, gender text,
            birth_date date, residence_street text)",
    )
    .execute(&mut *db)
    .await
    .unwrap();
        let sub = expect_json(
            hub.subscribe(
                XUHUI,
                &json!({"name": "residents-db", "resource": POPULATION, "need": need,
                        "channel": {"type": "postgres", "url": pg_url().replace("postgresql://", "postgres://"),
                                    "table": PG_TABLE}}),
            )
            .await,
            201,
        )
        .await;
        let db_id = sub["id"].as_i64().unwrap();
        p.wait_for_cursor(hook_id, 1).await;
        p.wait_for_cursor(db_id, 1).await;
        Pushes {
            hook,
            hook_id,
            hook_secret,
            db_id,
        }
    }
}

/// Adds a negative entry for `name` of `resource`, every mode and
/// consumer; its rule.
async fn list_negative(hub: &Hub, resource: &str) -> String {
    let entry = hub
        .add_negative(&json!({"resource": resource, "items": ["name"],
                              "legal_basis": "端到端测试：该信息项停止共享", "note": "every path"}))
        .await;
    assert_eq!(entry["modes"], json!([]), "every mode: {entry}");
    assert_eq!(entry["consumers"], json!([]), "every consumer: {entry}");
    format!("negative:{}", entry["id"])
}

/// Before the entry: each path releases the name (the checks after it are
/// not vacuous). Returns a Delta Sharing file URL made now.
async fn every_path_releases_the_item(p: &Paths, pushes: &Pushes, db: &mut PgConnection) -> String {
    let me = &p.person;
    let r = expect_json(
        p.lookup(Some(&["name", "gender"]), "EP-1-LOOKUP").await,
        200,
    )
    .await;
    assert_eq!(r["results"][0]["rows"][0]["name"], me.name.as_str(), "{r}");

    let r = expect_json(
        p.verify(
            json!({"name": me.name, "birth_date": me.birth_date}),
            "EP-1-VERIFY",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        r["matches"],
        json!({"name": true, "birth_date": true}),
        "{r}"
    );

    let r = expect_json(p.locate("EP-1-LOCATE").await, 200).await;
    let divisions = r["results"][0]["rows"].as_array().unwrap();
    assert_eq!(divisions.len(), 3, "city, district, street: {r}");
    assert!(divisions.iter().all(|d| d["name"].is_string()), "{r}");

    let lines = ndjson(p.stream("name,gender", "EP-1-STREAM").await, 200).await;
    assert_eq!(lines[0]["rows"][0]["name"], me.name.as_str(), "{lines:?}");

    let batches = p
        .exchange(&["name", "gender"], "EP-1-FLIGHT")
        .await
        .unwrap();
    assert_eq!(texts(&batches[0], "name"), std::slice::from_ref(&me.name));

    let pulled = p.do_get().await;
    assert!(columns(&pulled).contains(&"name".to_string()));
    assert!(values(&pulled).contains(&me.name));
    assert!(p.listed_schema().await.contains(&"name".to_string()));

    let lines = p.share_query(json!({})).await;
    assert!(Paths::shared_schema(&lines).contains(&"name".to_string()));
    let files = p.download(&lines).await;
    assert!(columns(&files).contains(&"name".to_string()));
    assert!(values(&files).contains(&me.name));
    assert_eq!(
        rows(&files),
        rows(&pulled),
        "Flight and Delta Sharing agree"
    );
    // A predicate no name can match prunes every file: hints on the name
    // are decided from its statistics while it is shared.
    let none = json!({"op": "lessThan", "children": [
        {"op": "column", "name": "name", "valueType": "string"},
        {"op": "literal", "value": "", "valueType": "string"}]});
    let pruned = p
        .share_query(json!({"jsonPredicateHints": none.to_string()}))
        .await;
    assert!(pruned.iter().all(|l| l.get("file").is_none()), "{pruned:?}");

    let pushed = pushes.pushed(0, 1);
    assert!(pushed.iter().any(|r| r["name"] == me.name.as_str()));
    let (n, named, person) = pushed_table(db, &me.name).await;
    assert!(n > 0 && named == n && person >= 1, "{n} {named} {person}");

    lines.iter().find_map(|l| l.get("file")).expect("a file")["url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// After the entry: no path lets the name out; each answers the rest or
/// refuses with the entry's rule.
async fn no_path_releases_the_item(
    p: &Paths,
    pushes: &Pushes,
    db: &mut PgConnection,
    rule: &str,
    division_rule: &str,
    old_url: &str,
) {
    let me = &p.person;
    let no_name = |what: &str, strings: &BTreeSet<String>| {
        assert!(!strings.contains("name"), "{what}: a name field");
        let leaked: Vec<_> = strings.intersection(&p.names).collect();
        assert!(leaked.is_empty(), "{what}: names left the hub: {leaked:?}");
    };

    // Lookup: the name is neither in the rows nor asked for in vain; the
    // other item still comes.
    let r = expect_json(
        p.lookup(Some(&["name", "gender"]), "EP-2-LOOKUP").await,
        200,
    )
    .await;
    assert_eq!(
        r["results"][0]["rows"][0],
        json!({"gender": me.gender}),
        "{r}"
    );
    assert_eq!(denied_rule(&r, "name"), Some(rule), "{r}");
    no_name("lookup", &strings_of(std::slice::from_ref(&r["results"])));
    // Asking for nothing in particular (every permitted item).
    let r = expect_json(p.lookup(None, "EP-2-LOOKUP-ALL").await, 200).await;
    assert_eq!(r["results"][0]["found"], true, "{r}");
    no_name(
        "lookup of all items",
        &strings_of(std::slice::from_ref(&r["results"])),
    );
    // Asking for the name alone: refused, naming the entry.
    let refused = problem(
        p.lookup(Some(&["name"]), "EP-2-LOOKUP-NAME").await,
        403,
        "denied",
    )
    .await;
    assert_eq!(refused["rule"], rule, "{refused}");

    // Verify: no match or mismatch is disclosed for the name — the right
    // name and a wrong one get the same answer.
    let wrong = p.names.iter().find(|n| **n != me.name).unwrap();
    let mut answers = Vec::new();
    for (name, case) in [(&me.name, "EP-2-VERIFY"), (wrong, "EP-2-VERIFY-WRONG")] {
        let r = expect_json(
            p.verify(json!({"name": name, "birth_date": me.birth_date}), case)
                .await,
            200,
        )
        .await;
        assert_eq!(r["matches"], json!({"birth_date": true}), "{r}");
        assert_eq!(denied_rule(&r, "name"), Some(rule), "{r}");
        answers.push((
            r["found"].clone(),
            r["matches"].clone(),
            r["denied"].clone(),
        ));
    }
    assert_eq!(
        answers[0], answers[1],
        "the claimed name makes no difference"
    );
    let refused = problem(
        p.verify(json!({"name": me.name}), "EP-2-VERIFY-NAME").await,
        403,
        "denied",
    )
    .await;
    assert_eq!(refused["rule"], rule, "{refused}");

    // Locate: the divisions come without their names.
    let r = expect_json(p.locate("EP-2-LOCATE").await, 200).await;
    let divisions = r["results"][0]["rows"].as_array().unwrap();
    assert_eq!(divisions.len(), 3, "still city, district, street: {r}");
    assert!(
        divisions
            .iter()
            .all(|d| d["code"].is_string() && d.get("name").is_none()),
        "{r}"
    );
    assert_eq!(denied_rule(&r, "name"), Some(division_rule), "{r}");
    let strings = strings_of(std::slice::from_ref(&r["results"]));
    assert!(strings.is_disjoint(&p.division_names), "{r}");

    // The NDJSON stream.
    let lines = ndjson(p.stream("name,gender", "EP-2-STREAM").await, 200).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["rows"][0],
        json!({"gender": me.gender}),
        "{lines:?}"
    );
    no_name("stream", &strings_of(&lines));
    let refused = problem(p.stream("name", "EP-2-STREAM-NAME").await, 403, "denied").await;
    assert_eq!(refused["rule"], rule, "{refused}");

    // Flight DoExchange.
    let batches = p
        .exchange(&["name", "gender"], "EP-2-FLIGHT")
        .await
        .unwrap();
    assert_eq!(columns(&batches), ["key", "found", "error", "gender"]);
    assert_eq!(
        texts(&batches[0], "gender"),
        std::slice::from_ref(&me.gender)
    );
    no_name("DoExchange", &values(&batches));
    let err = p.exchange(&["name"], "EP-2-FLIGHT-NAME").await.unwrap_err();
    assert_eq!(grpc_code(err), tonic::Code::PermissionDenied);

    // Flight DoGet and what ListFlights announces.
    let pulled = p.do_get().await;
    assert_eq!(
        columns(&pulled),
        ["citizen_id", "gender", "birth_date", "residence_street"]
    );
    assert!(rows(&pulled) > 0);
    no_name("DoGet", &values(&pulled));
    assert!(!p.listed_schema().await.contains(&"name".to_string()));

    // Delta Sharing: the URL made before the entry serves nothing now.
    let refused = problem(
        p.hub.client.get(old_url).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("changed"),
        "{refused}"
    );
    let meta = ndjson(
        p.hub
            .get(&format!("{RESIDENTS}/metadata"), XUHUI)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(!Paths::shared_schema(&meta).contains(&"name".to_string()));
    let lines = p.share_query(json!({})).await;
    assert!(!Paths::shared_schema(&lines).contains(&"name".to_string()));
    let files = p.download(&lines).await;
    assert!(!columns(&files).contains(&"name".to_string()));
    assert_eq!(rows(&files), rows(&pulled), "every row, without the name");
    no_name("Delta Sharing files", &values(&files));
    // Hints on the name decide nothing now (no statistics of it exist), so
    // the files chosen cannot tell anything about names.
    let ids = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter_map(|l| l.get("file"))
            .map(|f| f["id"].clone())
            .collect()
    };
    for value in ["", me.name.as_str()] {
        for op in ["lessThan", "equal"] {
            let hint = json!({"op": op, "children": [
                {"op": "column", "name": "name", "valueType": "string"},
                {"op": "literal", "value": value, "valueType": "string"}]});
            let hinted = p
                .share_query(json!({"jsonPredicateHints": hint.to_string()}))
                .await;
            assert_eq!(ids(&hinted), ids(&lines), "{op} {value:?}");
        }
    }

    // Every subscription's plan says so.
    for id in [pushes.hook_id, pushes.db_id] {
        let s = p.subscription(id).await;
        assert_eq!(denied_rule(&s["plan"], "name"), Some(rule), "{s}");
        assert!(
            s["plan"]["released"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["item"] != "name"),
            "{s}"
        );
    }

    // Push: a new version (same seed: the same rows and names) goes out
    // without the name.
    p.hub.publish_demo_versions(7).await;
    p.wait_for_cursor(pushes.hook_id, 2).await;
    p.wait_for_cursor(pushes.db_id, 2).await;
    let before = pushes.pushed(0, 1);
    let pushed = pushes.pushed(1, 2);
    assert_eq!(pushed.len(), before.len(), "every row, without the name");
    no_name("webhook push", &strings_of(&pushed));
    let (n, named, person) = pushed_table(db, &me.name).await;
    assert_eq!(
        (n, named, person),
        (before.len() as i64, 0, 0),
        "the pushed table has every row and no name"
    );

    // The change feed over both versions, and a query of v2.
    let changes = ndjson(
        p.hub
            .get(&format!("{RESIDENTS}/changes?startingVersion=1"), XUHUI)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(!Paths::shared_schema(&changes).contains(&"name".to_string()));
    let files = p.download(&changes).await;
    assert_eq!(rows(&files), 3 * before.len(), "v1 in, v1 out, v2 in");
    assert!(!columns(&files).contains(&"name".to_string()));
    no_name("the change feed", &values(&files));
    let lines = p.share_query(json!({"version": 2})).await;
    let files = p.download(&lines).await;
    assert_eq!(rows(&files), before.len());
    no_name("a query of v2", &values(&files));
}

/// The exchange and the stream opened before the entry: keys sent after it
/// must get answers without the name, or the hub must end them (a
/// refusal). Returns what leaked, path by path.
async fn what_leaves_what_was_opened_before(p: &Paths, mut held: Held) -> Vec<String> {
    let mut leaks = Vec::new();
    let keys = held.exchange_keys.take().unwrap();
    keys.send(p.key_batch()).await.unwrap();
    drop(keys);
    match (&mut held.exchange_answers).try_collect::<Vec<_>>().await {
        Ok(batches) => {
            let named = values(&batches);
            let named: Vec<_> = named.intersection(&p.names).collect();
            if batches.iter().any(|b| b.column_by_name("name").is_some()) || !named.is_empty() {
                leaks.push(format!(
                    "DoExchange: {}",
                    arrow::util::pretty::pretty_format_batches(&batches).unwrap()
                ));
            }
        }
        Err(e) => assert_eq!(grpc_code(e), tonic::Code::PermissionDenied),
    }

    let keys = held.stream_keys.take().unwrap();
    keys.send(Ok(p.key_chunk())).await.unwrap();
    drop(keys);
    let lines = held.stream_lines(usize::MAX).await;
    assert!(
        !lines.is_empty(),
        "the stream answers or says why it stopped"
    );
    let named: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("error").is_none() && l["rows"][0].get("name").is_some())
        .collect();
    let strings = strings_of(&lines);
    if !named.is_empty() || !strings.is_disjoint(&p.names) {
        leaks.push(format!(
            "NDJSON stream: {} of {} lines after the entry carry the name, e.g. {}",
            named.len(),
            lines.len(),
            named.first().map_or(Value::Null, |l| (*l).clone())
        ));
    }
    leaks
}

/// Every request and delivery after the entry is in the audit log with
/// the name denied, never released; the chain is intact.
fn every_request_is_audited_with_the_item_denied(
    p: &Paths,
    since: usize,
    rule: &str,
    division_rule: &str,
) {
    let records = p.hub.audit_records();
    let after = &records[since..];
    let denied = |r: &Value, rule: &str| {
        r["denied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == &format!("name:{rule}"))
    };
    for r in after {
        assert!(
            !r["items"].as_array().unwrap().iter().any(|i| i == "name"),
            "released the name: {r}"
        );
    }
    let one = |case: &str| -> &Value {
        let found: Vec<&Value> = after.iter().filter(|r| r["case"] == case).collect();
        assert_eq!(found.len(), 1, "{case}: {found:?}");
        found[0]
    };
    for (case, mode, outcome) in [
        ("EP-2-LOOKUP", "lookup", "released"),
        ("EP-2-LOOKUP-NAME", "lookup", "denied"),
        ("EP-2-VERIFY", "verify", "released"),
        ("EP-2-VERIFY-WRONG", "verify", "released"),
        ("EP-2-VERIFY-NAME", "verify", "denied"),
        ("EP-2-STREAM", "lookup", "released"),
        ("EP-2-STREAM-NAME", "lookup", "denied"),
        ("EP-2-FLIGHT", "lookup", "released"),
        ("EP-2-FLIGHT-NAME", "lookup", "denied"),
    ] {
        let r = one(case);
        assert_eq!(
            (
                r["resource"].as_str(),
                r["mode"].as_str(),
                r["outcome"].as_str()
            ),
            (Some(POPULATION), Some(mode), Some(outcome)),
            "{r}"
        );
        assert!(denied(r, rule), "{case}: the name denied: {r}");
        if outcome == "denied" {
            assert_eq!(r["rule"], rule, "{r}");
        }
    }
    let r = one("EP-2-LOOKUP-ALL");
    assert_eq!(r["outcome"], "released");
    let r = one("EP-2-LOCATE");
    assert_eq!(r["resource"], DIVISIONS);
    assert!(denied(r, division_rule), "{r}");

    // Deliveries: DoGet, the queries and the change feed of `residents`,
    // the pushes of v2.
    let delivered = |case: &str| -> Vec<&Value> {
        after
            .iter()
            .filter(|r| r["case"] == case && r["outcome"] == "released")
            .collect()
    };
    let pulls = delivered("sub:residents:v1");
    assert!(pulls.len() >= 6, "DoGet and five queries: {pulls:?}");
    for case in [
        "sub:residents:v2",
        "sub:residents-push:v2",
        "sub:residents-db:v2",
    ] {
        assert!(!delivered(case).is_empty(), "{case} audited");
    }
    for r in after
        .iter()
        .filter(|r| r["case"].as_str().is_some_and(|c| c.starts_with("sub:")))
    {
        assert_eq!(r["mode"], "subscribe", "{r}");
        assert!(denied(r, rule), "the name denied: {r}");
    }
    p.hub.assert_audit_chain_intact();
}
