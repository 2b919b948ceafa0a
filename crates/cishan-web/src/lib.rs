//! The HTTP face of cishan: server-rendered pages and the JSON API under `/api/v1`.

use std::future::Future;

use cishan_app::App;

/// Every route of the platform.
pub fn router(app: App) -> axum::Router {
    let _ = app;
    axum::Router::new()
}

/// Serves `router(app)` on `listener` until `shutdown` completes.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}
