//! Switchboard's core crate: the Twilio rules, the services, the handlers and
//! the one route table that both the Lambda functions and the local server
//! serve. The model and the ports it is written against live in
//! `switchboard-model`; the adapters behind the ports live in their own
//! crates, so nothing here knows whether it talks to DynamoDB or redb.
//!
//! Layers, each importing only from the ones before it:
//! `paths`, `telemetry` → `twilio` → `config` → `auth`, `api` →
//! `accounts`, `app` → `views`, `webhook` → the handlers (`token`,
//! `numbers`, `onboarding`, `calls`, `recordings`, `sms`, `events`) →
//! `openapi` (the API contract), `routes`.

pub use switchboard_model as model;
pub use switchboard_model::{ids, jobs, phone, ports, sealed, time, workspace};

pub mod paths;
pub mod telemetry;
pub mod twilio;

pub mod config;

pub mod api;
pub mod auth;

pub mod accounts;
pub mod app;

pub mod views;
pub mod webhook;

pub mod calls;
pub mod events;
pub mod numbers;
pub mod onboarding;
pub mod recordings;
pub mod sms;
pub mod token;

pub mod openapi;
pub mod routes;
