//! Roster import through the app layer, on a real SQLite file (and PostgreSQL when
//! `CISHAN_TEST_POSTGRES_URL` is set): UTF-8 with BOM, GBK, XLSX with a text ID column and with
//! a numeric one, rows refused with their line and reason, duplicates within the file,
//! re-imports that neither duplicate nor drop anything, volunteers, and batch progress.

mod db_support;

use std::sync::Arc;

use cishan_app::import::{ImportKind, ImportSummary, RowOutcome};
use cishan_app::{Actor, App, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_core::IdNumber;

struct Fixture {
    app: App,
    staff: Actor,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2026-06-01T08:00:00Z".parse().unwrap()));
    let config = Config {
        database_url: db_support::database_url(dir.path(), "import").await,
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock).await.unwrap();
    let staff = app
        .create_user(
            None,
            "staff",
            "工作人员",
            "long enough password",
            Role::Staff,
        )
        .await
        .unwrap();
    Fixture {
        app,
        staff,
        _dir: dir,
    }
}

fn id(seq: u16) -> IdNumber {
    IdNumber::from_parts("330302", jiff::civil::date(1985, 7, 21), seq).unwrap()
}

fn sex(seq: u16) -> &'static str {
    if id(seq).is_male() {
        "男"
    } else {
        "女"
    }
}

fn bad_checksum(seq: u16) -> String {
    let good = id(seq).expose().to_owned();
    let last = good.chars().last().unwrap();
    format!("{}{}", &good[..17], if last == '1' { '2' } else { '1' })
}

async fn import(f: &Fixture, kind: ImportKind, name: &str, bytes: &[u8]) -> ImportSummary {
    let job = f.app.create_import_job(&f.staff, kind, name).await.unwrap();
    f.app
        .run_import(&f.staff, &job, kind, bytes, |_, _| {})
        .await
        .unwrap()
}

fn row(s: &ImportSummary, line: u64) -> &cishan_app::import::RowReport {
    s.rows
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("line {line} is not in the report: {:?}", s.rows))
}

async fn count_people(app: &App) -> usize {
    app.store()
        .participants_page(0, 10_000)
        .await
        .unwrap()
        .len()
}

/// A roster with a title row, the header on line 2, and one problem per line from line 6.
fn roster_csv() -> String {
    let mut text = String::from("鹿城区五马街道人员花名册,,,,,,\n");
    text.push_str("序号,姓名,身份证号码,联系电话,性别,街道,所属社区\n");
    let rows = [
        // Lines 3–5: good rows.
        format!(
            "1,张三,{},13800138001,{},五马街道,鼓楼社区",
            id(1).expose(),
            sex(1)
        ),
        format!("2,李四,{},,{},五马街道,墨池", id(2).expose(), sex(2)),
        format!("3,王五,{},0577-88886666,,,", id(3).expose().to_lowercase()),
        // 6: bad checksum.
        format!("4,赵六,{},,,,", bad_checksum(4)),
        // 7: the same person as line 3.
        format!("5,张三,{},13800138001,,,", id(1).expose()),
        // 8: Excel wrote the number in scientific notation.
        "6,钱七,3.30302E+17,,,,".to_owned(),
        // 9: no name.
        format!("7,,{},,,,", id(9).expose()),
        // 10: a community not in the district.
        format!("8,孙八,{},,,五马街道,不存在社区", id(10).expose()),
        // 11: sex contradicts the ID number.
        format!(
            "9,周九,{},,{},,",
            id(11).expose(),
            if id(11).is_male() { "女" } else { "男" }
        ),
        // 12: bad phone.
        format!("10,吴十,{},12345,,,", id(12).expose()),
    ];
    for r in rows {
        text.push_str(&r);
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn utf8_bom_csv_imports_good_rows_and_reports_the_rest_by_line() {
    let f = fixture().await;
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(roster_csv().as_bytes());
    let s = import(&f, ImportKind::People, "花名册.csv", &bytes).await;
    assert_eq!(s.encoding, "UTF-8（带 BOM）");
    assert_eq!(s.format, "CSV");
    assert_eq!(s.header_line, 2);
    assert_eq!(s.ignored_columns, ["序号"]);
    assert_eq!(s.total, 10);
    assert_eq!(
        (s.imported, s.duplicate, s.refused),
        (3, 1, 6),
        "{:?}",
        s.rows
    );
    assert_eq!(
        s.imported + s.updated + s.present + s.duplicate + s.refused,
        s.total,
        "every row is accounted for"
    );
    assert!(row(&s, 6).reason.contains("校验位"), "{:?}", row(&s, 6));
    assert_eq!(row(&s, 7).outcome, RowOutcome::Duplicate);
    assert!(row(&s, 7).reason.contains("第 3 行"));
    assert!(row(&s, 8).reason.contains("文本"), "{:?}", row(&s, 8));
    assert!(row(&s, 9).reason.contains("姓名"));
    assert!(row(&s, 10).reason.contains("不存在社区"));
    assert!(row(&s, 11).reason.contains("性别"));
    assert!(row(&s, 12).reason.contains("手机号"));
    for r in &s.rows {
        assert!(
            !r.reason.contains(id(1).expose()),
            "no ID number in a report"
        );
    }
    assert_eq!(count_people(&f.app).await, 3);
    // Divisions by name (墨池 matches 墨池社区 under 五马街道), phone stored masked.
    let found = f
        .app
        .find_participants(&f.staff, id(2).expose())
        .await
        .unwrap();
    assert_eq!(found[0].division_name.as_deref(), Some("墨池社区"));
    let found = f
        .app
        .find_participants(&f.staff, "13800138001")
        .await
        .unwrap();
    assert_eq!(found[0].display_name, "张三");
    assert_eq!(found[0].division_name.as_deref(), Some("鼓楼社区"));

    // The job row holds the same outcome for the progress page.
    let job = f.app.import_job(&f.staff, &s.job_id).await.unwrap();
    assert_eq!(job.state, "done");
    assert_eq!((job.total, job.processed, job.imported), (10, 10, 3));
    assert_eq!(job.rows.len(), 7);

    // Re-import: nobody duplicated, every row reported again.
    let again = import(&f, ImportKind::People, "花名册.csv", &bytes).await;
    assert_eq!(
        (
            again.imported,
            again.present,
            again.duplicate,
            again.refused
        ),
        (0, 3, 1, 6)
    );
    assert_eq!(row(&again, 3).outcome, RowOutcome::Present);
    assert_eq!(count_people(&f.app).await, 3);

    // A changed phone updates; a different name on a known ID is refused, not overwritten.
    let changed = format!(
        "姓名,身份证号,手机\n张三,{},13900139002\n张三丰,{},\n",
        id(1).expose(),
        id(2).expose()
    );
    let s = import(&f, ImportKind::People, "更新.csv", changed.as_bytes()).await;
    assert_eq!(s.encoding, "UTF-8");
    assert_eq!((s.updated, s.refused), (1, 1), "{:?}", s.rows);
    assert!(row(&s, 2).reason.contains("手机号"));
    assert!(row(&s, 3).reason.contains("姓名不一致"));
    let found = f
        .app
        .find_participants(&f.staff, "13900139002")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(count_people(&f.app).await, 3);
}

#[tokio::test]
async fn gbk_csv_is_decoded_and_the_encoding_reported() {
    let f = fixture().await;
    let text = format!(
        "姓名,证件号码,手机号,社区\r\n张三,{},13800138003,鼓楼社区\r\n欧阳娜娜,{},,\r\n\r\n错号,{},,\r\n",
        id(21).expose(),
        id(22).expose(),
        bad_checksum(23)
    );
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
    let s = import(&f, ImportKind::People, "gbk.csv", &bytes).await;
    assert!(s.encoding.starts_with("GB18030"), "{}", s.encoding);
    assert_eq!(s.imported, 2, "{:?}", s.rows);
    // CRLF line endings and a blank line: the refused row is reported on its real line.
    assert_eq!(s.refused, 1);
    assert_eq!(row(&s, 5).outcome, RowOutcome::Refused, "{:?}", s.rows);
    let found = f
        .app
        .find_participants(&f.staff, id(22).expose())
        .await
        .unwrap();
    assert_eq!(found[0].display_name, "欧阳娜娜");
    let found = f
        .app
        .find_participants(&f.staff, id(21).expose())
        .await
        .unwrap();
    assert_eq!(found[0].division_name.as_deref(), Some("鼓楼社区"));
}

#[tokio::test]
async fn an_undecodable_file_fails_the_job_with_a_reason() {
    let f = fixture().await;
    let job = f
        .app
        .create_import_job(&f.staff, ImportKind::People, "bad.csv")
        .await
        .unwrap();
    let e = f
        .app
        .run_import(
            &f.staff,
            &job,
            ImportKind::People,
            &[b'a', b',', 0xFF, b'\n'],
            |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("file"));
    let view = f.app.import_job(&f.staff, &job).await.unwrap();
    assert_eq!(view.state, "failed");
    assert!(view.message.contains("UTF-8"), "{}", view.message);
    // No header row: also a whole-file failure.
    let job = f
        .app
        .create_import_job(&f.staff, ImportKind::People, "nohead.csv")
        .await
        .unwrap();
    let e = f
        .app
        .run_import(
            &f.staff,
            &job,
            ImportKind::People,
            "名字?,号码?\n".as_bytes(),
            |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "import.header_missing");
    assert_eq!(e.kind, ErrorKind::Invalid);
}

fn xlsx(id_as_number: bool) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["姓名", "身份证号", "联系电话", "技能"].iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(c).unwrap(), *h)
            .unwrap();
    }
    for (r, seq) in [31_u16, 32].iter().enumerate() {
        let r = u32::try_from(r).unwrap() + 1;
        sheet.write_string(r, 0, format!("测试{seq}")).unwrap();
        if id_as_number {
            let digits: f64 = id(*seq).expose().replace('X', "0").parse().unwrap();
            sheet.write_number(r, 1, digits).unwrap();
        } else {
            sheet.write_string(r, 1, id(*seq).expose()).unwrap();
        }
        // A phone stored as a number keeps its 11 digits and is accepted.
        let phone: f64 = format!("138001380{seq:02}").parse().unwrap();
        sheet.write_number(r, 2, phone).unwrap();
        sheet.write_string(r, 3, "急救").unwrap();
    }
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn xlsx_with_a_text_id_column_imports() {
    let f = fixture().await;
    let s = import(&f, ImportKind::People, "roster.xlsx", &xlsx(false)).await;
    assert_eq!(s.format, "XLSX");
    assert_eq!(s.imported, 2, "{:?}", s.rows);
    let found = f
        .app
        .find_participants(&f.staff, "13800138031")
        .await
        .unwrap();
    assert_eq!(found[0].display_name, "测试31");
}

#[tokio::test]
async fn xlsx_with_a_numeric_id_column_is_refused_row_by_row_with_the_fix() {
    let f = fixture().await;
    let s = import(&f, ImportKind::People, "roster.xlsx", &xlsx(true)).await;
    assert_eq!((s.imported, s.refused), (0, 2));
    // Excel rows 2 and 3 (the header is row 1).
    for line in [2, 3] {
        let r = row(&s, line);
        assert_eq!(r.outcome, RowOutcome::Refused);
        assert!(
            r.reason.contains("数字") && r.reason.contains("文本"),
            "{}",
            r.reason
        );
    }
    assert_eq!(count_people(&f.app).await, 0);
}

#[tokio::test]
async fn volunteers_import_registers_volunteers_once() {
    let f = fixture().await;
    // One person already registered by the office (no role yet).
    let before = format!("姓名,身份证号\n老志愿,{}\n", id(40).expose());
    import(&f, ImportKind::People, "people.csv", before.as_bytes()).await;
    let text = format!(
        "姓名,身份证号,志愿者编号,技能\n新志愿,{},ZY-001,摄影\n老志愿,{},ZY-002,\n重号,{},ZY-001,\n无编号,{},,\n",
        id(41).expose(),
        id(40).expose(),
        id(42).expose(),
        id(43).expose()
    );
    let s = import(
        &f,
        ImportKind::Volunteers,
        "volunteers.csv",
        text.as_bytes(),
    )
    .await;
    assert_eq!(
        (s.imported, s.updated, s.refused),
        (2, 1, 1),
        "{:?}",
        s.rows
    );
    assert!(row(&s, 3).reason.contains("志愿者"), "{:?}", row(&s, 3));
    assert!(row(&s, 4).reason.contains("第 2 行"), "{:?}", row(&s, 4));
    for seq in [40, 41, 43] {
        let p = &f
            .app
            .find_participants(&f.staff, id(seq).expose())
            .await
            .unwrap()[0];
        assert!(p.roles.iter().any(|r| r.role == "volunteer"), "{p:?}");
        assert!(p.volunteer_number.is_some());
    }
    let p = &f
        .app
        .find_participants(&f.staff, id(41).expose())
        .await
        .unwrap()[0];
    assert_eq!(p.volunteer_number.as_deref(), Some("ZY-001"));
    assert!(f
        .app
        .find_participants(&f.staff, id(42).expose())
        .await
        .unwrap()
        .is_empty());

    // Re-import: already present, no second volunteer row, no second role.
    let s = import(
        &f,
        ImportKind::Volunteers,
        "volunteers.csv",
        text.as_bytes(),
    )
    .await;
    assert_eq!(
        (s.imported, s.updated, s.present, s.refused),
        (0, 0, 3, 1),
        "{:?}",
        s.rows
    );
    assert_eq!(
        f.app
            .store()
            .count_participants_with_role("volunteer")
            .await
            .unwrap(),
        3
    );
    assert_eq!(count_people(&f.app).await, 4 - 1);
}

#[tokio::test]
async fn big_files_go_in_batches_with_progress() {
    let f = fixture().await;
    let rows = 2_345_u16;
    let mut text = String::from("姓名,身份证号\n");
    for seq in 0..rows {
        let birth = jiff::civil::date(1950 + i16::try_from(seq / 100).unwrap(), 1, 1);
        let n = IdNumber::from_parts("330302", birth, seq % 100 + 1).unwrap();
        text.push_str(&format!("人员{seq},{}\n", n.expose()));
    }
    let job = f
        .app
        .create_import_job(&f.staff, ImportKind::People, "big.csv")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let s = f
        .app
        .run_import(
            &f.staff,
            &job,
            ImportKind::People,
            text.as_bytes(),
            |done, total| {
                seen.push((done, total));
            },
        )
        .await
        .unwrap();
    assert_eq!(s.imported, u64::from(rows), "{:?}", s.rows.first());
    assert_eq!(seen, [(1000, 2345), (2000, 2345), (2345, 2345)]);
    assert_eq!(count_people(&f.app).await, usize::from(rows));
    // One journal entry per batch.
    let entries = f.app.store().journal_for_subject(&job).await.unwrap();
    let batches = entries.iter().filter(|e| e.kind == "import.batch").count();
    assert_eq!(batches, 3);
}
