//! Helpers shared by the integration tests (`mod common;` in each test file).

#![allow(dead_code)]

pub mod accounting;
pub mod body;
pub mod config;
pub mod fake_docker;
pub mod fake_k8s;
pub mod mock_loki;
pub mod pki;
pub mod process;
