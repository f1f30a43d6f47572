//! The demo's interface-shared services (接口共享): three department systems
//! that keep their data and answer validations through the hub, as
//! registrations for whatever addresses their demo servers got, and the
//! acceptance office's needs of mode `call` for them.
//!
//! - 人社局 (`sh-rsj`) social insurance contribution status by citizen ID,
//!   `GET /api/v1/insurance/contributions/{citizen_id}`;
//! - 税务局 (`sh-swj`) tax clearance by credit code,
//!   `POST /api/tax/clearance` with `{"credit_code": …}`;
//! - 公积金中心 (`sh-gjj`) housing-fund deposit status by citizen ID,
//!   `GET /gjj/v1/deposit?citizen_id=…`, its fields under `/data`.
//!
//! The servers themselves are the `tongban demo-providers` command's.

use crate::directory::ACCEPTANCE;
use serde_json::json;
use tongban_catalog::lists::NeedApplication;
use tongban_catalog::services::ServiceRegistration;
use tongban_policies::Mode;

/// Resource codes of the three services.
pub const SOCIAL_INSURANCE: &str = "302/000101";
pub const TAX_CLEARANCE: &str = "302/000201";
pub const HOUSING_FUND: &str = "302/000301";

/// The matters the acceptance office calls them for.
pub const MATTER_RESIDENCE_POINTS: &str = "310000-JZZJF-001";
pub const MATTER_DEREGISTRATION: &str = "310000-QYZX-001";
pub const MATTER_HOUSING_LOAN: &str = "310000-GJJDK-001";

fn item(
    name: &str,
    label: &str,
    data_type: &str,
    sensitivity: &str,
    share: &str,
) -> serde_json::Value {
    let mut v = json!({
        "name": name, "label": label, "data_type": data_type,
        "sensitivity": sensitivity, "share_type": share,
    });
    if share == "conditional" {
        v["share_condition"] = json!("经审核的办事需求（需求清单）");
    }
    v
}

fn with_mask(mut v: serde_json::Value, mask: &str) -> serde_json::Value {
    v["mask"] = json!(mask);
    v
}

fn resource(
    code: &str,
    name: &str,
    provider: &str,
    summary: &str,
    items: Vec<serde_json::Value>,
) -> serde_json::Value {
    json!({
        "code": code, "name": name, "provider": provider, "summary": summary,
        "category": "department", "format": "self_describing", "update_cycle": "realtime",
        "items": items, "status": "published",
    })
}

/// The three registrations, with each provider's base URL
/// (`http://127.0.0.1:PORT`) in the order social insurance, tax, housing fund.
pub fn registrations(base_urls: [&str; 3]) -> Vec<ServiceRegistration> {
    let social = json!({
        "resource": resource(SOCIAL_INSURANCE, "社会保险缴纳状态核验接口", "sh-rsj",
            "按公民身份号码核验社会保险缴纳状态（人社局业务系统实时接口，数据不出部门）",
            vec![
                with_mask(item("citizen_id", "公民身份号码", "Utf8", "sensitive", "conditional"), "citizen_id"),
                with_mask(item("name", "姓名", "Utf8", "sensitive", "conditional"), "chinese_name"),
                item("paid_up", "是否正常缴纳", "Boolean", "internal", "unconditional"),
                item("status", "缴纳状态", "Utf8", "internal", "unconditional"),
                item("months_paid", "累计缴纳月数", "Int64", "internal", "conditional"),
                item("last_paid_month", "最近缴纳月份", "Utf8", "internal", "conditional"),
                item("insured_since", "参保日期", "Date32", "internal", "conditional"),
                item("employer_name", "参保单位名称", "Utf8", "internal", "conditional"),
                item("employer_credit_code", "参保单位统一社会信用代码", "Utf8", "internal", "conditional"),
            ]),
        "service": {
            "base_url": base_urls[0],
            "endpoints": [{
                "name": "contribution-status",
                "summary": "社保缴纳状态",
                "method": "GET",
                "path": "/api/v1/insurance/contributions/{citizen_id}",
                "params": [{"item": "citizen_id", "in": "path", "key": "citizen_id"}],
                "response": [
                    {"item": "citizen_id", "pointer": "/citizen_id", "required": true},
                    {"item": "name", "pointer": "/name", "required": true},
                    {"item": "paid_up", "pointer": "/paid_up", "required": true},
                    {"item": "status", "pointer": "/status", "required": true},
                    {"item": "months_paid", "pointer": "/months_paid"},
                    {"item": "last_paid_month", "pointer": "/last_paid_month"},
                    {"item": "insured_since", "pointer": "/insured_since"},
                    {"item": "employer_name", "pointer": "/employer/name"},
                    {"item": "employer_credit_code", "pointer": "/employer/credit_code"},
                ],
                "timeout_ms": 2000,
                "cache_ttl_ms": 60000,
            }],
        },
    });
    let tax = json!({
        "resource": resource(TAX_CLEARANCE, "纳税人清税状态核验接口", "sh-swj",
            "按统一社会信用代码核验是否已结清税款（税务局业务系统实时接口）",
            vec![
                item("credit_code", "统一社会信用代码", "Utf8", "public", "unconditional"),
                item("taxpayer_name", "纳税人名称", "Utf8", "public", "unconditional"),
                item("clear", "是否已清税", "Boolean", "internal", "unconditional"),
                item("arrears_cny", "欠税金额（元）", "Float64", "sensitive", "conditional"),
                item("overdue_filings", "逾期未申报次数", "Int64", "internal", "conditional"),
                item("credit_grade", "纳税信用等级", "Utf8", "internal", "conditional"),
            ]),
        "service": {
            "base_url": base_urls[1],
            "endpoints": [{
                "name": "tax-clearance",
                "summary": "清税证明核验",
                "method": "POST",
                "path": "/api/tax/clearance",
                "params": [{"item": "credit_code", "in": "body", "key": "credit_code"}],
                "response": [
                    {"item": "credit_code", "pointer": "/credit_code", "required": true},
                    {"item": "taxpayer_name", "pointer": "/taxpayer_name", "required": true},
                    {"item": "clear", "pointer": "/clear", "required": true},
                    {"item": "arrears_cny", "pointer": "/arrears_cny"},
                    {"item": "overdue_filings", "pointer": "/overdue_filings"},
                    {"item": "credit_grade", "pointer": "/credit_grade"},
                ],
                // A read-only query sent as POST: safe to retry.
                "idempotent": true,
            }],
        },
    });
    let fund = json!({
        "resource": resource(HOUSING_FUND, "住房公积金缴存状态核验接口", "sh-gjj",
            "按公民身份号码核验住房公积金账户及缴存状态（公积金中心业务系统实时接口）",
            vec![
                with_mask(item("citizen_id", "公民身份号码", "Utf8", "sensitive", "conditional"), "citizen_id"),
                item("account_status", "账户状态", "Utf8", "internal", "unconditional"),
                item("monthly_deposit_cny", "月缴存额（元）", "Float64", "sensitive", "conditional"),
                item("deposited_months", "连续缴存月数", "Int64", "internal", "conditional"),
                item("last_deposit_month", "最近缴存月份", "Utf8", "internal", "conditional"),
                with_mask(item("account_no", "公积金账号", "Utf8", "sensitive", "conditional"), "keep_last:4"),
            ]),
        "service": {
            "base_url": base_urls[2],
            "endpoints": [{
                "name": "deposit-status",
                "summary": "公积金缴存状态",
                "method": "GET",
                "path": "/gjj/v1/deposit",
                "params": [{"item": "citizen_id", "in": "query", "key": "citizen_id"}],
                "response": [
                    {"item": "account_status", "pointer": "/data/account_status", "required": true},
                    {"item": "monthly_deposit_cny", "pointer": "/data/monthly_deposit_cny"},
                    {"item": "deposited_months", "pointer": "/data/deposited_months"},
                    {"item": "last_deposit_month", "pointer": "/data/last_deposit_month"},
                    {"item": "account_no", "pointer": "/data/account_no"},
                ],
            }],
        },
    });
    [social, tax, fund]
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("the demo registrations are well formed"))
        .collect()
}

/// The acceptance office's needs of mode `call`: each covers some items and
/// leaves others out, so that a call shows both.
pub fn needs() -> Vec<(&'static str, NeedApplication)> {
    let need = |resource: &str, items: &[&str], matter: &str, why: &str| NeedApplication {
        resource: resource.into(),
        items: items.iter().map(|s| (*s).into()).collect(),
        matter: matter.into(),
        mode: Mode::Call,
        justification: why.into(),
        row_filter: None,
        daily_quota: None,
        clear_items: Vec::new(),
        valid_from: None,
        valid_until: None,
        matter_name: crate::directory::matter_name(matter),
        covert_until: None,
    };
    vec![
        (
            ACCEPTANCE,
            need(
                SOCIAL_INSURANCE,
                &[
                    "citizen_id",
                    "name",
                    "paid_up",
                    "status",
                    "months_paid",
                    "last_paid_month",
                ],
                MATTER_RESIDENCE_POINTS,
                "居住证积分：受理时核验申请人社保连续缴纳月数",
            ),
        ),
        (
            ACCEPTANCE,
            need(
                TAX_CLEARANCE,
                &["credit_code", "taxpayer_name", "clear", "overdue_filings"],
                MATTER_DEREGISTRATION,
                "企业注销：受理时核验是否已清税",
            ),
        ),
        (
            ACCEPTANCE,
            need(
                HOUSING_FUND,
                &[
                    "citizen_id",
                    "account_status",
                    "deposited_months",
                    "last_deposit_month",
                    "account_no",
                ],
                MATTER_HOUSING_LOAN,
                "公积金贷款：受理时核验缴存状态",
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_registrations_pass_the_directory_rules() {
        for reg in super::registrations([
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "http://127.0.0.1:3",
        ]) {
            tongban_catalog::validate::resource(&reg.resource).unwrap();
            reg.service.check(&reg.resource).unwrap();
        }
    }
}
