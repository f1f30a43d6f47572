//! The console: the data office's and the departments' pages, served by the
//! hub itself under `/console`, server-rendered (askama templates in
//! `hub/console/templates/`) with no script and no asset from outside the binary,
//! so it works on a network without internet access.
//!
//! # Layout
//! - this file: routes, sessions (a signed cookie naming the token's hash,
//!   so revoking the token ends the session), CSRF tokens, the page frame;
//! - [`i18n`]: labels in Simplified Chinese (default) and English;
//! - [`directory`]: search, filters, resource detail, create and edit;
//! - [`needs`]: apply, the review queue with deadlines, approve / reject /
//!   revoke;
//! - [`lists`]: the negative and responsibility lists (view, add, remove,
//!   import, export) and compliance;
//! - [`stats`]: exchange statistics from the audit log, with SVG charts
//!   ([`charts`]), and sync runs;
//! - [`audit`]: who looked a key up (trace);
//! - [`uses`]: a subject's data-use record, as the portal shows it;
//! - [`objections`]: objections to records, their deadlines, the provider's answers;
//! - [`subscriptions`]: a department's subscriptions and their delivery;
//! - [`services`]: interface sharing: services, their health, registration,
//!   OpenAPI import and switches;
//! - [`names`]: the names of the codes pages list (departments, resources,
//!   data items), read once per page.
//!
//! Every form goes through the same [`tongban_catalog::Store`] methods as the
//! API, so the same rules give the same messages, and a refused form changes
//! nothing and comes back with what was typed. The console is a router of
//! its own over [`ConsoleApp`] (the hub and [`ConsoleState`]); the server
//! mounts it and imports nothing back.
//!
//! Crate ladder (docs/architecture.md): depends on `tongban-core`,
//! `tongban-delivery` (subscription plans) and the crates below them.

// A refused form is answered with its page (an axum `Response`, ~130
// bytes) returned by value: built once per refused request, never in a loop.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod charts;
pub mod directory;
pub mod i18n;
pub mod lists;
pub mod names;
pub mod needs;
pub mod objections;
pub mod services;
pub mod stats;
pub mod subscriptions;
pub mod uses;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use i18n::{Lang, T};
use serde::{Deserialize, Serialize};
use tongban_catalog::Role;
use tongban_core::auth::Identity;

const SESSION_COOKIE: &str = "tongban_session";
const LANG_COOKIE: &str = "tongban_lang";
/// How long a console session lasts, in seconds (a working day).
const SESSION_SECONDS: i64 = 10 * 3600;

/// What console handlers reach: the hub (its fields through `Deref`) and
/// the console's own state (`state.console`). One `Arc`, cheap to clone.
#[derive(Clone)]
pub struct ConsoleApp(std::sync::Arc<Shared>);

/// The parts of a [`ConsoleApp`].
pub struct Shared {
    pub hub: tongban_core::Hub,
    pub console: ConsoleState,
    /// Provider APIs (interface sharing): their health and switches.
    pub services: tongban_services::Services,
}

impl std::ops::Deref for ConsoleApp {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::ops::Deref for Shared {
    type Target = tongban_core::Hub;
    fn deref(&self) -> &tongban_core::Hub {
        &self.hub
    }
}

impl ConsoleApp {
    pub fn new(
        hub: tongban_core::Hub,
        console: ConsoleState,
        services: tongban_services::Services,
    ) -> ConsoleApp {
        ConsoleApp(std::sync::Arc::new(Shared {
            hub,
            console,
            services,
        }))
    }
}

use ConsoleApp as AppState;

/// What the console keeps beside the hub.
#[derive(Clone)]
pub struct ConsoleState {
    /// Where the audit log is (statistics and traces read it).
    pub audit_dir: std::path::PathBuf,
    pub stats: stats::AuditStats,
    /// Signs session cookies (a key of their own, derived from the hub's).
    pub sessions: tongban_core::sign::Signer,
}

impl ConsoleState {
    pub fn new(data_dir: &std::path::Path, secret: &[u8]) -> ConsoleState {
        let audit_dir = data_dir.join("audit");
        ConsoleState {
            stats: stats::AuditStats::new(audit_dir.clone()),
            audit_dir,
            sessions: tongban_core::sign::Signer::new(secret, b"tongban console sessions v1"),
        }
    }
}

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/directory") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/directory") }),
        )
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang/{lang}", get(switch_lang))
        .route("/console/assets/console.css", get(css))
        .route("/console/directory", get(directory::list))
        .route(
            "/console/directory/new",
            get(directory::new_form).post(directory::create),
        )
        .route("/console/directory/{class}/{seq}", get(directory::detail))
        .route(
            "/console/directory/{class}/{seq}/edit",
            get(directory::edit_form).post(directory::update),
        )
        .route("/console/needs", get(needs::list))
        .route(
            "/console/needs/new",
            get(needs::new_form).post(needs::apply),
        )
        .route("/console/needs/{id}", get(needs::detail))
        .route("/console/needs/{id}/{action}", post(needs::review))
        .route(
            "/console/lists/negative",
            get(lists::negative).post(lists::add_negative),
        )
        .route(
            "/console/lists/responsibilities",
            get(lists::responsibilities).post(lists::add_responsibility),
        )
        .route("/console/lists/{list}/{id}/delete", post(lists::delete))
        .route("/console/lists/{list}/export", get(lists::export))
        .route("/console/lists/{list}/import", post(lists::import))
        .route("/console/compliance", get(lists::compliance))
        .route("/console/stats", get(stats::page))
        .route("/console/audit", get(audit::page))
        .route("/console/uses", get(uses::page))
        .route("/console/objections", get(objections::list))
        .route("/console/objections/{id}", get(objections::detail))
        .route(
            "/console/objections/{id}/{action}",
            post(objections::answer),
        )
        .route("/console/subscriptions", get(subscriptions::page))
        .route(
            "/console/services",
            get(services::page).post(services::register),
        )
        .route("/console/services/import", post(services::import))
        .route(
            "/console/services/{class}/{seq}/switch",
            post(services::switch),
        )
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

// ---- sessions ------------------------------------------------------------------

/// What the session cookie holds: whose token (by hash) and until when.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The token's SHA-256 (hex), or `cert:<fingerprint>`.
    h: String,
    /// Expiry, Unix seconds.
    e: i64,
}

impl tongban_core::sign::Expiring for Claims {
    fn expires_ms(&self) -> i64 {
        self.e * 1000
    }
}

fn session_cookie(state: &AppState, token_hash: &str) -> String {
    state.console.sessions.sign(&Claims {
        h: token_hash.to_string(),
        e: chrono::Utc::now().timestamp() + SESSION_SECONDS,
    })
}

fn claims_of(state: &AppState, cookie: &str) -> Option<Claims> {
    state
        .console
        .sessions
        .verify(cookie, chrono::Utc::now().timestamp_millis())
        .ok()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language of a request: its cookie, else Chinese.
fn lang_of(headers: &HeaderMap) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    }
}

/// A signed-in console user.
pub struct Session {
    pub who: Identity,
    pub t: T,
    /// Goes in every form; a POST without it is refused (cross-site requests).
    pub csrf: String,
}

impl Session {
    pub fn is_office(&self) -> bool {
        self.who.role == Role::DataOffice
    }

    /// The page frame's data for `active` (the navigation entry to mark).
    pub fn frame(&self, active: &'static str, title: &str) -> Frame {
        Frame {
            t: self.t,
            department: self.who.department.clone(),
            office: self.is_office(),
            csrf: self.csrf.clone(),
            active,
            title: title.to_string(),
        }
    }

    /// Refuses a form posted without this session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        if sent == self.csrf {
            Ok(())
        } else {
            Err(self.error(StatusCode::FORBIDDEN, self.t.t("error.csrf")))
        }
    }

    /// An error page in the frame.
    pub fn error(&self, status: StatusCode, message: &str) -> Response {
        let page = ErrorPage {
            f: self.frame("", self.t.t("error.title")),
            status: status.as_u16(),
            message: message.to_string(),
        };
        (status, render(&page)).into_response()
    }

    /// The data office only; others get a 403 page.
    pub fn require_office(&self) -> Result<(), Response> {
        if self.is_office() {
            Ok(())
        } else {
            Err(self.error(StatusCode::FORBIDDEN, self.t.t("error.office_only")))
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let t = T(lang_of(&parts.headers));
        let from_cookie = cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|c| claims_of(state, c))
            .and_then(|c| {
                let who = match c.h.strip_prefix("cert:") {
                    Some(fp) => state.identities.resolve_certificate(fp),
                    None => state.identities.resolve_hash(&c.h),
                }?;
                Some((who, c.h))
            });
        // A registered client certificate signs in by itself (mTLS).
        let from_cert = || {
            let Some(tongban_core::tls::PeerCertificate(Some(fp))) = parts.extensions.get() else {
                return None;
            };
            let who = state.identities.resolve_certificate(fp)?;
            Some((who, tongban_core::auth::certificate_key(fp)))
        };
        match from_cookie.or_else(from_cert) {
            Some((who, h)) => Ok(Session {
                who,
                t,
                csrf: state.console.sessions.mac(&format!("csrf:{h}")),
            }),
            None => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map_or("/console", |p| p.as_str());
                Err(
                    Redirect::to(&format!("/console/login?next={}", urlencode(back)))
                        .into_response(),
                )
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What every page's frame shows.
pub struct Frame {
    pub t: T,
    pub department: String,
    pub office: bool,
    pub csrf: String,
    /// The navigation entry of this page.
    pub active: &'static str,
    pub title: String,
}

impl Frame {
    /// Navigation entries this user sees: (key, href, label key).
    pub fn nav(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        let mut nav = vec![
            ("directory", "/console/directory", "nav.directory"),
            ("needs", "/console/needs", "nav.needs"),
            (
                "subscriptions",
                "/console/subscriptions",
                "nav.subscriptions",
            ),
            ("services", "/console/services", "nav.services"),
            ("negative", "/console/lists/negative", "nav.negative"),
            (
                "responsibilities",
                "/console/lists/responsibilities",
                "nav.responsibilities",
            ),
            ("compliance", "/console/compliance", "nav.compliance"),
            ("objections", "/console/objections", "nav.objections"),
            ("stats", "/console/stats", "nav.stats"),
        ];
        if self.office {
            nav.push(("audit", "/console/audit", "nav.audit"));
            nav.push(("uses", "/console/uses", "nav.uses"));
        }
        nav
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    f: Frame,
    status: u16,
    message: String,
}

/// Headers of every page: no script may run, nothing may frame it, and no
/// page is cached (they hold personal data).
fn protect(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Renders a page; a template error (a bug) is a plain 500 page.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => protect(Html(html).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<h1>500</h1><p>the page failed to render; see the hub's log</p>".to_string()),
            )
                .into_response()
        }
    }
}

/// The message of a catalog error, as the API's problem `detail` gives it.
pub fn message(e: &tongban_catalog::Error) -> String {
    tongban_core::codes::of_catalog(e).1
}

// ---- login, logout, language -----------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: T,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only paths inside the console are followed after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") => n.to_string(),
        _ => "/console/directory".to_string(),
    }
}

async fn login_page(
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<Next>,
) -> Response {
    render(&LoginPage {
        t: T(lang_of(&headers)),
        next: safe_next(q.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    tls: Option<axum::Extension<tongban_core::tls::PeerCertificate>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    // Over HTTPS the cookie never goes out in the clear.
    let secure = if tls.is_some() { "; Secure" } else { "" };
    let t = T(lang_of(&headers));
    let token = form.token.trim();
    match state.identities.resolve(token) {
        Some(who) => {
            tracing::info!(department = %who.department, "console sign-in");
            let value = session_cookie(&state, &tongban_core::auth::hash_token(token));
            let mut r = Redirect::to(&safe_next(form.next.as_deref())).into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&format!(
                    "{SESSION_COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
                ))
                .expect("a cookie header"),
            );
            r
        }
        None => (
            StatusCode::UNAUTHORIZED,
            render(&LoginPage {
                t,
                next: safe_next(form.next.as_deref()),
                error: Some(t.t("login.unknown").to_string()),
            }),
        )
            .into_response(),
    }
}

async fn logout() -> Response {
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "tongban_session=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

/// Switches the language and goes back to the page it was asked from.
async fn switch_lang(
    axum::extract::Path(lang): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let lang = if lang == "en" { "en" } else { "zh" };
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.find("/console").map(|i| r[i..].to_string()));
    let mut r = Redirect::to(&safe_next(back.as_deref())).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={lang}; Path=/console; SameSite=Lax; Max-Age=31536000"
        ))
        .expect("a cookie header"),
    );
    r
}

/// A UTC time, however many references templates wrap it in.
pub trait Time {
    fn utc(&self) -> chrono::DateTime<chrono::Utc>;
}

impl Time for chrono::DateTime<chrono::Utc> {
    fn utc(&self) -> chrono::DateTime<chrono::Utc> {
        *self
    }
}

impl<T: Time + ?Sized> Time for &T {
    fn utc(&self) -> chrono::DateTime<chrono::Utc> {
        (**self).utc()
    }
}

/// `YYYY-MM-DD HH:MM` in China time, as people read times here.
pub fn local_time(t: impl Time) -> String {
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    t.utc()
        .with_timezone(&cst)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The words of the directory's choices, for form selects.
pub const CATEGORIES: &[&str] = &["base", "theme", "department"];
pub const LIBRARIES: &[&str] = &["population", "legal_entity", "geospatial", "e_licence"];
pub const SHARE_TYPES: &[&str] = &["unconditional", "conditional", "none"];
pub const SENSITIVITIES: &[&str] = &["public", "internal", "sensitive", "highly_sensitive"];
pub const FORMATS: &[&str] = &[
    "database",
    "spreadsheet",
    "document",
    "image",
    "stream",
    "self_describing",
];
pub const CYCLES: &[&str] = &[
    "realtime",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "yearly",
    "irregular",
];
pub const STATUSES: &[&str] = &["draft", "published", "retired"];
pub const MODES: &[&str] = &["lookup", "verify", "batch", "subscribe"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/console/needs?status=approved")),
            "/console/needs?status=approved"
        );
        assert_eq!(
            safe_next(Some("https://evil.example")),
            "/console/directory"
        );
        assert_eq!(
            safe_next(Some("//evil.example/console")),
            "/console/directory"
        );
        assert_eq!(safe_next(None), "/console/directory");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tongban_lang=en; b=2"),
        );
        assert_eq!(cookie(&h, "tongban_lang"), Some("en"));
        assert_eq!(lang_of(&h), Lang::En);
        assert_eq!(cookie(&h, "c"), None);
    }
}
