//! The demo's department systems (`tongban demo-providers`, and started by
//! `tongban demo`): three real HTTP servers on their own ports that the hub
//! reaches over HTTP like any department's API, never in-process.
//!
//! - 人社局 social insurance: `GET /api/v1/insurance/contributions/{citizen_id}`;
//! - 税务局 tax clearance: `POST /api/tax/clearance` `{"credit_code": …}`;
//! - 公积金中心 housing fund: `GET /gjj/v1/deposit?citizen_id=…` (fields under `/data`).
//!
//! Each also serves `GET /openapi.json` (its OpenAPI 3 document, which
//! `tongban service import-openapi` reads) and `GET /health`. Their people and
//! companies are those of the base libraries (read from the newest
//! population and legal-entity versions), so a key the hub can look up is a
//! key the department knows; what the department adds (contribution months,
//! tax arrears, deposit status) is derived from the key and the seed, the same
//! on every run. An unknown key answers 404, as a department's system would.

use crate::datagen::generate::Dataset;
use crate::{Error, Result};
use arrow::array::{Array, StringArray};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tongban_catalog::Store;
use tongban_datasets::DatasetStore;

/// The people and companies the departments know.
pub struct Registry {
    seed: u64,
    /// citizen ID → name
    citizens: HashMap<String, String>,
    /// credit code → name
    entities: HashMap<String, String>,
    /// Credit codes by position: employers are picked from them.
    entity_codes: Vec<String>,
}

impl Registry {
    /// Reads the citizens and companies of the newest base-library versions.
    pub async fn load(store: &dyn Store, datasets: &DatasetStore, seed: u64) -> Result<Registry> {
        let read = |dataset: Dataset, key: &'static str| async move {
            use futures::StreamExt;
            let mut out = Vec::new();
            let Some(version) = store
                .get_resource(dataset.resource_code())
                .await?
                .latest_version
            else {
                return Err(Error::Usage(format!(
                    "{} has no data yet: run `tongban demo` or `tongban datagen` first",
                    dataset.resource_code()
                )));
            };
            let mut batches = datasets.stream_version(&version.location).await?;
            while let Some(batch) = batches.next().await.transpose()? {
                let col = |name: &str| {
                    batch
                        .column_by_name(name)
                        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                        .ok_or_else(|| Error::DemoData(format!("{name} is not a text column")))
                };
                let (keys, names) = (col(key)?, col("name")?);
                for i in 0..batch.num_rows() {
                    if !keys.is_null(i) {
                        out.push((keys.value(i).to_string(), names.value(i).to_string()));
                    }
                }
            }
            Ok::<_, Error>(out)
        };
        let citizens = read(Dataset::Population, "citizen_id").await?;
        let entities = read(Dataset::LegalEntities, "credit_code").await?;
        Ok(Registry {
            seed,
            entity_codes: entities.iter().map(|(c, _)| c.clone()).collect(),
            citizens: citizens.into_iter().collect(),
            entities: entities.into_iter().collect(),
        })
    }

    /// A number from the key, the seed and a purpose: the same on every run.
    fn draw(&self, key: &str, purpose: &str) -> u64 {
        // FNV-1a, then a final mix: deterministic and dependency-free.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed;
        for b in purpose.bytes().chain([0]).chain(key.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// One running provider.
pub struct Running {
    pub department: &'static str,
    pub name: &'static str,
    pub addr: SocketAddr,
}

/// Binds the three providers on `host` at `ports` (0 = any free port) and
/// serves them in the background until the process ends.
pub async fn start(registry: Arc<Registry>, host: &str, ports: [u16; 3]) -> Result<Vec<Running>> {
    let apps: [(&'static str, &'static str, axum::Router); 3] = [
        (
            "sh-rsj",
            "人社局 社会保险",
            social_insurance(registry.clone()),
        ),
        ("sh-swj", "税务局 清税核验", tax(registry.clone())),
        ("sh-gjj", "公积金中心 缴存核验", housing_fund(registry)),
    ];
    let mut running = Vec::new();
    for ((department, name, app), port) in apps.into_iter().zip(ports) {
        let addr = format!("{host}:{port}");
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
            Error::Usage(format!(
                "cannot listen on {addr} for the {name} demo provider: {e}"
            ))
        })?;
        let addr = listener.local_addr().map_err(Error::file(&addr))?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(provider = department, error = %e, "demo provider stopped");
            }
        });
        running.push(Running {
            department,
            name,
            addr,
        });
    }
    Ok(running)
}

fn not_found(what: &str, key: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "message": format!("no {what} {key}")})),
    )
        .into_response()
}

fn with_docs(
    router: axum::Router<Arc<Registry>>,
    doc: Value,
    registry: Arc<Registry>,
) -> axum::Router {
    router
        .route("/openapi.json", get(move || async move { Json(doc) }))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .with_state(registry)
}

// ---- 人社局: social insurance -------------------------------------------------

fn social_insurance(registry: Arc<Registry>) -> axum::Router {
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "社会保险缴纳状态查询", "version": "1.0",
                 "description": "上海市人力资源和社会保障局 业务系统接口（演示）"},
        "paths": {"/api/v1/insurance/contributions/{citizenId}": {"get": {
            "operationId": "getContributionStatus",
            "summary": "社保缴纳状态",
            "parameters": [{"name": "citizenId", "in": "path", "required": true,
                            "description": "公民身份号码", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "缴纳状态", "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "citizen_id": {"type": "string", "description": "公民身份号码"},
                    "name": {"type": "string", "description": "姓名"},
                    "paid_up": {"type": "boolean", "description": "是否正常缴纳"},
                    "status": {"type": "string", "description": "缴纳状态"},
                    "months_paid": {"type": "integer", "description": "累计缴纳月数"},
                    "last_paid_month": {"type": "string", "description": "最近缴纳月份"},
                    "insured_since": {"type": "string", "format": "date", "description": "参保日期"},
                    "employer": {"type": "object"}}}}}},
                "404": {"description": "查无此人"}}}}}
    });
    with_docs(
        axum::Router::new().route(
            "/api/v1/insurance/contributions/{citizen_id}",
            get(contribution_status),
        ),
        doc,
        registry,
    )
}

async fn contribution_status(State(r): State<Arc<Registry>>, Path(id): Path<String>) -> Response {
    let Some(name) = r.citizens.get(&id) else {
        return not_found("insured person", &id);
    };
    let d = r.draw(&id, "social-insurance");
    // 80 % paid up, 15 % in arrears, 5 % suspended.
    let status = match d % 100 {
        0..80 => "paid_up",
        80..95 => "in_arrears",
        _ => "suspended",
    };
    let months = (d >> 8) % 240 + 1;
    let last = if status == "paid_up" {
        11
    } else {
        1 + (d >> 16) % 9
    };
    let since_year = 2026 - (months / 12) as i64 - 1;
    let employer = &r.entity_codes[((d >> 24) as usize) % r.entity_codes.len().max(1)];
    Json(json!({
        "citizen_id": id,
        "name": name,
        "paid_up": status == "paid_up",
        "status": status,
        "months_paid": months,
        "last_paid_month": format!("2026-{last:02}"),
        "insured_since": format!("{since_year}-{:02}-01", 1 + (d >> 32) % 12),
        "employer": {"name": r.entities.get(employer), "credit_code": employer},
    }))
    .into_response()
}

// ---- 税务局: tax clearance ------------------------------------------------------

fn tax(registry: Arc<Registry>) -> axum::Router {
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "纳税人清税状态查询", "version": "1.0",
                 "description": "国家税务总局上海市税务局 业务系统接口（演示）"},
        "paths": {"/api/tax/clearance": {"post": {
            "operationId": "checkTaxClearance",
            "summary": "清税证明核验",
            "requestBody": {"content": {"application/json": {"schema": {"type": "object",
                "properties": {"credit_code": {"type": "string", "description": "统一社会信用代码"}}}}}},
            "responses": {"200": {"description": "清税状态", "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "credit_code": {"type": "string"},
                    "taxpayer_name": {"type": "string", "description": "纳税人名称"},
                    "clear": {"type": "boolean", "description": "是否已清税"},
                    "arrears_cny": {"type": "number", "description": "欠税金额（元）"},
                    "overdue_filings": {"type": "integer", "description": "逾期未申报次数"},
                    "credit_grade": {"type": "string", "description": "纳税信用等级"}}}}}}}}}}
    });
    with_docs(
        axum::Router::new().route("/api/tax/clearance", post(tax_clearance)),
        doc,
        registry,
    )
}

async fn tax_clearance(State(r): State<Arc<Registry>>, body: axum::body::Bytes) -> Response {
    let code = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("credit_code")?.as_str().map(str::to_string));
    let Some(code) = code else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "bad_request", "message": "send {\"credit_code\": \"…\"}"})),
        )
            .into_response();
    };
    let Some(name) = r.entities.get(&code) else {
        return not_found("taxpayer", &code);
    };
    let d = r.draw(&code, "tax");
    let clear = d % 100 < 88;
    let arrears = if clear {
        0.0
    } else {
        ((d >> 8) % 5_000_000) as f64 / 100.0
    };
    let grade = ["A", "B", "M", "C", "D"][((d >> 16) % 5) as usize];
    Json(json!({
        "credit_code": code,
        "taxpayer_name": name,
        "clear": clear,
        "arrears_cny": arrears,
        "overdue_filings": if clear { 0 } else { (d >> 40) % 4 },
        "credit_grade": grade,
    }))
    .into_response()
}

// ---- 公积金中心: housing fund ----------------------------------------------------

fn housing_fund(registry: Arc<Registry>) -> axum::Router {
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "住房公积金缴存状态查询", "version": "1.0",
                 "description": "上海市公积金管理中心 业务系统接口（演示）"},
        "paths": {"/gjj/v1/deposit": {"get": {
            "operationId": "getDepositStatus",
            "parameters": [{"name": "citizen_id", "in": "query", "required": true,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "缴存状态，字段在 data 下", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"code": {"type": "integer"}, "data": {"type": "object"}}}}}}}}}}
    });
    with_docs(
        axum::Router::new().route("/gjj/v1/deposit", get(deposit_status)),
        doc,
        registry,
    )
}

async fn deposit_status(
    State(r): State<Arc<Registry>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = q.get("citizen_id") else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 400, "message": "citizen_id is required"})),
        )
            .into_response();
    };
    if !r.citizens.contains_key(id) {
        return not_found("housing-fund account for", id);
    }
    let d = r.draw(id, "housing-fund");
    let status = match d % 100 {
        0..85 => "normal",
        85..95 => "sealed",
        _ => "closed",
    };
    Json(json!({
        "code": 0,
        "data": {
            "account_status": status,
            "monthly_deposit_cny": (((d >> 8) % 700_000) as f64) / 100.0 + 300.0,
            "deposited_months": if status == "normal" { (d >> 20) % 200 + 1 } else { 0 },
            "last_deposit_month": if status == "normal" { "2026-11".to_string() } else { format!("2025-{:02}", 1 + (d >> 28) % 12) },
            "account_no": format!("31{:010}", (d >> 4) % 10_000_000_000),
        }
    }))
    .into_response()
}
