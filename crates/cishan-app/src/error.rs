//! The app layer's one error type. It carries what a person needs to act (a stable code, a
//! Chinese message saying what was wrong and what to do, and the field), and keeps the cause for
//! the log. The web layer maps [`ErrorKind`] to an HTTP status in one place.

use cishan_store::StoreError;

/// What kind of failure, which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is wrong; the message says which field and how to fix it.
    Invalid,
    /// No valid session or credentials.
    Unauthenticated,
    /// Signed in, but this role may not do this.
    Forbidden,
    /// The thing does not exist (or the caller may not know it exists).
    NotFound,
    /// The request conflicts with the current state (a duplicate, an illegal transition).
    Conflict,
    /// Too many failed attempts in a short time; the message says when to try again.
    TooManyAttempts,
    /// Something broke inside; the message is generic and the cause is logged.
    Internal,
}

/// An error a use case returns.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppError {
    pub kind: ErrorKind,
    /// Stable machine code, e.g. `indicator.value_invalid`.
    pub code: String,
    /// Message for a person, in Chinese.
    pub message: String,
    /// The input field at fault, when there is one.
    pub field: Option<String>,
    /// The underlying cause, for the log only (never shown to the caller).
    #[source]
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AppError {
    pub(crate) fn new(
        kind: ErrorKind,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> AppError {
        AppError {
            kind,
            code: code.into(),
            message: message.into(),
            field: None,
            cause: None,
        }
    }

    pub fn invalid(field: &str, code: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError {
            field: Some(field.to_owned()),
            ..AppError::new(ErrorKind::Invalid, code, message)
        }
    }

    pub fn unauthenticated() -> AppError {
        AppError::new(
            ErrorKind::Unauthenticated,
            "auth.required",
            "请先登录后再进行此操作。",
        )
    }

    pub fn forbidden() -> AppError {
        AppError::new(
            ErrorKind::Forbidden,
            "auth.forbidden",
            "您的账号没有执行此操作的权限，请联系管理员。",
        )
    }

    pub fn not_found(what: &str) -> AppError {
        AppError::new(
            ErrorKind::NotFound,
            format!("{what}.not_found"),
            "找不到您要的内容，请检查链接或编号。",
        )
    }

    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::Conflict, code, message)
    }

    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> AppError {
        AppError {
            cause: Some(Box::new(cause)),
            ..AppError::new(
                ErrorKind::Internal,
                "internal",
                "系统内部错误，请稍后重试；如果问题持续，请联系平台管理员。",
            )
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        if let StoreError::Conflict {
            what: "donations",
            key,
        } = &e
        {
            if key.contains("payment_ref") {
                // The unique index caught what the check in `apply_donation` could not see (a
                // duplicate within one group-commit batch); `record_donation` names the donation.
                return AppError {
                    cause: Some(Box::new(e)),
                    ..crate::donations::payment_ref_taken(None)
                };
            }
        }
        if e.is_unique_violation() {
            return AppError {
                cause: Some(Box::new(e)),
                ..AppError::conflict("conflict.duplicate", "该记录已存在，请勿重复提交。")
            };
        }
        AppError::internal(e)
    }
}
