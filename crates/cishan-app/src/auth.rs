//! Accounts, passwords (argon2id) and sessions. A session token is random and only its SHA-256
//! is stored, so a copy of the database cannot be used to sign in.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};

use cishan_store::{format_instant, parse_instant, NewEntry, SessionRow, UserRow};

use crate::{App, AppError, Result};

/// How long a session lasts without signing in again.
pub const SESSION_HOURS: i64 = 12;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Failed sign-ins for one username, within [`LOCKOUT_MINUTES`], before further attempts are
/// refused without checking the password.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// The window failed sign-ins are counted in, and how long a locked username waits.
pub const LOCKOUT_MINUTES: i64 = 15;
/// Longest username accepted.
pub const MAX_USERNAME_CHARS: usize = 64;

/// What an account may do. Scopes by organization and street arrive with the roles that need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// District administrator: everything, including indicator actuals and accounts.
    Admin,
    /// District staff: records data, cannot manage accounts.
    Staff,
    /// A participant (person) signed in on the personal side: sees their own record, code,
    /// hours and points; never records data or sees staff pages.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Member => "member",
        }
    }

    fn parse(text: &str) -> Result<Role> {
        match text {
            "admin" => Ok(Role::Admin),
            "staff" => Ok(Role::Staff),
            "member" => Ok(Role::Member),
            other => Err(AppError::internal(std::io::Error::other(format!(
                "unknown role `{other}` in users table"
            )))),
        }
    }
}

/// Who is acting: a signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Actor {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The participant this account belongs to (members always have one; staff may).
    pub participant_id: Option<String>,
}

impl Actor {
    /// Fails unless the actor is district staff or an administrator (not a member).
    pub fn require_staff(&self) -> Result<()> {
        match self.role {
            Role::Admin | Role::Staff => Ok(()),
            Role::Member => Err(AppError::forbidden()),
        }
    }

    /// True for staff and administrators.
    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Staff)
    }

    /// Fails unless the actor is an administrator.
    pub fn require_admin(&self) -> Result<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }
}

/// A live session: who, and the token that forms must echo back (CSRF protection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub actor: Actor,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

/// How long a session read from the database is used without reading it again.
pub const SESSION_CACHE_SECONDS: i64 = 1;
/// Sessions remembered at most; beyond this the memory starts again empty.
const SESSION_CACHE_ENTRIES: usize = 10_000;

/// Sessions recently read, by token hash, with the instant each was read.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Timestamp, SessionInfo)>>,
}

impl SessionCache {
    fn get(&self, hash: &str, now: Timestamp) -> Option<SessionInfo> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (read_at, info) = entries.get(hash)?;
        let fresh = now.duration_since(*read_at) < SignedDuration::from_secs(SESSION_CACHE_SECONDS)
            && *read_at <= now;
        (fresh && info.expires_at > now).then(|| info.clone())
    }

    fn put(&self, hash: String, info: SessionInfo, now: Timestamp) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= SESSION_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (now, info));
    }

    fn forget(&self, hash: &str) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(hash);
    }
}

/// A session just created: the token goes into a cookie and is never stored in clear.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub info: SessionInfo,
}

/// A random URL-safe token of 32 bytes.
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::thread_rng());
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(std::io::Error::other(e.to_string())))
}

pub(crate) fn actor_of(user: &UserRow) -> Result<Actor> {
    Ok(Actor {
        user_id: user.id.clone(),
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        role: Role::parse(&user.role)?,
        participant_id: user.participant_id.clone(),
    })
}

fn bad_login() -> AppError {
    AppError {
        kind: crate::ErrorKind::Unauthenticated,
        code: "auth.bad_credentials".into(),
        message: "用户名或密码不正确，请重新输入。".into(),
        field: Some("password".into()),
        cause: None,
    }
}

impl App {
    /// Creates an account. `by` is `None` only when the platform bootstraps its first
    /// administrator (demo, or `cishan` set-up); otherwise only administrators may do it.
    pub async fn create_user(
        &self,
        by: Option<&Actor>,
        username: &str,
        display_name: &str,
        password: &str,
        role: Role,
    ) -> Result<Actor> {
        if let Some(by) = by {
            by.require_admin()?;
        }
        let username = username.trim();
        if username.is_empty()
            || username.chars().count() > MAX_USERNAME_CHARS
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(AppError::invalid(
                "username",
                "user.username_invalid",
                format!(
                    "用户名只能包含英文字母、数字和 . _ -，长度 1 到 {MAX_USERNAME_CHARS} 个字符。"
                ),
            ));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AppError::invalid(
                "password",
                "user.password_too_short",
                format!("密码至少需要 {MIN_PASSWORD_CHARS} 个字符，请设置更长的密码。"),
            ));
        }
        let now = self.clock().now();
        let row = UserRow {
            id: format!("usr_{}", &random_token()[..16]),
            username: username.to_owned(),
            display_name: display_name.trim().to_owned(),
            password_hash: hash_password(password)?,
            role: role.as_str().to_owned(),
            created_at: format_instant(now),
            participant_id: None,
        };
        let mut tx = self.store().begin().await?;
        tx.insert(&row).await.map_err(|e| {
            if e.is_unique_violation() {
                AppError::invalid(
                    "username",
                    "user.username_taken",
                    "该用户名已被使用，请换一个。",
                )
            } else {
                e.into()
            }
        })?;
        tx.journal(
            now,
            NewEntry {
                actor: by.map_or_else(|| "system".to_owned(), |a| a.user_id.clone()),
                kind: "user.created".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({ "username": row.username, "role": row.role }),
            },
        )
        .await?;
        tx.commit().await?;
        actor_of(&row)
    }

    /// Finds the account a sign-in names: a username, or (for people) a mobile phone or an ID
    /// number. Returns the account, if any, and the journal subject failures are counted under:
    /// the account's username when one is found (so phone and ID attempts on one account share
    /// one lockout), else a digest (never the phone or ID number itself).
    async fn login_account(&self, name: &str) -> Result<(Option<UserRow>, String)> {
        if let Ok(id) = cishan_core::IdNumber::parse(name) {
            if name.len() >= 15 {
                let digest = self.id_digest(&id);
                let user = match self.store().user_by_id_digest(&digest).await? {
                    Some(u) => Some(u),
                    None => self.store().user_by_username(name).await?,
                };
                let subject = user.as_ref().map_or_else(
                    || format!("login_id_{}", &digest[..24]),
                    |u| format!("login_{}", u.username.to_lowercase()),
                );
                return Ok((user, subject));
            }
        }
        if let Some(phone) =
            crate::participants::normalize_phone(name).filter(|p| crate::participants::is_mobile(p))
        {
            let digest = self.phone_digest(&phone);
            let mut users = self.store().users_by_phone_digest(&digest).await?;
            // A phone that several accounts share names nobody: those people sign in by ID.
            let user = if users.len() == 1 {
                users.pop()
            } else {
                self.store().user_by_username(name).await?
            };
            let subject = user.as_ref().map_or_else(
                || format!("login_phone_{}", &digest[..24]),
                |u| format!("login_{}", u.username.to_lowercase()),
            );
            return Ok((user, subject));
        }
        let user = self.store().user_by_username(name).await?;
        Ok((user, format!("login_{}", name.to_lowercase())))
    }

    /// Checks a username (or a person's mobile phone or ID number) and password and opens a
    /// session. Every failure is journaled, and after [`MAX_FAILED_LOGINS`] failures in
    /// [`LOCKOUT_MINUTES`] the account is refused until the window passes, so passwords cannot
    /// be guessed at the speed of the server.
    pub async fn login(&self, username: &str, password: &str) -> Result<NewSession> {
        let username = username.trim();
        let (user, subject) = self.login_account(username).await?;
        let now = self.clock().now();
        let window_start = now
            .checked_sub(SignedDuration::from_mins(LOCKOUT_MINUTES))
            .map_err(AppError::internal)?;
        let failures = self
            .store()
            .count_journal_since(&subject, "user.login_failed", window_start)
            .await?;
        if failures >= MAX_FAILED_LOGINS {
            return Err(AppError {
                kind: crate::ErrorKind::TooManyAttempts,
                code: "auth.too_many_attempts".into(),
                message: format!(
                    "该账号登录失败次数过多，已暂时锁定。请 {LOCKOUT_MINUTES} 分钟后再试；如忘记密码，请联系管理员。"
                ),
                field: Some("password".into()),
                cause: None,
            });
        }
        let verified = match &user {
            Some(user) => {
                let parsed = PasswordHash::new(&user.password_hash)
                    .map_err(|e| AppError::internal(std::io::Error::other(e.to_string())))?;
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            }
            None => {
                // Hash anyway so a missing account takes as long as a wrong password.
                let _ = hash_password(password);
                false
            }
        };
        let Some(user) = user.filter(|_| verified) else {
            let mut tx = self.store().begin().await?;
            tx.journal(
                now,
                NewEntry {
                    actor: "anonymous".into(),
                    kind: "user.login_failed".into(),
                    subject,
                    payload: serde_json::json!({}),
                },
            )
            .await?;
            tx.commit().await?;
            return Err(bad_login());
        };
        let actor = actor_of(&user)?;
        let expires_at = now
            .checked_add(SignedDuration::from_hours(SESSION_HOURS))
            .map_err(AppError::internal)?;
        let token = random_token();
        let csrf_token = random_token();
        let mut tx = self.store().begin().await?;
        tx.delete_expired_sessions(&format_instant(now)).await?;
        tx.insert(&SessionRow {
            token_hash: token_hash(&token),
            user_id: user.id.clone(),
            csrf_token: csrf_token.clone(),
            created_at: format_instant(now),
            expires_at: format_instant(expires_at),
        })
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: user.id.clone(),
                kind: "user.logged_in".into(),
                subject: user.id.clone(),
                payload: serde_json::json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(NewSession {
            token,
            info: SessionInfo {
                actor,
                csrf_token,
                expires_at,
            },
        })
    }

    /// The live session for a cookie token, or `None` when unknown or expired.
    ///
    /// A session read from the database is remembered for [`SESSION_CACHE_SECONDS`], so an API
    /// client's stream of requests costs one database read a second, not one per request. A
    /// logout through this process forgets it at once; a change made elsewhere (another
    /// process, an account edited in the database) is seen within that second.
    pub async fn session(&self, token: &str) -> Result<Option<SessionInfo>> {
        let hash = token_hash(token);
        let now = self.clock().now();
        if let Some(info) = self.sessions.get(&hash, now) {
            return Ok(Some(info));
        }
        let Some((session, user)) = self.store().session(&hash).await? else {
            return Ok(None);
        };
        let expires_at = parse_instant(&session.expires_at)?;
        if expires_at <= now {
            return Ok(None);
        }
        let info = SessionInfo {
            actor: actor_of(&user)?,
            csrf_token: session.csrf_token,
            expires_at,
        };
        self.sessions.put(hash, info.clone(), now);
        Ok(Some(info))
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> Result<()> {
        let hash = token_hash(token);
        self.sessions.forget(&hash);
        let mut tx = self.store().begin().await?;
        tx.delete_session(&hash).await?;
        tx.commit().await?;
        // Again: a request may have read the session between the first forget and the commit.
        self.sessions.forget(&hash);
        Ok(())
    }
}
