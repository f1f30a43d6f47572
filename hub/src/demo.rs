//! `tongban demo`: one command from nothing to a running hub with the four
//! base libraries, demo tokens and copy-paste examples.

use crate::datagen::{self, directory, generate::Dataset};
use crate::server::{Server, shutdown_signal};
use crate::{Config, Error, Result};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tongban_catalog::{Role, SqlStore, Store, TokenRecord};
use tongban_core::auth::{hash_token, new_token};

/// The demo's tokens, as written to `DATA_DIR/demo-credentials.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub tokens: Vec<DemoToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoToken {
    pub label: String,
    pub department: String,
    pub role: Role,
    pub token: String,
}

impl Credentials {
    /// The token of the first identity with this label.
    pub fn token(&self, label: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|t| t.label == label)
            .map(|t| t.token.as_str())
    }
}

pub const CREDENTIALS_FILE: &str = "demo-credentials.json";

/// The demo identities: the data office, the acceptance front office, a
/// provider and a district.
const DEMO_IDENTITIES: &[(&str, &str, Role)] = &[
    ("data-office", directory::DATA_OFFICE, Role::DataOffice),
    ("acceptance", directory::ACCEPTANCE, Role::Department),
    ("public-security", "sh-gaj", Role::Department),
    ("xuhui-district", "xh-zwfw", Role::Department),
];

/// Reads the demo credentials, creating tokens the first time; makes sure the
/// store knows every token in the file.
pub async fn ensure_credentials(store: &dyn Store, data_dir: &Path) -> Result<Credentials> {
    let path = data_dir.join(CREDENTIALS_FILE);
    let creds = if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(Error::file(&path))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: {e}; delete it to make new tokens",
                path.display()
            ))
        })?
    } else {
        let creds = Credentials {
            tokens: DEMO_IDENTITIES
                .iter()
                .map(|(label, department, role)| DemoToken {
                    label: (*label).into(),
                    department: (*department).into(),
                    role: *role,
                    token: new_token(),
                })
                .collect(),
        };
        write_private(
            &path,
            &serde_json::to_string_pretty(&creds).expect("serialises"),
        )?;
        creds
    };
    let known: Vec<String> = store
        .list_tokens()
        .await?
        .into_iter()
        .map(|t| t.token_hash)
        .collect();
    for t in &creds.tokens {
        let token_hash = hash_token(&t.token);
        if !known.contains(&token_hash) {
            store
                .put_token(&TokenRecord {
                    token_hash,
                    department: t.department.clone(),
                    role: t.role,
                    label: format!("demo {}", t.label),
                })
                .await?;
        }
    }
    Ok(creds)
}

/// Writes a file only its owner can read: it holds secrets.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(Error::file(path))?;
    f.write_all(text.as_bytes()).map_err(Error::file(path))
}

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
            &args.data_dir,
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
    let server = Server::bind_with(&config, Arc::new(store)).await?;
    let url = format!("http://{}", server.local_addr());
    let flight = server.flight_addr().map(|a| format!("grpc://{a}"));
    print_banner(&url, flight.as_deref(), &args.data_dir, &creds);
    server.serve(shutdown_signal()).await
}

fn print_banner(url: &str, flight: Option<&str>, data_dir: &Path, creds: &Credentials) {
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
    println!();
    println!("Press Ctrl-C to stop.");
}
