//! The process: start the [`Topology`], run until SIGTERM/SIGINT, then stop it in order (see
//! [`crate::topology`] for what runs and the shutdown contract).

use crate::config::Config;
use crate::topology::Topology;

/// How the process was asked to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `-dry-run`: print entries instead of pushing them; never write positions.
    pub dry_run: bool,
}

/// Runs ferrotail until SIGTERM/SIGINT, then shuts down in order.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    let mut topology = Topology::start(&cfg, &opts).await?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "Starting ferrotail.");
    tokio::select! {
        _ = shutdown_signal() => {}
        source = topology.source_ended() => {
            if source == "stdin" {
                // `-stdin`: the end of input is the end of the run, as with Promtail.
                tracing::info!("Standard input closed; flushing and stopping.");
            } else {
                // Sources only return on shutdown; if one ended, say so and stop cleanly.
                tracing::error!(source = %source, "A source stopped unexpectedly; stopping.");
            }
        }
    }
    tracing::info!("Stopping: reading stops, in-flight entries are flushed.");
    topology.stop().await;
    tracing::info!("Stopped.");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!("Cannot install signal handlers; stopping on Ctrl-C only.");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                tracing::warn!("SIGHUP received: configuration reload is not supported yet; restart to apply changes.");
            }
        }
    }
}
