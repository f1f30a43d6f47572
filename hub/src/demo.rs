//! `tongban demo`: one command from nothing to a running hub with the four
//! base libraries, demo tokens and copy-paste examples.

use crate::datagen::{self, directory, generate, generate::Dataset};
use crate::providers;
use crate::server::{Server, shutdown_signal};
use crate::{Config, Error, Result};
use arrow::array::{Array, Float64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tongban_catalog::{SqlStore, Store};
use tongban_datagen::credentials::{CREDENTIALS_FILE, Credentials, ensure_credentials};
use tongban_datasets::DatasetStore;
use tongban_lookup::index::Indexes;

/// Whether any base-library dataset has no version yet.
async fn needs_data(store: &dyn Store) -> Result<bool> {
    for dataset in Dataset::ALL {
        match store.get_resource(dataset.resource_code()).await {
            Ok(r) if r.latest_version.is_some() => {}
            Ok(_) | Err(tongban_catalog::Error::NotFound { .. }) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

pub struct DemoArgs {
    pub data_dir: PathBuf,
    pub listen: String,
    pub scale: f64,
    pub seed: u64,
    pub http_runtime: tongban_core::config::HttpRuntime,
}

pub async fn run(args: DemoArgs) -> Result<()> {
    datagen::check_scale(args.scale)?;
    let config = Config {
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
        secondary_keys: directory::secondary_keys(),
        // Flight listens on the next port (any free one when the API's is 0).
        flight_listen: args
            .listen
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|mut a| {
                if a.port() != 0 {
                    a.set_port(a.port().wrapping_add(1));
                }
                a.to_string()
            }),
        // The demo serves plain HTTP and gRPC (loopback by default); the
        // server warns about Flight in clear.
        flight_plaintext: true,
        http_runtime: args.http_runtime,
        ..Config::default()
    };
    config.validate()?;
    let store = SqlStore::open_dir(&args.data_dir).await?;
    if needs_data(&store).await? {
        eprintln!(
            "Generating the four base libraries (scale {}) in {} ...",
            args.scale,
            args.data_dir.display()
        );
        let report = datagen::run(
            &store,
            &DatasetStore::local(&args.data_dir)?,
            datagen::Options {
                scale: args.scale,
                seed: args.seed,
                progress: std::io::stderr().is_terminal(),
            },
        )
        .await?;
        eprintln!(
            "Generated {} rows ({:.1} MiB of Parquet) in {:.1} s.",
            report.rows,
            report.bytes as f64 / 1048576.0,
            report.elapsed.as_secs_f64()
        );
    } else {
        eprintln!(
            "Using the demo data already in {}.",
            args.data_dir.display()
        );
    }
    let creds = ensure_credentials(&store, &args.data_dir).await?;
    let datasets = DatasetStore::local(&args.data_dir)?;
    let samples = Samples::read(&store, &datasets).await?;
    // The department systems behind the interface-shared services: real
    // servers on their own ports (any free ones when the API's is 0).
    let registry = Arc::new(providers::Registry::load(&store, &datasets, args.seed).await?);
    let api_port = config.listen_addr()?.port();
    let ports = if api_port == 0 {
        [0; 3]
    } else {
        PROVIDER_PORTS
    };
    let running = providers::start(registry, "127.0.0.1", ports).await?;
    register_services(&store, &running).await?;
    let server = Server::bind_with(&config, Arc::new(store)).await?;
    let url = format!("http://{}", server.local_addr());
    let flight = server.flight_addr().map(|a| format!("grpc://{a}"));
    // The banner's lookups work as printed: it waits for their indexes.
    let indexes = server.indexes();
    let served = tokio::spawn(server.serve(shutdown_signal()));
    eprintln!("Loading the lookup indexes ...");
    let deadline = Instant::now() + INDEX_WAIT;
    let ready = loop {
        if samples.loaded(&indexes) {
            break true;
        }
        if served.is_finished() || Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if !served.is_finished() {
        print_banner(
            &url,
            flight.as_deref(),
            &args.data_dir,
            &creds,
            &samples,
            ready,
        );
        print_calls(&url, &creds, &samples, &running);
        println!();
        println!("Press Ctrl-C to stop.");
    }
    match served.await {
        Ok(result) => Ok(result?),
        Err(e) => Err(Error::Task(e)),
    }
}

/// Where the demo's department systems listen (when the API has a fixed port).
pub const PROVIDER_PORTS: [u16; 3] = [7301, 7302, 7303];

/// Registers the three demo services at the providers' addresses (again on
/// every start: the ports may have changed) and, once, the acceptance
/// office's approved needs of mode `call` for them.
async fn register_services(store: &dyn Store, running: &[providers::Running]) -> Result<()> {
    use tongban_catalog::Role;
    use tongban_catalog::lists::{Actor, NeedQuery, ReviewAction};
    use tongban_datagen::services;
    for d in directory::departments() {
        if let Err(tongban_catalog::Error::NotFound { .. }) = store.get_department(&d.code).await {
            store.create_department(&d).await?;
        }
    }
    let urls: Vec<String> = running
        .iter()
        .map(|r| format!("http://{}", r.addr))
        .collect();
    for reg in services::registrations([&urls[0], &urls[1], &urls[2]]) {
        store.register_service(&reg).await?;
    }
    let existing = store.list_needs(&NeedQuery::default()).await?;
    for (consumer, application) in services::needs() {
        if existing.iter().any(|n| {
            n.consumer == consumer
                && n.resource == application.resource
                && n.mode == application.mode
        }) {
            continue;
        }
        let need = store.apply_need(consumer, &application).await?;
        let provider = store.get_resource(&need.resource).await?.spec.provider;
        if need.status == tongban_policies::NeedStatus::PendingProvider {
            let actor = Actor {
                department: &provider,
                role: Role::Department,
            };
            store
                .review_need(need.id, actor, ReviewAction::Approve, "同意通过接口核验")
                .await?;
        }
        let office = Actor {
            department: directory::DATA_OFFICE,
            role: Role::DataOffice,
        };
        store
            .review_need(need.id, office, ReviewAction::Approve, "")
            .await?;
    }
    Ok(())
}

/// The banner's interface calls, on real keys, as the acceptance office.
fn print_calls(url: &str, creds: &Credentials, samples: &Samples, running: &[providers::Running]) {
    use tongban_datagen::services::*;
    let token = creds.token("acceptance").unwrap_or_default();
    println!();
    println!(
        "Department systems behind the hub (接口共享), called through it with policy and audit:"
    );
    for r in running {
        println!(
            "  {:<22} http://{}  ({}; its OpenAPI at /openapi.json)",
            r.name, r.addr, r.department
        );
    }
    if let Some([id, _, _]) = samples.citizens.first() {
        println!("  # 人社局: is this applicant's social insurance paid up? (居住证积分)");
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/call/{SOCIAL_INSURANCE}/contribution-status"),
                &[
                    ("matter", json!(MATTER_RESIDENCE_POINTS)),
                    ("case", json!("JZZJF-2026-000001")),
                    ("subject", json!(id)),
                    ("params", json!({"citizen_id": id})),
                ],
            )
        );
        println!("  # 公积金中心: deposit status for a housing loan (account number masked)");
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/call/{HOUSING_FUND}/deposit-status"),
                &[
                    ("matter", json!(MATTER_HOUSING_LOAN)),
                    ("case", json!("GJJDK-2026-000001")),
                    ("params", json!({"citizen_id": id})),
                ],
            )
        );
    }
    if let Some(code) = &samples.entity {
        println!("  # 税务局: has this company cleared its taxes? (企业注销)");
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/call/{TAX_CLEARANCE}/tax-clearance"),
                &[
                    ("matter", json!(MATTER_DEREGISTRATION)),
                    ("case", json!("QYZX-2026-000001")),
                    ("params", json!({"credit_code": code})),
                ],
            )
        );
    }
    println!("  # Health of the three services (breaker, latency, last failure):");
    println!("  curl -s -H 'Authorization: Bearer {token}' '{url}/v1/services/health'");
}

/// How long the demo waits for its lookup indexes before it prints the
/// banner anyway (a large `--scale` on a debug build).
const INDEX_WAIT: Duration = Duration::from_secs(120);

/// Real keys of the generated data for the banner's lookups, read back from
/// the first rows of each dataset's newest version, so that they are those
/// of whatever seed and scale made the data.
#[derive(Debug, Default)]
struct Samples {
    /// Citizens of status 正常: citizen ID, name, birth date.
    citizens: Vec<[String; 3]>,
    /// An active legal entity's credit code.
    entity: Option<String>,
    /// A food licence in force at [`generate::REFERENCE_DATE`]: number, holder.
    licence: Option<[String; 2]>,
    /// A standard address and its point.
    address: Option<(String, f64, f64)>,
    /// The resource versions they come from: the indexes to wait for.
    versions: Vec<(&'static str, i64)>,
}

/// Citizens in the banner's stream example.
const STREAM_KEYS: usize = 3;

impl Samples {
    async fn read(store: &dyn Store, datasets: &DatasetStore) -> Result<Samples> {
        use futures::StreamExt;
        let mut samples = Samples::default();
        for dataset in Dataset::ALL {
            let code = dataset.resource_code();
            let Some(version) = store.get_resource(code).await?.latest_version else {
                continue;
            };
            samples.versions.push((code, version.version));
            let Some(batch) = datasets
                .stream_version(&version.location)
                .await?
                .next()
                .await
                .transpose()?
            else {
                continue;
            };
            let mut rows = 0..batch.num_rows();
            match dataset {
                Dataset::Divisions => {}
                Dataset::Population => {
                    let [id, name, birth, status] =
                        texts(&batch, ["citizen_id", "name", "birth_date", "status"])?;
                    samples.citizens = rows
                        .filter(|&i| status[i] == "正常")
                        .take(STREAM_KEYS)
                        .map(|i| [id[i].clone(), name[i].clone(), birth[i].clone()])
                        .collect();
                }
                Dataset::LegalEntities => {
                    let [code, status] = texts(&batch, ["credit_code", "status"])?;
                    samples.entity = rows
                        .find(|&i| matches!(status[i].as_str(), "存续" | "在业"))
                        .map(|i| code[i].clone());
                }
                Dataset::Licences => {
                    let [no, kind, holder, from, to, status] = texts(
                        &batch,
                        [
                            "licence_no",
                            "licence_type",
                            "holder_id",
                            "valid_from",
                            "valid_to",
                            "status",
                        ],
                    )?;
                    let at = reference_date();
                    samples.licence = rows
                        .find(|&i| {
                            kind[i] == "食品经营许可证"
                                && status[i] == "valid"
                                && from[i] <= at
                                && (to[i].is_empty() || at < to[i])
                        })
                        .map(|i| [no[i].clone(), holder[i].clone()]);
                }
                Dataset::Addresses => {
                    let [address] = texts(&batch, ["address"])?;
                    let point = |item: &str| -> Result<Float64Array> {
                        let col = batch.column_by_name(item).ok_or_else(|| missing(item))?;
                        Ok(cast(col, &DataType::Float64)?
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .expect("cast to Float64")
                            .clone())
                    };
                    let (lon, lat) = (point("lon")?, point("lat")?);
                    samples.address = (!address.is_empty())
                        .then(|| (address[0].clone(), lon.value(0), lat.value(0)));
                }
            }
        }
        Ok(samples)
    }

    /// Whether the hub has loaded the versions the samples come from.
    fn loaded(&self, indexes: &Indexes) -> bool {
        self.versions.iter().all(|(code, version)| {
            indexes
                .get(code)
                .is_some_and(|index| index.version >= *version)
        })
    }
}

/// [`generate::REFERENCE_DATE`] as `YYYY-MM-DD`: the day the demo
/// licences' statuses hold.
fn reference_date() -> String {
    let (y, m, d) = generate::REFERENCE_DATE;
    format!("{y:04}-{m:02}-{d:02}")
}

fn missing(item: &str) -> Error {
    Error::DemoData(format!("no column '{item}'"))
}

/// Columns of a batch as text (dates as `YYYY-MM-DD`, nulls empty).
fn texts<const N: usize>(batch: &RecordBatch, items: [&str; N]) -> Result<[Vec<String>; N]> {
    let mut out = Vec::with_capacity(N);
    for item in items {
        let col = batch.column_by_name(item).ok_or_else(|| missing(item))?;
        let col = cast(col, &DataType::Utf8)?;
        let col = col
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        out.push(
            (0..col.len())
                .map(|i| {
                    if col.is_null(i) {
                        String::new()
                    } else {
                        col.value(i).to_string()
                    }
                })
                .collect(),
        );
    }
    Ok(out.try_into().expect("one column per item"))
}

/// A word for a POSIX shell: single-quoted, any `'` spliced in as `'\''`.
fn sh(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// A copy-paste-ready `curl` that POSTs a JSON object with these fields, in
/// this order.
fn curl_json(token: &str, url: &str, fields: &[(&str, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{value}", json!(name)))
        .collect();
    format!(
        "  curl -s -H {} -H 'Content-Type: application/json' \\\n       {} \\\n       -d {}",
        sh(&format!("Authorization: Bearer {token}")),
        sh(url),
        sh(&format!("{{{}}}", body.join(",")))
    )
}

fn print_banner(
    url: &str,
    flight: Option<&str>,
    data_dir: &Path,
    creds: &Credentials,
    samples: &Samples,
    ready: bool,
) {
    let office = creds.token("data-office").unwrap_or_default();
    let acceptance = creds.token("acceptance").unwrap_or_default();
    println!();
    println!("Tongban demo hub is running.");
    println!();
    println!("  console      {url}/console  (sign in with a token below)");
    println!("  directory    {url}/v1/catalog/resources");
    println!("  departments  {url}/v1/catalog/departments");
    println!("  openapi      {url}/openapi.json");
    println!("  health       {url}/health");
    println!(
        "  delta share  {url}/delta-sharing  (subscriptions; profile: POST {url}/v1/sharing/profile)"
    );
    if let Some(flight) = flight {
        println!("  flight       {flight}  (DoExchange lookups, DoGet subscriptions)");
    }
    println!(
        "  credentials  {}",
        data_dir.join(CREDENTIALS_FILE).display()
    );
    println!();
    println!("Demo tokens (send as 'Authorization: Bearer <token>'):");
    for t in &creds.tokens {
        println!(
            "  {:<16} {:<10} {:<12} {}",
            t.label, t.department, t.role, t.token
        );
    }
    println!();
    println!("Try:");
    println!(
        "  curl -s -H 'Authorization: Bearer {acceptance}' '{url}/v1/catalog/resources?base_library=population'"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {acceptance}' '{url}/v1/catalog/resources/101/000001'"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {acceptance}' '{url}/v1/catalog/resources?q=证照'"
    );
    println!("  curl -s -H 'Authorization: Bearer {acceptance}' '{url}/v1/lists/needs'");
    println!(
        "  curl -s -H 'Authorization: Bearer {acceptance}' -H 'Content-Type: application/json' \\\n       \
         -X POST '{url}/v1/policy/explain' \\\n       \
         -d '{{\"resource\":\"101/000001\",\"items\":[\"citizen_id\",\"name\",\"religion\"],\"matter\":\"310000-JZZ-001\",\"mode\":\"verify\"}}'"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {office}' -H 'Content-Type: application/json' \\\n       \
         -X POST '{url}/v1/catalog/departments' \\\n       \
         -d '{{\"code\":\"jd-zwfw\",\"name\":\"嘉定区政务服务中心\",\"level\":\"district\",\"parent\":\"sh-zwfw\",\"division_code\":\"310114\"}}'"
    );
    let district = creds.token("xuhui-district").unwrap_or_default();
    println!("  curl -s -H 'Authorization: Bearer {district}' '{url}/v1/subscriptions'");
    println!(
        "  curl -s -H 'Authorization: Bearer {district}' -X POST '{url}/v1/sharing/profile' > xuhui.share"
    );
    println!(
        "  python -c \"import delta_sharing as d; print(d.load_as_pandas('xuhui.share#population.sh-gaj.residents', limit=5))\""
    );
    print_lookups(url, acceptance, samples, ready);
    if let (Some([id, ..]), Some(portal)) = (samples.citizens.first(), creds.token("portal")) {
        println!();
        println!(
            "一网通办: who used this citizen's data (数据使用记录; the portal acts for its logged-in user):"
        );
        println!(
            "  curl -s -H {} -H {} {}",
            sh(&format!("Authorization: Bearer {portal}")),
            sh(&format!("X-Tongban-UserId: {id}")),
            sh(&format!("{url}/v1/uses?subject={id}"))
        );
    }
}

/// The acceptance office's lookups, on real keys of the generated data.
fn print_lookups(url: &str, token: &str, samples: &Samples, ready: bool) {
    println!();
    println!("Look up, verify and locate as the acceptance office (keys from the generated data):");
    if !ready {
        println!(
            "  (the lookup indexes are still loading: until they are in, these answer 503 index_loading)"
        );
    }
    if let Some([id, name, birth]) = samples.citizens.first() {
        println!("  # A citizen's permitted items (居住证申领):");
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/lookup/101/000001"),
                &[
                    ("keys", json!([id])),
                    (
                        "items",
                        json!(["name", "gender", "residence_street", "status"])
                    ),
                    ("matter", json!("310000-JZZ-001")),
                    ("case", json!("JZZ-2026-000001"))
                ],
            )
        );
        println!(
            "  # Do this name and birth date belong to this citizen ID? (nothing is disclosed)"
        );
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/verify/101/000001"),
                &[
                    ("key", json!(id)),
                    ("claims", json!({"name": name, "birth_date": birth})),
                    ("matter", json!("310000-JZZ-001")),
                    ("case", json!("JZZ-2026-000002"))
                ],
            )
        );
    }
    if let Some((address, lon, lat)) = &samples.address {
        println!("  # Which district and street is this point in?");
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/locate/103/000001"),
                &[
                    ("lon", json!(lon)),
                    ("lat", json!(lat)),
                    ("items", json!(["code", "name", "level"])),
                    ("matter", json!("310000-JZZ-001")),
                    ("case", json!("JZZ-2026-000003"))
                ],
            )
        );
        println!("  # Where is this address?");
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/lookup/103/000002"),
                &[
                    ("by", json!("address")),
                    ("keys", json!([address])),
                    (
                        "items",
                        json!(["district_code", "street_code", "lon", "lat"])
                    ),
                    ("matter", json!("310000-JZZ-001")),
                    ("case", json!("JZZ-2026-000004"))
                ],
            )
        );
    }
    if let Some(code) = &samples.entity {
        println!("  # Is this company registered, and who represents it? (营业执照变更)");
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/lookup/102/000001"),
                &[
                    ("keys", json!([code])),
                    ("items", json!(["name", "status", "legal_rep"])),
                    ("matter", json!("310000-YYZZ-002")),
                    ("case", json!("YYZZ-2026-000001"))
                ],
            )
        );
    }
    if let Some([no, holder]) = &samples.licence {
        let at = reference_date();
        println!(
            "  # Is this food licence in force on {at}, and held by this holder? (食品经营许可延续)"
        );
        println!(
            "{}",
            curl_json(
                token,
                &format!("{url}/v1/verify/104/000001"),
                &[
                    ("key", json!(no)),
                    ("claims", json!({"holder_id": holder})),
                    ("valid_at", json!(at)),
                    ("matter", json!("310000-SPJY-003")),
                    ("case", json!("SPJY-2026-000001"))
                ],
            )
        );
    }
    if !samples.citizens.is_empty() {
        let keys: Vec<String> = samples.citizens.iter().map(|c| sh(&c[0])).collect();
        println!("  # Bulk: NDJSON in (a key a line), NDJSON out, in order:");
        println!(
            "  printf '%s\\n' {} | \\\n       curl -s -H {} -H 'Content-Type: application/x-ndjson' --data-binary @- \\\n       {}",
            keys.join(" "),
            sh(&format!("Authorization: Bearer {token}")),
            sh(&format!(
                "{url}/v1/lookup/101/000001/stream?matter=310000-JZZ-001&case=JZZ-2026-000005&items=name,gender"
            ))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the banner prints pastes into a shell as one word each.
    #[test]
    fn shell_words_survive_quotes() {
        assert_eq!(sh("上海市 1号"), "'上海市 1号'");
        let word = sh("it's $HOME");
        assert_eq!(word, r"'it'\''s $HOME'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "it's $HOME");
    }
}
