//! `cishan demo`: fill (or reuse) a demo database with a progress bar, then serve it.

use std::io::Write;

use anyhow::Context;
use cishan_app::demo::{
    DemoOptions, DemoReport, Progress, DEMO_ADMIN_PASSWORD, DEMO_ADMIN_USERNAME,
    DEMO_MEMBER_PASSWORD, DEMO_MEMBER_PHONE, DEMO_PARTNER_PASSWORD, DEMO_PARTNER_PHONE,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::serve::{base_url, serve};
use crate::{open_app, DemoArgs};

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let app = open_app(&args.serve.app).await?;
    let options = DemoOptions {
        scale: args.scale.into(),
        seed: args.seed,
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "演示数据 demo data: seed {}, scale {}, database {}",
            options.seed,
            options.scale,
            crate::redact_url(&args.serve.app.db.db)
        )?;
        writeln!(
            out,
            "演示管理员 demo administrator: {DEMO_ADMIN_USERNAME} / {DEMO_ADMIN_PASSWORD} (synthetic data only)"
        )?;
        writeln!(
            out,
            "演示会员 demo member (volunteer, donor): {DEMO_MEMBER_PHONE} / {DEMO_MEMBER_PASSWORD}"
        )?;
        writeln!(
            out,
            "合作机构兑换员 demo partner (redeems rewards): {DEMO_PARTNER_PHONE} / {DEMO_PARTNER_PASSWORD}"
        )?;
        out.flush()?;
    }

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:28} [{bar:32}] {human_pos:>9}/{human_len:9} {elapsed_precise}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let on_progress = |p: Progress| {
        bar.set_message(p.stage.label());
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let report = app
        .generate_demo(&options, &on_progress)
        .await
        .context("cannot generate the demo data")?;
    bar.finish_and_clear();
    print_report(&report)?;

    if args.no_serve {
        app.close().await;
        return Ok(());
    }
    serve(app, &args.serve.bind, true, |addr| {
        let url = base_url(addr);
        let mut out = std::io::stdout().lock();
        writeln!(out, "  dashboard:  {url}dashboard")?;
        writeln!(
            out,
            "  admin login: {url}login   username: {DEMO_ADMIN_USERNAME}   password: {DEMO_ADMIN_PASSWORD}"
        )?;
        writeln!(
            out,
            "  member login: {url}login   phone: {DEMO_MEMBER_PHONE}   password: {DEMO_MEMBER_PASSWORD}   then {url}me"
        )?;
        writeln!(
            out,
            "  partner login: {url}login   phone: {DEMO_PARTNER_PHONE}   password: {DEMO_PARTNER_PASSWORD}   then {url}partner/redeem"
        )?;
        writeln!(out, "  按 Ctrl-C 停止 press Ctrl-C to stop")?;
        out.flush()?;
        Ok(())
    })
    .await
}

fn print_report(report: &DemoReport) -> anyhow::Result<()> {
    let c = &report.counts;
    let mut out = std::io::stdout().lock();
    if report.reused {
        writeln!(
            out,
            "已有相同的演示数据，直接使用 the database already holds this demo; nothing written ({:.1} s)",
            report.elapsed.as_secs_f64()
        )?;
    } else {
        writeln!(
            out,
            "演示数据已生成 demo data generated in {:.1} s",
            report.elapsed.as_secs_f64()
        )?;
    }
    let lines = [
        ("居民 residents", c.participants - c.organizations),
        ("志愿者 volunteers", c.volunteers),
        ("慈善组织 organizations", c.organizations),
        ("慈善基金 funds", c.funds),
        ("项目 projects", c.projects),
        ("低收入家庭 households", c.households),
        ("低收入人口 people in households", c.household_members),
        ("服务项目 services", c.services),
        ("捐赠 donations", c.donations),
        ("拨付 disbursements", c.disbursements),
        ("志愿服务记录 service records", c.service_records),
        ("慈善信托 trusts", c.trusts),
    ];
    for (label, n) in lines {
        writeln!(out, "  {label:<34} {n:>9}")?;
    }
    out.flush()?;
    Ok(())
}
