//! The [`Store`] trait: everything the hub asks of the directory.

use crate::Result;
use crate::model::*;
use async_trait::async_trait;

/// The directory's persistence. Every method validates its input first and
/// writes in one transaction: on error nothing has changed.
///
/// [`crate::SqlStore`] implements it for the embedded SQLite catalog and for
/// PostgreSQL from the same migrations; the conformance suite in
/// `catalog/tests/it` runs against both.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds a department; its parent, if any, must exist at a higher level.
    async fn create_department(&self, department: &Department) -> Result<Department>;
    async fn get_department(&self, code: &str) -> Result<Department>;
    /// All departments, by code.
    async fn list_departments(&self) -> Result<Vec<Department>>;

    /// Adds a resource (status `draft` unless the spec says otherwise).
    async fn create_resource(&self, spec: &ResourceSpec) -> Result<Resource>;
    /// Replaces a resource's description and items; bumps its version.
    async fn update_resource(&self, code: &str, spec: &ResourceSpec) -> Result<Resource>;
    /// Moves a resource along draft → published → retired.
    async fn set_resource_status(&self, code: &str, status: Status) -> Result<Resource>;
    async fn get_resource(&self, code: &str) -> Result<Resource>;
    /// Resources matching the query, by code, one page at a time.
    async fn list_resources(&self, query: &ResourceQuery) -> Result<Page<Resource>>;

    /// The whole directory, in import form.
    async fn export(&self) -> Result<Directory>;
    /// Creates or updates every record, all or nothing; an error names the
    /// record's place in the file.
    async fn import(
        &self,
        departments: &[Located<Department>],
        resources: &[Located<ResourceSpec>],
    ) -> Result<ImportReport>;

    /// Makes a dataset version visible. Call it only after its files are complete.
    async fn record_version(&self, version: &NewDatasetVersion) -> Result<DatasetVersion>;
    /// A resource's versions, newest first.
    async fn list_versions(&self, resource: &str) -> Result<Vec<DatasetVersion>>;

    async fn put_token(&self, token: &TokenRecord) -> Result<()>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;
}
