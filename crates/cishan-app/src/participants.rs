//! Participants (参与方): one record per person (real name, ID number validated) or organization
//! (credit code validated), with roles attached — donor, volunteer, beneficiary, partner, staff —
//! rather than an account per role. People may sign in (phone or ID number + password) to their
//! personal page; see [`App::register_self`] and the login in `auth.rs`.
//!
//! ID numbers and phones are stored as a keyed digest (exact lookup), a ciphertext (the vault)
//! and a masked form (display); nothing here logs or journals them.

use cishan_core::{mask_phone, CreditCode, IdNumber};
use cishan_store::{
    format_instant, NewEntry, ParticipantRecord, ParticipantRoleRow, UserRow, VolunteerRecord,
    WriteTx,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{hash_password, MIN_PASSWORD_CHARS};
use crate::{Actor, App, AppError, Result, Role};

/// The roles a participant can hold.
pub const ROLES: [&str; 5] = ["donor", "volunteer", "beneficiary", "partner", "staff"];
/// Longest name accepted (people and organizations).
pub const MAX_NAME_CHARS: usize = 60;

/// The Chinese label of a role.
pub fn role_label(role: &str) -> &'static str {
    match role {
        "donor" => "捐赠人",
        "volunteer" => "志愿者",
        "beneficiary" => "受助人",
        "partner" => "合作伙伴",
        "staff" => "工作人员",
        _ => "其他",
    }
}

/// A person to register (by staff, or through a roster import).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct PersonInput {
    /// Real name (实名).
    pub name: String,
    /// 18-character resident ID number (an old 15-digit one is converted).
    pub id_number: String,
    /// Mobile (11 digits) or landline with area code; optional.
    #[serde(default)]
    pub phone: Option<String>,
    /// A division code of the region pack (street or community); optional.
    #[serde(default)]
    pub division_code: Option<String>,
    /// Roles to attach at once.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// An organization to register.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct OrganizationInput {
    pub name: String,
    /// 18-character unified social credit code (统一社会信用代码).
    pub credit_code: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub division_code: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// What a person fills in to register themselves on the personal side.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SelfRegistration {
    pub name: String,
    pub id_number: String,
    pub phone: String,
    #[serde(default)]
    pub division_code: Option<String>,
    pub password: String,
}

/// One role as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub role: String,
    pub label: String,
    pub org_id: Option<String>,
    pub granted_at: String,
}

/// A participant as staff or the person themself sees it: identifiers masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ParticipantView {
    pub id: String,
    /// `person` or `organization`.
    pub kind: String,
    pub display_name: String,
    /// `110105********1234`.
    pub id_number_masked: Option<String>,
    /// `138****5678`.
    pub phone_masked: Option<String>,
    pub credit_code: Option<String>,
    pub division_code: Option<String>,
    pub division_name: Option<String>,
    /// `male` / `female`.
    pub sex: Option<String>,
    /// `YYYY-MM`.
    pub birth_month: Option<String>,
    pub roles: Vec<RoleView>,
    pub volunteer_number: Option<String>,
    /// True when the person has a sign-in account.
    pub has_account: bool,
    pub created_at: String,
}

/// A person's validated fields, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct ValidPerson {
    pub(crate) name: String,
    pub(crate) id_number: IdNumber,
    pub(crate) phone: Option<String>,
    pub(crate) division_code: Option<String>,
}

/// A random participant id (`ptc_` and 20 hex digits).
pub(crate) fn new_participant_id() -> String {
    let mut bytes = [0_u8; 10];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    format!("ptc_{}", hex::encode(bytes))
}

/// Trims and checks a real name.
pub(crate) fn valid_name(field: &str, text: &str) -> Result<String> {
    let name: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(AppError::invalid(
            field,
            "participant.name_missing",
            "请填写姓名（与身份证上一致）。",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "participant.name_invalid",
            format!("姓名不能超过 {MAX_NAME_CHARS} 个字，也不能包含控制字符。"),
        ));
    }
    Ok(name)
}

/// Parses an ID number, with the field named in the error.
pub(crate) fn valid_id_number(field: &str, text: &str) -> Result<IdNumber> {
    if text.trim().is_empty() {
        return Err(AppError::invalid(
            field,
            "id_number.missing",
            "请填写身份证号码。",
        ));
    }
    IdNumber::parse(text).map_err(|e| AppError::invalid(field, e.code(), e.message_zh()))
}

/// Normalises a phone number: spaces and dashes removed, a `+86`/`86` prefix dropped. Accepts a
/// mainland mobile (11 digits, `1[3-9]…`) or a landline with area code (`0` + 9–11 digits).
pub fn normalize_phone(text: &str) -> Option<String> {
    let digits: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '－' | '(' | ')' | '（' | '）'))
        .collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .map(str::to_owned)
        .unwrap_or(digits);
    let digits = if digits.len() == 13 && digits.starts_with("86") {
        digits[2..].to_owned()
    } else {
        digits
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let b = digits.as_bytes();
    let mobile = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
    let landline = (10..=12).contains(&b.len()) && b[0] == b'0';
    (mobile || landline).then_some(digits)
}

/// True for a mainland mobile number (what a person signs in with).
pub fn is_mobile(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with('1') && phone.chars().all(|c| c.is_ascii_digit())
}

pub(crate) fn valid_phone(field: &str, text: &str) -> Result<String> {
    normalize_phone(text).ok_or_else(|| {
        AppError::invalid(
            field,
            "phone.invalid",
            "手机号码应为 11 位数字（以 1 开头），固定电话请带区号，例如 0577-88886666。",
        )
    })
}

/// The role whose holders are registered volunteers (a `volunteers` row, a volunteer number).
pub const VOLUNTEER_ROLE: &str = "volunteer";

/// The volunteer number of a registration that no roster numbered: `ZY` and the first `digits`
/// hex digits of the person's ID-number digest, the form roster import derives, so a roster
/// imported later finds the person already registered under the same number. Without an ID
/// number (an organization, a record made without one) the digits come from SHA-256 of the
/// participant id. Neither reveals the ID number to anyone without the lookup key.
fn derived_volunteer_number(record: &ParticipantRecord, digits: usize) -> String {
    let source = record
        .id_number_digest
        .clone()
        .unwrap_or_else(|| hex::encode(Sha256::digest(record.id.as_bytes())));
    let digits = digits.min(source.len());
    format!("ZY{}", source[..digits].to_ascii_uppercase())
}

fn valid_role(field: &str, role: &str) -> Result<String> {
    let role = role.trim();
    if ROLES.contains(&role) {
        Ok(role.to_owned())
    } else {
        Err(AppError::invalid(
            field,
            "participant.role_invalid",
            "角色只能是 donor（捐赠人）、volunteer（志愿者）、beneficiary（受助人）、partner（合作伙伴）或 staff（工作人员）。",
        ))
    }
}

impl App {
    /// The keyed digest a phone is found by (its own namespace, apart from ID numbers).
    pub(crate) fn phone_digest(&self, phone: &str) -> String {
        self.vault().digest(&format!("phone|{phone}"))
    }

    /// The keyed digest an ID number is found by (as the demo data and donors use).
    pub(crate) fn id_digest(&self, id: &IdNumber) -> String {
        self.vault().digest(id.expose())
    }

    /// Registers `record` as a volunteer inside `tx` unless it is one already (the volunteer
    /// role and the registration go together: attaching the role is registering). Writes the
    /// `volunteers` row with the store's insert roster import uses; returns the new volunteer
    /// number, or `None` when the participant was registered before (their number is kept).
    /// The caller holds `lock_writes`, so two registrations cannot race for a number.
    pub(crate) async fn register_volunteer_in(
        &self,
        tx: &mut WriteTx,
        record: &ParticipantRecord,
        now: &str,
    ) -> Result<Option<String>> {
        if !tx
            .volunteers_of(std::slice::from_ref(&record.id))
            .await?
            .is_empty()
        {
            return Ok(None);
        }
        // A roster may have given the derived number to someone else: take more digits.
        for digits in [12, 16, 20, 24, 32] {
            let number = derived_volunteer_number(record, digits);
            if !tx
                .volunteer_numbers_taken(std::slice::from_ref(&number))
                .await?
                .is_empty()
            {
                continue;
            }
            tx.insert_all(&[VolunteerRecord {
                participant_id: record.id.clone(),
                volunteer_number: number.clone(),
                registered_at: now.to_owned(),
                skills: String::new(),
            }])
            .await?;
            return Ok(Some(number));
        }
        Err(AppError::conflict(
            "volunteer.number_taken",
            "无法为此人生成未被占用的志愿者编号，请通过导入志愿者名册为其指定编号。",
        ))
    }

    /// Checks a division code against the region pack.
    pub(crate) fn valid_division(&self, field: &str, code: Option<&str>) -> Result<Option<String>> {
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        if self.pack().division(code).is_some() {
            Ok(Some(code.to_owned()))
        } else {
            Err(AppError::invalid(
                field,
                "division.unknown",
                format!(
                    "区划代码不在{}的区划中，请从列表中选择街道或社区。",
                    self.pack().name
                ),
            ))
        }
    }

    pub(crate) fn validate_person(&self, input: &PersonInput) -> Result<ValidPerson> {
        let name = valid_name("name", &input.name)?;
        let id_number = valid_id_number("id_number", &input.id_number)?;
        let phone = match input.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(valid_phone("phone", p)?),
        };
        let division_code = self.valid_division("division_code", input.division_code.as_deref())?;
        Ok(ValidPerson {
            name,
            id_number,
            phone,
            division_code,
        })
    }

    /// The stored row of a validated person.
    pub(crate) fn person_record(&self, id: &str, p: &ValidPerson, now: &str) -> ParticipantRecord {
        let birth = p.id_number.birth_date();
        ParticipantRecord {
            id: id.to_owned(),
            kind: "person".into(),
            display_name: p.name.clone(),
            id_number_digest: Some(self.id_digest(&p.id_number)),
            id_number_masked: Some(p.id_number.masked()),
            id_number_cipher: Some(self.vault().encrypt(p.id_number.expose())),
            phone_digest: p.phone.as_deref().map(|ph| self.phone_digest(ph)),
            phone_masked: p.phone.as_deref().map(mask_phone),
            phone_cipher: p.phone.as_deref().map(|ph| self.vault().encrypt(ph)),
            credit_code: None,
            sex: Some(
                if p.id_number.is_male() {
                    "male"
                } else {
                    "female"
                }
                .to_owned(),
            ),
            birth_month: Some(format!("{:04}-{:02}", birth.year(), birth.month())),
            division_code: p.division_code.clone(),
            created_at: now.to_owned(),
            updated_at: None,
            synthetic: false,
        }
    }

    /// Staff register a person. An ID number already registered is refused, naming the record.
    pub async fn register_person(
        &self,
        actor: &Actor,
        input: &PersonInput,
    ) -> Result<ParticipantView> {
        actor.require_staff()?;
        let valid = self.validate_person(input)?;
        let roles = input
            .roles
            .iter()
            .map(|r| valid_role("roles", r))
            .collect::<Result<Vec<_>>>()?;
        let digest = self.id_digest(&valid.id_number);
        if let Some(existing) = self.store().participant_by_id_digest(&digest).await? {
            return Err(already_registered(&existing.id));
        }
        let now = format_instant(self.clock().now());
        let row = self.person_record(&new_participant_id(), &valid, &now);
        self.insert_participant(actor, &row, &roles, &now).await?;
        self.participant_view(actor, &row.id).await
    }

    /// Staff register an organization by its credit code.
    pub async fn register_organization(
        &self,
        actor: &Actor,
        input: &OrganizationInput,
    ) -> Result<ParticipantView> {
        actor.require_staff()?;
        let name = valid_name("name", &input.name)?;
        let code = CreditCode::parse(&input.credit_code)
            .map_err(|e| AppError::invalid("credit_code", e.code(), e.message_zh()))?;
        let phone = match input.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(valid_phone("phone", p)?),
        };
        let division_code = self.valid_division("division_code", input.division_code.as_deref())?;
        let roles = input
            .roles
            .iter()
            .map(|r| valid_role("roles", r))
            .collect::<Result<Vec<_>>>()?;
        if let Some(existing) = self
            .store()
            .participant_by_credit_code(code.as_str())
            .await?
        {
            return Err(AppError {
                field: Some("credit_code".into()),
                ..AppError::conflict(
                    "participant.credit_code_taken",
                    format!("该统一社会信用代码已登记（参与方编号 {}）。", existing.id),
                )
            });
        }
        let now = format_instant(self.clock().now());
        let row = ParticipantRecord {
            id: new_participant_id(),
            kind: "organization".into(),
            display_name: name,
            phone_digest: phone.as_deref().map(|ph| self.phone_digest(ph)),
            phone_masked: phone.as_deref().map(mask_phone),
            phone_cipher: phone.as_deref().map(|ph| self.vault().encrypt(ph)),
            credit_code: Some(code.as_str().to_owned()),
            division_code,
            created_at: now.clone(),
            ..ParticipantRecord::default()
        };
        self.insert_participant(actor, &row, &roles, &now).await?;
        self.participant_view(actor, &row.id).await
    }

    async fn insert_participant(
        &self,
        actor: &Actor,
        row: &ParticipantRecord,
        roles: &[String],
        now: &str,
    ) -> Result<()> {
        let volunteer = roles.iter().any(|r| r == VOLUNTEER_ROLE);
        let mut tx = self.store().begin().await?;
        if volunteer {
            // Volunteer numbers are checked, then taken: one writer at a time.
            tx.lock_writes().await?;
        }
        tx.insert(row).await.map_err(|e| {
            if e.is_unique_violation() {
                AppError {
                    field: Some(
                        if row.kind == "person" {
                            "id_number"
                        } else {
                            "credit_code"
                        }
                        .into(),
                    ),
                    ..AppError::conflict(
                        "participant.already_registered",
                        "该身份证号或信用代码已登记，请先查询再修改。",
                    )
                }
            } else {
                e.into()
            }
        })?;
        for role in roles {
            tx.grant_role(&ParticipantRoleRow {
                participant_id: row.id.clone(),
                role: role.clone(),
                org_id: None,
                granted_by: actor.user_id.clone(),
                granted_at: now.to_owned(),
            })
            .await?;
        }
        let volunteer_number = if volunteer {
            self.register_volunteer_in(&mut tx, row, now).await?
        } else {
            None
        };
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "participant.registered".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "kind": row.kind,
                    "roles": roles,
                    "division_code": row.division_code,
                    "has_phone": row.phone_digest.is_some(),
                    "volunteer_number": volunteer_number,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A person registers themself with a password and gets a member account. A record the
    /// office already made (e.g. from a roster) is claimed when the name matches and, if the
    /// record has a phone, the phone matches too; a record that already has an account is
    /// refused (sign in instead).
    pub async fn register_self(&self, input: &SelfRegistration) -> Result<Actor> {
        let valid = self.validate_person(&PersonInput {
            name: input.name.clone(),
            id_number: input.id_number.clone(),
            phone: Some(input.phone.clone()),
            division_code: input.division_code.clone(),
            roles: Vec::new(),
        })?;
        let phone = match &valid.phone {
            Some(p) if is_mobile(p) => p.clone(),
            _ => {
                return Err(AppError::invalid(
                    "phone",
                    "phone.mobile_required",
                    "请填写本人的 11 位手机号码，登录时可以用它。",
                ))
            }
        };
        if input.password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AppError::invalid(
                "password",
                "user.password_too_short",
                format!("密码至少需要 {MIN_PASSWORD_CHARS} 个字符，请设置更长的密码。"),
            ));
        }
        let digest = self.id_digest(&valid.id_number);
        let existing = self.store().participant_by_id_digest(&digest).await?;
        if let Some(existing) = &existing {
            if self
                .store()
                .user_by_participant(&existing.id)
                .await?
                .is_some()
            {
                return Err(AppError::invalid(
                    "id_number",
                    "participant.account_exists",
                    "该身份证号已注册账号，请直接登录；如忘记密码，请联系社区或平台工作人员。",
                ));
            }
        }
        let phone_digest = self.phone_digest(&phone);
        if !self
            .store()
            .users_by_phone_digest(&phone_digest)
            .await?
            .is_empty()
        {
            return Err(AppError::invalid(
                "phone",
                "phone.taken",
                "该手机号已被其他账号使用。请直接登录，或换一个手机号。",
            ));
        }
        let now_ts = self.clock().now();
        let now = format_instant(now_ts);
        let (row, claimed) = match existing {
            Some(existing) => {
                let phone_matches = existing
                    .phone_digest
                    .as_deref()
                    .is_none_or(|d| d == phone_digest);
                if existing.display_name != valid.name || !phone_matches {
                    return Err(AppError::invalid(
                        "id_number",
                        "participant.claim_mismatch",
                        "该身份证号已由工作人员登记，但姓名或手机号与登记信息不一致。请核对，或到社区服务点办理。",
                    ));
                }
                let mut row = existing;
                row.phone_digest = Some(phone_digest.clone());
                row.phone_masked = Some(mask_phone(&phone));
                row.phone_cipher = Some(self.vault().encrypt(&phone));
                if valid.division_code.is_some() {
                    row.division_code = valid.division_code.clone();
                }
                row.updated_at = Some(now.clone());
                (row, true)
            }
            None => (
                self.person_record(&new_participant_id(), &valid, &now),
                false,
            ),
        };
        let user = UserRow {
            id: format!("usr_{}", &crate::auth::random_token()[..16]),
            username: row.id.clone(),
            display_name: row.display_name.clone(),
            password_hash: hash_password(&input.password)?,
            role: Role::Member.as_str().to_owned(),
            created_at: now.clone(),
            participant_id: Some(row.id.clone()),
        };
        let mut tx = self.store().begin().await?;
        if claimed {
            tx.update_participant(&row).await?;
        } else {
            tx.insert(&row).await.map_err(|e| {
                if e.is_unique_violation() {
                    AppError::invalid(
                        "id_number",
                        "participant.already_registered",
                        "该身份证号刚刚被登记，请稍后重试或直接登录。",
                    )
                } else {
                    e.into()
                }
            })?;
        }
        tx.insert(&user).await.map_err(|e| {
            if e.is_unique_violation() {
                AppError::invalid(
                    "id_number",
                    "participant.account_exists",
                    "该身份证号已注册账号，请直接登录。",
                )
            } else {
                e.into()
            }
        })?;
        tx.journal(
            now_ts,
            NewEntry {
                actor: user.id.clone(),
                kind: if claimed {
                    "participant.account_claimed"
                } else {
                    "participant.self_registered"
                }
                .into(),
                subject: row.id.clone(),
                payload: serde_json::json!({ "user_id": user.id, "division_code": row.division_code }),
            },
        )
        .await?;
        tx.commit().await?;
        crate::auth::actor_of(&user)
    }

    /// Attaches a role (within an organization when `org_id` is given). Attaching a role the
    /// participant already holds changes nothing. Attaching `volunteer` also registers the
    /// participant as a volunteer (a volunteer number, so they can check in), once.
    pub async fn attach_role(
        &self,
        actor: &Actor,
        participant_id: &str,
        role: &str,
        org_id: Option<&str>,
    ) -> Result<ParticipantView> {
        actor.require_staff()?;
        let role = valid_role("role", role)?;
        let record = self
            .store()
            .participant_record(participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        let org_id = org_id.map(str::trim).filter(|o| !o.is_empty());
        if let Some(org) = org_id {
            if !self.store().organization_exists(org).await? {
                return Err(AppError::invalid(
                    "org_id",
                    "organization.unknown",
                    "找不到该机构编号（org_…），请核对。",
                ));
            }
        }
        self.grant_role_as(actor, &record, &role, org_id).await?;
        self.participant_view(actor, participant_id).await
    }

    /// A signed-in person registers themself as a volunteer (志愿者注册), as the national
    /// measures allow: the volunteer role and a volunteer number, once; registering again
    /// changes nothing. Only a person with a real-name record (ID number) may, since service
    /// records and certificates carry it.
    pub async fn register_self_as_volunteer(&self, actor: &Actor) -> Result<ParticipantView> {
        let participant_id = actor
            .participant_id
            .as_deref()
            .ok_or_else(AppError::forbidden)?;
        let record = self
            .store()
            .participant_record(participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        if record.kind != "person" || record.id_number_digest.is_none() {
            return Err(AppError::conflict(
                "volunteer.real_name_required",
                "志愿者注册需要实名（身份证号）登记。请到社区服务点办理实名登记后再注册。",
            ));
        }
        self.grant_role_as(actor, &record, VOLUNTEER_ROLE, None)
            .await?;
        self.participant_view(actor, participant_id).await
    }

    /// Gives `record` the role (checked by the caller) and, for `volunteer`, its registration,
    /// in one transaction; journaled when anything changed.
    async fn grant_role_as(
        &self,
        actor: &Actor,
        record: &ParticipantRecord,
        role: &str,
        org_id: Option<&str>,
    ) -> Result<()> {
        let participant_id = record.id.as_str();
        let now = self.clock().now();
        let now_text = format_instant(now);
        let volunteer = role == VOLUNTEER_ROLE;
        let mut tx = self.store().begin().await?;
        if volunteer {
            // Volunteer numbers are checked, then taken: one writer at a time.
            tx.lock_writes().await?;
        }
        let added = tx
            .grant_role(&ParticipantRoleRow {
                participant_id: participant_id.to_owned(),
                role: role.to_owned(),
                org_id: org_id.map(str::to_owned),
                granted_by: actor.user_id.clone(),
                granted_at: now_text.clone(),
            })
            .await?;
        // Also when the role was held already: a role attached before registration came with
        // it gets its registration now.
        let volunteer_number = if volunteer {
            self.register_volunteer_in(&mut tx, record, &now_text)
                .await?
        } else {
            None
        };
        if added || volunteer_number.is_some() {
            tx.journal(
                now,
                NewEntry {
                    actor: actor.user_id.clone(),
                    kind: "participant.role_attached".into(),
                    subject: participant_id.to_owned(),
                    payload: serde_json::json!({
                        "role": role, "org_id": org_id, "volunteer_number": volunteer_number,
                    }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Detaches a role; detaching one the participant does not hold is refused.
    pub async fn detach_role(
        &self,
        actor: &Actor,
        participant_id: &str,
        role: &str,
        org_id: Option<&str>,
    ) -> Result<ParticipantView> {
        actor.require_staff()?;
        let role = valid_role("role", role)?;
        let org_id = org_id.map(str::trim).filter(|o| !o.is_empty());
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        if !tx.revoke_role(participant_id, &role, org_id).await? {
            return Err(AppError::invalid(
                "role",
                "participant.role_not_held",
                format!("该参与方没有“{}”角色，无需移除。", role_label(&role)),
            ));
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "participant.role_detached".into(),
                subject: participant_id.to_owned(),
                payload: serde_json::json!({ "role": role, "org_id": org_id }),
            },
        )
        .await?;
        tx.commit().await?;
        self.participant_view(actor, participant_id).await
    }

    /// Staff find people by exact ID number or phone (never by partial text).
    pub async fn find_participants(
        &self,
        actor: &Actor,
        query: &str,
    ) -> Result<Vec<ParticipantView>> {
        actor.require_staff()?;
        let query = query.trim();
        let ids: Vec<String> = if let Ok(id) = IdNumber::parse(query) {
            self.store()
                .participant_by_id_digest(&self.id_digest(&id))
                .await?
                .map(|p| p.id)
                .into_iter()
                .collect()
        } else if let Some(phone) = normalize_phone(query) {
            self.store()
                .participants_by_phone_digest(&self.phone_digest(&phone))
                .await?
                .into_iter()
                .map(|p| p.id)
                .collect()
        } else if let Ok(code) = CreditCode::parse(query) {
            self.store()
                .participant_by_credit_code(code.as_str())
                .await?
                .map(|p| p.id)
                .into_iter()
                .collect()
        } else if query.starts_with("ptc_") {
            vec![query.to_owned()]
        } else {
            return Err(AppError::invalid(
                "q",
                "participant.query_invalid",
                "请输入完整的身份证号、手机号、统一社会信用代码或参与方编号（ptc_…）。",
            ));
        };
        let mut views = Vec::new();
        for id in ids {
            match self.participant_view(actor, &id).await {
                Ok(v) => views.push(v),
                Err(e) if e.kind == crate::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(views)
    }

    /// One participant, identifiers masked: staff see anyone, a member only themself.
    pub async fn participant_view(&self, actor: &Actor, id: &str) -> Result<ParticipantView> {
        if !actor.is_staff() && actor.participant_id.as_deref() != Some(id) {
            return Err(AppError::forbidden());
        }
        let p = self
            .store()
            .participant_record(id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        let roles = self
            .store()
            .participant_roles(id)
            .await?
            .into_iter()
            .map(|r| RoleView {
                label: role_label(&r.role).to_owned(),
                role: r.role,
                org_id: r.org_id,
                granted_at: r.granted_at,
            })
            .collect();
        let has_account = self.store().user_by_participant(id).await?.is_some();
        let volunteer_number = self.store().volunteer_number(id).await?;
        let division_name = p
            .division_code
            .as_deref()
            .and_then(|c| self.pack().division(c))
            .map(|d| d.name.clone());
        Ok(ParticipantView {
            id: p.id,
            kind: p.kind,
            display_name: p.display_name,
            id_number_masked: p.id_number_masked,
            phone_masked: p.phone_masked,
            credit_code: p.credit_code,
            division_code: p.division_code,
            division_name,
            sex: p.sex,
            birth_month: p.birth_month,
            roles,
            volunteer_number,
            has_account,
            created_at: p.created_at,
        })
    }

    /// The signed-in member's own record.
    pub async fn my_participant(&self, actor: &Actor) -> Result<ParticipantView> {
        let id = actor.participant_id.clone().ok_or_else(|| {
            AppError {
                code: "me.no_participant".into(),
                message: "此账号是工作人员账号，没有个人参与档案（一码通、积分、服务时长只属于个人或机构）。请用个人账号（手机号或身份证号）登录查看。".into(),
                ..AppError::not_found("participant")
            }
        })?;
        self.participant_view(actor, &id).await
    }
}

fn already_registered(existing_id: &str) -> AppError {
    AppError {
        field: Some("id_number".into()),
        ..AppError::conflict(
            "participant.already_registered",
            format!("该身份证号已登记（参与方编号 {existing_id}），无需重复登记；如需增加角色，请在该记录上添加。"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(
            normalize_phone("138 0013 8000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("+86 138-0013-8000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("8613800138000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("0577-88886666").as_deref(),
            Some("057788886666")
        );
        assert_eq!(normalize_phone("12800138000"), None, "no mobile starts 12");
        assert_eq!(normalize_phone("1380013800"), None, "10 digits");
        assert_eq!(normalize_phone("138001380001"), None, "12 digits");
        assert_eq!(normalize_phone("1380013800a"), None);
        assert!(is_mobile("13800138000"));
        assert!(!is_mobile("057788886666"));
    }

    #[test]
    fn names_and_roles() {
        assert_eq!(valid_name("name", "  王  小明 ").unwrap(), "王 小明");
        assert_eq!(
            valid_name("name", " ").unwrap_err().field.as_deref(),
            Some("name")
        );
        assert!(valid_role("role", "volunteer").is_ok());
        assert_eq!(
            valid_role("role", "admin").unwrap_err().field.as_deref(),
            Some("role")
        );
    }
}
