//! Request extractors whose rejections are problem+json, and the caller's
//! identity.

use super::AppState;
use super::problem::Problem;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tongban_catalog::Role;
use tongban_core::auth::Identity;

/// `axum::Json` with problem+json rejections.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;
    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        Ok(Json(axum::Json::<T>::from_request(req, state).await?.0))
    }
}

/// `axum::extract::Query` with problem+json rejections.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Ok(Query(
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await?
                .0,
        ))
    }
}

/// `axum::extract::Path` with problem+json rejections.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Ok(Path(
            axum::extract::Path::<T>::from_request_parts(parts, state)
                .await?
                .0,
        ))
    }
}

/// Any authenticated caller: `Authorization: Bearer <token>`.
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        // A header that is not text is as good as none: the certificate
        // (mTLS), if any, decides.
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|h| h.to_str().unwrap_or(""));
        let certificate = match parts.extensions.get() {
            Some(tongban_core::tls::PeerCertificate(Some(fp))) => Some(fp.as_str()),
            _ => None,
        };
        state
            .identities
            .identify(header, certificate)
            .map(Caller)
            .map_err(Problem::from)
    }
}

/// A caller with the data-office role, the only one that edits the directory.
pub struct DataOffice(pub Identity);

impl FromRequestParts<AppState> for DataOffice {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Caller(identity) = Caller::from_request_parts(parts, state).await?;
        if identity.role != Role::DataOffice {
            return Err(Problem::forbidden(format!(
                "department '{}' may read the directory; only the data office edits it",
                identity.department
            )));
        }
        Ok(DataOffice(identity))
    }
}
