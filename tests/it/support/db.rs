//! Databases for tests: a SQLite file in a temp dir, or a fresh database on the local PostgreSQL
//! server (dropped afterwards). PostgreSQL tests never pass without PostgreSQL: when no server
//! answers they fail loudly; `scripts/test` leaves them out — and says so — outside CI only.

use std::path::Path;

use sqlx::Connection;

/// Where the PostgreSQL tests connect to create their databases.
pub const POSTGRES_ENV: &str = "RIGGER_TEST_POSTGRES";
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite(dir: &Path) -> Self {
        Self { url: format!("sqlite://{}/rigger.db", dir.display()), postgres: None }
    }

    pub async fn postgres() -> Self {
        let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {admin}: {e}. This test needs it (scripts/test skips PostgreSQL tests explicitly, outside CI only).")
        });
        let name = format!("rigger_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
        let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
        Self { url: format!("{base}/{name}"), postgres: Some((admin, name)) }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else { return };
        // Drop runs outside any runtime guarantee; use a private one on its own thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            });
        });
        let _ = dropped.join();
    }
}
