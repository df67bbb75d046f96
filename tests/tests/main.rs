//! The end-to-end tests, as one test binary: each module starts real servers on port 0 and
//! checks one part of the HTTP API or the command line.

mod auth;
mod backpressure;
mod bad_input;
mod browser;
mod console;
mod deployment;
mod endpoints;
mod health;
mod lifecycle;
mod limits;
mod logs;
mod no_demo;
mod notify;
mod openapi;
mod otlp;
mod prometheus;
mod replay;
mod request_head;
mod scenarios;
mod sdk_overload;
mod shop;
