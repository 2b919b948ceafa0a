//! The web layer through real HTTP: each test starts the real server (`cishan_web::serve`) on
//! `127.0.0.1:0` with a fresh SQLite database in a temporary directory.

mod api;
mod common;
mod ledger_api;
mod ledger_pages;
mod ops;
mod orders;
mod pages;
mod participants;
mod points;
mod registry;
mod volunteering;
