//! Switchboard's core crate: the call model, the Twilio rules, the storage ports
//! and adapters, the handlers and the one route table that both the Lambda
//! functions and the local server serve.

pub mod api;
pub mod app;
pub mod auth;
pub mod aws;
pub mod calls;
pub mod config;
pub mod ids;
pub mod lambda;
pub mod messages;
pub mod numbers;
pub mod onboarding;
pub mod phone;
pub mod recordings;
pub mod routes;
pub mod secrets;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod twilio;
pub mod webhook;
pub mod workspace;
