//! Signed codes (一码通): issuing a participant's rotating code and the long-lived codes of
//! activities, certificates and receipts; checking a scanned code; refusing forged, expired and
//! replayed codes; reading a QR code from an uploaded photo. The format is
//! `cishan_core::code`; docs/codes-and-volunteering.md describes it for scanner makers.
//!
//! The signing key lives in `<data_dir>/keys/code.key`, never in the database, and is a key of
//! its own (not the transparency log's): codes are shown on every phone and scanned at every
//! desk, and a key that only signs codes can be replaced without touching the log. The database
//! records the key's id on first start; later starts refuse a missing or different key file,
//! since every code already printed (activities, certificates) would stop verifying.

use std::io::Cursor;
use std::path::Path;

use cishan_core::code::{self, Claim, CodeError, CodeKind, SigningKey, VerifyingKey};
use cishan_core::mask_name;
use cishan_store::{format_instant, NewEntry, Store, WriteTx};
use jiff::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Actor, App, AppError, Clock, ErrorKind, Result};

/// The key file's name inside `<data_dir>/keys`.
pub const CODE_KEY_FILE: &str = "code.key";
/// The setting that records which key signs this database's codes.
const CODE_KEY_ID: &str = "code_key_id";
/// How long before a participant code expires the personal page fetches a new one.
pub const REFRESH_MARGIN_SECONDS: u32 = 15;
/// Largest photo accepted for server-side QR decoding.
pub const MAX_SCAN_IMAGE_BYTES: usize = 8 * 1024 * 1024;
/// Largest photo side, in pixels, decoded (a phone photo is about 4000).
const MAX_SCAN_IMAGE_SIDE: u32 = 6_000;
/// Consumed nonces are kept this long after their code expired, then may be pruned.
const NONCE_KEEP_SECONDS: i64 = 3_600;

/// The code signing key. `Debug` never prints key material.
pub struct CodeKey {
    signing: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodeKey {{ key_id: {} }}", self.key_id)
    }
}

impl CodeKey {
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }
}

/// The public key that verifies codes, as served at `GET /api/v1/codes/key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CodePublicKey {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Standard base64 of the 32-byte public key.
    pub public_key: String,
    /// Hex of the first 8 bytes of SHA-256 of the public key.
    pub key_id: String,
    /// The payload format: `CS1` (see docs/codes-and-volunteering.md).
    pub format: String,
    /// What the signature covers before the body.
    pub signed_prefix: String,
    /// Seconds a participant code is valid.
    pub participant_valid_seconds: u32,
}

/// A participant's current code: the payload, when it stops working, and its QR image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ParticipantCode {
    pub participant_id: String,
    pub payload: String,
    /// RFC 3339 UTC.
    pub issued_at: String,
    pub expires_at: String,
    pub valid_seconds: u32,
    /// Fetch a new code after this many seconds (before the current one expires).
    pub refresh_after_seconds: u32,
    /// The payload as an SVG QR code.
    pub qr_svg: String,
}

/// What a scanned participant code tells the scanner: who, and their tier, and no more unless
/// the scanner's role allows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScannedParticipant {
    pub participant_id: String,
    /// `王*明`; an organization's name in full.
    pub display_name_masked: String,
    /// The name of the points tier the participant's honour points reach under the rules in
    /// force today (`铜牌慈善之星`); none before any rules are published or below every tier.
    pub tier: Option<String>,
    /// The participant's roles (donor, volunteer…): shown to staff only.
    pub roles: Option<Vec<String>>,
    /// When the code stops working (RFC 3339 UTC).
    pub code_expires_at: Option<String>,
}

/// What any scanned code is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScanResult {
    /// `participant`, `activity`, `certificate` or `receipt`.
    pub kind: String,
    /// The id or number the code stands for.
    pub subject: String,
    /// For participant codes.
    pub participant: Option<ScannedParticipant>,
    /// Where to see what the code stands for (activities, certificates, receipts).
    pub link: Option<String>,
    /// For receipts: the public trace of the donation (where every fen went).
    pub trace_link: Option<String>,
    /// For receipts: `issued`, or `voided` when a refund replaced it.
    pub status: Option<String>,
}

/// What a participant code is scanned for. Consuming purposes use the code up: the same
/// payload is refused the second time (a replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// Just see who it is; nothing is recorded.
    Identify,
    CheckIn,
    CheckOut,
    Redeem,
}

impl CodePurpose {
    pub fn parse(text: &str) -> Result<CodePurpose> {
        match text {
            "identify" => Ok(CodePurpose::Identify),
            "check_in" => Ok(CodePurpose::CheckIn),
            "check_out" => Ok(CodePurpose::CheckOut),
            "redeem" => Ok(CodePurpose::Redeem),
            _ => Err(AppError::invalid(
                "purpose",
                "code.purpose_invalid",
                "扫码用途应为 identify、check_in、check_out 或 redeem。",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::Identify => "identify",
            CodePurpose::CheckIn => "check_in",
            CodePurpose::CheckOut => "check_out",
            CodePurpose::Redeem => "redeem",
        }
    }

    pub fn consumes(self) -> bool {
        !matches!(self, CodePurpose::Identify)
    }
}

/// Opens the key that signs this database's codes: created (and its id recorded and journaled)
/// on first start, refused when missing or different later. The file is created by the same
/// routine as the log key (`LogKey::load_or_create`: 32 random bytes, mode 0600, created
/// exclusively).
pub(crate) async fn open_code_key(store: &Store, dir: &Path, clock: &dyn Clock) -> Result<CodeKey> {
    let path = dir.join(CODE_KEY_FILE);
    let recorded = store.setting(CODE_KEY_ID).await?;
    if recorded.is_some() && !cishan_translog::LogKey::exists(&path) {
        return Err(AppError::invalid(
            "data_dir",
            "codes.key_missing",
            format!(
                "这个数据库签发的码（活动码、证书码）用签名密钥签署，但在 {} 找不到密钥文件。请用 --data-dir 指向与该数据库一起创建的数据目录（或从备份恢复密钥）。\n\
                 Codes of this database are signed with a key, but no key file is at {}: point --data-dir at the directory created with this database.",
                path.display(),
                path.display()
            ),
        ));
    }
    let created = cishan_translog::LogKey::load_or_create(&path).map_err(|e| match e {
        cishan_translog::KeyError::Damaged { .. } => AppError::invalid(
            "data_dir",
            "codes.key_invalid",
            format!(
                "码签名密钥文件 {} 已损坏（应为 32 字节）。请从备份恢复。",
                path.display()
            ),
        ),
        other => AppError::internal(other),
    })?;
    let seed: [u8; 32] = std::fs::read(&path)
        .map_err(AppError::internal)?
        .as_slice()
        .try_into()
        .map_err(|_| AppError::internal(std::io::Error::other("code key is not 32 bytes")))?;
    let signing = SigningKey::from_bytes(&seed);
    let key_id = cishan_translog::key_id(&signing.verifying_key());
    debug_assert_eq!(key_id, created.key_id());
    match recorded {
        Some(id) if id == key_id => {}
        Some(_) => {
            return Err(AppError::invalid(
                "data_dir",
                "codes.key_mismatch",
                format!(
                    "{} 中的码签名密钥不是这个数据库所用的密钥。请用 --data-dir 指向与该数据库一起创建的数据目录。\n\
                     The key file at {} is not the key this database's codes are signed with.",
                    path.display(),
                    path.display()
                ),
            ));
        }
        None => {
            let mut tx = store.begin().await?;
            tx.insert_setting(CODE_KEY_ID, &key_id).await?;
            tx.journal(
                clock.now(),
                NewEntry {
                    actor: "system".into(),
                    kind: "codes.key_bound".into(),
                    subject: "codes".into(),
                    payload: serde_json::json!({
                        "key_id": key_id,
                        "public_key": cishan_translog::public_key_base64(&signing.verifying_key()),
                    }),
                },
            )
            .await?;
            tx.commit().await?;
        }
    }
    Ok(CodeKey { signing, key_id })
}

/// The refusal of a code, in the app's error shape (field `field`).
pub(crate) fn code_error(field: &str, e: &CodeError) -> AppError {
    AppError::invalid(field, e.code(), e.message_zh())
}

/// A random nonce for a rotating code.
fn random_nonce() -> u64 {
    rand::Rng::gen(&mut rand::thread_rng())
}

/// A stable nonce for a long-lived code: the same subject always gets the same payload, so a
/// printed code and a freshly rendered page agree.
fn stable_nonce(kind: CodeKind, subject: &str) -> u64 {
    let digest = Sha256::digest(format!("{}:{subject}", kind.as_str()).as_bytes());
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

fn instant_of(seconds: i64) -> String {
    Timestamp::from_second(seconds)
        .map(format_instant)
        .unwrap_or_default()
}

/// `text` as an inline SVG QR code labelled for screen readers (no XML prolog).
pub fn qr_svg(text: &str, label: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| AppError::internal(std::io::Error::other(e.to_string())))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    let label = label.replace(['"', '<', '>', '&'], "");
    Ok(svg[start..].replacen(
        "<svg",
        &format!("<svg class=\"code-qr\" role=\"img\" aria-label=\"{label}\""),
        1,
    ))
}

/// Reads the first QR code in a photo (PNG or JPEG) and returns its text.
pub fn decode_qr_image(bytes: &[u8]) -> Result<String> {
    let unreadable = |detail: &str| {
        AppError::invalid(
            "image",
            "scan.image_unreadable",
            format!("无法从照片中读出二维码（{detail}）。请拍得更近、更清楚，让二维码完整、端正地占据画面，或直接输入码的文字。"),
        )
    };
    if bytes.len() > MAX_SCAN_IMAGE_BYTES {
        return Err(AppError::invalid(
            "image",
            "scan.image_too_large",
            format!(
                "照片不能超过 {} MB，请压缩或裁剪后再上传。",
                MAX_SCAN_IMAGE_BYTES / 1024 / 1024
            ),
        ));
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| unreadable("文件无法读取"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SCAN_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_SCAN_IMAGE_SIDE);
    reader.limits(limits);
    let picture = reader
        .decode()
        .map_err(|_| unreadable("只支持 PNG 或 JPEG 照片"))?
        .to_luma8();
    let (width, height) = picture.dimensions();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        usize::try_from(width).unwrap_or(0),
        usize::try_from(height).unwrap_or(0),
        |x, y| {
            let x = u32::try_from(x).unwrap_or(0);
            let y = u32::try_from(y).unwrap_or(0);
            picture.get_pixel(x, y).0[0]
        },
    );
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode() {
            return Ok(text);
        }
    }
    Err(unreadable("照片中没有找到可识别的二维码"))
}

impl App {
    /// The public key that verifies every code of this platform, offline.
    pub fn code_public_key(&self) -> CodePublicKey {
        let key = self.code_key.verifying_key();
        CodePublicKey {
            algorithm: "ed25519".into(),
            public_key: cishan_translog::public_key_base64(&key),
            key_id: self.code_key.key_id.clone(),
            format: "CS1".into(),
            signed_prefix: "cishan-code-v1\\n".into(),
            participant_valid_seconds: code::PARTICIPANT_VALID_SECONDS,
        }
    }

    fn sign_claim(&self, claim: &Claim) -> Result<String> {
        code::sign(claim, &self.code_key.signing)
            .map_err(|e| AppError::internal(std::io::Error::other(e.to_string())))
    }

    /// A long-lived code for an activity, a certificate or a receipt. The same subject always
    /// gives the same payload (issued at `issued_at`, stable nonce).
    pub fn long_lived_code(
        &self,
        kind: CodeKind,
        subject: &str,
        issued_at: Timestamp,
    ) -> Result<String> {
        debug_assert!(kind != CodeKind::Participant);
        self.sign_claim(&Claim {
            kind,
            subject: subject.to_owned(),
            issued_at: issued_at.as_second(),
            valid_seconds: 0,
            nonce: stable_nonce(kind, subject),
        })
    }

    /// The long-lived signed code of a receipt (kind receipt, subject the receipt number,
    /// issued at the receipt's issue): printed on it as part of its QR link, served in its
    /// document, and answered by [`App::scan`].
    pub async fn receipt_code(&self, number: &str) -> Result<String> {
        let row = self
            .receipt_row(number)
            .await?
            .ok_or_else(|| AppError::not_found("receipt"))?;
        let issued_at: Timestamp = row.issued_at.parse().map_err(AppError::internal)?;
        self.long_lived_code(CodeKind::Receipt, &row.number, issued_at)
    }

    /// A fresh participant code (一码通) for `participant_id`: only the participant themself or
    /// staff may have it made. Valid for [`code::PARTICIPANT_VALID_SECONDS`] seconds.
    pub async fn participant_code(
        &self,
        actor: &Actor,
        participant_id: &str,
    ) -> Result<ParticipantCode> {
        let own = actor.participant_id.as_deref() == Some(participant_id);
        if !own && !actor.is_staff() {
            return Err(AppError::forbidden());
        }
        if self
            .store()
            .participant_name(participant_id)
            .await?
            .is_none()
        {
            return Err(AppError::not_found("participant"));
        }
        let now = self.clock().now().as_second();
        let claim = Claim {
            kind: CodeKind::Participant,
            subject: participant_id.to_owned(),
            issued_at: now,
            valid_seconds: code::PARTICIPANT_VALID_SECONDS,
            nonce: random_nonce(),
        };
        let payload = self.sign_claim(&claim)?;
        let qr_svg = qr_svg(&payload, "我的一码通二维码：出示给工作人员扫描")?;
        Ok(ParticipantCode {
            participant_id: participant_id.to_owned(),
            issued_at: instant_of(now),
            expires_at: instant_of(claim.expires_at().unwrap_or(now)),
            valid_seconds: claim.valid_seconds,
            refresh_after_seconds: claim.valid_seconds - REFRESH_MARGIN_SECONDS,
            payload,
            qr_svg,
        })
    }

    /// Checks a payload's signature and time now; `expected` narrows the kind.
    pub(crate) fn verify_code(
        &self,
        field: &str,
        payload: &str,
        expected: Option<CodeKind>,
    ) -> Result<Claim> {
        let payload = code::extract_payload(payload);
        let now = self.clock().now().as_second();
        let key = self.code_key.verifying_key();
        let checked = match expected {
            Some(kind) => code::verify(payload, &key, now, kind),
            None => code::verify_any(payload, &key, now),
        };
        checked.map_err(|e| code_error(field, &e))
    }

    /// Uses up a participant code inside `tx`: refused as a replay if its nonce was used
    /// before.
    pub(crate) async fn consume_code(
        &self,
        tx: &mut WriteTx,
        field: &str,
        claim: &Claim,
        purpose: CodePurpose,
    ) -> Result<()> {
        let key = format!("{}:{}", claim.subject, claim.nonce_hex());
        let expires = claim.expires_at().unwrap_or(claim.issued_at);
        let fresh = tx
            .use_code_nonce(
                &key,
                &claim.subject,
                purpose.as_str(),
                &format_instant(self.clock().now()),
                &instant_of(expires),
            )
            .await?;
        if fresh {
            Ok(())
        } else {
            Err(replayed(field))
        }
    }

    /// Deletes used nonces of codes that expired more than an hour ago (they are refused as
    /// expired anyway). Returns how many.
    pub async fn prune_code_nonces(&self) -> Result<u64> {
        let mut tx = self.store().begin().await?;
        let pruned = self.prune_code_nonces_in(&mut tx).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    pub(crate) async fn prune_code_nonces_in(&self, tx: &mut WriteTx) -> Result<u64> {
        let before = self.clock().now().as_second() - NONCE_KEEP_SECONDS;
        Ok(tx.prune_code_nonces(&instant_of(before)).await?)
    }

    /// Who a participant code stands for, as the scanner may see them. `show_roles` adds the
    /// participant's roles (staff only).
    pub(crate) async fn scanned_participant(
        &self,
        claim: &Claim,
        show_roles: bool,
    ) -> Result<ScannedParticipant> {
        let (name, kind) = self
            .store()
            .participant_name(&claim.subject)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "payload",
                    "code.participant_unknown",
                    "这个码对应的参与者在本平台不存在（可能已注销）。请勿受理。",
                )
            })?;
        let display_name_masked = if kind == "organization" {
            name
        } else {
            mask_name(&name)
        };
        let roles = if show_roles {
            let mut roles: Vec<String> = self
                .store()
                .participant_roles(&claim.subject)
                .await?
                .into_iter()
                .map(|r| r.role)
                .collect();
            roles.sort();
            roles.dedup();
            Some(roles)
        } else {
            None
        };
        Ok(ScannedParticipant {
            participant_id: claim.subject.clone(),
            display_name_masked,
            tier: self.points_tier(&claim.subject).await?,
            roles,
            code_expires_at: claim.expires_at().map(instant_of),
        })
    }

    /// Resolves a participant code for `purpose` (`identify`, `check_in`, `check_out`,
    /// `redeem`): refuses forged, expired, wrong-kind and (for consuming purposes) replayed
    /// codes with a clear reason, and says who the participant is.
    pub async fn resolve_participant_code(
        &self,
        payload: &str,
        purpose: &str,
    ) -> Result<ScannedParticipant> {
        let purpose = CodePurpose::parse(purpose)?;
        let claim = self.verify_code("payload", payload, Some(CodeKind::Participant))?;
        let scanned = self.scanned_participant(&claim, false).await?;
        if purpose.consumes() {
            let mut tx = self.store().begin().await?;
            self.consume_code(&mut tx, "payload", &claim, purpose)
                .await?;
            tx.commit().await?;
        }
        Ok(scanned)
    }

    /// What a scanned code is (`POST /api/v1/scan`): any signed-in account may scan; a
    /// participant code shows the masked name and tier, and the roles to staff; a receipt code
    /// its number, status, the receipt page and the donation's trace. Scanning only looks: it
    /// uses nothing up.
    pub async fn scan(&self, actor: &Actor, payload: &str) -> Result<ScanResult> {
        let claim = self.verify_code("payload", payload, None)?;
        let mut result = ScanResult {
            kind: claim.kind.as_str().to_owned(),
            subject: claim.subject.clone(),
            participant: None,
            link: None,
            trace_link: None,
            status: None,
        };
        // Ids and numbers are ASCII letters, digits, `-` and `_`: safe in a path as they are.
        let subject = &claim.subject;
        match claim.kind {
            CodeKind::Participant => {
                result.participant =
                    Some(self.scanned_participant(&claim, actor.is_staff()).await?);
            }
            CodeKind::Activity => result.link = Some(format!("/activities/{subject}")),
            CodeKind::Certificate => result.link = Some(format!("/certificates/{subject}")),
            CodeKind::Receipt => {
                // Signed by this platform, so the receipt existed; it is never deleted.
                let row = self.receipt_row(&claim.subject).await?.ok_or_else(|| {
                    AppError::invalid(
                        "payload",
                        "code.receipt_unknown",
                        "这个码对应的票据在本平台不存在。请勿凭此码受理，并联系平台核实。",
                    )
                })?;
                result.link = Some(format!("/receipts/{subject}"));
                result.trace_link = Some(format!("/trace/{}", row.donation_id));
                result.status = Some(row.state);
            }
        }
        Ok(result)
    }
}

fn replayed(field: &str) -> AppError {
    AppError {
        kind: ErrorKind::Conflict,
        code: "code.replayed".into(),
        message: "这个码已经使用过（同一个码只能用一次，截图或重复出示无效）。请让对方刷新页面后出示新码。".into(),
        field: Some(field.to_owned()),
        cause: None,
    }
}
