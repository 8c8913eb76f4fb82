//! How an error is answered: the status that [`ServiceError::answer`]
//! picks (the same the web UI uses), with the message as [`ApiError`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tandem_protocol::api::ApiError;

use crate::error::ServiceError;

/// What a JSON handler answers.
pub type ApiResult<T> = Result<Json<T>, ServiceError>;

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.answer()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(ApiError {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}
