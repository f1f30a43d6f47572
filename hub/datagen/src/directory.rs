//! The demo directory: the departments of a city government, the five
//! resources of the four base libraries with their data items, share types
//! and masks, and the three lists that govern them. The generated Parquet files follow these items exactly (a test
//! checks that each generated schema matches its resource's items).

use tongban_catalog::lists::{NeedApplication, NegativeSpec, ResponsibilitySpec};
use tongban_catalog::{
    BaseLibrary, Category, DataItem, Department, Format, Level, ResourceSpec, UpdateCycle,
};
use tongban_policies::{FilterOp, Mask, Mode, RowFilter, Sensitivity, ShareType};

/// The data office (大数据中心): the department whose token edits the directory.
pub const DATA_OFFICE: &str = "sh-dsjzx";
/// The unified acceptance front office (统一受理).
pub const ACCEPTANCE: &str = "sh-zwfw";
/// 一网通办: the portal citizens and companies see their data-use record on.
pub const PORTAL: &str = "sh-ywtb";

fn dept(code: &str, name: &str, level: Level, parent: Option<&str>, division: &str) -> Department {
    Department {
        code: code.into(),
        name: name.into(),
        level,
        parent: parent.map(Into::into),
        division_code: Some(division.into()),
        credit_code: None,
    }
}

/// City departments, two district service centres and one street centre.
pub fn departments() -> Vec<Department> {
    use Level::*;
    vec![
        dept(DATA_OFFICE, "上海市大数据中心", City, None, "310000"),
        dept(
            ACCEPTANCE,
            "上海市政务服务中心（统一受理）",
            City,
            None,
            "310000",
        ),
        dept(PORTAL, "一网通办总门户", City, None, "310000"),
        dept("sh-gaj", "上海市公安局", City, None, "310000"),
        dept("sh-scjgj", "上海市市场监督管理局", City, None, "310000"),
        dept("sh-mzj", "上海市民政局", City, None, "310000"),
        dept("sh-ghzyj", "上海市规划和自然资源局", City, None, "310000"),
        dept("sh-wjw", "上海市卫生健康委员会", City, None, "310000"),
        dept("sh-rsj", "上海市人力资源和社会保障局", City, None, "310000"),
        // Providers of the demo's interface-shared services (接口共享).
        dept("sh-swj", "国家税务总局上海市税务局", City, None, "310000"),
        dept("sh-gjj", "上海市公积金管理中心", City, None, "310000"),
        dept(
            "xh-zwfw",
            "徐汇区行政服务中心",
            District,
            Some(ACCEPTANCE),
            "310104",
        ),
        dept(
            "pd-zwfw",
            "浦东新区企业服务中心",
            District,
            Some(ACCEPTANCE),
            "310115",
        ),
        dept(
            "xh-tpl-sq",
            "徐汇区天平路街道社区事务受理服务中心",
            Street,
            Some("xh-zwfw"),
            "310104001000",
        ),
    ]
}

struct Item(
    &'static str,
    &'static str,
    &'static str,
    Sensitivity,
    ShareType,
    &'static str,
);

/// The mask an item gets when released (unless a need grants it clear).
fn mask_of(resource: &str, item: &str) -> Option<Mask> {
    Some(match (resource, item) {
        (_, "citizen_id" | "legal_rep_id") => Mask::CitizenId,
        ("101/000001", "name") => Mask::ChineseName,
        (_, "phone") => Mask::Phone,
        (_, "household_address" | "residence_address") => Mask::Address,
        (_, "holder_id") => Mask::KeepLast(4),
        (_, "holder_name") => Mask::KeepFirst(1),
        _ => return None,
    })
}

/// Builds items; the last field is the share condition (conditional) or the
/// legal basis (none), and the description otherwise.
fn items(resource: &str, list: &[Item]) -> Vec<DataItem> {
    list.iter()
        .map(
            |Item(name, label, data_type, sensitivity, share, note)| DataItem {
                name: (*name).into(),
                label: (*label).into(),
                data_type: (*data_type).into(),
                description: match share {
                    ShareType::Unconditional => (*note).into(),
                    _ => String::new(),
                },
                sensitivity: *sensitivity,
                share_type: *share,
                share_condition: (*share == ShareType::Conditional).then(|| (*note).into()),
                legal_basis: (*share == ShareType::None).then(|| (*note).into()),
                mask: mask_of(resource, name),
            },
        )
        .collect()
}

/// The item with each row's division code, for return flow (回流).
fn division_item_of(resource: &str) -> Option<&'static str> {
    match resource {
        "101/000001" => Some("residence_street"),
        "102/000001" => Some("division_code"),
        "103/000002" => Some("street_code"),
        _ => None,
    }
}

const FOR_MATTER: &str = "办理具体政务服务事项，经需求清单审批";
const PIPL_28: &str =
    "《中华人民共和国个人信息保护法》第二十八条：敏感个人信息仅在具有特定目的和充分必要性时处理";

/// The five resources of the four base libraries, all published.
pub fn resources() -> Vec<ResourceSpec> {
    use Sensitivity::*;
    use ShareType::{Conditional, Unconditional};
    const NOT_SHARED: ShareType = ShareType::None;
    let base = |code: &str,
                name: &str,
                provider: &str,
                lib,
                cycle,
                summary: &str,
                keys: &[&str],
                list: &[Item]| {
        ResourceSpec {
            code: code.into(),
            name: name.into(),
            provider: provider.into(),
            summary: summary.into(),
            category: Category::Base,
            base_library: Some(lib),
            format: Format::Database,
            update_cycle: cycle,
            publish_date: None,
            key_items: keys.iter().map(|k| (*k).into()).collect(),
            division_item: division_item_of(code).map(Into::into),
            items: items(code, list),
            status: Some(tongban_catalog::Status::Published),
        }
    };
    vec![
        base(
            "101/000001",
            "人口基础信息",
            "sh-gaj",
            BaseLibrary::Population,
            UpdateCycle::Daily,
            "全市实有人口的身份、户籍、居住和基本状况信息，人口库核心资源",
            &["citizen_id"],
            &[
                Item(
                    "citizen_id",
                    "公民身份号码",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item("name", "姓名", "Utf8", Sensitive, Conditional, FOR_MATTER),
                Item("gender", "性别", "Utf8", Internal, Unconditional, "男 / 女"),
                Item(
                    "ethnicity",
                    "民族",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "GB/T 3304 民族名称",
                ),
                Item(
                    "birth_date",
                    "出生日期",
                    "Date32",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "household_division",
                    "户籍地行政区划代码",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "GB/T 2260 六位代码",
                ),
                Item(
                    "household_address",
                    "户籍地址",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "residence_address",
                    "居住地址",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "residence_street",
                    "居住地街道代码",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "十二位街道（乡镇）代码，用于回流筛选",
                ),
                Item(
                    "phone",
                    "联系电话",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "marital_status",
                    "婚姻状况",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "education",
                    "文化程度",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "GB/T 4658 学历",
                ),
                Item(
                    "religion",
                    "宗教信仰",
                    "Utf8",
                    HighlySensitive,
                    NOT_SHARED,
                    PIPL_28,
                ),
                Item(
                    "health_status",
                    "健康状况",
                    "Utf8",
                    HighlySensitive,
                    NOT_SHARED,
                    PIPL_28,
                ),
                Item(
                    "status",
                    "人口状态",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "正常 / 迁出 / 死亡",
                ),
            ],
        ),
        base(
            "102/000001",
            "法人基础信息",
            "sh-scjgj",
            BaseLibrary::LegalEntity,
            UpdateCycle::Daily,
            "在本市登记的企业、个体工商户和农民专业合作社的登记信息，法人库核心资源",
            &["credit_code"],
            &[
                Item(
                    "credit_code",
                    "统一社会信用代码",
                    "Utf8",
                    Public,
                    Unconditional,
                    "GB 32100",
                ),
                Item("name", "名称", "Utf8", Public, Unconditional, "登记名称"),
                Item(
                    "entity_type",
                    "市场主体类型",
                    "Utf8",
                    Public,
                    Unconditional,
                    "登记类型",
                ),
                Item(
                    "legal_rep",
                    "法定代表人",
                    "Utf8",
                    Public,
                    Unconditional,
                    "法定代表人（负责人、经营者）姓名",
                ),
                Item(
                    "legal_rep_id",
                    "法定代表人身份证件号码",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "registered_capital",
                    "注册资本（万元）",
                    "Decimal128(18, 2)",
                    Public,
                    Unconditional,
                    "单位：万元人民币",
                ),
                Item(
                    "established_date",
                    "成立日期",
                    "Date32",
                    Public,
                    Unconditional,
                    "营业执照签发的成立日期",
                ),
                Item(
                    "business_scope",
                    "经营范围",
                    "Utf8",
                    Public,
                    Unconditional,
                    "登记的经营范围",
                ),
                Item("address", "住所", "Utf8", Public, Unconditional, "登记住所"),
                Item(
                    "division_code",
                    "住所所在区",
                    "Utf8",
                    Public,
                    Unconditional,
                    "六位区代码",
                ),
                Item(
                    "status",
                    "登记状态",
                    "Utf8",
                    Public,
                    Unconditional,
                    "存续 / 在业 / 吊销 / 注销",
                ),
                Item(
                    "phone",
                    "联系电话",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
            ],
        ),
        base(
            "103/000001",
            "行政区划",
            "sh-mzj",
            BaseLibrary::Geospatial,
            UpdateCycle::Yearly,
            "市、区、街道（乡镇）三级行政区划代码、名称与边界，空间地理库基础图层",
            &["code"],
            &[
                Item(
                    "code",
                    "区划代码",
                    "Utf8",
                    Public,
                    Unconditional,
                    "六位区或十二位街道代码",
                ),
                Item(
                    "name",
                    "区划名称",
                    "Utf8",
                    Public,
                    Unconditional,
                    "标准名称",
                ),
                Item(
                    "level",
                    "层级",
                    "Utf8",
                    Public,
                    Unconditional,
                    "city / district / street",
                ),
                Item(
                    "parent_code",
                    "上级区划代码",
                    "Utf8",
                    Public,
                    Unconditional,
                    "市级为空",
                ),
                Item(
                    "boundary_wkt",
                    "边界（WKT）",
                    "Utf8",
                    Public,
                    Unconditional,
                    "WGS 84 经纬度多边形",
                ),
                Item(
                    "centroid_lon",
                    "中心点经度",
                    "Float64",
                    Public,
                    Unconditional,
                    "WGS 84",
                ),
                Item(
                    "centroid_lat",
                    "中心点纬度",
                    "Float64",
                    Public,
                    Unconditional,
                    "WGS 84",
                ),
                Item(
                    "area_km2",
                    "面积（平方公里）",
                    "Float64",
                    Public,
                    Unconditional,
                    "平方公里",
                ),
            ],
        ),
        base(
            "103/000002",
            "标准地址",
            "sh-ghzyj",
            BaseLibrary::Geospatial,
            UpdateCycle::Monthly,
            "全市标准地址及其坐标、所在区和街道，用于地址核验与落点",
            &["address_id"],
            &[
                Item(
                    "address_id",
                    "地址编码",
                    "Utf8",
                    Public,
                    Unconditional,
                    "SH 加十位数字",
                ),
                Item(
                    "address",
                    "标准地址",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "省市区街道路门牌楼室",
                ),
                Item(
                    "district_code",
                    "所在区代码",
                    "Utf8",
                    Public,
                    Unconditional,
                    "六位区代码",
                ),
                Item(
                    "street_code",
                    "所在街道代码",
                    "Utf8",
                    Public,
                    Unconditional,
                    "十二位街道代码",
                ),
                Item("road", "道路", "Utf8", Public, Unconditional, "道路名称"),
                Item(
                    "house_number",
                    "门牌号",
                    "Utf8",
                    Public,
                    Unconditional,
                    "门牌号",
                ),
                Item("lon", "经度", "Float64", Internal, Unconditional, "WGS 84"),
                Item("lat", "纬度", "Float64", Internal, Unconditional, "WGS 84"),
            ],
        ),
        base(
            "104/000001",
            "电子证照",
            DATA_OFFICE,
            BaseLibrary::ELicence,
            UpdateCycle::Realtime,
            "各发证部门签发的电子证照目录信息：证照类型、持证主体、有效期、状态与发证机关签名",
            &["licence_no"],
            &[
                Item(
                    "licence_no",
                    "证照编号",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "证照类型前缀加区划、年份、序号",
                ),
                Item(
                    "licence_type",
                    "证照类型",
                    "Utf8",
                    Public,
                    Unconditional,
                    "证照名称",
                ),
                Item(
                    "holder_type",
                    "持证主体类型",
                    "Utf8",
                    Public,
                    Unconditional,
                    "citizen / entity",
                ),
                Item(
                    "holder_id",
                    "持证主体代码",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "holder_name",
                    "持证主体名称",
                    "Utf8",
                    Sensitive,
                    Conditional,
                    FOR_MATTER,
                ),
                Item(
                    "issuer_code",
                    "发证机关代码",
                    "Utf8",
                    Public,
                    Unconditional,
                    "部门代码",
                ),
                Item(
                    "issuer_name",
                    "发证机关",
                    "Utf8",
                    Public,
                    Unconditional,
                    "发证机关名称",
                ),
                Item(
                    "issue_date",
                    "签发日期",
                    "Date32",
                    Public,
                    Unconditional,
                    "签发日期",
                ),
                Item(
                    "valid_from",
                    "有效期起",
                    "Date32",
                    Public,
                    Unconditional,
                    "有效期开始",
                ),
                Item(
                    "valid_to",
                    "有效期止",
                    "Date32",
                    Public,
                    Unconditional,
                    "为空表示长期有效",
                ),
                Item(
                    "status",
                    "证照状态",
                    "Utf8",
                    Public,
                    Unconditional,
                    "valid / revoked / expired",
                ),
                Item(
                    "signature",
                    "发证机关签名",
                    "Utf8",
                    Internal,
                    Unconditional,
                    "SM2 电子签章（SM3 摘要，签名值 r‖s 十六进制），见 tongban_core::seal",
                ),
            ],
        ),
    ]
}

const PIPL_6: &str =
    "《中华人民共和国个人信息保护法》第六条：处理个人信息应当限于实现处理目的的最小范围";

/// Negative entries: sensitive personal information never leaves; contact
/// details and representatives' ID numbers are not exchanged in bulk.
pub fn negatives() -> Vec<NegativeSpec> {
    let entry =
        |resource: &str, items: &[&str], basis: &str, modes: &[Mode], note: &str| NegativeSpec {
            resource: resource.into(),
            items: items.iter().map(|s| (*s).into()).collect(),
            legal_basis: basis.into(),
            modes: modes.to_vec(),
            consumers: Vec::new(),
            note: note.into(),
        };
    vec![
        entry(
            "101/000001",
            &["religion", "health_status"],
            "《中华人民共和国个人信息保护法》第二十八条；《宗教事务条例》",
            &[],
            "宗教信仰、健康状况属于敏感个人信息，一律不予共享",
        ),
        entry(
            "101/000001",
            &["phone"],
            PIPL_6,
            &[Mode::Batch, Mode::Subscribe],
            "联系电话仅可实时核验，不得批量交换",
        ),
        entry(
            "102/000001",
            &["legal_rep_id"],
            PIPL_6,
            &[Mode::Batch, Mode::Subscribe],
            "法定代表人身份证件号码不批量提供",
        ),
    ]
}

/// Each provider's duty to keep its resource fresh.
pub fn responsibilities() -> Vec<ResponsibilitySpec> {
    let duty =
        |provider: &str, resource: &str, items: &[&str], hours, delivery| ResponsibilitySpec {
            provider: provider.into(),
            resource: resource.into(),
            items: items.iter().map(|s| (*s).into()).collect(),
            refresh_interval_hours: hours,
            delivery,
        };
    vec![
        duty(
            "sh-gaj",
            "101/000001",
            &[
                "citizen_id",
                "name",
                "gender",
                "birth_date",
                "residence_address",
                "status",
            ],
            24,
            Mode::Lookup,
        ),
        duty(
            "sh-scjgj",
            "102/000001",
            &["credit_code", "name", "legal_rep", "status"],
            24,
            Mode::Lookup,
        ),
        duty("sh-mzj", "103/000001", &[], 24 * 365, Mode::Batch),
        duty("sh-ghzyj", "103/000002", &[], 24 * 30, Mode::Batch),
        duty(
            DATA_OFFICE,
            "104/000001",
            &["licence_no", "status", "valid_to"],
            1,
            Mode::Lookup,
        ),
    ]
}

/// Where a demo need ends up.
pub enum Outcome {
    Approved,
    /// Waiting for the provider's reply.
    Pending,
    /// The provider agreed; waiting for the data office.
    ProviderApproved,
    Rejected(&'static str),
}

/// The names of the demo's matters, as citizens read them in their
/// data-use record.
pub fn matter_name(code: &str) -> Option<String> {
    let name = match code {
        "310000-JZZ-001" => "居住证申领",
        "310000-JZZJF-001" => "居住证积分申请",
        "310000-QYZX-001" => "企业注销登记",
        "310000-GJJDK-001" => "住房公积金贷款申请",
        "310000-SPJY-003" => "食品经营许可延续",
        "310000-YYZZ-002" => "营业执照变更登记",
        "310104-LNBT-004" => "高龄老人津贴申请",
        "310115-JYBZ-006" => "就业困难人员认定",
        "310115-QYBT-005" => "企业补贴发放",
        _ => return None,
    };
    Some(name.into())
}

/// Needs of the acceptance front office and two districts for real matters
/// (一事一码 codes), with the outcome each is driven to through the workflow.
pub fn needs() -> Vec<(&'static str, NeedApplication, Outcome)> {
    let need = |resource: &str, items: &[&str], matter: &str, mode, why: &str| NeedApplication {
        resource: resource.into(),
        items: items.iter().map(|s| (*s).into()).collect(),
        matter: matter.into(),
        mode,
        justification: why.into(),
        row_filter: None,
        daily_quota: None,
        clear_items: Vec::new(),
        valid_from: None,
        valid_until: None,
        matter_name: matter_name(matter),
        covert_until: None,
    };
    let mut lookup_person = need(
        "101/000001",
        &[
            "name",
            "gender",
            "residence_address",
            "residence_street",
            "status",
        ],
        "310000-JZZ-001",
        Mode::Lookup,
        "居住证申领：受理时回填申请人居住信息",
    );
    lookup_person.clear_items = vec!["name".into()];
    let mut elderly = need(
        "101/000001",
        &["citizen_id", "name", "birth_date", "residence_street"],
        "310104-LNBT-004",
        Mode::Lookup,
        "高龄老人津贴申请：核对年龄与居住街道",
    );
    elderly.row_filter = Some(RowFilter {
        item: "residence_street".into(),
        op: FilterOp::Prefix("310104".into()),
    });
    elderly.daily_quota = Some(2000);
    // Return flow (回流): the district receives its own elderly residents,
    // kept fresh by subscription (phone numbers cannot even be asked for in
    // bulk: the negative list bars them).
    let mut elderly_subscribe = need(
        "101/000001",
        &[
            "citizen_id",
            "name",
            "gender",
            "birth_date",
            "residence_street",
        ],
        "310104-LNBT-004",
        Mode::Subscribe,
        "高龄老人津贴：辖区老年人口数据按日回流，主动发现符合条件的老人",
    );
    elderly_subscribe.clear_items = vec!["name".into()];
    let mut elderly_batch = elderly.clone();
    elderly_batch.mode = Mode::Batch;
    elderly_batch.items = vec!["citizen_id".into(), "name".into(), "birth_date".into()];
    elderly_batch.justification = "高龄老人津贴年度复核：批量比对".into();
    vec![
        (
            ACCEPTANCE,
            need(
                "101/000001",
                &["citizen_id", "name", "birth_date"],
                "310000-JZZ-001",
                Mode::Verify,
                "居住证申领：核验申请人身份",
            ),
            Outcome::Approved,
        ),
        (ACCEPTANCE, lookup_person, Outcome::Approved),
        (
            ACCEPTANCE,
            need(
                "102/000001",
                &[
                    "credit_code",
                    "name",
                    "legal_rep",
                    "legal_rep_id",
                    "status",
                    "address",
                ],
                "310000-YYZZ-002",
                Mode::Lookup,
                "营业执照变更登记：核对主体登记信息",
            ),
            Outcome::Approved,
        ),
        (
            ACCEPTANCE,
            need(
                "104/000001",
                &[
                    "licence_no",
                    "licence_type",
                    "holder_id",
                    "holder_name",
                    "issuer_code",
                    "issue_date",
                    "valid_from",
                    "status",
                    "valid_to",
                    "signature",
                ],
                "310000-SPJY-003",
                Mode::Verify,
                "食品经营许可延续：核验原证状态与发证机关电子签章",
            ),
            Outcome::Approved,
        ),
        ("xh-zwfw", elderly, Outcome::Approved),
        ("xh-zwfw", elderly_subscribe, Outcome::Approved),
        ("xh-zwfw", elderly_batch, Outcome::ProviderApproved),
        (
            "pd-zwfw",
            need(
                "102/000001",
                &["credit_code", "name", "phone"],
                "310115-QYBT-005",
                Mode::Batch,
                "企业补贴批量发放通知",
            ),
            Outcome::Rejected("联系电话仅限办理具体事项时实时核验，补贴通知请通过一网通办消息推送"),
        ),
    ]
}

/// A demo subscription: consumer, name, and the need it rests on (by
/// resource, matter and mode).
pub struct DemoSubscription {
    pub consumer: &'static str,
    pub name: &'static str,
    pub resource: &'static str,
    pub matter: &'static str,
    pub mode: Mode,
}

/// The district's pull subscription to its residents (Delta Sharing, Flight).
pub fn subscriptions() -> Vec<DemoSubscription> {
    vec![DemoSubscription {
        consumer: "xh-zwfw",
        name: "residents",
        resource: "101/000001",
        matter: "310104-LNBT-004",
        mode: Mode::Subscribe,
    }]
}

/// Items the demo indexes besides the keys: licences by holder, so the
/// acceptance office can find every licence of an applicant, and standard
/// addresses by their text, so an address is placed in its division.
pub fn secondary_keys() -> std::collections::BTreeMap<String, Vec<String>> {
    [
        ("104/000001".to_string(), vec!["holder_id".to_string()]),
        ("103/000002".to_string(), vec!["address".to_string()]),
    ]
    .into()
}
