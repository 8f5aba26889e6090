//! The integration tests: one binary (each links the AWS SDK once), one
//! module per area. They talk to real emulators (moto, Prism) started by
//! `scripts/test.sh`, and never skip: a missing emulator fails loudly.

mod aws_adapters;
mod calls;
mod control;
mod dialer;
mod fake_twilio;
mod faults;
mod foundation;
mod lambda_events;
mod live;
mod live_aws;
mod local_server;
mod onboarding;
mod openapi;
mod recordings;
mod sandbox;
mod server_process;
mod sms;
mod template;
mod twilio_contract;
mod webhook_fuzz;
