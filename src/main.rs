//! The `ferrotail` binary: Promtail's command line, exit codes and start-up order.
//!
//! Exit codes (spec §2.1): 0 on success (also `-version`, `-check-syntax` of a valid file and a
//! graceful shutdown), 1 for a config that cannot be loaded or used, 2 for `-help` and bad flags.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use ferrotail::config::{self, FlagError, Flags};
use ferrotail::logging::{self, LogFormat};

fn main() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(FlagError::Help) => {
            print!("{}", config::usage());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };

    // Like Promtail, the config is loaded before -check-syntax and -version are looked at.
    let cfg = match config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            println!("Unable to parse config: {e}");
            return ExitCode::from(1);
        }
    };
    if flags.check_syntax {
        if flags.config_file.is_empty() {
            println!("Invalid config file");
            return ExitCode::from(1);
        }
        println!("Valid config file! No syntax issues found");
        return ExitCode::SUCCESS;
    }
    if flags.version {
        println!("{}", version_text());
        return ExitCode::SUCCESS;
    }

    let format = match cfg.server.log_format {
        config::LogFormat::Json => LogFormat::Json,
        _ => LogFormat::Logfmt,
    };
    logging::init(cfg.server.log_level.as_str(), format);

    if flags.print_config_stderr {
        eprintln!(
            "---\n# Loki Config\n# {}\n{}",
            version_line(),
            cfg.to_yaml_masked()
        );
    }
    if flags.log_config_reverse_order {
        for line in cfg.to_yaml_masked().lines().rev() {
            tracing::info!("{line}");
        }
    }

    match ferrotail::settings::check(&cfg) {
        Ok(warnings) => {
            for w in warnings {
                tracing::warn!(path = %w.path, "{}", w.message);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "error creating promtail");
            eprintln!("error creating promtail: {e}");
            return ExitCode::from(1);
        }
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferrotail")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error creating the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let options = ferrotail::app::RunOptions {
        dry_run: flags.dry_run,
    };
    match runtime.block_on(ferrotail::app::run(cfg, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "error running ferrotail");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn version_line() -> String {
    format!(
        "ferrotail, version {} (branch: {}, revision: {})",
        env!("CARGO_PKG_VERSION"),
        option_env!("FERROTAIL_BRANCH").unwrap_or("unknown"),
        option_env!("FERROTAIL_REVISION").unwrap_or("unknown"),
    )
}

fn version_text() -> String {
    format!(
        "{}\n  build user:       \n  build date:       \n  rust version:     stable\n  platform:         {}/{}\n  tags:             none",
        version_line(),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
