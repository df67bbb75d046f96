//! Incidents that reach people: Alertmanager, webhooks, acknowledgements, silences and
//! timelines, against a real Alertmanager and receivers of the tests' own.

mod alertmanager;
mod lifecycle;
mod support;
mod webhooks;
