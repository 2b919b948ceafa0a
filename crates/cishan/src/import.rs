//! `cishan import people|volunteers FILE`: roster import from the command line, with progress on
//! stderr and the per-row report on stdout (or in full with `--report FILE`). And
//! `cishan import sample --rows N FILE`: a synthetic roster to try and measure imports with.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use cishan_app::import::{ImportKind, ImportSummary, RowOutcome};
use cishan_app::{Actor, Role};
use cishan_core::IdNumber;
use clap::{Args, Subcommand};

use crate::{open_app, AppArgs};

/// Report rows printed on stdout before pointing at `--report`.
const PRINTED_ROWS: usize = 50;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import people (实名登记) from a CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX file.
    People(ImportArgs),
    /// Import volunteers: people plus their volunteer number, skills and the volunteer role.
    Volunteers(ImportArgs),
    /// Write a synthetic roster (UTF-8 with BOM, as Excel saves "CSV UTF-8") of N rows.
    Sample(SampleArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    app: AppArgs,
    /// The roster file (.csv or .xlsx).
    file: PathBuf,
    /// Write every row's outcome (line, outcome, reason, participant id, volunteer number) to this
    /// CSV file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// How many rows.
    #[arg(long, default_value_t = 100_000)]
    rows: u32,
    /// Where to write the CSV.
    file: PathBuf,
}

pub async fn run(command: ImportCommand) -> anyhow::Result<()> {
    match command {
        ImportCommand::People(args) => import(ImportKind::People, args).await,
        ImportCommand::Volunteers(args) => import(ImportKind::Volunteers, args).await,
        ImportCommand::Sample(args) => sample(&args),
    }
}

/// The operator at the terminal: the journal names the command line, not a person's account.
fn cli_actor() -> Actor {
    Actor {
        user_id: "cli".into(),
        username: "cli".into(),
        display_name: "命令行".into(),
        role: Role::Admin,
        participant_id: None,
    }
}

async fn import(kind: ImportKind, args: ImportArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let app = open_app(&args.app).await?;
    let actor = cli_actor();
    let name = args
        .file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let job = app.create_import_job(&actor, kind, &name).await?;
    let started = Instant::now();
    let mut stderr = std::io::stderr();
    let summary = app
        .run_import(&actor, &job, kind, &bytes, |done, total| {
            let rate = per_second(done, started.elapsed());
            let _ = writeln!(
                stderr,
                "已处理 processed {done}/{total} 行 rows（{rate} 行/秒 rows/s）"
            );
        })
        .await
        .map_err(|e| anyhow::anyhow!("{}（{}）", e.message, e.code))?;
    print_summary(&summary, started.elapsed(), args.report.is_some())?;
    if let Some(path) = &args.report {
        write_report(path, &summary)?;
    }
    app.close().await;
    Ok(())
}

/// `count` per second of `elapsed`, with one decimal, in integers.
fn per_second(count: u64, elapsed: Duration) -> String {
    let us = elapsed.as_micros().max(1);
    let tenths = u128::from(count) * 10_000_000 / us;
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn print_summary(s: &ImportSummary, elapsed: Duration, report_file: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "导入任务 job {} · {}（{}）",
        s.job_id,
        s.kind.label(),
        s.format
    )?;
    writeln!(out, "编码 encoding: {}", s.encoding)?;
    writeln!(
        out,
        "表头 header: 第 {} 行 line {}",
        s.header_line, s.header_line
    )?;
    if !s.ignored_columns.is_empty() {
        writeln!(
            out,
            "未使用的列 ignored columns: {}",
            s.ignored_columns.join("、")
        )?;
    }
    writeln!(
        out,
        "共 total {} 行 · 导入 imported {} · 更新 updated {} · 已存在 present {} · 文件内重复 duplicate {} · 未导入 refused {} · {} 毫秒 ms · {} 行/秒 rows/s",
        s.total,
        s.imported,
        s.updated,
        s.present,
        s.duplicate,
        s.refused,
        elapsed.as_millis(),
        per_second(s.total, elapsed)
    )?;
    // Rows that need a look come first: in a large roster they would otherwise be hidden
    // behind the first fifty imported ones.
    let needing_a_look = s.rows.iter().filter(|r| r.outcome != RowOutcome::Imported);
    let imported = s.rows.iter().filter(|r| r.outcome == RowOutcome::Imported);
    for r in needing_a_look.chain(imported).take(PRINTED_ROWS) {
        let mut ids = r.participant_id.clone().unwrap_or_default();
        if let Some(number) = &r.volunteer_number {
            ids.push_str(&format!(" 志愿者编号 {number}"));
        }
        writeln!(
            out,
            "  第 {} 行 line {}: {} {} {}",
            r.line,
            r.line,
            r.outcome.label(),
            ids.trim(),
            r.reason
        )?;
    }
    if s.rows.len() > PRINTED_ROWS {
        writeln!(
            out,
            "  …… 另有 {} 行未在此列出 {} more rows not shown{}",
            s.rows.len() - PRINTED_ROWS,
            s.rows.len() - PRINTED_ROWS,
            if report_file {
                "（见 --report 文件 see the --report file）"
            } else {
                "；用 --report FILE 保存完整报告 use --report FILE for all of them"
            }
        )?;
    }
    Ok(())
}

fn write_report(path: &PathBuf, s: &ImportSummary) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    // A BOM so that Excel opens the Chinese text correctly.
    w.write_all(&[0xEF, 0xBB, 0xBF])?;
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(["行号", "结果", "说明", "参与方编号", "志愿者编号"])?;
    for r in &s.rows {
        csv.write_record([
            r.line.to_string(),
            r.outcome.label().to_owned(),
            r.reason.clone(),
            r.participant_id.clone().unwrap_or_default(),
            r.volunteer_number.clone().unwrap_or_default(),
        ])?;
    }
    csv.flush()?;
    Ok(())
}

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const GIVEN: [&str; 12] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳",
];
const SKILLS: [&str; 5] = ["急救", "摄影", "心理疏导", "法律咨询", ""];

fn sample(args: &SampleArgs) -> anyhow::Result<()> {
    let pack = cishan_core::region::embedded::lucheng();
    let communities: Vec<(String, String)> = pack
        .streets_and_towns()
        .flat_map(|s| {
            pack.communities_of(s.code.as_str())
                .map(|c| (s.name.clone(), c.name.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    anyhow::ensure!(
        !communities.is_empty(),
        "the region pack has no communities"
    );
    let file = std::fs::File::create(&args.file)
        .with_context(|| format!("cannot create {}", args.file.display()))?;
    let mut w = std::io::BufWriter::new(file);
    w.write_all(&[0xEF, 0xBB, 0xBF])?;
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record([
        "序号",
        "姓名",
        "身份证号码",
        "手机号",
        "性别",
        "街道",
        "所属社区",
        "志愿者编号",
        "技能",
    ])?;
    let start = jiff::civil::date(1940, 1, 1);
    for i in 0..args.rows {
        let day = i / 999;
        let birth = start
            .checked_add(jiff::Span::new().days(i64::from(day)))
            .context("too many rows for distinct birth dates")?;
        let seq = u16::try_from(i % 999 + 1)?;
        let id = IdNumber::from_parts("330302", birth, seq)?;
        let idx = usize::try_from(i)?;
        let name = format!(
            "{}{}{}",
            SURNAMES[idx % SURNAMES.len()],
            GIVEN[(idx / SURNAMES.len()) % GIVEN.len()],
            GIVEN[(idx / 7) % GIVEN.len()]
        );
        let (street, community) = &communities[idx % communities.len()];
        csv.write_record([
            (i + 1).to_string(),
            name,
            id.expose().to_owned(),
            format!("139{:08}", i),
            if id.is_male() { "男" } else { "女" }.to_owned(),
            street.clone(),
            community.clone(),
            format!("LC{:08}", i + 1),
            SKILLS[idx % SKILLS.len()].to_owned(),
        ])?;
    }
    csv.flush()?;
    writeln!(
        std::io::stdout().lock(),
        "已写入 wrote {} 行 rows to {}",
        args.rows,
        args.file.display()
    )?;
    Ok(())
}
