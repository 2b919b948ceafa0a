//! The database a test runs on: a fresh SQLite file, or with `CISHAN_TEST_POSTGRES_URL` a
//! fresh PostgreSQL database on that server. Shared by the app's test files.

/// A fresh database for one test; `suite` names the PostgreSQL database
/// (`cishan_{suite}_test_{pid}_{random}`).
pub async fn database_url(dir: &std::path::Path, suite: &str) -> String {
    match std::env::var("CISHAN_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Connection;
            let name = format!(
                "cishan_{suite}_test_{}_{}",
                std::process::id(),
                rand::random::<u32>()
            );
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}/app.db", dir.display()),
    }
}
