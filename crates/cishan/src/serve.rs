//! `cishan serve`: the web interface and API until Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;

use crate::{open_app, shutdown_signal, ServeArgs};

/// How often the server passes over providers past their accept deadline.
const ORDER_SWEEP_SECONDS: u64 = 60;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let app = open_app(&args.app).await?;
    if app.store().user_count().await? == 0 {
        print_first_admin_hint(&args)?;
    }
    // A database filled by `cishan demo --no-serve` is still synthetic: say so on every page.
    let demo = app.demo_in_database().await?.is_some();
    serve(app, &args.bind, demo, |_| Ok(())).await
}

/// Binds `bind`, prints the address actually bound, calls `announce` with it, and serves `app`
/// until a shutdown signal.
pub async fn serve(
    app: cishan_app::App,
    bind: &str,
    demo_banner: bool,
    announce: impl FnOnce(SocketAddr) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let listener = bind_listener(bind).await?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "cishan is running at {}", base_url(addr))?;
        out.flush()?;
    }
    announce(addr)?;
    tracing::info!(server.addr = %addr, "serving; press Ctrl-C to stop");
    let options = cishan_web::WebOptions {
        demo_banner,
        ..cishan_web::WebOptions::default()
    };
    // Providers who let an order's accept deadline pass are passed over every minute; the
    // dispatch index loads in the background so the first order does not wait for it.
    let sweeper = app.start_order_sweeper(std::time::Duration::from_secs(ORDER_SWEEP_SECONDS));
    let warm = {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = app.warm_dispatch_index().await {
                tracing::warn!(error = %e, "loading the dispatch index failed");
            }
        })
    };
    let served = cishan_web::serve_with(app.clone(), options, listener, shutdown_signal()).await;
    sweeper.abort();
    warm.abort();
    app.close().await;
    served.context("the web server stopped with an error")?;
    tracing::info!("stopped");
    Ok(())
}

async fn bind_listener(bind: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(bind).await.map_err(|e| {
        let advice = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "端口已被占用 address {bind} is already in use (another cishan or another program); \
                 choose another with --bind, e.g. --bind 127.0.0.1:8081"
            ),
            std::io::ErrorKind::PermissionDenied => format!(
                "没有权限 not allowed to listen on {bind}; ports below 1024 need privileges, try --bind 127.0.0.1:8080"
            ),
            _ => format!("cannot listen on {bind}: check --bind (HOST:PORT, e.g. 127.0.0.1:8080)"),
        };
        anyhow::Error::new(e).context(advice)
    })
}

/// The URL a browser on this machine opens for `addr`.
pub fn base_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}/", addr.port())
}

fn print_first_admin_hint(args: &ServeArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "还没有任何账号。创建管理员 No accounts yet. Create an administrator with:\n  \
         CISHAN_PASSWORD='…' cishan user add --db {} --data-dir {} --username NAME --role admin\n  \
         (or type the password on standard input)",
        crate::redact_url(&args.app.db.db),
        args.app.data_dir.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_open_from_this_machine() {
        assert_eq!(
            base_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            base_url("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9/"
        );
        assert_eq!(base_url("[::1]:80".parse().unwrap()), "http://[::1]:80/");
    }
}
