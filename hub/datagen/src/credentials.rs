//! The demo's identities and their tokens: made once, kept in
//! `DATA_DIR/demo-credentials.json` (readable by its owner only) and stored
//! hashed in the catalog, so a second `tongban demo` reuses them.

use crate::{Error, Result, directory};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tongban_catalog::{Role, Store, TokenRecord};
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
    ("portal", directory::PORTAL, Role::Portal),
];

/// Reads the demo credentials, creating tokens the first time; makes sure the
/// store knows every token in the file.
pub async fn ensure_credentials(store: &dyn Store, data_dir: &Path) -> Result<Credentials> {
    let path = data_dir.join(CREDENTIALS_FILE);
    let mut creds = if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(Error::file(&path))?;
        serde_json::from_str(&text).map_err(|e| Error::Unreadable {
            path: path.clone(),
            message: e.to_string(),
        })?
    } else {
        Credentials { tokens: Vec::new() }
    };
    // Identities a newer release added get their tokens too.
    let before = creds.tokens.len();
    for (label, department, role) in DEMO_IDENTITIES {
        if creds.token(label).is_none() {
            creds.tokens.push(DemoToken {
                label: (*label).into(),
                department: (*department).into(),
                role: *role,
                token: new_token(),
            });
        }
    }
    if creds.tokens.len() != before {
        if path.exists() {
            std::fs::remove_file(&path).map_err(Error::file(&path))?;
        }
        write_private(
            &path,
            &serde_json::to_string_pretty(&creds).expect("serialises"),
        )?;
    }
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
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(Error::file(path))?;
    f.write_all(text.as_bytes()).map_err(Error::file(path))
}
