//! Roster import (花名册导入): people and volunteers from CSV or XLSX files as Chinese offices
//! produce them.
//!
//! - Encoding: a UTF-8 BOM means UTF-8; a UTF-16 BOM means UTF-16 (Excel's "Unicode text");
//!   otherwise text that is valid UTF-8 is UTF-8, and anything else is decoded as GB18030 (a
//!   superset of GBK) only if it is valid GB18030 — never with replacement characters. The
//!   encoding used is reported.
//! - Headers in Chinese with their usual variants (姓名, 身份证号/身份证号码/证件号码, 手机/联系电话,
//!   性别, 街道, 社区/所属社区, 志愿者编号, 技能…); title rows above the header are skipped; columns
//!   that are not recognised are listed in the report.
//! - Every data row is imported, updated, found already present, found duplicated earlier in the
//!   file, or refused with its line number and reason: nothing is dropped silently.
//! - An ID number that Excel stored as a number has already lost its last digits (15 significant
//!   digits): the row is refused with a message saying to format the column as text.
//! - A re-import does not duplicate people: they are keyed by the ID number's keyed digest.
//! - Rows are written in batches of [`IMPORT_BATCH_ROWS`] (multi-row INSERTs of
//!   `BULK_BATCH_ROWS` inside), one transaction and one journal entry per batch, and the job's
//!   progress is saved with each batch so a page can poll it.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;

use calamine::{Data, Reader};
use cishan_core::{mask_name, mask_phone, IdNumber};
use cishan_store::{
    format_instant, ImportJobRow, NewEntry, ParticipantRecord, ParticipantRoleRow, VolunteerRecord,
};
use serde::{Deserialize, Serialize};

use crate::participants::{new_participant_id, normalize_phone, valid_name, ValidPerson};
use crate::{Actor, App, AppError, Result};

/// Rows decided and written per transaction.
pub const IMPORT_BATCH_ROWS: usize = 1000;
/// Largest file accepted (bytes).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
/// How many rows at the top may be titles before the header row.
const HEADER_SEARCH_ROWS: usize = 10;

/// What a roster holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// People (实名登记); no role is attached.
    People,
    /// Volunteers: people plus their volunteer registration and the volunteer role.
    Volunteers,
}

impl ImportKind {
    pub fn parse(text: &str) -> Result<ImportKind> {
        match text.trim() {
            "people" => Ok(ImportKind::People),
            "volunteers" => Ok(ImportKind::Volunteers),
            _ => Err(AppError::invalid(
                "kind",
                "import.kind_invalid",
                "导入类型只能是 people（人员）或 volunteers（志愿者）。",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::People => "people",
            ImportKind::Volunteers => "volunteers",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ImportKind::People => "人员",
            ImportKind::Volunteers => "志愿者",
        }
    }
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    Imported,
    Updated,
    /// Already registered with the same details: nothing written.
    Present,
    /// The same person appears on an earlier line of this file.
    Duplicate,
    Refused,
}

impl RowOutcome {
    pub fn label(self) -> &'static str {
        match self {
            RowOutcome::Imported => "已导入",
            RowOutcome::Updated => "已更新",
            RowOutcome::Present => "已存在",
            RowOutcome::Duplicate => "文件内重复",
            RowOutcome::Refused => "未导入",
        }
    }
}

/// One row of the report. Never carries an ID number or phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowReport {
    /// Line in a CSV file, row number in a spreadsheet (as Excel shows it).
    pub line: u64,
    pub outcome: RowOutcome,
    pub reason: String,
    pub participant_id: Option<String>,
    /// The volunteer's number (volunteer rosters, rows that were not refused).
    #[serde(default)]
    pub volunteer_number: Option<String>,
}

/// The result of an import. `rows` lists every data row, in line order.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub job_id: String,
    pub kind: ImportKind,
    /// `CSV` or `XLSX` (or another spreadsheet format calamine reads).
    pub format: String,
    /// The text encoding used (CSV), or the spreadsheet format.
    pub encoding: String,
    pub header_line: u64,
    pub ignored_columns: Vec<String>,
    pub total: u64,
    pub imported: u64,
    pub updated: u64,
    pub present: u64,
    pub duplicate: u64,
    pub refused: u64,
    pub rows: Vec<RowReport>,
}

/// A job as the progress page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ImportJobView {
    pub id: String,
    pub kind: String,
    pub file_name: String,
    pub encoding: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub total: i64,
    pub processed: i64,
    pub imported: i64,
    pub updated: i64,
    pub present: i64,
    pub refused: i64,
    /// Why the whole file failed (state `failed`).
    pub message: String,
    pub rows: Vec<RowReport>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reading the file.

/// One cell as read: spreadsheets tell numbers from text, CSV has only text.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    /// A numeric cell, as its digits (integral) or its display text.
    Number(String),
    Empty,
}

impl Cell {
    fn text(&self) -> &str {
        match self {
            Cell::Text(t) | Cell::Number(t) => t.trim(),
            Cell::Empty => "",
        }
    }
}

#[derive(Debug)]
struct Table {
    format: String,
    encoding: String,
    /// (line, cells), every non-empty row including the header.
    rows: Vec<(u64, Vec<Cell>)>,
}

/// Decodes CSV bytes; returns the text and the name of the encoding used.
pub fn decode_text(bytes: &[u8]) -> Result<(String, &'static str)> {
    let refused = |what: &str| {
        AppError::invalid(
            "file",
            "import.encoding_invalid",
            format!(
                "{what}请在 Excel 中“另存为”→“CSV UTF-8（逗号分隔）”，或直接上传 .xlsx 文件后重新导入。"
            ),
        )
    };
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        let text = std::str::from_utf8(rest)
            .map_err(|_| refused("文件开头标明是 UTF-8，但内容含有无效的 UTF-8 字节。"))?;
        return Ok((text.to_owned(), "UTF-8（带 BOM）"));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let (text, _) = encoding_rs::UTF_16LE.decode_without_bom_handling(rest);
        return Ok((text.into_owned(), "UTF-16LE"));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let (text, _) = encoding_rs::UTF_16BE.decode_without_bom_handling(rest);
        return Ok((text.into_owned(), "UTF-16BE"));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_owned(), "UTF-8"));
    }
    match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok((text.into_owned(), "GB18030（兼容 GBK）")),
        None => Err(refused(
            "文件编码无法识别：既不是 UTF-8，也不是 GBK/GB18030。",
        )),
    }
}

fn is_spreadsheet(bytes: &[u8]) -> bool {
    // XLSX/ODS are ZIP files; legacy XLS is an OLE compound file.
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

fn read_table(bytes: &[u8]) -> Result<Table> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(AppError::invalid(
            "file",
            "import.file_too_large",
            format!(
                "文件超过 {} MB，请拆分成几个文件分别导入。",
                MAX_IMPORT_BYTES / 1024 / 1024
            ),
        ));
    }
    if is_spreadsheet(bytes) {
        read_spreadsheet(bytes)
    } else {
        read_csv(bytes)
    }
}

fn read_csv(bytes: &[u8]) -> Result<Table> {
    let (text, encoding) = decode_text(bytes)?;
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.matches('\t').count() > first_line.matches(',').count() {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // Lines are counted from byte offsets: a record starts at the first byte after the previous
    // record that is not a line break (the reader's own line count lags on CRLF files).
    let bytes = text.as_bytes();
    let (mut counted_to, mut line) = (0_usize, 1_u64);
    let mut record = csv::StringRecord::new();
    loop {
        let mut start = usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            AppError::invalid(
                "file",
                "import.csv_invalid",
                format!("CSV 文件第 {line} 行附近格式有误（引号不配对等），请检查后重新导入。"),
            )
        })?;
        if !more {
            break;
        }
        if start > counted_to && start <= bytes.len() {
            line += u64::try_from(
                bytes[counted_to..start]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count(),
            )
            .unwrap_or(0);
            counted_to = start;
        }
        let cells: Vec<Cell> = record
            .iter()
            .map(|c| {
                if c.trim().is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(c.to_owned())
                }
            })
            .collect();
        if cells.iter().any(|c| *c != Cell::Empty) {
            rows.push((line, cells));
        }
    }
    Ok(Table {
        format: "CSV".into(),
        encoding: encoding.into(),
        rows,
    })
}

fn read_spreadsheet(bytes: &[u8]) -> Result<Table> {
    let unreadable = || {
        AppError::invalid(
            "file",
            "import.spreadsheet_invalid",
            "无法读取该表格文件（可能已损坏或有密码保护）。请在 Excel 中打开后另存为 .xlsx 再导入。",
        )
    };
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec()))
        .map_err(|_| unreadable())?;
    let format = match &book {
        calamine::Sheets::Xlsx(_) => "XLSX",
        calamine::Sheets::Xls(_) => "XLS",
        calamine::Sheets::Xlsb(_) => "XLSB",
        calamine::Sheets::Ods(_) => "ODS",
    };
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| AppError::invalid("file", "import.spreadsheet_empty", "表格中没有工作表。"))?
        .map_err(|_| unreadable())?;
    let first_row = u64::from(range.start().map_or(0, |(r, _)| r));
    let first_col = usize::try_from(range.start().map_or(0, |(_, c)| c)).unwrap_or(0);
    let mut rows = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let mut cells: Vec<Cell> = vec![Cell::Empty; first_col];
        cells.extend(row.iter().map(|d| match d {
            Data::String(s) if s.trim().is_empty() => Cell::Empty,
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
            Data::Int(n) => Cell::Number(n.to_string()),
            Data::Float(f) => Cell::Number(f.to_string()),
            Data::Bool(b) => Cell::Text(b.to_string()),
            Data::DateTime(dt) => Cell::Number(dt.to_string()),
            Data::Error(e) => Cell::Text(format!("#{e}")),
            Data::Empty => Cell::Empty,
        }));
        if cells.iter().any(|c| *c != Cell::Empty) {
            let line = first_row + u64::try_from(i).unwrap_or(u64::MAX) + 1;
            rows.push((line, cells));
        }
    }
    Ok(Table {
        format: format.into(),
        encoding: format!("{format}（表格文件，无需判断编码）"),
        rows,
    })
}

// ---------------------------------------------------------------------------------------------
// Headers.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Name,
    IdNumber,
    Phone,
    Sex,
    Street,
    Community,
    DivisionCode,
    VolunteerNumber,
    Skills,
    /// Columns commonly present that carry nothing the platform stores (序号, 备注…).
    Ignored,
}

fn normalise_header(text: &str) -> String {
    let mut h: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '*' | '＊' | '\u{feff}'))
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect();
    for suffix in ["(必填)", "(选填)", "(可选)"] {
        if let Some(stripped) = h.strip_suffix(suffix) {
            h = stripped.to_owned();
        }
    }
    h
}

fn field_of(header: &str) -> Option<Field> {
    let h = normalise_header(header);
    let f = match h.as_str() {
        "姓名" | "名字" | "真实姓名" | "志愿者姓名" | "人员姓名" | "name" => {
            Field::Name
        }
        "身份证号" | "身份证号码" | "证件号码" | "证件号" | "公民身份号码" | "身份证"
        | "身份证件号码" | "id_number" => Field::IdNumber,
        "手机" | "手机号" | "手机号码" | "联系电话" | "电话" | "联系方式" | "移动电话"
        | "电话号码" | "phone" => Field::Phone,
        "性别" | "sex" => Field::Sex,
        "街道" | "所属街道" | "镇街" | "街道(镇)" | "乡镇(街道)" | "街道/镇" | "street" => {
            Field::Street
        }
        "社区" | "所属社区" | "村(社区)" | "社区(村)" | "村社" | "社区/村" | "community" => {
            Field::Community
        }
        "区划代码" | "行政区划代码" | "division_code" => Field::DivisionCode,
        "志愿者编号" | "志愿者证号" | "志愿者号" | "志愿者证编号" | "volunteer_number" => {
            Field::VolunteerNumber
        }
        "技能" | "特长" | "专业技能" | "技能特长" | "服务技能" | "skills" => {
            Field::Skills
        }
        "序号" | "编号" | "备注" | "民族" | "出生日期" | "年龄" | "no" => {
            Field::Ignored
        }
        _ => return None,
    };
    Some(f)
}

#[derive(Debug)]
struct Columns {
    header_line: u64,
    /// Data rows start after this index of `Table::rows`.
    header_index: usize,
    at: HashMap<Field, usize>,
    ignored: Vec<String>,
}

fn find_columns(table: &Table) -> Result<Columns> {
    for (index, (line, cells)) in table.rows.iter().take(HEADER_SEARCH_ROWS).enumerate() {
        let mut at = HashMap::new();
        let mut ignored = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            let text = cell.text();
            if text.is_empty() {
                continue;
            }
            match field_of(text) {
                Some(Field::Ignored) | None => ignored.push(text.to_owned()),
                Some(f) => {
                    at.entry(f).or_insert(i);
                }
            }
        }
        if at.contains_key(&Field::Name) && at.contains_key(&Field::IdNumber) {
            return Ok(Columns {
                header_line: *line,
                header_index: index,
                at,
                ignored,
            });
        }
    }
    Err(AppError::invalid(
        "file",
        "import.header_missing",
        format!(
            "在文件的前 {HEADER_SEARCH_ROWS} 行中找不到同时包含“姓名”和“身份证号”（或“身份证号码”“证件号码”）的表头行。请检查表头后重新导入。"
        ),
    ))
}

// ---------------------------------------------------------------------------------------------
// Rows.

/// A row that passed validation.
#[derive(Debug, Clone)]
struct Candidate {
    line: u64,
    person: ValidPerson,
    digest: String,
    volunteer_number: Option<String>,
    skills: String,
}

fn id_cell_message() -> String {
    "身份证号一列在 Excel 中是“数字”格式：18 位号码超过了 Excel 的 15 位有效数字，后几位已经丢失，无法导入。请把该列设置为“文本”格式，重新填入号码后再导出导入。".to_owned()
}

/// `3.30302E+17` and similar: a number Excel wrote out in scientific notation.
fn looks_scientific(text: &str) -> bool {
    let t = text.trim().to_ascii_uppercase();
    t.contains("E+") && t.chars().all(|c| c.is_ascii_digit() || ".E+".contains(c))
}

impl App {
    /// Finds a division of the pack by code, or by street and community names.
    fn division_of_row(
        &self,
        code: &str,
        street: &str,
        community: &str,
    ) -> std::result::Result<Option<String>, String> {
        let pack = self.pack();
        if !code.is_empty() {
            return pack
                .division(code)
                .map(|d| Some(d.code.as_str().to_owned()))
                .ok_or_else(|| format!("区划代码“{code}”不在{}的区划中", pack.name));
        }
        let same = |a: &str, b: &str| {
            a == b
                || a.trim_end_matches(['街', '道', '镇', '乡'])
                    == b.trim_end_matches(['街', '道', '镇', '乡'])
                    && !a.trim_end_matches(['街', '道', '镇', '乡']).is_empty()
        };
        let street_code = if street.is_empty() {
            None
        } else {
            let found = pack
                .streets_and_towns()
                .find(|d| same(&d.name, street))
                .map(|d| d.code.as_str().to_owned());
            match found {
                Some(c) => Some(c),
                None => return Err(format!("街道“{street}”不在{}的区划中", pack.name)),
            }
        };
        if community.is_empty() {
            return Ok(street_code);
        }
        let trim = |n: &str| n.trim_end_matches("社区").trim_end_matches('村').to_owned();
        let matches: Vec<&cishan_core::Division> = pack
            .divisions
            .iter()
            .filter(|d| {
                (d.name == community || trim(&d.name) == trim(community))
                    && street_code
                        .as_deref()
                        .is_none_or(|s| d.parent.as_ref().is_some_and(|p| p.as_str() == s))
                    && street_code.as_deref() != Some(d.code.as_str())
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(Some(one.code.as_str().to_owned())),
            [] => Err(if street.is_empty() {
                format!("社区“{community}”不在{}的区划中", pack.name)
            } else {
                format!("街道“{street}”下没有社区“{community}”")
            }),
            _ => Err(format!("有多个名为“{community}”的社区，请填写所属街道")),
        }
    }

    fn candidate(
        &self,
        columns: &Columns,
        line: u64,
        cells: &[Cell],
    ) -> std::result::Result<Candidate, String> {
        let cell = |f: Field| -> &Cell {
            columns
                .at
                .get(&f)
                .and_then(|i| cells.get(*i))
                .unwrap_or(&Cell::Empty)
        };
        let text = |f: Field| cell(f).text().to_owned();
        let name = valid_name("name", &text(Field::Name)).map_err(|e| e.message)?;
        let id_number = match cell(Field::IdNumber) {
            Cell::Number(_) => return Err(id_cell_message()),
            Cell::Empty => return Err("身份证号为空".to_owned()),
            Cell::Text(t) if looks_scientific(t) => return Err(id_cell_message()),
            Cell::Text(t) => {
                IdNumber::parse(t.trim().trim_start_matches('\'')).map_err(|e| e.message_zh())?
            }
        };
        let phone = match text(Field::Phone).as_str() {
            "" => None,
            p => Some(normalize_phone(p).ok_or_else(|| {
                "手机号格式有误：手机应为 11 位数字，固定电话请带区号".to_owned()
            })?),
        };
        let sex = text(Field::Sex);
        if !sex.is_empty() {
            let male = match sex.as_str() {
                "男" | "男性" | "M" | "m" | "male" => true,
                "女" | "女性" | "F" | "f" | "female" => false,
                other => return Err(format!("性别“{other}”无法识别，请填写“男”或“女”")),
            };
            if male != id_number.is_male() {
                return Err(format!(
                    "性别“{sex}”与身份证号不符（第 17 位表示{}），请核对",
                    if id_number.is_male() {
                        "男性"
                    } else {
                        "女性"
                    }
                ));
            }
        }
        let division_code = self.division_of_row(
            &text(Field::DivisionCode),
            &text(Field::Street),
            &text(Field::Community),
        )?;
        let volunteer_number = match text(Field::VolunteerNumber).as_str() {
            "" => None,
            n if n.chars().count() > 40 || n.chars().any(char::is_control) => {
                return Err("志愿者编号过长或含有无效字符".to_owned())
            }
            n => Some(n.to_owned()),
        };
        let skills: String = text(Field::Skills).chars().take(200).collect();
        let digest = self.id_digest(&id_number);
        Ok(Candidate {
            line,
            person: ValidPerson {
                name,
                id_number,
                phone,
                division_code,
            },
            digest,
            volunteer_number,
            skills,
        })
    }

    /// Opens an import job (state `running`) for a file about to be imported.
    pub async fn create_import_job(
        &self,
        actor: &Actor,
        kind: ImportKind,
        file_name: &str,
    ) -> Result<String> {
        actor.require_staff()?;
        let now = self.clock().now();
        let job = ImportJobRow {
            id: crate::donations::new_id("imp"),
            kind: kind.as_str().into(),
            file_name: file_name.chars().take(200).collect(),
            state: "running".into(),
            report: "[]".into(),
            created_by: actor.user_id.clone(),
            created_at: format_instant(now),
            ..ImportJobRow::default()
        };
        let mut tx = self.store().begin().await?;
        tx.insert(&job).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "import.started".into(),
                subject: job.id.clone(),
                payload: serde_json::json!({ "kind": job.kind, "file_name": job.file_name }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(job.id)
    }

    /// Starts an import in the background and returns its job id at once; poll
    /// [`App::import_job`] for progress and the report.
    pub async fn start_import(
        &self,
        actor: &Actor,
        kind: ImportKind,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<String> {
        let job_id = self.create_import_job(actor, kind, file_name).await?;
        let app = self.clone();
        let actor = actor.clone();
        let id = job_id.clone();
        tokio::spawn(async move {
            if let Err(e) = app.run_import(&actor, &id, kind, &bytes, |_, _| {}).await {
                tracing::warn!(job = %id, code = %e.code, "roster import failed");
            }
        });
        Ok(job_id)
    }

    /// Imports a roster into the job `job_id` (see [`App::create_import_job`]), calling
    /// `progress(processed, total)` after each batch. A file that cannot be read at all (encoding,
    /// no header) fails the job with the reason; otherwise every row ends in the report.
    pub async fn run_import(
        &self,
        actor: &Actor,
        job_id: &str,
        kind: ImportKind,
        bytes: &[u8],
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ImportSummary> {
        actor.require_staff()?;
        let mut job = self
            .store()
            .import_job(job_id)
            .await?
            .ok_or_else(|| AppError::not_found("import_job"))?;
        let prepared = read_table(bytes).and_then(|t| find_columns(&t).map(|c| (t, c)));
        let (table, columns) = match prepared {
            Ok(ok) => ok,
            Err(e) => {
                job.state = "failed".into();
                job.message = e.message.clone();
                job.finished_at = Some(format_instant(self.clock().now()));
                let mut tx = self.store().begin().await?;
                tx.import_progress(&job).await?;
                tx.journal(
                    self.clock().now(),
                    NewEntry {
                        actor: actor.user_id.clone(),
                        kind: "import.failed".into(),
                        subject: job.id.clone(),
                        payload: serde_json::json!({ "code": e.code }),
                    },
                )
                .await?;
                tx.commit().await?;
                return Err(e);
            }
        };
        let data = &table.rows[columns.header_index + 1..];
        let total = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let mut summary = ImportSummary {
            job_id: job_id.to_owned(),
            kind,
            format: table.format.clone(),
            encoding: table.encoding.clone(),
            header_line: columns.header_line,
            ignored_columns: columns.ignored.clone(),
            total,
            imported: 0,
            updated: 0,
            present: 0,
            duplicate: 0,
            refused: 0,
            rows: Vec::new(),
        };
        job.encoding = table.encoding.clone();
        job.total = i64::try_from(total).unwrap_or(i64::MAX);
        // The first line each person (ID digest) and volunteer number appears on in this file.
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut seen_numbers: HashMap<String, u64> = HashMap::new();
        let mut processed = 0_u64;
        for chunk in data.chunks(IMPORT_BATCH_ROWS) {
            let mut reports = Vec::new();
            let mut candidates = Vec::new();
            for (line, cells) in chunk {
                match self.candidate(&columns, *line, cells) {
                    Err(reason) => reports.push(RowReport {
                        line: *line,
                        outcome: RowOutcome::Refused,
                        reason,
                        participant_id: None,
                        volunteer_number: None,
                    }),
                    Ok(c) => {
                        if let Some(first) = seen.get(&c.digest) {
                            reports.push(RowReport {
                                line: c.line,
                                outcome: RowOutcome::Duplicate,
                                reason: format!(
                                    "与第 {first} 行是同一人（身份证号相同），本行未重复导入"
                                ),
                                participant_id: None,
                                volunteer_number: None,
                            });
                            continue;
                        }
                        if let Some(number) = &c.volunteer_number {
                            if let Some(first) = seen_numbers.get(number) {
                                reports.push(RowReport {
                                    line: c.line,
                                    outcome: RowOutcome::Refused,
                                    reason: format!("志愿者编号与第 {first} 行重复"),
                                    participant_id: None,
                                    volunteer_number: None,
                                });
                                continue;
                            }
                            seen_numbers.insert(number.clone(), c.line);
                        }
                        seen.insert(c.digest.clone(), c.line);
                        candidates.push(c);
                    }
                }
            }
            self.import_batch(actor, &mut job, kind, candidates, &mut reports)
                .await?;
            processed += u64::try_from(chunk.len()).unwrap_or(0);
            reports.sort_by_key(|r| r.line);
            for r in &reports {
                match r.outcome {
                    RowOutcome::Imported => summary.imported += 1,
                    RowOutcome::Updated => summary.updated += 1,
                    RowOutcome::Present => summary.present += 1,
                    RowOutcome::Duplicate => summary.duplicate += 1,
                    RowOutcome::Refused => summary.refused += 1,
                }
            }
            summary.rows.extend(reports);
            progress(processed, total);
        }
        job.state = "done".into();
        job.finished_at = Some(format_instant(self.clock().now()));
        // The job keeps only the rows that need a look (the progress page lists them); a
        // roster of 100 000 new people would otherwise store 100 000 "imported" lines. The
        // summary returned to the caller (the CLI's --report) keeps every row.
        let needing_a_look: Vec<&RowReport> = summary
            .rows
            .iter()
            .filter(|r| r.outcome != RowOutcome::Imported)
            .collect();
        job.report = serde_json::to_string(&needing_a_look).map_err(AppError::internal)?;
        job.message = if summary.ignored_columns.is_empty() {
            String::new()
        } else {
            format!("未使用的列：{}", summary.ignored_columns.join("、"))
        };
        let mut tx = self.store().begin().await?;
        tx.import_progress(&job).await?;
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "import.finished".into(),
                subject: job.id.clone(),
                payload: serde_json::json!({
                    "total": summary.total,
                    "imported": summary.imported,
                    "updated": summary.updated,
                    "present": summary.present,
                    "duplicate": summary.duplicate,
                    "refused": summary.refused,
                    "encoding": summary.encoding,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// Decides and writes one batch in one transaction with one journal entry.
    async fn import_batch(
        &self,
        actor: &Actor,
        job: &mut ImportJobRow,
        kind: ImportKind,
        candidates: Vec<Candidate>,
        reports: &mut Vec<RowReport>,
    ) -> Result<()> {
        let now_ts = self.clock().now();
        let now = format_instant(now_ts);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        let digests: Vec<String> = candidates.iter().map(|c| c.digest.clone()).collect();
        let existing: HashMap<String, ParticipantRecord> = tx
            .participants_by_id_digests(&digests)
            .await?
            .into_iter()
            .collect();
        let existing_ids: Vec<String> = existing.values().map(|p| p.id.clone()).collect();
        let (volunteer_of, taken): (HashMap<String, String>, HashMap<String, String>) =
            if kind == ImportKind::Volunteers {
                let numbers: Vec<String> = candidates.iter().map(volunteer_number_of).collect();
                (
                    tx.volunteers_of(&existing_ids).await?.into_iter().collect(),
                    tx.volunteer_numbers_taken(&numbers)
                        .await?
                        .into_iter()
                        .collect(),
                )
            } else {
                (HashMap::new(), HashMap::new())
            };
        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        let mut volunteers = Vec::new();
        let mut roles = Vec::new();
        let mut batch_numbers: HashSet<String> = HashSet::new();
        for c in candidates {
            let (row, outcome, mut reason) = match existing.get(&c.digest) {
                Some(old) => {
                    if old.display_name != c.person.name {
                        reports.push(RowReport {
                            line: c.line,
                            outcome: RowOutcome::Refused,
                            reason: format!(
                                "该身份证号已登记为“{}”（{}），与本行姓名不一致，请核对",
                                mask_name(&old.display_name),
                                old.id
                            ),
                            participant_id: Some(old.id.clone()),
                            volunteer_number: None,
                        });
                        continue;
                    }
                    let phone_digest = c.person.phone.as_deref().map(|p| self.phone_digest(p));
                    let mut changed = Vec::new();
                    let mut row = old.clone();
                    if phone_digest.is_some() && phone_digest != old.phone_digest {
                        row.phone_digest = phone_digest;
                        row.phone_masked = c.person.phone.as_deref().map(mask_phone);
                        row.phone_cipher =
                            c.person.phone.as_deref().map(|p| self.vault().encrypt(p));
                        changed.push("手机号");
                    }
                    if c.person.division_code.is_some()
                        && c.person.division_code != old.division_code
                    {
                        row.division_code = c.person.division_code.clone();
                        changed.push("所属区划");
                    }
                    if changed.is_empty() {
                        (
                            row,
                            RowOutcome::Present,
                            "已登记，信息相同，未改动".to_owned(),
                        )
                    } else {
                        row.updated_at = Some(now.clone());
                        updates.push(row.clone());
                        (
                            row,
                            RowOutcome::Updated,
                            format!("已登记，更新了{}", changed.join("、")),
                        )
                    }
                }
                None => {
                    let row = self.person_record(&new_participant_id(), &c.person, &now);
                    inserts.push(row.clone());
                    (row, RowOutcome::Imported, String::new())
                }
            };
            let mut volunteer_number = None;
            if kind == ImportKind::Volunteers {
                match volunteer_of.get(&row.id) {
                    Some(number) => {
                        if c.volunteer_number.as_ref().is_some_and(|n| n != number) {
                            reason.push_str(&format!("；已是志愿者（编号 {number}），编号未改"));
                        }
                        volunteer_number = Some(number.clone());
                    }
                    None => {
                        let number = volunteer_number_of(&c);
                        if taken.get(&number).is_some_and(|owner| *owner != row.id)
                            || !batch_numbers.insert(number.clone())
                        {
                            // Undo this row's participant write: the whole row is refused.
                            if outcome == RowOutcome::Imported {
                                inserts.pop();
                            } else if outcome == RowOutcome::Updated {
                                updates.pop();
                            }
                            reports.push(RowReport {
                                line: c.line,
                                outcome: RowOutcome::Refused,
                                reason: format!("志愿者编号“{number}”已属于另一位志愿者"),
                                participant_id: None,
                                volunteer_number: None,
                            });
                            continue;
                        }
                        volunteer_number = Some(number.clone());
                        volunteers.push(VolunteerRecord {
                            participant_id: row.id.clone(),
                            volunteer_number: number,
                            registered_at: now.clone(),
                            skills: c.skills.clone(),
                        });
                        if outcome == RowOutcome::Present {
                            // A known person newly registered as a volunteer is a change.
                            reports.push(RowReport {
                                line: c.line,
                                outcome: RowOutcome::Updated,
                                reason: "已登记，新登记为志愿者".to_owned(),
                                participant_id: Some(row.id.clone()),
                                volunteer_number,
                            });
                            roles.push(volunteer_role(&row.id, actor, &now));
                            continue;
                        }
                    }
                }
                roles.push(volunteer_role(&row.id, actor, &now));
            }
            reports.push(RowReport {
                line: c.line,
                outcome,
                reason,
                participant_id: Some(row.id.clone()),
                volunteer_number,
            });
        }
        tx.insert_wide(&inserts).await?;
        for row in &updates {
            tx.update_participant(row).await?;
        }
        tx.insert_all(&volunteers).await?;
        tx.grant_roles(&roles).await?;
        let first = reports.iter().map(|r| r.line).min().unwrap_or(0);
        let last = reports.iter().map(|r| r.line).max().unwrap_or(0);
        let count = |o: RowOutcome| reports.iter().filter(|r| r.outcome == o).count();
        job.processed += i64::try_from(reports.len()).unwrap_or(0);
        job.imported += i64::try_from(count(RowOutcome::Imported)).unwrap_or(0);
        job.updated += i64::try_from(count(RowOutcome::Updated)).unwrap_or(0);
        job.present += i64::try_from(count(RowOutcome::Present)).unwrap_or(0);
        job.refused +=
            i64::try_from(count(RowOutcome::Refused) + count(RowOutcome::Duplicate)).unwrap_or(0);
        tx.import_progress(job).await?;
        tx.journal(
            now_ts,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "import.batch".into(),
                subject: job.id.clone(),
                payload: serde_json::json!({
                    "kind": kind.as_str(),
                    "lines": [first, last],
                    "created": inserts.iter().map(|r| &r.id).collect::<Vec<_>>(),
                    "updated": updates.iter().map(|r| &r.id).collect::<Vec<_>>(),
                    "volunteers": volunteers.iter().map(|v| &v.participant_id).collect::<Vec<_>>(),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An import job's progress and, once done, its report.
    pub async fn import_job(&self, actor: &Actor, id: &str) -> Result<ImportJobView> {
        actor.require_staff()?;
        let job = self
            .store()
            .import_job(id)
            .await?
            .ok_or_else(|| AppError::not_found("import_job"))?;
        let rows: Vec<RowReport> = serde_json::from_str(&job.report).map_err(AppError::internal)?;
        Ok(ImportJobView {
            id: job.id,
            kind: job.kind,
            file_name: job.file_name,
            encoding: job.encoding,
            state: job.state,
            total: job.total,
            processed: job.processed,
            imported: job.imported,
            updated: job.updated,
            present: job.present,
            refused: job.refused,
            message: job.message,
            rows,
            created_at: job.created_at,
            finished_at: job.finished_at,
        })
    }
}

/// The row's volunteer number, or one derived from the person's digest when the roster has
/// none (stable across re-imports, and unrelated to the ID number for anyone without the key).
fn volunteer_number_of(c: &Candidate) -> String {
    c.volunteer_number
        .clone()
        .unwrap_or_else(|| format!("ZY{}", c.digest[..12].to_ascii_uppercase()))
}

fn volunteer_role(participant_id: &str, actor: &Actor, now: &str) -> ParticipantRoleRow {
    ParticipantRoleRow {
        participant_id: participant_id.to_owned(),
        role: "volunteer".into(),
        org_id: None,
        granted_by: actor.user_id.clone(),
        granted_at: now.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encodings() {
        let (t, e) = decode_text("姓名,身份证号\n".as_bytes()).unwrap();
        assert_eq!((t.as_str(), e), ("姓名,身份证号\n", "UTF-8"));
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("姓名".as_bytes());
        assert_eq!(
            decode_text(&bom).unwrap(),
            ("姓名".to_owned(), "UTF-8（带 BOM）")
        );
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,身份证号码");
        let (t, e) = decode_text(&gbk).unwrap();
        assert_eq!(t, "姓名,身份证号码");
        assert!(e.starts_with("GB18030"));
        // A lone 0xFF is neither UTF-8 nor GB18030.
        assert_eq!(
            decode_text(&[b'a', 0xFF]).unwrap_err().field.as_deref(),
            Some("file")
        );
    }

    #[test]
    fn counts_lines_like_an_editor() {
        let lines = |text: &str| -> Vec<u64> {
            read_csv(text.as_bytes())
                .unwrap()
                .rows
                .iter()
                .map(|r| r.0)
                .collect()
        };
        assert_eq!(lines("a,b\r\nc,d\r\n\r\ne,f\r\n"), [1, 2, 4]);
        assert_eq!(lines("a,b\nc,d\n\n\ne,f"), [1, 2, 5]);
        assert_eq!(
            lines("a,b\n\"x\ny\",z\nc,d\n"),
            [1, 2, 4],
            "a quoted line break"
        );
        assert_eq!(
            lines("a,b\n,\nc,d\n"),
            [1, 3],
            "a row of empty cells is no row"
        );
    }

    #[test]
    fn recognises_headers() {
        assert_eq!(field_of(" 身份证号码 "), Some(Field::IdNumber));
        assert_eq!(field_of("证件号码*"), Some(Field::IdNumber));
        assert_eq!(field_of("联系电话（必填）"), Some(Field::Phone));
        assert_eq!(field_of("所属社区"), Some(Field::Community));
        assert_eq!(field_of("序号"), Some(Field::Ignored));
        assert_eq!(field_of("爱好"), None);
        assert!(looks_scientific("3.30302E+17"));
        assert!(!looks_scientific("330302199001011234"));
    }
}
