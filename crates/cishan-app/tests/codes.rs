//! Participant codes (一码通) through the app layer on a real database: who may have a code
//! made, offline verification with only the public key, and refusal of forged, expired,
//! wrong-kind and replayed codes; reading a code from a photo; the key file's lifecycle.

mod db_support;
mod volunteering_support;

use std::io::Cursor;

use cishan_app::codes::{decode_qr_image, CODE_KEY_FILE};
use cishan_app::points::{record_act, NewAct};
use cishan_app::rewards::LUCHENG_RULES;
use cishan_app::{App, Clock, Config, ErrorKind, FixedClock};
use cishan_core::code::{self, CodeKind};
use cishan_core::points::ActKind;
use cishan_core::region::embedded::lucheng;
use volunteering_support::{at, fixture, member, LI, WANG, ZHAO};

#[tokio::test]
async fn only_the_participant_or_staff_get_a_code() {
    let f = fixture().await;
    let own = f.app.participant_code(&member(WANG), WANG).await.unwrap();
    assert_eq!(own.participant_id, WANG);
    assert_eq!(own.valid_seconds, 90);
    assert_eq!(own.issued_at, "2024-03-01T01:00:00.000000Z");
    assert_eq!(own.expires_at, "2024-03-01T01:01:30.000000Z");
    assert!(own.refresh_after_seconds < own.valid_seconds);
    assert!(own.qr_svg.starts_with("<svg"), "{}", &own.qr_svg[..40]);
    assert!(own.payload.len() <= 140, "{}", own.payload);

    let other = f.app.participant_code(&member(LI), WANG).await.unwrap_err();
    assert_eq!(other.kind, ErrorKind::Forbidden);
    f.app.participant_code(&f.staff, WANG).await.unwrap();
    let missing = f
        .app
        .participant_code(&f.staff, "ptc_ffffffffffffffffffff")
        .await
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    // Two codes made at the same second differ (fresh nonce).
    let again = f.app.participant_code(&member(WANG), WANG).await.unwrap();
    assert_ne!(again.payload, own.payload);
}

#[tokio::test]
async fn a_scanner_verifies_a_code_offline_with_only_the_public_key() {
    let f = fixture().await;
    let payload = f
        .app
        .participant_code(&member(WANG), WANG)
        .await
        .unwrap()
        .payload;
    // Everything the scanner has: the served key (base64) and the payload text.
    let served = serde_json::to_value(f.app.code_public_key()).unwrap();
    assert_eq!(served["algorithm"], "ed25519");
    let key = code::parse_verifying_key(served["public_key"].as_str().unwrap()).unwrap();
    let now = at("2024-03-01T01:00:30Z").as_second();
    let claim = code::verify(&payload, &key, now, CodeKind::Participant).unwrap();
    assert_eq!(claim.subject, WANG);
    // 90 seconds later the same text is refused offline too.
    let later = at("2024-03-01T01:01:30Z").as_second();
    assert!(matches!(
        code::verify(&payload, &key, later, CodeKind::Participant),
        Err(code::CodeError::Expired { .. })
    ));
}

#[tokio::test]
async fn forged_expired_wrong_kind_and_replayed_codes_are_refused_with_a_reason() {
    let f = fixture().await;
    let payload = f
        .app
        .participant_code(&member(WANG), WANG)
        .await
        .unwrap()
        .payload;

    // Identify: masked name, no roles (no actor), nothing used up.
    let seen = f
        .app
        .resolve_participant_code(&payload, "identify")
        .await
        .unwrap();
    assert_eq!(seen.participant_id, WANG);
    assert_eq!(seen.display_name_masked, "王*明");
    assert_eq!(seen.roles, None);
    f.app
        .resolve_participant_code(&payload, "identify")
        .await
        .unwrap();

    // Redeem uses it up: the second time it is a replay.
    f.app
        .resolve_participant_code(&payload, "redeem")
        .await
        .unwrap();
    let replay = f
        .app
        .resolve_participant_code(&payload, "redeem")
        .await
        .unwrap_err();
    assert_eq!(replay.kind, ErrorKind::Conflict);
    assert_eq!(replay.code, "code.replayed");
    assert!(replay.message.contains("已经使用过"), "{}", replay.message);
    let other_purpose = f
        .app
        .resolve_participant_code(&payload, "check_in")
        .await
        .unwrap_err();
    assert_eq!(other_purpose.code, "code.replayed");

    // Forged: one character of the signed text changed; or signed by another key.
    let mut chars: Vec<char> = payload.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let altered: String = chars.into_iter().collect();
    let forged = f
        .app
        .resolve_participant_code(&altered, "identify")
        .await
        .unwrap_err();
    assert_eq!(forged.code, "code.forged");
    assert!(forged.message.contains("签名"), "{}", forged.message);
    let stranger = code::SigningKey::from_bytes(&[3; 32]);
    let foreign = code::sign(
        &code::Claim {
            kind: CodeKind::Participant,
            subject: WANG.into(),
            issued_at: at("2024-03-01T01:00:00Z").as_second(),
            valid_seconds: 90,
            nonce: 1,
        },
        &stranger,
    )
    .unwrap();
    let forged = f
        .app
        .resolve_participant_code(&foreign, "identify")
        .await
        .unwrap_err();
    assert_eq!(forged.code, "code.forged");

    // Malformed.
    let garbage = f
        .app
        .resolve_participant_code("hello", "identify")
        .await
        .unwrap_err();
    assert_eq!(garbage.code, "code.malformed");
    assert_eq!(garbage.field.as_deref(), Some("payload"));

    // Wrong kind: an activity code where a participant code is needed.
    let activity = f
        .app
        .create_activity(&f.staff, &volunteering_support::activity_input())
        .await
        .unwrap();
    let wrong = f
        .app
        .resolve_participant_code(&activity.code, "identify")
        .await
        .unwrap_err();
    assert_eq!(wrong.code, "code.wrong_kind");
    assert!(wrong.message.contains("个人码"), "{}", wrong.message);

    // Expired: 90 seconds after issue (a screenshot shown later).
    let fresh = f
        .app
        .participant_code(&member(LI), LI)
        .await
        .unwrap()
        .payload;
    f.clock.set(at("2024-03-01T01:01:30Z"));
    let expired = f
        .app
        .resolve_participant_code(&fresh, "check_in")
        .await
        .unwrap_err();
    assert_eq!(expired.code, "code.expired");
    assert!(expired.message.contains("过期"), "{}", expired.message);

    // Not yet valid: the scanner's clock is behind by more than the allowed skew.
    f.clock.set(at("2024-03-01T00:58:00Z"));
    let early = f
        .app
        .resolve_participant_code(&fresh, "identify")
        .await
        .unwrap_err();
    assert_eq!(early.code, "code.not_yet_valid");

    let bad_purpose = f
        .app
        .resolve_participant_code(&fresh, "dance")
        .await
        .unwrap_err();
    assert_eq!(bad_purpose.field.as_deref(), Some("purpose"));
}

#[tokio::test]
async fn scanning_shows_roles_to_staff_only_and_uses_nothing_up() {
    let f = fixture().await;
    let payload = f
        .app
        .participant_code(&member(WANG), WANG)
        .await
        .unwrap()
        .payload;
    let by_staff = f.app.scan(&f.staff, &payload).await.unwrap();
    assert_eq!(by_staff.kind, "participant");
    let seen = by_staff.participant.unwrap();
    assert_eq!(seen.display_name_masked, "王*明");
    assert!(seen.roles.is_some());
    let by_member = f.app.scan(&member(LI), &payload).await.unwrap();
    assert_eq!(by_member.participant.unwrap().roles, None);
    // Scanning looked only: the code can still be used once.
    f.app
        .resolve_participant_code(&payload, "check_in")
        .await
        .unwrap();

    let activity = f
        .app
        .create_activity(&f.staff, &volunteering_support::activity_input())
        .await
        .unwrap();
    let scanned = f.app.scan(&member(LI), &activity.code).await.unwrap();
    assert_eq!(scanned.kind, "activity");
    assert_eq!(scanned.subject, activity.id);
    assert_eq!(scanned.link, Some(format!("/activities/{}", activity.id)));
    // A long-lived code is stable: the same activity gives the same payload.
    assert_eq!(
        f.app.activity(&activity.id).await.unwrap().code,
        activity.code
    );
}

/// Records `minutes` of verified volunteering for `pid` (10 points per full hour under the
/// Lucheng rules), the way a verification does.
async fn volunteered(f: &volunteering_support::Fixture, pid: &str, source: &str, minutes: i64) {
    let mut tx = f.app.store().begin().await.unwrap();
    tx.lock_writes().await.unwrap();
    record_act(
        &mut tx,
        NewAct {
            participant_id: pid.into(),
            kind: ActKind::VolunteerMinutes,
            category: None,
            quantity: minutes,
            source_kind: "volunteer_session".into(),
            source_id: source.into(),
            occurred_at: at("2024-02-20T02:00:00Z"),
            recorded_by: "test".into(),
            recorded_at: f.clock.now(),
            note: "志愿服务".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn code_of(f: &volunteering_support::Fixture, pid: &str) -> String {
    f.app
        .participant_code(&member(pid), pid)
        .await
        .unwrap()
        .payload
}

#[tokio::test]
async fn a_scanned_participant_code_shows_the_tier_of_their_honour_points() {
    let f = fixture().await;
    // Before any rules are published there are no tiers.
    let seen = f
        .app
        .scan(&f.staff, &code_of(&f, WANG).await)
        .await
        .unwrap();
    assert_eq!(seen.participant.unwrap().tier, None);

    f.app
        .recompute_points_as("test", LUCHENG_RULES, false)
        .await
        .unwrap();
    // 2 × 300 minutes on one day: 50 + 50 = 100 honour points (the daily cap is 120).
    volunteered(&f, WANG, "s1", 300).await;
    volunteered(&f, WANG, "s2", 300).await;
    let payload = code_of(&f, WANG).await;
    for scanner in [f.staff.clone(), member(LI)] {
        let seen = f.app.scan(&scanner, &payload).await.unwrap();
        assert_eq!(
            seen.participant.unwrap().tier.as_deref(),
            Some("铜牌慈善之星"),
            "100 honour points reach bronze, whoever scans"
        );
    }
    // The same tier where other use cases resolve the code (check-in, redemption).
    let resolved = f
        .app
        .resolve_participant_code(&payload, "check_in")
        .await
        .unwrap();
    assert_eq!(resolved.tier.as_deref(), Some("铜牌慈善之星"));
    // No points yet: the lowest tier of these rules starts at 0.
    let seen = f.app.scan(&f.staff, &code_of(&f, LI).await).await.unwrap();
    assert_eq!(seen.participant.unwrap().tier.as_deref(), Some("爱心人士"));
}

#[tokio::test]
async fn a_participant_below_every_tier_shows_none() {
    let f = fixture().await;
    // Rules whose lowest tier needs 100 honour points.
    let rules = LUCHENG_RULES
        .replace(
            "version = \"lucheng-v1\"",
            "version = \"test-no-base-tier\"",
        )
        .replace(
            "[[tiers]]\ncode = \"member\"\nname = \"爱心人士\"\nmin_honour = 0\n\n",
            "",
        );
    assert!(!rules.contains("爱心人士"), "the base tier is removed");
    f.app
        .recompute_points_as("test", &rules, false)
        .await
        .unwrap();
    volunteered(&f, WANG, "s1", 540).await; // 9 h: 90 points, 10 short of bronze
    let seen = f
        .app
        .scan(&f.staff, &code_of(&f, WANG).await)
        .await
        .unwrap();
    assert_eq!(seen.participant.unwrap().tier, None);
    let seen = f
        .app
        .scan(&f.staff, &code_of(&f, ZHAO).await)
        .await
        .unwrap();
    assert_eq!(seen.participant.unwrap().tier, None, "no points at all");
    volunteered(&f, WANG, "s2", 60).await;
    let seen = f
        .app
        .scan(&f.staff, &code_of(&f, WANG).await)
        .await
        .unwrap();
    assert_eq!(
        seen.participant.unwrap().tier.as_deref(),
        Some("铜牌慈善之星")
    );
}

#[tokio::test]
async fn used_nonces_of_long_expired_codes_are_pruned() {
    let f = fixture().await;
    let payload = f
        .app
        .participant_code(&member(WANG), WANG)
        .await
        .unwrap()
        .payload;
    f.app
        .resolve_participant_code(&payload, "redeem")
        .await
        .unwrap();
    assert_eq!(f.app.store().count_code_nonces().await.unwrap(), 1);
    assert_eq!(f.app.prune_code_nonces().await.unwrap(), 0);
    f.clock.set(at("2024-03-01T03:00:00Z"));
    assert_eq!(f.app.prune_code_nonces().await.unwrap(), 1);
    assert_eq!(f.app.store().count_code_nonces().await.unwrap(), 0);
}

/// A QR code of `text` as a PNG, drawn module by module (8 pixels each, 4 modules of quiet
/// zone), as a phone photo of a screen would show it at best.
fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let width = code.width();
    let colors = code.to_colors();
    let scale = 8;
    let quiet = 4;
    let side = u32::try_from((width + 2 * quiet) * scale).unwrap();
    let picture = image::GrayImage::from_fn(side, side, |x, y| {
        let mx = usize::try_from(x).unwrap() / scale;
        let my = usize::try_from(y).unwrap() / scale;
        let dark = mx >= quiet
            && my >= quiet
            && mx < width + quiet
            && my < width + quiet
            && colors[(my - quiet) * width + (mx - quiet)] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut png = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[tokio::test]
async fn a_code_is_read_from_an_uploaded_photo() {
    let f = fixture().await;
    let payload = f
        .app
        .participant_code(&member(WANG), WANG)
        .await
        .unwrap()
        .payload;
    let read = decode_qr_image(&qr_png(&payload)).unwrap();
    assert_eq!(read, payload);
    let seen = f
        .app
        .resolve_participant_code(&read, "identify")
        .await
        .unwrap();
    assert_eq!(seen.participant_id, WANG);

    let blank = {
        let picture = image::GrayImage::from_pixel(64, 64, image::Luma([255]));
        let mut png = Vec::new();
        picture
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    let none = decode_qr_image(&blank).unwrap_err();
    assert_eq!(none.code, "scan.image_unreadable");
    let not_an_image = decode_qr_image(b"not a picture").unwrap_err();
    assert_eq!(not_an_image.field.as_deref(), Some("image"));
}

#[tokio::test]
async fn the_code_key_is_kept_and_a_missing_key_file_is_refused() {
    let f = fixture().await;
    let key = f.app.code_public_key();
    assert_eq!(key.key_id.len(), 16);
    assert!(f.dir.path().join("keys").join(CODE_KEY_FILE).exists());
    // The code key is not the log key.
    let config = Config {
        database_url: f.url.clone(),
        data_dir: f.dir.path().to_owned(),
    };
    f.app.close().await;
    let clock = std::sync::Arc::new(FixedClock::new(at("2024-03-01T01:00:00Z")));
    let again = App::open(&config, lucheng(), clock.clone()).await.unwrap();
    assert_eq!(again.code_public_key(), key);
    again.close().await;
    std::fs::remove_file(f.dir.path().join("keys").join(CODE_KEY_FILE)).unwrap();
    let refused = App::open(&config, lucheng(), clock).await.unwrap_err();
    assert_eq!(refused.code, "codes.key_missing");
}
