//! Integration tests: one crate, so the AWS SDK is linked once. Each module drives the real
//! `reconcile` binary (and, where it needs AWS, a private emulator) or tests pure logic.

mod apply;
mod aws_like;
mod backend;
mod bench;
mod checker;
mod cli;
mod cutover;
mod drift;
mod emulator;
mod fixtures;
mod frontdoor;
mod graph;
mod health;
mod init;
mod interpreter;
mod layout;
mod lifecycle;
mod many;
mod observe;
mod plan_cli;
mod plan_props;
mod planner;
mod probe;
mod props;
mod proxy;
mod reliability;
mod schema;
mod seed;
mod support;
mod validate;
mod write;
