//! Names for codes: pages list departments, resources and data items by
//! their codes (`pd-zwfw`, `101/000001`, `citizen_id`), and people read
//! names (浦东新区企业服务中心, 人口基础信息, 公民身份号码). A page reads
//! the directory once ([`Names::load`]) and looks every code up in memory,
//! never a query per row.
//!
//! A name is shown with its code beside it (muted) and on hover. The
//! catalog keeps one name per record, the official (Chinese) one, so English
//! pages show it as stored, with the code. A code the directory no longer
//! holds (a deleted department, a retired resource's item) shows as itself.

use askama::filters::HtmlSafe;
use std::collections::HashMap;
use std::fmt;
use tongban_catalog::{Directory, Store};

/// What the directory says about one resource.
struct ResourceNames {
    name: String,
    provider: String,
    /// Item name → Chinese label.
    items: HashMap<String, String>,
}

/// The directory's names, read once per page.
#[derive(Default)]
pub struct Names {
    /// Department code → name.
    departments: HashMap<String, String>,
    resources: HashMap<String, ResourceNames>,
}

impl Names {
    /// Reads the directory (one catalog call). If it cannot be read, pages
    /// show codes as they did, rather than failing.
    pub async fn load(store: &dyn Store) -> Names {
        match store.export().await {
            Ok(d) => Names::of(d),
            Err(e) => {
                tracing::warn!(error = %e, "console: directory names unavailable, showing codes");
                Names::default()
            }
        }
    }

    /// The names in a directory.
    pub fn of(d: Directory) -> Names {
        Names {
            departments: d
                .departments
                .into_iter()
                .map(|d| (d.code, d.name))
                .collect(),
            resources: d
                .resources
                .into_iter()
                .map(|r| {
                    let names = ResourceNames {
                        name: r.name,
                        provider: r.provider,
                        items: r.items.into_iter().map(|i| (i.name, i.label)).collect(),
                    };
                    (r.code, names)
                })
                .collect(),
        }
    }

    /// A department by its code.
    pub fn department(&self, code: &str) -> Named {
        Named::new(code, self.departments.get(code).map(String::as_str))
    }

    /// A resource by its code.
    pub fn resource(&self, code: &str) -> Named {
        Named::new(code, self.resources.get(code).map(|r| r.name.as_str()))
    }

    /// The code of a resource's provider, if the resource is known.
    pub fn provider(&self, resource: &str) -> Option<&str> {
        self.resources.get(resource).map(|r| r.provider.as_str())
    }

    /// A data item of `resource` by its name, shown with its label.
    pub fn item(&self, resource: &str, item: &str) -> Named {
        let label = self
            .resources
            .get(resource)
            .and_then(|r| r.items.get(item))
            .map(String::as_str);
        Named::new(item, label)
    }

    /// Data items of `resource`, in order.
    pub fn items(&self, resource: &str, items: impl IntoIterator<Item: AsRef<str>>) -> NamedList {
        NamedList(
            items
                .into_iter()
                .map(|i| self.item(resource, i.as_ref()))
                .collect(),
        )
    }

    /// Departments, in order.
    pub fn departments(&self, codes: impl IntoIterator<Item: AsRef<str>>) -> NamedList {
        NamedList(
            codes
                .into_iter()
                .map(|c| self.department(c.as_ref()))
                .collect(),
        )
    }
}

/// A code with its name, if the directory knows it. In a template it shows
/// as HTML — the name, the code beside it in a muted style, the code again
/// on hover — escaped here, so templates write `{{ names.department(c) }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub code: String,
    pub name: Option<String>,
}

impl Named {
    pub fn new(code: &str, name: Option<&str>) -> Named {
        Named {
            code: code.to_string(),
            // A blank name says nothing: show the code.
            name: name.filter(|n| !n.trim().is_empty()).map(String::from),
        }
    }

    /// The name, or the code when there is none (for text, e.g. charts).
    pub fn text(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.code)
    }

    /// `name (code)`, or the code (for titles and tooltips).
    pub fn full(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.code),
            None => self.code.clone(),
        }
    }
}

/// Escapes text for HTML content and double-quoted attributes.
fn esc(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for c in s.chars() {
        match c {
            '&' => f.write_str("&amp;")?,
            '<' => f.write_str("&lt;")?,
            '>' => f.write_str("&gt;")?,
            '"' => f.write_str("&quot;")?,
            '\'' => f.write_str("&#x27;")?,
            c => fmt::Write::write_char(f, c)?,
        }
    }
    Ok(())
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => {
                f.write_str(r#"<span class="named" title=""#)?;
                esc(&self.code, f)?;
                f.write_str(r#"">"#)?;
                esc(name, f)?;
                f.write_str(r#" <span class="code">"#)?;
                esc(&self.code, f)?;
                f.write_str("</span></span>")
            }
            None => {
                f.write_str(r#"<span class="code unknown">"#)?;
                esc(&self.code, f)?;
                f.write_str("</span>")
            }
        }
    }
}

/// Escaped by its own `Display`.
impl HtmlSafe for Named {}

/// Several named codes, shown separated by commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedList(pub Vec<Named>);

impl NamedList {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for NamedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            n.fmt(f)?;
        }
        Ok(())
    }
}

/// Escaped by its own `Display`.
impl HtmlSafe for NamedList {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let d: Directory = serde_json::from_value(serde_json::json!({
            "departments": [
                {"code": "pd-zwfw", "name": "浦东新区企业服务中心", "level": "district", "parent": "sh-zwfw"}
            ],
            "resources": [{
                "code": "101/000001", "name": "人口基础信息", "provider": "sh-gaj",
                "category": "base", "base_library": "population", "format": "database",
                "update_cycle": "daily", "key_items": ["citizen_id"],
                "items": [{"name": "citizen_id", "label": "公民身份号码", "data_type": "Utf8",
                           "sensitivity": "sensitive", "share_type": "conditional",
                           "share_condition": "经需求清单审批"}]
            }]
        }))
        .unwrap();
        Names::of(d)
    }

    #[test]
    fn codes_show_with_their_names() {
        let n = names();
        assert_eq!(
            n.department("pd-zwfw").to_string(),
            r#"<span class="named" title="pd-zwfw">浦东新区企业服务中心 <span class="code">pd-zwfw</span></span>"#
        );
        assert_eq!(n.resource("101/000001").text(), "人口基础信息");
        assert_eq!(n.provider("101/000001"), Some("sh-gaj"));
        let items = n.items("101/000001", &["citizen_id"]).to_string();
        assert!(
            items.contains("公民身份号码") && items.contains("citizen_id"),
            "{items}"
        );
        assert_eq!(n.resource("101/000001").full(), "人口基础信息 (101/000001)");
    }

    #[test]
    fn unknown_codes_show_as_themselves() {
        let n = names();
        // A deleted department, an unknown resource, an item the resource
        // does not have.
        for named in [
            n.department("gone-dept"),
            n.resource("301/999999"),
            n.item("101/000001", "no_such_item"),
            n.item("301/999999", "citizen_id"),
        ] {
            assert_eq!(named.name, None);
            assert_eq!(named.text(), named.code);
            assert_eq!(
                named.to_string(),
                format!(r#"<span class="code unknown">{}</span>"#, named.code)
            );
        }
        assert_eq!(n.provider("301/999999"), None);
    }

    #[test]
    fn names_and_codes_are_escaped() {
        let named = Named::new(r#"a"b"#, Some("<script>&'"));
        let html = named.to_string();
        assert!(html.contains(r#"title="a&quot;b""#), "{html}");
        assert!(html.contains("&lt;script&gt;&amp;&#x27;"), "{html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn templates_do_not_escape_it_twice() {
        #[derive(askama::Template)]
        #[template(source = "{{ n }}|{{ l }}", ext = "html")]
        struct Page {
            n: Named,
            l: NamedList,
        }
        let n = names();
        let page = Page {
            n: n.department("pd-zwfw"),
            l: n.departments(&["pd-zwfw", "gone"]),
        };
        let html = askama::Template::render(&page).unwrap();
        assert!(html.starts_with(r#"<span class="named""#), "{html}");
        assert!(
            html.contains(r#", <span class="code unknown">gone</span>"#),
            "{html}"
        );
    }
}
